"""The paired bootstrap over creatives, now scipy's ``bootstrap(paired=True)``, against the
hand-written creative resampling it replaced (issue #20) and against resampling rows, which
ignores the creative grouping. Synthetic data."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from adflywheel.loops.compound.evaluation import FloatArray, binomial_loss, paired_bootstrap


def _creatives(seed: int, n_creatives: int = 40) -> tuple[FloatArray, ...]:
    """Creatives of 1-15 rows each whose true CTRs differ by creative (so rows of one creative
    are correlated), a challenger that knows the creative's CTR up to noise and a reference
    that predicts the base rate."""
    rng = np.random.default_rng(seed)
    rows = rng.integers(1, 16, n_creatives)
    groups = np.repeat(np.arange(n_creatives), rows)
    ctr = np.repeat(rng.lognormal(np.log(0.01), 0.5, n_creatives), rows)
    impressions = rng.integers(200, 3000, len(groups)).astype(float)
    clicks = rng.binomial(impressions.astype(int), ctr).astype(float)
    challenger = ctr * rng.lognormal(0.0, 0.3, len(groups))
    reference = np.full(len(groups), clicks.sum() / impressions.sum())
    return challenger, reference, impressions, clicks, groups.astype(float)


def _hand_written(
    challenger: FloatArray,
    reference: FloatArray,
    impressions: FloatArray,
    clicks: FloatArray,
    groups: NDArray[np.int64],
    n_boot: int,
    level: float,
    seed: int,
) -> tuple[float, float]:
    """The resampling that scipy's replaced: draw k creatives with replacement (multinomial
    counts), ratio of summed loss difference to summed impressions, percentile interval."""
    keys, index = np.unique(groups, return_inverse=True)
    k = len(keys)
    delta = binomial_loss(challenger, impressions, clicks) - binomial_loss(
        reference, impressions, clicks
    )
    delta_g = np.bincount(index, weights=delta, minlength=k)
    imps_g = np.bincount(index, weights=impressions, minlength=k)
    counts = np.random.default_rng(seed).multinomial(k, np.full(k, 1.0 / k), size=n_boot)
    boot = (counts @ delta_g) / (counts @ imps_g)
    alpha = (1.0 - level) / 2.0
    return float(np.quantile(boot, alpha)), float(np.quantile(boot, 1.0 - alpha))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_scipys_paired_bootstrap_gives_the_interval_of_the_resampling_it_replaced(
    seed: int,
) -> None:
    ch, ref, n, c, g = _creatives(seed)
    groups = g.astype(np.int64)
    ours = paired_bootstrap(ch, ref, n, c, groups, n_boot=20_000, seed=seed)
    low, high = _hand_written(ch, ref, n, c, groups, 20_000, 0.95, seed + 100)
    width = high - low
    # Two Monte Carlo estimates of the same quantiles: they agree to a few % of the width.
    assert ours.lower == pytest.approx(low, abs=0.04 * width)
    assert ours.upper == pytest.approx(high, abs=0.04 * width)
    assert ours.n_groups == 40 and ours.lower < ours.difference < ours.upper


def test_resampling_creatives_is_wider_than_resampling_rows() -> None:
    """The grouping is kept: rows of one creative move together, so the creative-level interval
    is wider than the one from treating rows as independent (one row per "creative")."""
    ch, ref, n, c, g = _creatives(4, n_creatives=30)
    by_creative = paired_bootstrap(ch, ref, n, c, g.astype(np.int64), n_boot=5000)
    by_row = paired_bootstrap(ch, ref, n, c, np.arange(len(g)), n_boot=5000)
    assert by_creative.difference == pytest.approx(by_row.difference, rel=1e-12)
    assert (by_creative.upper - by_creative.lower) > 1.2 * (by_row.upper - by_row.lower)


def test_the_bootstrap_is_seeded_and_handles_degenerate_input() -> None:
    ch, ref, n, c, g = _creatives(5)
    groups = g.astype(np.int64)
    assert paired_bootstrap(ch, ref, n, c, groups, seed=9) == paired_bootstrap(
        ch, ref, n, c, groups, seed=9
    )
    one = paired_bootstrap(ch, ref, n, c, np.zeros(len(g), np.int64))
    assert one.lower == one.difference == one.upper and one.n_groups == 1
    silent = n.copy()
    silent[groups == 0] = 0.0  # a creative without impressions carries nothing: left out
    c_silent = np.where(groups == 0, 0.0, c)
    assert paired_bootstrap(ch, ref, silent, c_silent, groups).n_groups == 39
    with pytest.raises(ValueError):
        paired_bootstrap(ch[:0], ref[:0], n[:0], c[:0], groups[:0])
    with pytest.raises(ValueError):
        paired_bootstrap(ch, ref, n, c, groups, level=1.0)
