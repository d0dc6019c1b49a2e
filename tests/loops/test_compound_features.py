"""CTR features and the time-forward, creative-grouped split: the leakage guards."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adflywheel.loops.compound.features import (
    FEATURE_SCHEMA,
    N_FEATURES,
    CreativeContext,
    CtrRow,
    HourCount,
    dataset,
    feature_matrix,
    pre_launch_context,
    rows_for_variant,
)
from adflywheel.loops.compound.xgb import InsufficientDataError, split_time_forward_grouped
from adflywheel.loops.dna.fingerprint import VECTOR_LENGTH, dna_from_features
from tests.factories.ctr_world import ctr_rows

T0 = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
VEC = dna_from_features({"hook_type": "question", "duration_s": 12}).vector
COL = {name: i for i, name in enumerate(FEATURE_SCHEMA.names)}


def assert_no_leakage(
    train: list[CtrRow],
    valid: list[CtrRow],
    test: list[CtrRow],
    valid_start: datetime,
    test_start: datetime,
) -> None:
    """The guard: fails if a creative sits on two sides or if time runs backwards."""
    sides = [{r.variant_id for r in side} for side in (train, valid, test)]
    assert not sides[0] & sides[2], "a creative is in train and test"
    assert not sides[0] & sides[1], "a creative is in train and validation"
    assert not sides[1] & sides[2], "a creative is in validation and test"
    assert all(valid_start <= r.hour_start < test_start for r in valid)
    assert all(r.hour_start >= test_start for r in test)
    assert all(r.hour_start < test_start for r in train + valid), "future in training"


def test_the_schema_names_every_column_in_order() -> None:
    assert N_FEATURES == len(FEATURE_SCHEMA.names) == VECTOR_LENGTH + 17
    assert FEATURE_SCHEMA.names[0].startswith("dna:")
    assert len(set(FEATURE_SCHEMA.names)) == N_FEATURES
    assert FEATURE_SCHEMA.as_dict()["version"] == FEATURE_SCHEMA.version


def test_context_columns_use_the_account_time_zone() -> None:
    at = T0 + timedelta(hours=3)  # 03:00 UTC on Monday = 22:00 Sunday in New York
    X = feature_matrix(
        [
            CreativeContext(1, 1, at, VEC, timezone="America/New_York", niche="saas"),
            CreativeContext(1, 1, at, VEC, niche="knitting", placement="Reels"),
        ]
    )
    assert X.shape == (2, N_FEATURES)
    assert X[0, COL["hour_of_day"]] == 22 and X[0, COL["day_of_week"]] == 6
    assert X[1, COL["hour_of_day"]] == 3 and X[1, COL["day_of_week"]] == 0
    assert X[0, COL["niche=saas"]] == 1 and X[1, COL["niche=other"]] == 1
    assert X[0, COL["placement_known"]] == 0 and X[1, COL["placement=reels"]] == 1
    np.testing.assert_array_equal(X[0, :VECTOR_LENGTH], VEC)


def test_age_and_frequency_count_only_earlier_hours() -> None:
    hours = [HourCount(T0 + timedelta(hours=h), n, n // 50) for h, n in ((0, 0), (1, 100), (2, 50))]
    rows = rows_for_variant(7, 1, VEC, reversed(hours))
    assert [r.context.cumulative_impressions for r in rows] == [0, 0, 100]
    assert [r.context.age_hours for r in rows] == [0.0, 0.0, 1.0]
    # A window of later hours gets the features the whole history would give it.
    later = rows_for_variant(
        7, 1, VEC, hours[2:], first_served=T0 + timedelta(hours=1), prior_impressions=100
    )
    assert later[0].context == rows[2].context


def test_rows_with_no_impressions_carry_no_evidence() -> None:
    rows = rows_for_variant(
        1, 1, VEC, [HourCount(T0, 0, 0), HourCount(T0 + timedelta(hours=1), 10, 2)]
    )
    data = dataset(rows)
    assert len(data) == 1 and data.ctr[0] == pytest.approx(0.2)


def test_cold_start_context_has_no_history() -> None:
    c = pre_launch_context(3, VEC, T0, niche="food")
    assert c.variant_id is None and c.age_hours == 0 and c.cumulative_impressions == 0
    assert feature_matrix([c])[0, COL["log1p_cumulative_impressions"]] == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dna_vector": (0.0,) * 3}, "dna_vector has 3"),
        ({"dna_vector": (float("nan"),) * VECTOR_LENGTH}, "finite"),
        ({"hour_start": datetime(2026, 1, 1)}, "timezone-aware"),
        ({"age_hours": -1.0}, "age_hours"),
        ({"cumulative_impressions": -5}, "cumulative"),
    ],
)
def test_bad_contexts_are_refused(kwargs: dict[str, object], message: str) -> None:
    base: dict[str, object] = {
        "variant_id": 1,
        "account_id": 1,
        "hour_start": T0,
        "dna_vector": VEC,
    }
    with pytest.raises(ValueError, match=message):
        CreativeContext(**{**base, **kwargs})  # type: ignore[arg-type]


def test_more_clicks_than_impressions_is_refused() -> None:
    with pytest.raises(ValueError, match="exceed"):
        CtrRow(CreativeContext(1, 1, T0, VEC), impressions=5, clicks=6)


def test_the_split_keeps_creatives_apart_and_time_forward() -> None:
    rows = ctr_rows(20, T0, 96)
    valid_start, test_start = T0 + timedelta(hours=48), T0 + timedelta(hours=72)
    train, valid, test = split_time_forward_grouped(
        rows, valid_start=valid_start, test_start=test_start
    )
    assert train and valid and test
    assert_no_leakage(train, valid, test, valid_start, test_start)
    assert len({r.variant_id for r in test}) == 4 and len({r.variant_id for r in valid}) == 4
    # Deterministic and independent of row order.
    again = split_time_forward_grouped(
        list(reversed(rows)), valid_start=valid_start, test_start=test_start
    )
    assert {r.variant_id for r in again[2]} == {r.variant_id for r in test}


def test_the_guard_catches_a_leaky_split() -> None:
    """The guard must fail on the two leaks it exists for, or it guards nothing."""
    rows = ctr_rows(6, T0, 48)
    valid_start, test_start = T0 + timedelta(hours=24), T0 + timedelta(hours=36)
    train, valid, test = split_time_forward_grouped(
        rows, valid_start=valid_start, test_start=test_start
    )
    same_creative = [r for r in rows if r.variant_id == test[0].variant_id][:1]
    with pytest.raises(AssertionError, match="train and test"):
        assert_no_leakage(train + same_creative, valid, test, valid_start, test_start)
    future = [r for r in rows if r.variant_id == train[0].variant_id and r.hour_start >= test_start]
    with pytest.raises(AssertionError, match="future in training"):
        assert_no_leakage(train + future[:1], valid, test, valid_start, test_start)


@settings(max_examples=40, deadline=None)
@given(
    n_creatives=st.integers(3, 12),
    hours=st.integers(2, 30),
    cut=st.tuples(st.integers(0, 30), st.integers(0, 30)),
    salt=st.text(max_size=5),
)
def test_no_split_ever_leaks(n_creatives: int, hours: int, cut: tuple[int, int], salt: str) -> None:
    rows = [
        CtrRow(CreativeContext(v, 1, T0 + timedelta(hours=h), VEC), 10, 1)
        for v in range(n_creatives)
        for h in range(hours)
    ]
    a, b = sorted(cut)
    valid_start, test_start = T0 + timedelta(hours=a), T0 + timedelta(hours=b)
    train, valid, test = split_time_forward_grouped(
        rows, valid_start=valid_start, test_start=test_start, salt=salt
    )
    assert_no_leakage(train, valid, test, valid_start, test_start)


def test_too_few_creatives_or_bad_windows_are_refused() -> None:
    rows = ctr_rows(2, T0, 10)
    with pytest.raises(InsufficientDataError, match="2 creatives"):
        split_time_forward_grouped(rows, valid_start=T0, test_start=T0 + timedelta(hours=5))
    with pytest.raises(ValueError, match="valid_start"):
        split_time_forward_grouped(rows, valid_start=T0 + timedelta(hours=5), test_start=T0)
    with pytest.raises(ValueError, match="share"):
        split_time_forward_grouped(rows, valid_start=T0, test_start=T0, test_share=0.9)
