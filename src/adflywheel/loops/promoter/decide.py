"""Winners and losers: each variant against its campaign's control, corrected across variants.

The customer's three conditions, all configurable: at least ``min_impressions`` per arm, the
lift is positive with ``confidence`` (the always-valid test of ``sequential``, after the
multiple-testing correction), and the estimated lift is at least ``min_lift``. Before any of it,
the arms' delivery must match the intended split (``srm``). A clear loser is the mirror image
(significant, and at least ``loser_min_drop`` worse), with the same guarantees.

The control is the variant marked as control. A campaign without one compares each variant with
the rest of the campaign pooled (period by period, so the pool is the rest's delivery in the same
hours); each variant is then tested against its competitors, and the pooled arm moves as the
variant's own budget share moves, which the per-period stratification absorbs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from adflywheel.loops.promoter.corrections import Correction, adjust
from adflywheel.loops.promoter.sequential import (
    always_valid_p_value,
    cs_half_width,
    log_e_value,
    mh_log_ratio,
    mixing_sd_for,
)
from adflywheel.loops.promoter.srm import SrmResult, sample_ratio_check

MAX_LIFT = 1e6  # an interval's "unbounded" upper end (JSON has no infinity)
POOLED = "pooled:rest"


class Reason(StrEnum):
    CONTROL = "control"
    TOO_FEW_IMPRESSIONS = "too_few_impressions"
    NOT_ESTIMABLE = "not_estimable"
    SAMPLE_RATIO_MISMATCH = "sample_ratio_mismatch"
    NOT_SIGNIFICANT = "not_significant"
    LIFT_BELOW_MINIMUM = "lift_below_minimum"
    WINNER = "winner"
    LOSER = "loser"


@dataclass(frozen=True, slots=True)
class DecisionSettings:
    """The statistics, per account. ``mixing_sd`` (log-ratio scale) defaults to
    ``log(1 + min_lift)``; see ``sequential`` for why."""

    min_impressions: int = 1000
    confidence: float = 0.95
    min_lift: float = 0.20
    correction: Correction = Correction.HOLM
    mixing_sd: float | None = None
    loser_min_drop: float = 0.20
    srm_alpha: float = 0.001
    srm_tolerance: float = 0.20

    def __post_init__(self) -> None:
        if isinstance(self.min_impressions, bool) or not isinstance(self.min_impressions, int):
            raise ValueError("min_impressions must be an integer")
        if self.min_impressions < 0:
            raise ValueError("min_impressions must be >= 0")
        if not 0.5 <= self.confidence < 1.0:
            raise ValueError("confidence must be in [0.5, 1)")
        if not (math.isfinite(self.min_lift) and self.min_lift >= 0):
            raise ValueError("min_lift must be a finite number >= 0")
        if self.mixing_sd is not None and not (
            math.isfinite(self.mixing_sd) and 0 < self.mixing_sd <= 5
        ):
            raise ValueError("mixing_sd must be in (0, 5]")
        if not 0 <= self.loser_min_drop <= 1:
            raise ValueError("loser_min_drop must be in [0, 1]")
        if not 0 < self.srm_alpha < 0.5:
            raise ValueError("srm_alpha must be in (0, 0.5)")
        if not (math.isfinite(self.srm_tolerance) and 0 < self.srm_tolerance <= 1):
            raise ValueError("srm_tolerance must be in (0, 1]")
        object.__setattr__(self, "correction", Correction(self.correction))

    @property
    def alpha(self) -> float:
        return 1.0 - self.confidence

    @property
    def tau(self) -> float:
        return self.mixing_sd if self.mixing_sd is not None else mixing_sd_for(self.min_lift)


@dataclass(frozen=True, slots=True)
class VariantData:
    """A variant's impressions and clicks per allocation period, oldest first (one period for
    cumulative counts), and optionally its intended share of the campaign's traffic in each
    period (its budget share) for the sample-ratio check."""

    id: str
    impressions: tuple[int, ...]
    clicks: tuple[int, ...]
    intended_share: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if len(self.impressions) != len(self.clicks) or not self.impressions:
            raise ValueError(f"variant {self.id!r}: give impressions and clicks per period")
        for n, x in zip(self.impressions, self.clicks, strict=True):
            if n < 0 or x < 0:
                raise ValueError(f"variant {self.id!r}: counts must be >= 0")
            if x > n:
                raise ValueError(f"variant {self.id!r}: clicks ({x}) exceed impressions ({n})")
        if self.intended_share is not None:
            if len(self.intended_share) != len(self.impressions):
                raise ValueError(f"variant {self.id!r}: one intended share per period")
            if any(not 0 <= s <= 1 for s in self.intended_share):
                raise ValueError(f"variant {self.id!r}: intended shares must be in [0, 1]")


@dataclass(frozen=True, slots=True)
class Experiment:
    """One campaign: its variants (the control among them, if any) over the same periods."""

    key: str
    control_id: str | None
    variants: tuple[VariantData, ...]

    def __post_init__(self) -> None:
        ids = [v.id for v in self.variants]
        if len(set(ids)) != len(ids):
            raise ValueError(f"experiment {self.key!r}: variant ids must be unique")
        if self.control_id is not None and self.control_id not in ids:
            raise ValueError(f"experiment {self.key!r}: control {self.control_id!r} not listed")
        if len({len(v.impressions) for v in self.variants}) > 1:
            raise ValueError(f"experiment {self.key!r}: every variant needs the same periods")


@dataclass(frozen=True, slots=True)
class Decision:
    experiment: str
    variant_id: str
    control: str  # the control's id, or POOLED
    impressions: int
    clicks: int
    control_impressions: int
    control_clicks: int
    variant_rate: float  # standardised to the common mix of periods
    control_rate: float
    lift: float
    interval: tuple[float, float]  # always-valid, at the configured confidence
    e_value: float
    p_value: float  # always-valid, two-sided
    adjusted_p_value: float
    winner: bool
    loser: bool
    reason: Reason
    detail: str
    srm: SrmResult = field(default_factory=SrmResult.unchecked)

    @property
    def confidence(self) -> float:
        """1 - the corrected always-valid p-value: the confidence that the lift is not zero."""
        return 1.0 - self.adjusted_p_value


@dataclass(slots=True)
class _Row:
    experiment: str
    variant: VariantData
    control: str
    ctrl_n: np.ndarray
    ctrl_x: np.ndarray
    ctrl_share: np.ndarray | None


def _rows(experiment: Experiment) -> list[_Row]:
    """Each non-control variant with its control arm (the marked control, or the rest pooled)."""
    arrays = {
        v.id: (np.asarray(v.impressions, dtype=np.float64), np.asarray(v.clicks, np.float64))
        for v in experiment.variants
    }
    shares_known = all(v.intended_share is not None for v in experiment.variants)
    shares = {
        v.id: np.asarray(v.intended_share, dtype=np.float64)
        for v in experiment.variants
        if v.intended_share is not None
    }
    rows = []
    for v in experiment.variants:
        if v.id == experiment.control_id:
            continue
        others = (
            [experiment.control_id]
            if experiment.control_id is not None
            else [o.id for o in experiment.variants if o.id != v.id]
        )
        if not others:
            continue
        n = sum((arrays[o][0] for o in others), np.zeros_like(arrays[v.id][0]))
        x = sum((arrays[o][1] for o in others), np.zeros_like(arrays[v.id][0]))
        share = sum((shares[o] for o in others), np.zeros_like(n)) if shares_known else None
        control = experiment.control_id if experiment.control_id is not None else POOLED
        rows.append(_Row(experiment.key, v, control, n, x, share))
    return rows


def _srm(row: _Row, settings: DecisionSettings) -> SrmResult:
    if row.ctrl_share is None or row.variant.intended_share is None:
        return SrmResult.unchecked()
    sv = np.asarray(row.variant.intended_share, dtype=np.float64)
    pair = sv + row.ctrl_share
    known = pair > 0
    q = np.where(known, sv / np.where(known, pair, 1.0), 0.5)
    nv = np.where(known, np.asarray(row.variant.impressions, dtype=np.float64), 0.0)
    nc = np.where(known, row.ctrl_n, 0.0)
    return sample_ratio_check(nv, nc, q, alpha=settings.srm_alpha, tolerance=settings.srm_tolerance)


def decide(experiments: Sequence[Experiment], settings: DecisionSettings) -> list[Decision]:
    """Decisions for every variant of every experiment; the correction runs over the fixed
    family of all non-control variants given (ineligible ones count with p = 1)."""
    rows = [row for experiment in experiments for row in _rows(experiment)]
    alpha, tau = settings.alpha, settings.tau
    prepared = []
    raw_p = np.ones(len(rows))
    for i, row in enumerate(rows):
        v = row.variant
        est = mh_log_ratio(v.impressions, v.clicks, row.ctrl_n, row.ctrl_x)
        theta, var = float(est.log_ratio), float(est.variance)
        n_v, n_c = sum(v.impressions), int(row.ctrl_n.sum())
        srm = _srm(row, settings)
        reason: Reason | None = None
        if min(n_v, n_c) < settings.min_impressions:
            reason = Reason.TOO_FEW_IMPRESSIONS
        elif not math.isfinite(theta):
            reason = Reason.NOT_ESTIMABLE
        elif srm.mismatch:
            reason = Reason.SAMPLE_RATIO_MISMATCH
        p = float(always_valid_p_value(theta, var, tau))
        if reason is None:
            raw_p[i] = p
        prepared.append((row, est, theta, var, n_v, n_c, srm, reason, p))
    adjusted = adjust(raw_p, settings.correction) if rows else raw_p

    decided: dict[tuple[str, str], Decision] = {}
    for i, (row, est, theta, var, n_v, n_c, srm, reason, p) in enumerate(prepared):
        lift, interval = _lift_and_interval(theta, var, tau, alpha)
        adj = float(adjusted[i])
        if reason is None:
            if adj > alpha:
                reason = Reason.NOT_SIGNIFICANT
            elif lift > 0:
                reason = Reason.WINNER if lift >= settings.min_lift else Reason.LIFT_BELOW_MINIMUM
            else:
                reason = Reason.LOSER if -lift >= settings.loser_min_drop else None
                reason = reason or Reason.LIFT_BELOW_MINIMUM
        decided[row.experiment, row.variant.id] = Decision(
            experiment=row.experiment,
            variant_id=row.variant.id,
            control=row.control,
            impressions=n_v,
            clicks=sum(row.variant.clicks),
            control_impressions=n_c,
            control_clicks=int(row.ctrl_x.sum()),
            variant_rate=float(est.variant_rate),
            control_rate=float(est.control_rate),
            lift=lift,
            interval=interval,
            e_value=float(min(math.exp(min(float(log_e_value(theta, var, tau)), 690.0)), 1e300)),
            p_value=p,
            adjusted_p_value=adj,
            winner=reason is Reason.WINNER,
            loser=reason is Reason.LOSER,
            reason=reason,
            detail=_detail(reason, settings, n_v, n_c, lift, adj, srm),
            srm=srm,
        )
    out = []
    for experiment in experiments:
        for v in experiment.variants:
            found = decided.get((experiment.key, v.id))
            is_control = v.id == experiment.control_id
            out.append(found if found is not None else _control(experiment.key, v, is_control))
    return out


def _control(experiment: str, v: VariantData, is_control: bool) -> Decision:
    """The control's own entry (or a lone variant's, which has nothing to compare with)."""
    n, x = sum(v.impressions), sum(v.clicks)
    rate = x / n if n else 0.0
    return Decision(
        experiment=experiment,
        variant_id=v.id,
        control=v.id,
        impressions=n,
        clicks=x,
        control_impressions=n,
        control_clicks=x,
        variant_rate=rate,
        control_rate=rate,
        lift=0.0,
        interval=(0.0, 0.0),
        e_value=1.0,
        p_value=1.0,
        adjusted_p_value=1.0,
        winner=False,
        loser=False,
        reason=Reason.CONTROL if is_control else Reason.NOT_ESTIMABLE,
        detail="the control: the variants are compared with it"
        if is_control
        else "no other variant to compare with",
    )


def _lift_and_interval(
    theta: float, var: float, tau: float, alpha: float
) -> tuple[float, tuple[float, float]]:
    if not math.isfinite(theta):
        return 0.0, (-1.0, MAX_LIFT)
    half = float(cs_half_width(var, tau, alpha))
    cap = math.log1p(MAX_LIFT)
    lo, hi = max(theta - half, -cap), min(theta + half, cap)
    return math.expm1(theta), (math.expm1(lo), math.expm1(hi))


def _detail(
    reason: Reason,
    settings: DecisionSettings,
    n_v: int,
    n_c: int,
    lift: float,
    adjusted_p: float,
    srm: SrmResult,
) -> str:
    alpha = settings.alpha
    if reason is Reason.TOO_FEW_IMPRESSIONS:
        return f"needs {settings.min_impressions} impressions per arm (has {n_v} and {n_c})"
    if reason is Reason.NOT_ESTIMABLE:
        return "an arm has no clicks yet: the lift is not estimable"
    if reason is Reason.SAMPLE_RATIO_MISMATCH:
        return (
            f"delivery does not follow the intended split (variant share {srm.observed_share:.3f},"
            f" expected {srm.expected_share:.3f}): the comparison is not trusted"
        )
    if reason is Reason.NOT_SIGNIFICANT:
        return (
            f"not significant: corrected always-valid p = {adjusted_p:.4f} > {alpha:.4f}"
            f" ({settings.correction.value})"
        )
    if reason is Reason.LIFT_BELOW_MINIMUM:
        return (
            f"significant, but the estimated lift {lift:+.1%} is below the minimum"
            f" ({settings.min_lift:.0%} for a winner, -{settings.loser_min_drop:.0%} for a loser)"
        )
    if reason is Reason.WINNER:
        return f"lift {lift:+.1%} with corrected always-valid p = {adjusted_p:.4g}"
    if reason is Reason.LOSER:
        return f"drop {lift:+.1%} with corrected always-valid p = {adjusted_p:.4g}"
    return "the control"
