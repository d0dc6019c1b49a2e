"""The budget-edit rules (loops/bandit/edits.py): bounds per ad set and a settled proposal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from adflywheel.loops.bandit import Bounds, EditHistory, EditRules, edit_bounds, settle

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
RULES = EditRules()


def test_a_fresh_ad_set_may_move_twenty_percent_either_way() -> None:
    b = edit_bounds(10_000, EditHistory(), NOW, RULES)
    assert (b.low, b.high) == (8_000, 12_000)


def test_an_ad_set_edited_within_a_day_is_frozen_and_one_raised_within_two_days_may_only_fall() -> (
    None
):
    edited = EditHistory(last_edit=NOW - timedelta(hours=23))
    assert edit_bounds(10_000, edited, NOW, RULES).frozen
    raised = EditHistory(
        last_edit=NOW - timedelta(hours=30), last_increase=NOW - timedelta(hours=30)
    )
    b = edit_bounds(10_000, raised, NOW, RULES)
    assert (b.low, b.high) == (8_000, 10_000)
    later = EditHistory(
        last_edit=NOW - timedelta(hours=49), last_increase=NOW - timedelta(hours=49)
    )
    assert edit_bounds(10_000, later, NOW, RULES).high == 12_000


def test_a_hand_made_change_is_left_alone_for_the_hands_off_period() -> None:
    touched = EditHistory(
        last_edit=NOW - timedelta(hours=50), last_external=NOW - timedelta(hours=50)
    )
    assert edit_bounds(10_000, touched, NOW, RULES).frozen
    assert not edit_bounds(10_000, touched, NOW + timedelta(hours=23), RULES).frozen


def test_the_platform_minimum_is_an_absolute_floor_and_the_ceiling_caps() -> None:
    b = edit_bounds(1_100, EditHistory(), NOW, RULES, floor_minor=1_000, ceiling_minor=1_200)
    assert (b.low, b.high) == (1_000, 1_200)
    # a budget the advertiser set below the minimum is not pushed up, only kept from falling
    b = edit_bounds(800, EditHistory(), NOW, RULES, floor_minor=1_000)
    assert b.low == 800
    # above a lowered ceiling: the interval lies below it
    b = edit_bounds(5_000, EditHistory(), NOW, RULES, ceiling_minor=3_000)
    assert b.high == 3_000 and b.low <= 3_000


def test_a_new_ad_set_gets_its_first_budget_once_within_floor_and_ceiling() -> None:
    """Little learning to reset: no step, no increase interval; the floor, the ceiling, the
    hands-off period and the edit interval still hold."""
    kw = {"floor_minor": 1_000, "ceiling_minor": 30_000, "first_budget": True}
    b = edit_bounds(10_000, EditHistory(), NOW, RULES, **kw)  # type: ignore[arg-type]
    assert (b.low, b.high) == (1_000, 30_000)
    raised = EditHistory(last_edit=NOW - timedelta(hours=1), last_increase=NOW)
    assert edit_bounds(10_000, raised, NOW, RULES, **kw).frozen  # type: ignore[arg-type]
    touched = EditHistory(last_external=NOW - timedelta(hours=1))
    assert edit_bounds(10_000, touched, NOW, RULES, **kw).frozen  # type: ignore[arg-type]


def test_off_allows_anything() -> None:
    b = edit_bounds(10_000, EditHistory(last_edit=NOW), NOW, EditRules.off())
    assert b.low == 0 and b.high > 10**12


def _free(current: dict[str, int], rules: EditRules = RULES) -> dict[str, Bounds]:
    return {k: edit_bounds(v, EditHistory(), NOW, rules) for k, v in current.items()}


def test_settle_drops_changes_in_the_dead_band_and_keeps_the_total() -> None:
    current = {"a": 10_000, "b": 10_000, "c": 10_000}
    proposed = {"a": 12_000, "b": 9_700, "c": 8_300}  # b moves 3%: inside the 5% band
    out = settle(proposed, current, _free(current), RULES.dead_band)
    assert out["b"] == 10_000
    assert sum(out.values()) == 30_000
    assert out["a"] > 10_500 and 8_000 <= out["c"] < 9_500  # b's 300 were found in a and c


def test_settle_clamps_to_the_step_and_funds_it_from_the_others() -> None:
    current = {"a": 10_000, "b": 10_000}
    out = settle({"a": 15_000, "b": 5_000}, current, _free(current), RULES.dead_band)
    assert out == {"a": 12_000, "b": 8_000}


def test_settle_changes_nothing_when_the_total_cannot_be_kept() -> None:
    current = {"a": 10_000, "b": 10_000}
    bounds = _free(current) | {"b": Bounds(10_000, 10_000, "edited too recently")}
    assert settle({"a": 12_000, "b": 8_000}, current, bounds, RULES.dead_band) == current


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(100, 1_000_000), min_size=1, max_size=12),
    st.lists(st.floats(0.0, 3.0), min_size=12, max_size=12),
    st.lists(st.booleans(), min_size=12, max_size=12),
)
def test_settle_always_keeps_the_total_and_every_rule(
    budgets: list[int], factors: list[float], frozen: list[bool]
) -> None:
    current = {f"s{i}": b for i, b in enumerate(budgets)}
    proposed = {k: int(v * factors[i]) for i, (k, v) in enumerate(current.items())}
    bounds = {
        k: Bounds(v, v, "frozen") if frozen[i] else edit_bounds(v, EditHistory(), NOW, RULES)
        for i, (k, v) in enumerate(current.items())
    }
    out = settle(proposed, current, bounds, RULES.dead_band)
    assert sum(out.values()) == sum(current.values())
    for k, v in out.items():
        assert bounds[k].low <= v <= bounds[k].high
        assert v == current[k] or abs(v - current[k]) >= RULES.dead_band * current[k]
