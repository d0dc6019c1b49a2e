"""The simulated market's injectable concept drift (synthetic data): gene effects shift at a
given hour, seeded, and the default market is unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from adflywheel.sim.market import GeneShift, MarketConfig, SimulatedMarket

SMALL = {"seed": 3, "n_accounts": 2, "campaigns_per_account": 1, "variants_per_campaign": 6}


def test_the_top_gene_effects_flip_at_the_given_hour_and_only_then() -> None:
    plain = SimulatedMarket(MarketConfig(**SMALL))  # type: ignore[arg-type]
    drifting = SimulatedMarket(MarketConfig(**SMALL, gene_shift=GeneShift(at_hour=5)))  # type: ignore[arg-type]
    for _ in range(5):
        np.testing.assert_array_equal(
            plain.evaluation.true_ctr_array(), drifting.evaluation.true_ctr_array()
        )
        a, b = plain.step(), drifting.step()
        assert a == b  # identical delivery before the shift
    before, after = plain.evaluation.true_ctr_array(), drifting.evaluation.true_ctr_array()
    ratio = after / before
    assert np.abs(np.log(ratio)).max() > 0.1  # some creatives moved a lot
    assert (ratio > 1.05).any() and (ratio < 0.95).any()  # winners lose, losers win
    # the shift itself: the largest global effects change sign, hooks stay centred
    world = drifting._world
    effects = world.effects
    shifted = effects.shifted(4, -1.0)
    original = np.concatenate([effects.hook_global, effects.numeric_global])
    top = np.argsort(-np.abs(original))[:4]
    moved = np.concatenate([shifted.hook_global, shifted.numeric_global])
    assert shifted.hook_global.sum() == pytest.approx(0.0, abs=1e-12)
    assert all(
        np.sign(moved[i]) != np.sign(original[i]) for i in top if i >= effects.hook_global.size
    )
    assert np.abs(world.gene_shift_logit).max() > 0


def test_default_markets_are_unchanged_and_the_shift_is_validated() -> None:
    config = MarketConfig(**SMALL)  # type: ignore[arg-type]
    assert config.gene_shift is None
    assert not SimulatedMarket(config)._world.gene_shift_logit.any()
    with pytest.raises(ValueError):
        GeneShift(at_hour=-1)
    with pytest.raises(ValueError):
        GeneShift(at_hour=1, top_k=0)
