"""The ablation's aggregation and tables on synthetic shard results (no simulation runs)."""

from __future__ import annotations

import math
from typing import Any

import pytest
from benchmarks.ablation_design import DESIGN, parse_seeds, sets_for
from benchmarks.ablation_tables import (
    aggregate,
    markdown,
    projected_seconds,
    speed_up,
    summary_markdown,
    week_means,
)

from tests.factories.ablation_shards import shard

T_975_DF2 = 4.302652729911275  # Student's t, 97.5th percentile, 2 degrees of freedom


BASE = {1: 2.0, 2: 2.2, 3: 2.4}


def rows() -> list[dict[str, Any]]:
    out = [
        shard("thompson-alone", s, c, hours_to_lead_new_best=[40, 60, None])
        for s, c in BASE.items()
    ]
    # All seven: 1.04, 1.05, 1.06x Thompson alone on seeds 1-3; cold start 1.2x.
    for seed, ratio in ((1, 1.04), (2, 1.05), (3, 1.06)):
        cpd = BASE[seed] * ratio
        out.append(
            shard(
                "all-seven",
                seed,
                cpd,
                cold_start_clicks_per_dollar=BASE[seed] / 2 * 1.2,
                hours_to_lead_new_best=[4, 6, 5],
                accuracy_by_day=[0.7] * 7 + [None] * 7 + [0.92] * 7,
                accuracy_ceiling_by_day=[0.9] * 14 + [0.95] * 7,
                normalized_entropy=0.95,
                promotions=3,
                false_promotions=1,
                seconds=30.0,
            )
        )
    # Loop 1 removed costs 1-3%: it breaks the null-twin rule. Seed 4 has no Thompson pair.
    for seed, ratio in ((1, 0.97), (2, 0.98), (3, 0.99), (4, 1.5)):
        out.append(shard("all-minus-1", seed, BASE.get(seed, 1.0) * ratio))
    return out


def test_ratios_are_paired_by_seed_with_a_t_interval() -> None:
    table = aggregate("churn", rows())["table"]
    cell = table["all-seven"]["cpd"]
    half = T_975_DF2 * 0.01 / math.sqrt(3)
    assert cell["mean"] == pytest.approx(1.05)
    assert cell["low"] == pytest.approx(1.05 - half)
    assert cell["high"] == pytest.approx(1.05 + half)
    assert table["all-seven"]["cold_start"]["mean"] == pytest.approx(1.2)
    assert table["all-minus-1"]["paired"] == 3  # seed 4 has no Thompson alone to pair with
    assert table["all-minus-1"]["cpd"]["mean"] == pytest.approx(0.98)
    assert table["thompson-alone"]["cpd"]["mean"] == pytest.approx(1.0)


def test_references_clicks_at_equal_spend_and_marginal_oracle_share() -> None:
    table = aggregate("churn", rows())["table"]
    # Uniform: 1.5 clicks per dollar against 2.0, 2.2, 2.4.
    expected = sum(1.5 / c for c in BASE.values()) / 3
    assert table["uniform"]["cpd"]["mean"] == pytest.approx(expected)
    # At Thompson's 1,000.00 of spend, all seven's clicks are its clicks per dollar x 1,000.
    mean_cpd = sum(BASE[s] * r for s, r in ((1, 1.04), (2, 1.05), (3, 1.06))) / 3
    assert table["all-seven"]["clicks_at_equal_spend"]["mean"] == pytest.approx(mean_cpd * 1000)
    assert table["all-seven"]["share_of_marginal_oracle"]["mean"] == pytest.approx(mean_cpd / 3)
    marginal = table["marginal_oracle"]
    assert marginal["cpd"]["mean"] == pytest.approx(sum(3.0 / c for c in BASE.values()) / 3)
    assert marginal["share_of_marginal_oracle"]["mean"] == pytest.approx(1.0)
    assert "oracle" not in table  # no run carried the greedy oracle's figures


def test_accuracy_weeks_skip_unscored_days_and_short_runs_use_halves() -> None:
    first, last = week_means([0.7] * 7 + [None] * 7 + [0.92] * 7)
    assert first == pytest.approx(0.7)
    assert last == pytest.approx(0.92)
    assert week_means([0.5, None, 0.6, 0.8]) == (0.5, pytest.approx(0.7))
    assert week_means(None) == (None, None)


