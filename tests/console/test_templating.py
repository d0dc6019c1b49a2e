"""The console's filters: money in the currency's own minor units, times in the account's zone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adflywheel.console.security import local_path
from adflywheel.console.templating import environment, money, num, pct, when


@pytest.mark.parametrize(
    ("minor", "currency", "shown"),
    [
        (123456, "USD", "$1,234.56"),
        (5, "EUR", "€0.05"),
        (-4000, "GBP", "−£40.00"),
        (1234, "JPY", "¥1,234"),
        (1234, "BHD", "1.234 BHD"),
        (100, "chf", "1.00 CHF"),
        (0, "USD", "$0.00"),
        (None, "USD", "—"),
    ],
)
def test_money(minor: int | None, currency: str, shown: str) -> None:
    assert money(minor, currency) == shown


def test_pct_and_num() -> None:
    assert pct(0.0312) == "3.1%"
    assert pct(-0.25, 0) == "−25%"
    assert pct(-0.0001) == "0.0%"  # no "minus zero"
    assert pct(None) == "—" and pct(float("nan")) == "—"
    assert num(1234567) == "1,234,567"
    assert num(-12.345, 2) == "−12.35"
    assert num(None) == "—"


def test_when_shows_local_time_with_utc_on_hover() -> None:
    shown = str(when(datetime(2026, 7, 1, 22, 30, tzinfo=UTC), "Europe/Berlin"))
    assert 'datetime="2026-07-01T22:30:00Z"' in shown
    assert 'title="2026-07-01 22:30 UTC"' in shown
    assert ">2 Jul 2026, 00:30 CEST</time>" in shown
    assert "UTC" in str(when(datetime(2026, 1, 1, tzinfo=UTC), "Not/AZone"))
    assert str(when(None, "UTC")) == "—"


def test_templates_escape_what_they_show() -> None:
    template = environment().from_string("{{ name }} {{ 5 | money('JPY') }}")
    assert template.render(name="<b>x</b>") == "&lt;b&gt;x&lt;/b&gt; ¥5"


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("/accounts/3/overview", "/accounts/3/overview"),
        ("/a?b=c#d", "/a?b=c#d"),
        ("//evil.example", "/"),
        ("/\\evil.example", "/"),
        ("https://evil.example/a", "/"),
        ("http:/evil", "/"),
        ("/a\r\nSet-Cookie: x", "/"),
        ("", "/"),
        (None, "/"),
    ],
)
def test_local_path(given: str | None, kept: str) -> None:
    assert local_path(given) == kept


def test_the_login_throttle_forgets_stale_entries_when_full() -> None:
    from datetime import timedelta

    from adflywheel.console.security import LoginThrottle

    throttle = LoginThrottle(limit=2, max_keys=4)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for index in range(10):
        throttle.failed(f"user{index}@example.com", "10.0.0.1", start + timedelta(hours=index))
    assert len(throttle._failures) <= 4 + 2
    throttle.failed("a@example.com", "c", start)
    throttle.failed("a@example.com", "c", start)
    assert throttle.blocked("a@example.com", "elsewhere", start)
    throttle.succeeded("a@example.com")
    assert not throttle.blocked("a@example.com", "elsewhere", start)
