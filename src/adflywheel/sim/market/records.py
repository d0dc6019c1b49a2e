"""What the simulated market (synthetic data) records of the writes it received, for evaluation.

The logs draw no random number and change no state, so delivery is the same without them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BudgetWrite:
    """One write of an ad set's daily budget, as the market saw it (evaluation only).

    ``hour`` is the market hour at the write (the hour the next ``step`` delivers); ``source`` is
    ``"platform"`` (through ``SimulatedPlatform``: the service) or ``"bulk"`` (the harness's
    market-level lever, ``set_budgets_bulk``; only changed budgets are recorded there)."""

    hour: int
    ad_set_index: int
    old_minor: int
    new_minor: int
    source: str = "platform"


@dataclass(frozen=True, slots=True)
class StatusWrite:
    """One status write: ``kind`` ``"ad"`` (``index`` an ad index; through the platform, or
    with ``source`` ``"advertiser"`` a scheduled ``AdvertiserPause``) or ``"ad_set"``
    (``index`` an ad set index; the harness, or the advertiser with ``source="advertiser"``)."""

    hour: int
    index: int
    kind: str
    active: bool
    source: str | None = None


@dataclass(frozen=True, slots=True)
class CampaignBudgetWrite:
    """One write of a campaign budget (CBO), as the market saw it (evaluation only)."""

    hour: int
    campaign_index: int
    old_minor: int
    new_minor: int
    source: str = "platform"


@dataclass(frozen=True, slots=True)
class AdPause:
    """An ad paused through the platform, judged on the truth of that hour (evaluation only).

    ``value`` is the paused ad's true expected objective per dollar (the creative's own, without
    the learning penalty) at the hour the pause takes effect; ``best_sibling_value`` the best
    of its *siblings* then: the other active ads sharing its budget (its ad set's, or for CBO
    its campaign's, in active ad sets); None when it had none (the pause stopped the budget)."""

    hour: int
    ad_index: int
    ad_set_index: int
    value: float
    best_sibling_index: int | None
    best_sibling_value: float | None

    def is_false(self, tolerance: float = 0.0) -> bool:
        """A false pause: the ad was truly not worse than its best active sibling (within a
        relative ``tolerance``). A pause that left no active sibling is not judged false here."""
        if self.best_sibling_value is None:
            return False
        return self.value >= self.best_sibling_value * (1.0 - tolerance)