def test_markdown_states_rules_claims_and_machine_time() -> None:
    data = aggregate("churn", rows())
    text = markdown(data, {"seconds": 3600.0 * 2.5, "cpu_seconds": 3600.0}, design_shards=30)
    minus_one = next(line for line in text.splitlines() if line.startswith("| all-minus-1 |"))
    assert "FAIL" in minus_one
    all_seven = next(line for line in text.splitlines() if line.startswith("| all-seven |"))
    assert "pass (interval above 0.99)" in all_seven
    # 10x learning speed: Thompson alone's pooled median 50 h over all seven's 5 h.
    assert "medians 10.00× (means 10.00×) | met" in text
    assert "| 50 h, mean 50.0 h (6/9 led) |" in text  # seeds 1-3 each: 40, 60 and one never
    assert '"10× learning speed" | hours until a truly best new creative holds' in text
    assert "0.700 (0.700–0.700) → 0.920 (0.920–0.920) | met" in text
    # Beside the learnt accuracy, the ceiling binomial noise allows (last week).
    assert "→ 0.920 (0.920–0.920) | 0.950 (0.950–0.950) |" in text
    assert "Projected full design at these shards' length (21 days; 30 shards" in text
    assert "2.50 h wall, 1.00 h CPU." in text
    # 3 x 10 s + 3 x 30 s + 4 x 10 s of shards.
    assert "0.04 h wall (160 s)" in text
    assert "loop 3 no longer refreshes the shared winner index" in text


def test_speed_up_when_a_creative_leads_at_launch() -> None:
    def table(base: list[Any], mine: list[Any]) -> dict[str, Any]:
        found = [
            shard("thompson-alone", 1, 2.0, hours_to_lead_new_best=base),
            shard("all-seven", 1, 2.0, hours_to_lead_new_best=mine),
        ]
        return aggregate("churn", found)["table"]

    assert speed_up(table([0, 0, 4], [0, 0, 0]), "all-seven") == 1.0  # both medians 0 h
    assert speed_up(table([6, 8, 4], [0, 0, 1]), "all-seven") == math.inf
    assert speed_up(table([6, 8, 4], [0, 0, 1]), "all-seven", "mean") == pytest.approx(18.0)
    assert speed_up(table([None], [None]), "all-seven") is None  # never led: no ratio


def test_projection_uses_each_sets_own_time() -> None:
    found = [
        {"set": "thompson-alone", "seconds": 10.0},
        {"set": "thompson-alone", "seconds": 20.0},
        {"set": "all-seven", "seconds": 30.0},
    ]
    design = {"thompson-alone": 5, "all-seven": 5, "all-minus-1": 5}
    # A set not found yet is projected at the mean of every shard found (20 s).
    assert projected_seconds(found, design) == pytest.approx(5 * 15 + 5 * 30 + 5 * 20)
    assert projected_seconds([], design) is None


def test_design_sets_and_seeds() -> None:
    churn = {s.slug: s.loops for s in DESIGN["churn"]}
    assert {int(k) for k in churn["all-minus-4"]} == {1, 2, 3, 5, 6, 7}
    assert {int(k) for k in churn["thompson-alone"]} == {2}
    assert [s.slug for s in sets_for("null")] == ["thompson-alone", "all-seven"]
    assert [s.slug for s in sets_for("churn", quick=True)] == ["thompson-alone", "all-seven"]
    with pytest.raises(ValueError, match="unknown sets"):
        sets_for("null", "all-minus-1")
    assert parse_seeds("1-3,7,2") == (1, 2, 3, 7)
    with pytest.raises(ValueError):
        parse_seeds("5-1")


def test_the_readme_summary_has_each_set_and_the_two_references_per_scenario() -> None:
    data = aggregate("churn", rows())
    lines = summary_markdown([data, {**data, "scenario": "null"}]).splitlines()
    body = lines[2:]
    assert len(body) == 2 * 5  # thompson, all seven, all minus 1, uniform, marginal oracle
    all_seven = next(line for line in body if line.startswith("| churn | all-seven |"))
    assert all_seven.startswith("| churn | all-seven | 3 | 1.050 (")
    assert not any("greedy" in line for line in body)
    assert sum(line.startswith("| null |") for line in body) == 5
