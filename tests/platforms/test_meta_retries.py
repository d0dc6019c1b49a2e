"""The Graph client's retries (tenacity) with a recording timer: the exact back-off schedule,
which errors retry and which do not, without any real sleeping (issue #20 item 4)."""

from __future__ import annotations

import itertools
import random

import httpx
import pytest

from adflywheel.platforms.meta import (
    GraphClient,
    MetaInvalidRequestError,
    MetaThrottledError,
    MetaTransientError,
    ThrottlePolicy,
)
from adflywheel.platforms.meta.throttle import backoff

POLICY = ThrottlePolicy(backoff_base_s=4.0, backoff_cap_s=20.0, max_retries=4)
TRANSIENT = {"error": {"code": 2, "message": "Service temporarily unavailable"}}
RATE_LIMIT = {"error": {"code": 17, "message": "User request limit reached"}}
BAD_PARAM = {"error": {"code": 100, "message": "Invalid parameter"}}


class RecordingTimer:
    """Time moves only when the client sleeps; every sleep is recorded."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _client(
    answers: list[httpx.Response], timer: RecordingTimer
) -> tuple[GraphClient, list[float]]:
    sent: list[float] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(timer.now)
        return answers.pop(0) if answers else httpx.Response(200, json={"id": "act_1"})

    client = GraphClient(
        "synthetic-token",
        base_url="http://graph.test",
        policy=POLICY,
        timer=timer,
        rng=random.Random(11),
        transport=httpx.MockTransport(answer),
    )
    return client, sent


def _expected_backoffs(n: int) -> list[float]:
    rng = random.Random(11)
    return [backoff(attempt, POLICY, rng) for attempt in range(1, n + 1)]


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [(503, TRANSIENT, MetaTransientError), (400, RATE_LIMIT, MetaThrottledError)],
)
def test_a_transient_or_rate_limit_error_retries_with_growing_jittered_backoff(
    status: int, body: dict[str, object], kind: type[Exception]
) -> None:
    timer = RecordingTimer()
    client, sent = _client([httpx.Response(status, json=body)] * 3, timer)
    assert client.get("act_1") == {"id": "act_1"}
    expected = _expected_backoffs(3)
    assert timer.slept == pytest.approx(expected)
    assert [b - a for a, b in itertools.pairwise(sent)] == pytest.approx(expected)
    # Equal jitter: each wait is at least half its exponential step, never above the step.
    for attempt, wait in enumerate(timer.slept, start=1):
        step = min(POLICY.backoff_cap_s, POLICY.backoff_base_s * 2 ** (attempt - 1))
        assert step / 2 <= wait <= step
    assert client.stats.retries == 3 and client.stats.requests == 4
    assert client.stats.waited_s == pytest.approx(sum(expected))
    # Past max_retries: the last error is raised, typed, with when to come back.
    timer = RecordingTimer()
    client, sent = _client([httpx.Response(status, json=body)] * 10, timer)
    with pytest.raises(kind) as caught:
        client.get("act_1")
    assert len(sent) == POLICY.max_retries + 1 and len(timer.slept) == POLICY.max_retries
    assert caught.value.retry_after is not None  # type: ignore[attr-defined]


def test_a_retry_after_longer_than_the_backoff_is_waited_out() -> None:
    timer = RecordingTimer()
    throttled = httpx.Response(429, headers={"Retry-After": "90"})
    client, _ = _client([throttled], timer)
    client.get("act_1")
    assert timer.slept == [90.0]


def test_a_permanent_4xx_is_not_retried() -> None:
    timer = RecordingTimer()
    client, sent = _client([httpx.Response(400, json=BAD_PARAM)] * 3, timer)
    with pytest.raises(MetaInvalidRequestError):
        client.get("act_1")
    assert len(sent) == 1 and timer.slept == [] and client.stats.retries == 0


def test_usage_headers_still_pace_the_next_request_after_a_success() -> None:
    """The governor's pacing stays ours: 96% usage pauses ``hard_pause_s`` before the next call."""
    timer = RecordingTimer()
    busy = httpx.Response(200, json={"id": "act_1"}, headers={"X-App-Usage": '{"call_count": 96}'})
    client, sent = _client([busy], timer)
    client.get("act_1")
    client.get("act_1")
    assert sent == [0.0, POLICY.hard_pause_s] and timer.slept == [POLICY.hard_pause_s]
