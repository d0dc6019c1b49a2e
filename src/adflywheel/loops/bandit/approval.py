"""Whether one recommended budget change may be applied on its own now (pure; issue #18).

A recommendation is one ad set's part of a campaign's split, which kept the campaign's total.
Applied alone it must still fit what the cycle itself would obey: the ad set's budget has not
moved since the decision, the new budget lies inside the ad set's edit bounds now, and (unless
the account lets campaigns grow) the campaign never spends above its plan, so an increase waits
for the decreases of the same decision that fund it, as the cycle writes decreases first.
"""

from __future__ import annotations

from collections.abc import Iterable

from adflywheel.loops.bandit.edits import Bounds


def approval_problem(
    *,
    recorded_old: int | None,
    current: int,
    new: int,
    bounds: Bounds | None,
    applied_sibling_deltas: Iterable[int],
    campaign_growth: bool,
) -> str | None:
    """Why the change cannot be applied alone now (None: it can). ``applied_sibling_deltas``:
    the budget moves of the same decision (same campaign, same instant) already applied."""
    if (recorded_old or 0) != current:
        return (
            f"the ad set's budget moved since the recommendation (it is {current} now, was "
            f"{recorded_old}): the next cycle recommends again from the current budgets"
        )
    if bounds is None:
        return "the ad set has no daily budget the service may move now"
    if not bounds.low <= new <= bounds.high:
        return (
            f"{new} is outside what the edit rules allow for this ad set now "
            f"[{bounds.low}, {bounds.high}] ({bounds.why})"
        )
    delta = new - current
    funded = sum(applied_sibling_deltas)
    if delta > 0 and not campaign_growth and funded + delta > 0:
        return (
            f"raising this ad set by {delta} alone would take its campaign {funded + delta} "
            "above its planned daily total (campaigns do not grow on this account): approve the "
            "decreases of the same recommendation first"
        )
    return None
