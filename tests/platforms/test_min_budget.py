"""Meta's minimum daily budget as an absolute floor: the ``MinimumBudget`` capability, the
assumed fallback table, the resolver, and each platform's answer (Meta through the real client
against the fake Graph server)."""

from __future__ import annotations

import datetime as dt
import pickle
import random
from pathlib import Path

import pytest

from adflywheel.platforms.base import (
    MinimumBudget,
    PlatformAccount,
    fallback_min_daily_budget_minor,
    min_daily_budget_floor_minor,
)
from adflywheel.platforms.csv import CsvPlatform
from adflywheel.platforms.meta import (
    GraphClient,
    MetaPermissionError,
    MetaPlatform,
    ThrottlePolicy,
)
from adflywheel.platforms.snapshot import SnapshotPlatform
from tests.factories.fake_graph import TOKEN, FakeGraph

FIXTURES = Path(__file__).parents[1] / "fixtures"


class Answers:
    """A platform object with the capability, answering what it is told."""

    def __init__(self, answer: object) -> None:
        self.answer = answer
        self.asked = 0

    def min_daily_budget_minor(self) -> int | None:
        self.asked += 1
        return self.answer  # type: ignore[return-value]


class Fails:
    def min_daily_budget_minor(self) -> int | None:
        raise MetaPermissionError("(#200) no permission")


# -- the fallback table (an assumption) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("currency", "objective", "expected"),
    [
        ("USD", "IMPRESSIONS", 100),  # $1
        ("USD", "LINK_CLICKS", 500),  # $5
        ("USD", "APP_INSTALLS", 4_000),  # $40
        ("USD", None, 500),  # unknown charge: the clicks figure
        ("USD", "OUTCOME_SALES", 500),
        ("usd", "impressions", 100),  # any case
        ("EUR", "IMPRESSIONS", 100),  # rounded up to 1 per dollar
        ("GBP", None, 500),
        ("CAD", "IMPRESSIONS", 150),
        ("AUD", "IMPRESSIONS", 170),
        ("JPY", "IMPRESSIONS", 165),  # zero-decimal: yen
        ("JPY", None, 825),
        ("JPY", "APP_INSTALLS", 6_600),
        ("KRW", "IMPRESSIONS", 1_500),
        ("INR", None, 500),  # no rate: the dollar figure as rupees (stated, may be too low)
        ("IDR", None, 5),  # no rate, zero-decimal: five rupiah
    ],
)
def test_fallback_table(currency: str, objective: str | None, expected: int) -> None:
    value = fallback_min_daily_budget_minor(currency, objective)
    assert type(value) is int and value == expected


@pytest.mark.parametrize("currency", ["USD", "EUR", "GBP", "JPY", "KRW", "SEK", "XYZ"])
def test_fallback_grows_with_the_charge_event(currency: str) -> None:
    imp, clicks, installs = (
        fallback_min_daily_budget_minor(currency, event)
        for event in ("IMPRESSIONS", "CLICKS", "APP_INSTALLS")
    )
    assert 0 < imp < clicks < installs


@pytest.mark.parametrize("currency", ["", "US", "DOLLARS", "U$D", "12 3"])
def test_fallback_refuses_what_is_no_currency_code(currency: str) -> None:
    with pytest.raises(ValueError, match="ISO 4217"):
        fallback_min_daily_budget_minor(currency)


# -- the resolver --------------------------------------------------------------------------------


def test_the_platform_answer_wins_over_the_table() -> None:
    platform = Answers(123)
    assert isinstance(platform, MinimumBudget)
    assert min_daily_budget_floor_minor(platform, "USD") == 123
    assert min_daily_budget_floor_minor(platform, "USD", "APP_INSTALLS") == 123
    assert platform.asked == 2


@pytest.mark.parametrize("answer", [None, 0, -5, True, 1.5, "100"])
def test_no_usable_answer_falls_back_on_the_table(answer: object) -> None:
    assert min_daily_budget_floor_minor(Answers(answer), "JPY", "IMPRESSIONS") == 165


@pytest.mark.parametrize("platform", [None, object(), "meta"])
def test_a_platform_without_the_capability_gets_the_table(platform: object) -> None:
    assert not isinstance(platform, MinimumBudget)
    assert min_daily_budget_floor_minor(platform, "USD") == 500
    assert min_daily_budget_floor_minor(platform, "USD", "IMPRESSIONS") == 100


def test_a_failing_platform_is_not_guessed_over() -> None:
    with pytest.raises(MetaPermissionError):
        min_daily_budget_floor_minor(Fails(), "USD")


# -- CSV and snapshot ----------------------------------------------------------------------------


def _csv() -> CsvPlatform:
    return CsvPlatform.from_path(
        FIXTURES / "ads_manager_hourly.csv", account_external_id="act_42", timezone="UTC"
    )


