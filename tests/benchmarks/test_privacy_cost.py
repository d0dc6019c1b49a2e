"""The privacy-cost benchmark's pure pieces (benchmarks/bench_privacy_cost.py): day rows, the
scores, the seeded publication's k rule and common noise, and the aggregation (no simulation)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pytest
from benchmarks.bench_privacy_cost import (
    EPSILONS,
    KS,
    POOLS,
    aggregate,
    day_rows,
    markdown,
    pooled_ctr,
    published_prior,
    score,
)

from adflywheel.loops.bandit.evidence import AllocationSettings
from adflywheel.loops.crosslearn import SHARED_LEVELS, Contribution
from adflywheel.loops.crosslearn.sharing import BASE_CENTRE

LEVEL = SHARED_LEVELS[0]


def contribs(n: int, lift: float = 0.5, log_base: float = 0.2) -> list[Contribution]:
    lifts = (lift,) + (0.0,) * (len(SHARED_LEVELS) - 1)
    return [Contribution(log_base, lifts, 8, False) for _ in range(n)]


def test_day_rows_cut_days_from_the_launch_drop_empty_days_and_stop_at_the_run_end() -> None:
    imps = np.zeros(80, int)
    clicks = np.zeros(80, int)
    imps[5:29], clicks[5:29] = 10, 1  # day 0 from hour 5: 240 impressions, 24 clicks
    imps[53:80], clicks[53] = 4, 3  # day 1 (hours 29-52) empty; day 2: hours 53-76
    assert day_rows(5, imps, clicks, 3) == [(240, 24), (24 * 4, 3)]
    assert day_rows(5, imps, clicks, 1) == [(240, 24)]
    assert day_rows(60, imps, clicks, 3) == [(20 * 4, 0)]  # the run ends 20 hours in


def test_score_of_each_ads_own_rate_is_accurate_and_calibrated() -> None:
    rows = [[(1000, 10)], [(2000, 60)]]
    own = score([0.01, 0.03], rows)
    assert own["accuracy"] == pytest.approx(1.0)
    assert own["calibration"] == pytest.approx(1.0)
    assert own["ne"] < 1.0
    flat = score([70 / 3000, 70 / 3000], rows)  # the evaluation CTR itself: NE = 1
    assert flat["ne"] == pytest.approx(1.0)
    assert flat["calibration"] == pytest.approx(1.0)
    assert flat["accuracy"] < own["accuracy"]
    assert score([0.02, 0.06], rows)["calibration"] == pytest.approx(2.0)


def test_pooled_ctr_is_the_allocators_default_without_data() -> None:
    settings = AllocationSettings()
    assert pooled_ctr(0, 0, settings) == pytest.approx(settings.default_ctr)
    assert pooled_ctr(1e6, 3e4, settings) == pytest.approx(0.03, rel=1e-3)


def test_nothing_is_published_below_k() -> None:
    prior, divisor = published_prior("beauty", contribs(5), 6, 1.0, (1, 2))
    assert prior is None and math.isnan(divisor)
    assert published_prior("beauty", contribs(4), 5, math.inf, (1,))[0] is None


def test_the_same_noise_key_gives_the_same_release_whatever_k() -> None:
    # ε = 1: the count's noise has scale 5; this key draws a noisy count of 3.88 for 5 accounts,
    # so the divisor (the noisy count, floored at k) is shared by k = 2 and 3 and is k above.
    # With the same divisor the priors are identical (common random numbers across k).
    released = [published_prior("beauty", contribs(5), k, 1.0, (18,)) for k in (2, 3, 4, 5)]
    divisors = [d for _, d in released]
    assert divisors[0] == divisors[1] == pytest.approx(3.8756, abs=1e-4)
    assert divisors[2:] == [4.0, 5.0]
    priors = [p for p, _ in released if p is not None]
    assert len(priors) == 4
    assert priors[1] == dataclasses.replace(priors[0], accounts=">=3")  # only the bucket differs
    assert priors[2] != dataclasses.replace(priors[3], accounts=">=4")  # a larger divisor


def test_without_noise_the_prior_follows_the_contributions() -> None:
    a, _ = published_prior("beauty", contribs(5), 2, math.inf, (1,))
    b, _ = published_prior("beauty", contribs(5), 5, math.inf, (2,))
    none, _ = published_prior("beauty", contribs(5, lift=0.0), 2, math.inf, (1,))
    assert a is not None and b is not None and none is not None
    assert a.effects[LEVEL][0] == pytest.approx(b.effects[LEVEL][0], abs=1e-6)
    assert a.effects[LEVEL][0] > 0.1 and none.effects[LEVEL][0] == pytest.approx(0.0, abs=1e-6)
    assert a.base_ctr > BASE_CENTRE  # log_base 0.2 above the centre, shrunk toward it


def fake_seeds(seeds: int, draws: int) -> list[dict[str, Any]]:
    """Per seed: accuracy 0.70 + seed/100 for "no privacy", 0.01 less in every noisy cell."""
    out = []
    for s in range(seeds):
        base = 0.70 + s / 100

        def cell(acc: float, published: float | None = None) -> dict[str, float]:
            row = {"ne": 1.0 - acc / 10, "accuracy": acc, "calibration": 0.9}
            return row if published is None else row | {"published": published}

        seed: dict[str, Any] = {"none": [cell(base - 0.02)], "hindsight": [cell(0.9)]}
        seed["niche/unclipped"] = [cell(base)]
        for pool in POOLS:
            for k in KS:
                for e in EPSILONS:
                    n = 1 if math.isinf(e) else draws
                    shown = 0.0 if k == 6 or (pool == "others" and k == 5) else 1.0
                    acc = base - 0.02 if shown == 0 else base - (0 if math.isinf(e) else 0.01)
                    seed[f"{pool}/k{k}/eps{e:g}"] = [cell(acc, shown) for _ in range(n)]
        out.append(seed)
    return out


def test_aggregate_pairs_each_cell_with_its_pools_no_privacy_by_seed() -> None:
    cells = aggregate(fake_seeds(3, 4))
    assert cells["niche/k5/eps1"]["accuracy_vs_no_privacy"]["median"] == pytest.approx(-0.01)
    assert cells["niche/k5/eps1"]["accuracy_vs_no_privacy"]["p95"] == pytest.approx(-0.01)
    assert cells["niche/k5/eps1"]["accuracy"]["median"] == pytest.approx(0.70)  # spread by seed
    assert cells["none"]["accuracy_vs_no_privacy"]["median"] == pytest.approx(-0.02)
    assert cells["niche/k6/eps1"]["published"] == 0.0
    assert cells["niche/k2/epsinf"]["accuracy_vs_no_privacy"]["median"] == 0.0


def test_markdown_marks_cells_where_nothing_was_published() -> None:
    text = markdown({"churn": {"cells": aggregate(fake_seeds(2, 2))}})
    grid = text.split("pool `niche`: median Δ accuracy")[1].splitlines()
    row_k6 = next(line for line in grid if line.startswith("| 6 |"))
    row_k5 = next(line for line in grid if line.startswith("| 5 |"))
    assert row_k6.count("—") == len(EPSILONS)
    assert "-1.00" in row_k5 and "—" not in row_k5
