"""Cold-start measures (synthetic data, issue #15): new ads' first 72 hours and the hours until a
truly best new ad leads its campaign, on cases small enough to check by hand."""

from __future__ import annotations

import numpy as np

from adflywheel.sim.coldstart import ColdStartTrace, median_or_never
from adflywheel.sim.metrics import LearningTrace


def _trace(budgets: list[list[int]], values: list[float], launch: int = 1) -> ColdStartTrace:
    """One campaign of three ads; ad 2 launches at hour ``launch`` and ad 0 retires then.
    Every ad delivers 10 clicks for 500 minor an hour while live."""
    trace = ColdStartTrace(launch_hour={2: launch}, campaign_of=np.zeros(3, dtype=np.int64))
    for h, budget in enumerate(budgets):
        live = np.array([h < launch, True, h >= launch])
        trace.clicks.append(np.where(live, 10, 0))
        trace.spend_minor.append(np.where(live, 500, 0))
        trace.value.append(np.array(values, dtype=float))
        trace.live.append(live)
        trace.budget.append(np.array(budget))
    return trace


def test_cold_start_totals_count_new_ads_from_their_launch_only() -> None:
    trace = _trace([[100, 100, 0], [0, 100, 100], [0, 100, 100], [0, 90, 110], [0, 80, 120]],
                   [1.0, 1.0, 2.0])  # fmt: skip
    assert trace.totals() == (4 * 10, 4 * 500)  # hours 1..4 of ad 2
    summary = trace.summary("uniform_")
    assert summary["uniform_cold_start_clicks"] == 40
    assert summary["uniform_cold_start_spend_minor"] == 2000
    assert summary["uniform_cold_start_clicks_per_dollar"] == 2.0  # 40 clicks for $20


def test_hours_to_lead_counts_from_launch_to_the_first_strict_lead() -> None:
    # Ad 2 is truly best; it ties at hours 1-2 (not a lead) and leads from hour 3.
    trace = _trace([[100, 100, 0], [0, 100, 100], [0, 100, 100], [0, 90, 110], [0, 80, 120]],
                   [1.0, 1.0, 2.0])  # fmt: skip
    assert trace.new_best() == [2]
    assert trace.hours_to_lead() == [2]
    assert trace.summary()["hours_to_lead_new_best_median"] == 2.0


def test_a_new_ad_that_never_leads_is_none_and_one_not_best_is_not_counted() -> None:
    flat = [[100, 100, 0], [0, 100, 100], [0, 100, 100]]
    assert _trace(flat, [1.0, 1.0, 2.0]).hours_to_lead() == [None]
    # Ad 1, live beside it, is truly better: the new ad is not its campaign's best. The
    # retired ad (better still) does not count: it was not live in the new ad's hours.
    assert _trace(flat, [1.0, 3.0, 2.0]).new_best() == []
    assert _trace(flat, [1.0, 3.0, 2.0]).summary()["hours_to_lead_new_best"] == []
    assert _trace(flat, [9.0, 1.0, 2.0]).new_best() == [2]


def test_the_median_counts_never_as_longer_than_any_hour() -> None:
    assert median_or_never([]) is None
    assert median_or_never([4, None, 2]) == 4.0
    assert median_or_never([None, None, 2]) is None
    assert median_or_never([1, 3]) == 2.0


def test_accuracy_by_day_averages_each_simulated_day() -> None:
    trace = LearningTrace(accuracy=[(0, 0.5), (23, 0.7), (30, 0.9)])
    assert trace.accuracy_by_day(3) == [0.6, 0.9, None]
    trace.accuracy_ceiling.extend([(1, 0.8), (50, 0.96)])
    assert trace.accuracy_by_day(3, trace.accuracy_ceiling) == [0.8, None, 0.96]
