"""From P(best) to integer budgets, for many campaigns at once: floors, bounds, caps, rounding.

Precedence, strongest first (a weaker rule gives way only as far as needed to stay feasible):

1. the campaign total is conserved exactly, in integer minor units;
2. per-variant minimum and maximum budgets (integers: they hold exactly);
3. the change cap ``|new - current| <= max_change_fraction * current``, and the evidence gate
   (a variant below ``min_impressions`` keeps its current budget, or the fair share ``total / n``
   if it is new): a gated variant is simply one whose change cap is 0 — while the gated
   variants' held budgets together are at most ``max_gated_share * total``; beyond that each
   gated variant's interval is [its held budget × ``max_gated_share * total / Σ held``, its held
   budget]: never raised on thin evidence, lowered only as far as keeps the gated variants
   together at that share, where their P(best) says so. A gated variant with a model's prior
   (``prior_led``) is not held but led by what was predicted for it: its interval is the fair
   share ``total / n`` × (1 ± ``prior_tilt``), within the change cap of its current budget, so
   its P(best) under the prior moves its budget, at most ``prior_tilt`` of a fair share either
   way (issue #15: a prior worth a few hundred impressions never moved a budget while the gate
   held it, and by the gate's end its own evidence outweighed it);
4. the floor ``min(floor_share, max_floor_total / n) * total`` per active variant (n active), so
   that the floors together never take more than ``max_floor_total`` of the budget.

Why these scale with the number of variants n (issue #15): a floor per variant and a gate per
variant reserve budget in proportion to n, so at 50+ variants they took the whole total and the
split was uniform however clear the evidence. Both reservations are now bounded in total, and
both bounds are wide enough that the campaigns of 5–10 variants the defaults were tuned on are
unchanged (a 2% floor reaches 0.2 only at 10 variants). The change cap stays relative to each
variant's current budget: that is what Meta's learning phase responds to, and the hours it takes
a variant to climb from its floor to a share s grow with log(s / floor) — with log n, not n
(about 14 hourly steps from 0.1% to 30% at the default 0.5).

Each layer intersects its per-variant interval with the box left by the stronger layers. If the
layer's intervals cannot all hold at once (say the total itself moved by more than the cap), every
one of its lower (or upper) bounds is relaxed toward the stronger box by the same fraction, just
enough to be feasible, and the layer is reported as relaxed. Inside the final box the budgets are
the P(best) targets scaled by one common factor per campaign (proportional water-filling: find κ
with Σ clip(κ·target, lower, upper) = total), then rounded by largest remainder. Rounding can cost
layers 3 and 4 at most one minor unit; layers 1 and 2 hold exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.int64]

_BISECTION_STEPS = 80  # halves κ's bracket to ~1e-24 of its width: far below a minor unit


def variant_floor(n: FloatArray, floor_share: float, max_floor_total: float) -> FloatArray:
    """The per-variant floor share at ``n`` active variants: ``min(floor_share, max_floor_total
    / n)``, so the floors together take at most ``max_floor_total`` (and never more than 1)."""
    floor: FloatArray = np.minimum(floor_share, max_floor_total / np.maximum(n, 1.0))
    return floor


def floored_shares(
    p_best: FloatArray, active: BoolArray, floor_share: float, max_floor_total: float = 1.0
) -> FloatArray:
    """``f + (1 - n·f) · p`` on active variants, ``f = variant_floor(n, …)`` (uniform if
    ``n·f >= 1``); rows sum to 1.

    The additive floor (GrowthBook's, PR #6145) keeps exploration without the bias of
    clip-and-renormalise.
    """
    n = active.sum(axis=1, keepdims=True).astype(np.float64)
    n_safe = np.maximum(n, 1.0)
    floor_share_n = variant_floor(n, floor_share, max_floor_total)
    mass = np.clip(1.0 - n * floor_share_n, 0.0, 1.0)
    p = np.where(active, p_best, 0.0)
    p_sum = p.sum(axis=1, keepdims=True)
    p = np.where(p_sum > 0, p / np.where(p_sum > 0, p_sum, 1.0), active / n_safe)
    shares = np.where(mass > 0, floor_share_n + mass * p, 1.0 / n_safe)
    return np.where(active, shares, 0.0)


@dataclass(frozen=True, slots=True)
class BudgetInputs:
    """Packed (C, V) budget constraints; ``current <= 0`` means new. Inactive cells are ignored."""

    total: IntArray  # (C,)
    active: BoolArray
    gated: BoolArray  # below the minimum of evidence
    current: FloatArray
    min_budget: FloatArray
    max_budget: FloatArray  # +inf when unbounded
    max_change_fraction: float | None
    floor_share: float
    max_floor_total: float = 1.0  # 1.0: the floors are not bounded in total (before issue #15)
    max_gated_share: float = 1.0  # 1.0: a gated variant is always held (before issue #15)
    prior_led: BoolArray | None = None  # gated variants with a model prior (None: none)
    prior_tilt: float = 0.0  # how far a prior moves a gated variant from its held budget


def _tighten(
    lower: FloatArray, upper: FloatArray, lo: FloatArray, hi: FloatArray, total: FloatArray
) -> tuple[FloatArray, FloatArray, NDArray[np.bool_]]:
    """Intersect the box with a weaker layer's [lo, hi], relaxing the layer where infeasible."""
    tol = 1e-9 * np.maximum(total, 1.0)
    want_lower = np.minimum(np.maximum(lower, lo), upper)
    s_old, s_new = lower.sum(axis=1), want_lower.sum(axis=1)
    over = s_new > total + tol
    frac = np.where(over, (total - s_old) / np.where(over, s_new - s_old, 1.0), 1.0)
    new_lower = lower + frac[:, None] * (want_lower - lower)

    want_upper = np.maximum(np.minimum(upper, hi), new_lower)
    s_old, s_new = upper.sum(axis=1), want_upper.sum(axis=1)
    under = s_new < total - tol
    frac = np.where(under, (s_old - total) / np.where(under, s_old - s_new, 1.0), 1.0)
    new_upper = upper - frac[:, None] * (upper - want_upper)
    return new_lower, new_upper, over | under


@dataclass(frozen=True, slots=True)
class Box:
    lower: FloatArray
    upper: FloatArray
    cap_relaxed: BoolArray  # (C,) the change cap / evidence gate had to give way
    floor_relaxed: BoolArray  # (C,) the floor had to give way


def feasible_box(inp: BudgetInputs) -> Box:
    """The per-variant [lower, upper] budget intervals after all four layers of precedence."""
    total = inp.total.astype(np.float64)
    t_col = total[:, None]
    active = inp.active
    n_active = np.maximum(active.sum(axis=1, keepdims=True), 1)
    lower = np.where(active, inp.min_budget, 0.0)
    upper = np.where(active, np.minimum(inp.max_budget, t_col), 0.0)

    is_new = inp.current <= 0
    pinned = np.where(is_new, t_col / n_active, inp.current)
    lo = np.zeros_like(lower)
    hi = np.full_like(upper, np.inf)
    if inp.max_change_fraction is not None:
        capped = active & ~inp.gated & ~is_new
        lo = np.where(capped, inp.current * (1.0 - inp.max_change_fraction), lo)
        hi = np.where(capped, inp.current * (1.0 + inp.max_change_fraction), hi)
    gated = active & inp.gated
    held = np.where(gated, pinned, 0.0).sum(axis=1, keepdims=True)
    allowed = inp.max_gated_share * t_col
    give = np.where(held > allowed, allowed / np.where(held > 0, held, 1.0), 1.0)
    lo = np.where(gated, pinned * give, lo)
    hi = np.where(gated, pinned, hi)
    if inp.prior_led is not None and inp.prior_tilt > 0:
        lo, hi = _prior_led(inp, gated & inp.prior_led, t_col / n_active, pinned * give, lo, hi)
    lower, upper, cap_relaxed = _tighten(lower, upper, lo, hi, total)

    floor_share = variant_floor(n_active.astype(np.float64), inp.floor_share, inp.max_floor_total)
    floor = np.where(active, np.minimum(floor_share * t_col, t_col / n_active), 0.0)
    lower, upper, floor_relaxed = _tighten(lower, upper, floor, np.full_like(hi, np.inf), total)
    return Box(lower, upper, cap_relaxed, floor_relaxed)


def _prior_led(
    inp: BudgetInputs,
    led: BoolArray,
    fair: FloatArray,
    gated_low: FloatArray,
    lo: FloatArray,
    hi: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """The gate's interval of a variant led by its prior: ``fair × (1 ± prior_tilt)`` (``fair =
    total / n``: a prior never moves a variant further than that from an equal share), within
    the change cap of its current budget; where the two do not meet, it is held, as the gate
    would. Anchored at the fair share, not at the current budget, so that a prior applied hour
    after hour cannot compound."""
    tilt = inp.prior_tilt
    low, high = fair * (1.0 - tilt), fair * (1.0 + tilt)
    has_budget = inp.current > 0
    if inp.max_change_fraction is not None:
        cap = inp.max_change_fraction
        low = np.where(has_budget, np.maximum(low, inp.current * (1.0 - cap)), low)
        high = np.where(has_budget, np.minimum(high, inp.current * (1.0 + cap)), high)
    apart = has_budget & (low > high)
    low = np.where(apart, inp.current, np.minimum(low, gated_low))
    high = np.where(apart, inp.current, high)
    return np.where(led, low, lo), np.where(led, high, hi)


def water_fill(
    target: FloatArray, lower: FloatArray, upper: FloatArray, total: IntArray
) -> FloatArray:
    """Per row, ``clip(κ·target, lower, upper)`` with κ chosen so the row sums to ``total``.

    Vectorised bisection over all campaigns; the sum is monotone in κ. Requires
    ``Σ lower <= total <= Σ upper`` per row and ``target > 0`` wherever ``lower < upper``.
    """
    t = total.astype(np.float64)
    positive = target > 0
    ratio = np.where(positive, upper / np.where(positive, target, 1.0), 0.0)
    k_lo = np.zeros_like(t)
    k_hi = np.maximum(ratio.max(axis=1), 0.0) * 2.0 + 1.0
    for _ in range(_BISECTION_STEPS):
        k_mid = 0.5 * (k_lo + k_hi)
        filled = np.clip(k_mid[:, None] * target, lower, upper).sum(axis=1)
        low_side = filled < t
        k_lo = np.where(low_side, k_mid, k_lo)
        k_hi = np.where(low_side, k_hi, k_mid)
    filled_final: FloatArray = np.clip(0.5 * (k_lo + k_hi)[:, None] * target, lower, upper)
    return filled_final


def round_to_total(
    amounts: FloatArray, total: IntArray, hard_min: FloatArray, hard_max: FloatArray
) -> IntArray:
    """Largest-remainder rounding: integers, each the floor or ceiling of its amount, that sum
    exactly to ``total`` and stay within the integer ``[hard_min, hard_max]``."""
    amounts = np.clip(amounts, hard_min, hard_max)
    base = np.floor(amounts)
    frac = amounts - base
    base_int = base.astype(np.int64)
    missing = total - base_int.sum(axis=1)
    eligible = base + 1.0 <= hard_max
    key = np.where(eligible, frac, -1.0)
    order = np.argsort(-key, axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(order.shape[1])[None, :], axis=1)
    bump = eligible & (rank < missing[:, None])
    result: IntArray = base_int + bump
    for row in np.flatnonzero(result.sum(axis=1) != total):  # float edge cases only: rare
        _repair(result[row], int(total[row]), hard_min[row], hard_max[row])
    return result


def _repair(row: IntArray, total: int, hard_min: FloatArray, hard_max: FloatArray) -> None:
    """Add or remove single units, largest slack first, until the row sums to ``total``."""
    while (gap := total - int(row.sum())) != 0:
        slack = hard_max - row if gap > 0 else row - hard_min
        i = int(np.argmax(slack))
        if slack[i] < 1:
            raise ValueError("budget constraints cannot be met in whole minor units")
        row[i] += 1 if gap > 0 else -1
