"""Inputs of the allocator: per-variant evidence, the campaign, and the settings.

Evidence counts may be fractional because the caller may pass exponentially discounted sums (see
``discount.py``); budgets are money and must be integers of minor currency units. Everything is
validated on construction so that the numeric core never sees a bad number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from numbers import Integral, Real

from adflywheel.core.domain import Objective


def _check_count(name: str, owner: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{owner}: {name} must be a number, got {value!r}")
    if not math.isfinite(float(value)):
        raise ValueError(f"{owner}: {name} must be finite, got {value!r}")
    if float(value) < 0:
        raise ValueError(f"{owner}: {name} is negative ({value})")


def _check_budget(name: str, owner: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ValueError(
            f"{owner}: {name} must be an integer of minor currency units, got {value!r}"
        )
    as_int = int(value)
    if as_int < 0:
        raise ValueError(f"{owner}: {name} is negative ({as_int})")
    return as_int


@dataclass(frozen=True, slots=True)
class RatePrior:
    """A model's prediction of a variant's CTR, worth ``strength`` impressions of evidence.

    It becomes Beta pseudo-counts ``alpha = rate * n``, ``beta = (1 - rate) * n`` with
    ``n = min(strength, AllocationSettings.max_prior_impressions)``: the cap keeps any model's
    opinion from outweighing more than a few hours of real delivery.
    """

    rate: float
    strength: float

    def __post_init__(self) -> None:
        if not (isinstance(self.rate, int | float) and 0.0 < self.rate < 1.0):
            raise ValueError(f"prior rate must be strictly between 0 and 1, got {self.rate!r}")
        if not (
            isinstance(self.strength, int | float)
            and math.isfinite(self.strength)
            and self.strength > 0
        ):
            raise ValueError(
                f"prior strength must be a positive finite number, got {self.strength!r}"
            )


@dataclass(frozen=True, slots=True)
class VariantEvidence:
    """What is known about one variant (an ad) of a campaign.

    ``impressions``, ``clicks``, ``spend_minor``, ``conversions`` and ``revenue_minor`` may be
    discounted (fractional) sums. ``evidence_impressions`` is what the minimum-evidence gate counts;
    it defaults to ``impressions`` but callers that discount should pass the raw lifetime count, so
    that an old variant never falls back below the gate merely because its evidence aged.
    ``current_budget_minor`` of ``None`` or 0 means "new": no change cap, fair share if gated.
    """

    id: str
    impressions: float
    clicks: float
    spend_minor: float
    conversions: float = 0
    revenue_minor: float = 0
    prior: RatePrior | None = None
    active: bool = True
    current_budget_minor: int | None = None
    min_budget_minor: int = 0
    max_budget_minor: int | None = None
    evidence_impressions: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ValueError(f"variant id must be a non-empty string, got {self.id!r}")
        owner = f"variant {self.id!r}"
        for name in ("impressions", "clicks", "spend_minor", "conversions", "revenue_minor"):
            _check_count(name, owner, getattr(self, name))
        if self.evidence_impressions is not None:
            _check_count("evidence_impressions", owner, self.evidence_impressions)
        if self.clicks > self.impressions:
            raise ValueError(
                f"{owner}: clicks ({self.clicks}) exceed impressions ({self.impressions})"
            )
        if self.conversions > self.clicks:
            # View-through conversions can exceed clicks on Meta, but the Beta-Binomial model of
            # conversions per click cannot represent them: the caller must pass click-through
            # conversions only, rather than have us clip silently.
            raise ValueError(
                f"{owner}: conversions ({self.conversions}) exceed clicks ({self.clicks}); "
                "pass click-through conversions only"
            )
        if self.prior is not None and not isinstance(self.prior, RatePrior):
            raise ValueError(f"{owner}: prior must be a RatePrior or None, got {self.prior!r}")
        if self.current_budget_minor is not None:
            _check_budget("current_budget_minor", owner, self.current_budget_minor)
        minimum = _check_budget("min_budget_minor", owner, self.min_budget_minor)
        if self.max_budget_minor is not None:
            maximum = _check_budget("max_budget_minor", owner, self.max_budget_minor)
            if maximum < minimum:
                raise ValueError(
                    f"{owner}: max_budget_minor ({maximum}) is below min_budget_minor ({minimum})"
                )

    @property
    def gate_impressions(self) -> float:
        """Impressions counted by the minimum-evidence gate."""
        if self.evidence_impressions is None:
            return float(self.impressions)
        return float(self.evidence_impressions)


@dataclass(frozen=True, slots=True)
class CampaignEvidence:
    """One campaign: its variants and what its budget allocation maximises."""

    id: str
    variants: tuple[VariantEvidence, ...]
    objective: Objective = Objective.CTR

    def __post_init__(self) -> None:
        owner = f"campaign {self.id!r}"
        object.__setattr__(self, "variants", tuple(self.variants))
        if not self.variants:
            raise ValueError(f"{owner}: the variant list is empty")
        ids = [v.id for v in self.variants]
        if len(set(ids)) != len(ids):
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            raise ValueError(f"{owner}: duplicate variant ids {dupes}")
        try:
            object.__setattr__(self, "objective", Objective(self.objective))
        except ValueError:
            raise ValueError(f"{owner}: unknown objective {self.objective!r}") from None


@dataclass(frozen=True, slots=True)
class AllocationSettings:
    """Knobs of the allocator. Defaults suit hourly reallocation of video ads on Meta.

    ``floor_share``: every active variant keeps at least this share (exploration never stops)...
    ``max_floor_total``: ...as long as the floors of the campaign's ``n`` active variants together
    take at most this share of its budget: the per-variant floor is
    ``min(floor_share, max_floor_total / n)``. Without the bound a 2% floor gives 50 variants the
    whole budget and the split is uniform however clear the evidence (issue #15). At the default
    0.2 nothing changes for a 2% floor up to 10 variants, nor for the core's 5% up to 4; the
    service bounds them at 5% (``THOMPSON_SETTINGS``: measured in benchmarks/RESULTS.md, the
    floors' share of the budget costs about a third of itself in clicks against plain Thompson).
    ``min_impressions``: below this a variant is gated: its budget is held, never raised on thin
    evidence (GrowthBook: 100 units per arm; an ad needs ~1,000 impressions before its CTR means
    anything).
    ``max_gated_share``: the evidence gate holds a gated variant exactly at its current budget
    (or the fair share ``total / n`` if new) only while the gated variants' held budgets together
    stay within this share of the total; beyond it each may be lowered, in proportion, to what
    keeps the gated variants' total at this share (never raised). Without it a campaign of
    hundreds of variants with a few new ones, or all of them young, is frozen at ``total / n``
    each. At the default 0.5 a campaign with most of its budget on proven variants is unchanged.
    ``pause_tail_below_minimum``: when the active variants' minimum budgets (Meta's minimum daily
    budget per ad set) do not all fit under the campaign's total: ``False`` refuses the campaign
    (``ValueError``; the cycle skips and alerts it), ``True`` pauses the variants least likely to
    be best until the others' minimums fit and names them (``CampaignAllocation.paused``). Either
    way a variant whose share is below its minimum is held at it (``held_at_minimum``).
    ``max_change_fraction``: a budget moves at most this fraction of its current value per
    reallocation (``None``: no cap). Meta resets the learning phase on large edits.
    ``prior_tilt``: a gated variant with a model prior (``VariantEvidence.prior``) is not held
    but may take between (1 - tilt) and (1 + tilt) times the fair share ``total / n`` (within
    the change cap of its current budget), as its P(best) under the prior says: what loops 1,
    3, 4 and 5 predict for a new creative reaches its budget before its own evidence clears the
    gate. It is the cap on any prior's weight in money; the prior's weight in the posterior
    (``max_prior_impressions``) fades as the variant's own impressions come in, so the hand-over
    to its own clicks is smooth. 0 holds gated variants as before.
    ``max_prior_impressions``: cap on a model prior's strength.
    ``default_prior_strength``: strength of the weak prior of a variant without a prediction
    (the campaign's pooled rates), also the weight of the hard-coded defaults below.
    ``half_life_hours``: for the caller's discounting (``None``: stationary).
    ``default_ctr``, ``default_cvr``, ``default_cpm_minor``: used only where a campaign has no data.
    ``aov_prior_conversions``: shrinkage of revenue per conversion toward the campaign's mean.
    ``chunk_elements``: draws held in memory at once (bounds RAM, keeps arrays in cache).
    """

    n_draws: int = 1000
    floor_share: float = 0.05
    max_floor_total: float = 0.2
    min_impressions: float = 1000.0
    max_gated_share: float = 0.5
    pause_tail_below_minimum: bool = False
    max_change_fraction: float | None = 0.5
    prior_tilt: float = 0.5
    max_prior_impressions: float = 2000.0
    default_prior_strength: float = 100.0
    half_life_hours: float | None = 72.0
    interval: float = 0.90
    default_ctr: float = 0.01
    default_cvr: float = 0.02
    default_cpm_minor: float = 1000.0
    aov_prior_conversions: float = 2.0
    currency_exponent: int = 2
    chunk_elements: int = field(default=1 << 20)

    def __post_init__(self) -> None:
        def bad(name: str, rule: str) -> ValueError:
            return ValueError(f"settings: {name} must be {rule}, got {getattr(self, name)!r}")

        if isinstance(self.n_draws, bool) or not isinstance(self.n_draws, int) or self.n_draws < 1:
            raise bad("n_draws", "a positive integer")
        if not 0.0 <= self.floor_share < 1.0:
            raise bad("floor_share", "in [0, 1)")
        for name in ("max_floor_total", "max_gated_share", "prior_tilt"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise bad(name, "in [0, 1]")
        if not (math.isfinite(self.min_impressions) and self.min_impressions >= 0):
            raise bad("min_impressions", "a finite number >= 0")
        if self.max_change_fraction is not None and not (
            math.isfinite(self.max_change_fraction) and self.max_change_fraction >= 0
        ):
            raise bad("max_change_fraction", "None or a finite number >= 0")
        for name in ("max_prior_impressions", "default_prior_strength", "default_cpm_minor"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise bad(name, "a positive finite number")
        if self.half_life_hours is not None and not self.half_life_hours > 0:
            raise bad("half_life_hours", "None or > 0")
        for name in ("interval", "default_ctr", "default_cvr"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise bad(name, "strictly between 0 and 1")
        if not (math.isfinite(self.aov_prior_conversions) and self.aov_prior_conversions >= 0):
            raise bad("aov_prior_conversions", "a finite number >= 0")
        if self.currency_exponent < 0:
            raise bad("currency_exponent", ">= 0")
        if self.chunk_elements < 1:
            raise bad("chunk_elements", ">= 1")
