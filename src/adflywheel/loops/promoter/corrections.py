"""Corrections for testing many variants at once, on always-valid p-values.

* Holm (1979) step-down controls the family-wise error rate (the chance of promoting *any*
  variant that is not truly better) for any dependence between the tests. With always-valid
  p-values it holds across hourly looks too: a true null can only be rejected at some look if
  its p-value ever falls to ``alpha / m0``, and each always-valid p-value does that with
  probability at most ``alpha / m0``. The family must be fixed (every non-control variant of the
  call, eligible or not), not the ones that happen to have enough data this hour.
* Benjamini–Hochberg (1995) step-up controls the false discovery rate (the expected share of
  false promotions among promotions) at each look for independent or positively dependent tests
  (variants compared with one shared control are positively dependent). Optimizely's Stats
  Engine applies it to always-valid p-values (Johari et al. 2022 obtain multiple-testing control
  from always-valid p-values); across looks the guarantee is the per-look one. It promotes
  more, and is the choice when a false promotion is cheap (it is reversible) and a missed
  winner is not.

Benjamini–Hochberg is scipy's (``scipy.stats.false_discovery_control``). scipy has no Holm
adjustment (statsmodels' ``multipletests`` has, but it is not a dependency for one short step-down
loop), so ``holm`` is ours, tested against closed testing with Bonferroni, its definition.
"""

from __future__ import annotations

from enum import StrEnum

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

FloatArray = NDArray[np.float64]


class Correction(StrEnum):
    HOLM = "holm"
    BH = "bh"
    NONE = "none"


def holm(p_values: ArrayLike) -> FloatArray:
    """Holm-adjusted p-values over the last axis: reject ``i`` at level alpha iff
    ``adjusted[i] <= alpha``."""
    p = np.asarray(p_values, dtype=np.float64)
    m = p.shape[-1]
    if m == 0:
        return p.copy()
    order = np.argsort(p, axis=-1, kind="stable")
    ranked = np.take_along_axis(p, order, axis=-1)
    factors = m - np.arange(m, dtype=np.float64)
    stepped = np.minimum(np.maximum.accumulate(ranked * factors, axis=-1), 1.0)
    out = np.empty_like(p)
    np.put_along_axis(out, order, stepped, axis=-1)
    return out


def benjamini_hochberg(p_values: ArrayLike) -> FloatArray:
    """BH-adjusted p-values (q-values) over the last axis: scipy's ``false_discovery_control``."""
    p = np.asarray(p_values, dtype=np.float64)
    if p.shape[-1] == 0:
        return p.copy()
    out: FloatArray = np.asarray(
        stats.false_discovery_control(p, axis=-1, method="bh"), dtype=np.float64
    )
    return out


def adjust(p_values: ArrayLike, method: Correction) -> FloatArray:
    if method is Correction.HOLM:
        return holm(p_values)
    if method is Correction.BH:
        return benjamini_hochberg(p_values)
    return np.minimum(np.asarray(p_values, dtype=np.float64), 1.0)
