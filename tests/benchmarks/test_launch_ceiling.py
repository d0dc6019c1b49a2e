"""The launch-ceiling benchmark (benchmarks/bench_launch_ceiling.py): its variance shares and
level effects on made-up arrays, then one seed of the churn world (synthetic, a few seconds)."""

from __future__ import annotations

import numpy as np
import pytest
from benchmarks.bench_launch_ceiling import (
    LADDER,
    N_LEVELS,
    PARTS,
    measure,
    true_level_effects,
    truth_shares,
    variance_shares,
)

from adflywheel.loops.crosslearn import SHARED_LEVELS
from adflywheel.loops.dna.fingerprint import VECTOR_FIELDS

TRUE_PREDICTORS = ("shared_pattern", "shared_linear", "all_genes", "all_genes_own")


def test_variance_shares_sum_to_one_and_ignore_what_is_constant_in_a_group() -> None:
    rng = np.random.default_rng(3)
    groups = np.repeat(np.arange(4), 5)
    parts = {
        "a": rng.normal(0, 1, 20),
        "b": 0.5 * rng.normal(0, 1, 20),
        "per_group": np.repeat(rng.normal(0, 5, 4), 5),  # niche and account: constant
    }
    shares = variance_shares(parts, groups)
    assert sum(shares.values()) == pytest.approx(1.0)
    assert shares["per_group"] == pytest.approx(0.0, abs=1e-12)
    assert shares["a"] > shares["b"] > 0
    doubled = variance_shares({**parts, "b": 2 * parts["b"]}, groups)
    assert doubled["b"] > shares["b"]


def test_true_level_effects_recover_a_planted_binary_effect_against_the_mix() -> None:
    rng = np.random.default_rng(5)
    levels = np.zeros((400, N_LEVELS))
    binary = SHARED_LEVELS.index("has_music=yes")
    levels[:, binary] = rng.random(400) < 0.25
    levels[:, SHARED_LEVELS.index("aspect_ratio=9:16")] = 1.0  # held by all: left out
    shared = 0.2 * levels[:, binary]
    cols, effects, held = true_level_effects(levels, shared)
    assert cols == [binary]
    share = levels[:, binary].mean()
    assert effects[0] == pytest.approx(0.2 * (1 - share))  # vs the average creative
    assert held[0] == levels[:, binary].sum()


def test_null_twin_has_no_gene_variance() -> None:
    shares = truth_shares(0, 0.0)
    assert shares["shared"] == 0.0 and shares["numeric"] == 0.0
    assert shares["idiosyncratic"] == pytest.approx(1.0)


def test_one_seed_of_the_churn_world() -> None:
    result = measure(0)
    shares = result["shares"]
    assert set(shares) == set(PARTS)
    assert sum(shares.values()) == pytest.approx(1.0, abs=1e-3)
    assert all(v > 0.05 for v in shares.values())  # genes move CTR on the churn scenario
    assert result["null_shares"]["idiosyncratic"] == pytest.approx(1.0)
    ladder = result["ladder"]
    assert set(ladder) == {k for k, _ in LADDER}
    # The truth predictors on the same impressions: each knows more than the one before.
    accuracy = [ladder[k]["accuracy"] for k in TRUE_PREDICTORS]
    ne = [ladder[k]["ne"] for k in TRUE_PREDICTORS]
    assert accuracy == sorted(accuracy) and len(set(accuracy)) == len(accuracy)
    assert ne == sorted(ne, reverse=True)
    assert ladder["none"]["accuracy"] < ladder["shared_pattern"]["accuracy"]
    assert ladder["all_genes_own"]["accuracy"] < ladder["hindsight"]["accuracy"]
    assert ladder["hindsight"]["calibration"] == pytest.approx(1.0, abs=1e-3)
    lifts = result["lifts"]
    assert 0 < lifts["slope_clipped"] < lifts["slope_unclipped"]  # the clip shrinks the lifts
    assert lifts["corr_clipped"] > 0.3


def test_the_vectors_first_columns_are_the_shared_levels() -> None:
    fields = [f if "=" in f else f"{f}=yes" for f in VECTOR_FIELDS[:N_LEVELS]]
    assert fields == list(SHARED_LEVELS)
