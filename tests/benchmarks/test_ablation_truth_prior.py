"""The truth-prior upper bounds in the ablation's design and tables: selectable by ``--sets`` on
churn, null and strong, never in the default design, shown (paired against Thompson alone) only
when their shards exist (synthetic shard results; no simulation runs)."""

from __future__ import annotations

import pytest
from benchmarks.ablation_design import DESIGN, OPTIONAL, full_design_shards, sets_for
from benchmarks.ablation_tables import aggregate, markdown

from adflywheel.core.loops import Loop
from adflywheel.sim.harness import resolve_policy
from tests.factories.ablation_shards import shard

SLUGS = ["truth-prior-ad", "truth-prior-genes", "truth-prior-ad-loose"]


def test_the_truth_priors_are_named_sets_outside_the_default_design() -> None:
    for scenario in ("churn", "null", "strong"):
        assert [s.slug for s in OPTIONAL[scenario]] == SLUGS
        assert not set(SLUGS) & {s.slug for s in sets_for(scenario)}
        assert not set(SLUGS) & {s.slug for s in sets_for(scenario, quick=True)}
        chosen = sets_for(scenario, "thompson-alone,truth-prior-ad,truth-prior-genes")
        assert [s.slug for s in chosen] == ["thompson-alone", *SLUGS[:2]]
        for s in chosen[1:]:
            assert "evaluation only" in s.label and "upper bound" in s.label
            assert s.loops == frozenset({Loop.BANDIT})
            assert resolve_policy(s.policy, 1)[1] == s.loops  # the harness reads the policy
    assert full_design_shards("churn") == 6 * 5  # the default machine time is unchanged
    assert len(DESIGN["churn"]) == 6
    with pytest.raises(ValueError, match="unknown sets"):
        sets_for("legacy", "truth-prior-ad")


def test_the_tables_show_a_truth_prior_only_when_its_shards_exist() -> None:
    rows = [shard("thompson-alone", s, 2.0) for s in (1, 2)]
    without = markdown(aggregate("null", rows))
    assert "truth-prior" not in without
    rows += [shard("truth-prior-genes", 1, 2.2), shard("truth-prior-genes", 2, 2.4)]
    data = aggregate("null", rows)
    row = data["table"]["truth-prior-genes"]
    assert row["paired"] == 2
    assert row["cpd"]["mean"] == pytest.approx(1.15)  # (1.1 + 1.2) / 2, paired by seed
    assert list(data["table"])[:2] == ["thompson-alone", "truth-prior-genes"]
    line = next(ln for ln in markdown(data).splitlines() if ln.startswith("| truth-prior-genes"))
    assert line.endswith("| – |")  # not a loop set: the null-twin rule does not judge it
    assert "not a loop set: reads the market's truth" in markdown(data)
    assert "truth-prior-ad" not in data["table"]