def test_csv_cannot_say_so_the_table_answers() -> None:
    csv = _csv()
    assert not isinstance(csv, MinimumBudget), "an Ads Manager export carries no minimum"
    currency = csv.account().currency
    assert min_daily_budget_floor_minor(csv, currency) == fallback_min_daily_budget_minor(currency)


def _snapshot_of(live: object) -> SnapshotPlatform:
    start = dt.datetime(2026, 1, 15, tzinfo=dt.UTC)
    return SnapshotPlatform.capture(live, start, start + dt.timedelta(hours=2))  # type: ignore[arg-type]


class _LiveWithMinimum:
    """The CSV platform plus an answer: a live platform that knows its minimum."""

    def __init__(self, answer: int | None) -> None:
        self._csv, self._answer = _csv(), answer
        self.name = "csv"

    def __getattr__(self, name: str) -> object:
        return getattr(self._csv, name)

    def account(self) -> PlatformAccount:
        return self._csv.account()

    def min_daily_budget_minor(self) -> int | None:
        return self._answer


@pytest.mark.parametrize("answer", [250, None])
def test_a_snapshot_carries_the_minimum_into_the_worker(answer: int | None) -> None:
    snap = _snapshot_of(_LiveWithMinimum(answer))
    copy = pickle.loads(pickle.dumps(snap))
    assert isinstance(copy, MinimumBudget)
    assert copy.min_daily_budget_minor() == answer
    expected = answer if answer is not None else fallback_min_daily_budget_minor("USD")
    assert min_daily_budget_floor_minor(copy, "USD") == expected


def test_a_snapshot_of_a_platform_that_cannot_say_answers_none() -> None:
    snap = _snapshot_of(_csv())
    assert snap.min_daily_budget_minor() is None
    assert min_daily_budget_floor_minor(snap, "USD", "IMPRESSIONS") == 100


# -- Meta through the fake Graph server ----------------------------------------------------------


def _meta(graph: FakeGraph) -> MetaPlatform:
    client = GraphClient(
        TOKEN,
        base_url=graph.base_url,
        policy=ThrottlePolicy(backoff_base_s=2.0, max_retries=3),
        timer=graph.clock,
        rng=random.Random(3),
    )
    return MetaPlatform(client, "act_1001")


def _reads(graph: FakeGraph) -> list[str]:
    return [
        r.params.get("fields", "")
        for r in graph.requests
        if r.method == "GET" and r.path.endswith("/act_1001")
    ]


@pytest.mark.parametrize(("sent", "expected"), [(100, 100), ("250", 250), (3_000, 3_000)])
def test_meta_reads_the_account_min_daily_budget_once(
    fake_graph: FakeGraph, sent: int | str, expected: int
) -> None:
    fake_graph.accounts["act_1001"].min_daily_budget = sent
    platform = _meta(fake_graph)
    assert isinstance(platform, MinimumBudget)
    assert platform.min_daily_budget_minor() == expected
    assert platform.min_daily_budget_minor() == expected
    assert _reads(fake_graph) == ["min_daily_budget"], "asked for by name, once per platform"
    assert min_daily_budget_floor_minor(platform, "USD", "APP_INSTALLS") == expected


@pytest.mark.parametrize("sent", [None, 0, "", "1.5", "-100", True, [100]])
def test_meta_without_a_readable_minimum_answers_none(fake_graph: FakeGraph, sent: object) -> None:
    fake_graph.accounts["act_1001"].min_daily_budget = sent  # type: ignore[assignment]
    platform = _meta(fake_graph)
    assert platform.min_daily_budget_minor() is None
    assert platform.min_daily_budget_minor() is None
    assert len(_reads(fake_graph)) == 1, "an absent field is an answer: not asked again"
    assert min_daily_budget_floor_minor(platform, "USD", "IMPRESSIONS") == 100


def test_meta_errors_propagate_and_are_not_cached(fake_graph: FakeGraph) -> None:
    platform = _meta(fake_graph)
    fake_graph.fail("GET", r"^act_1001$", "no_permission")
    with pytest.raises(MetaPermissionError):
        platform.min_daily_budget_minor()
    assert platform.min_daily_budget_minor() == 100, "the failure was not kept as an answer"


def test_meta_account_read_is_unchanged_by_the_minimum(fake_graph: FakeGraph) -> None:
    platform = _meta(fake_graph)
    account = platform.account()
    assert account.currency == "USD"
    assert _reads(fake_graph) == ["name,currency,timezone_name,account_status"]


def test_a_snapshot_of_meta_answers_its_minimum_in_the_worker(fake_graph: FakeGraph) -> None:
    fake_graph.accounts["act_1001"].min_daily_budget = 175
    start = dt.datetime(2026, 11, 24, 5, tzinfo=dt.UTC)
    snap = SnapshotPlatform.capture(_meta(fake_graph), start, start + dt.timedelta(hours=3))
    assert pickle.loads(pickle.dumps(snap)).min_daily_budget_minor() == 175
