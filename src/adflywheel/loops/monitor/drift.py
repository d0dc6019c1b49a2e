"""Page-Hinkley change detection on the hourly loss and calibration streams (loop 6).

Why Page-Hinkley and not ADWIN: the streams are already standardised (about N(0, 1) when the
model is right, see ``metrics.stream_statistics``), one value per hour, so a CUSUM-type test with
parameters in units of standard deviations is enough, its state is four numbers that fit a JSON
column, and its false-alarm rate is set by one threshold. ``river`` (which has both) is only a
dev dependency, and its detector is an object, not state to store between cycles; this follows
river's ``PageHinkley`` update (running mean, cumulative deviations minus a tolerance ``delta``,
optional fading ``alpha``, alarm when the deviation from the extreme exceeds ``threshold``) and
resets after an alarm so one change gives one alarm. tests/loops/test_monitor.py checks that both
alarm at the same values of the same streams.

Defaults (``delta=1.0``, ``threshold=50``, ``min_instances=24``) were chosen on the simulated
market (synthetic data) in ``benchmarks/bench_drift.py`` (see RESULTS.md for the trade-off):
consecutive 24-hour windows overlap by 23 hours, so the stream is strongly autocorrelated
(lag-1 about 0.9) and its cumulative sums wander about 20 times further than an independent
stream's; the threshold is set for under one false alarm per account-month on that market.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any


class Direction(StrEnum):
    UP = "up"  # the value rises (loss gets worse)
    DOWN = "down"
    BOTH = "both"


@dataclass(frozen=True, slots=True)
class PageHinkleyParams:
    delta: float = 1.0
    threshold: float = 50.0
    alpha: float = 1.0
    min_instances: int = 24
    direction: Direction = Direction.BOTH

    def __post_init__(self) -> None:
        if self.delta < 0 or self.threshold <= 0:
            raise ValueError("delta must be >= 0 and threshold > 0")
        if not 0.0 < self.alpha <= 1.0:
            raise ValueError("alpha must be in (0, 1]")
        if self.min_instances < 1:
            raise ValueError("min_instances must be >= 1")


@dataclass(slots=True)
class PageHinkleyState:
    """Everything the detector remembers; round-trips through ``as_dict``/``from_dict``."""

    n: int = 0
    mean: float = 0.0
    sum_up: float = 0.0
    min_up: float = 0.0
    sum_down: float = 0.0
    max_down: float = 0.0
    alarms: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> PageHinkleyState:
        if not data:
            return cls()
        return cls(
            n=int(data["n"]),
            mean=float(data["mean"]),
            sum_up=float(data["sum_up"]),
            min_up=float(data["min_up"]),
            sum_down=float(data["sum_down"]),
            max_down=float(data["max_down"]),
            alarms=int(data.get("alarms", 0)),
        )

    def reset(self) -> None:
        alarms = self.alarms
        self.n, self.mean = 0, 0.0
        self.sum_up = self.min_up = self.sum_down = self.max_down = 0.0
        self.alarms = alarms


@dataclass(frozen=True, slots=True)
class Alarm:
    direction: Direction
    statistic: float  # how far the cumulative deviation moved from its extreme
    n: int  # values seen since the last reset


def page_hinkley_update(
    state: PageHinkleyState, value: float, params: PageHinkleyParams
) -> Alarm | None:
    """Feed one value; return the alarm if this value completes a change (the state resets)."""
    if not math.isfinite(value):
        raise ValueError("drift streams take finite values")
    state.n += 1
    state.mean += (value - state.mean) / state.n
    state.sum_up = params.alpha * state.sum_up + (value - state.mean - params.delta)
    state.min_up = min(state.min_up, state.sum_up)
    state.sum_down = params.alpha * state.sum_down + (value - state.mean + params.delta)
    state.max_down = max(state.max_down, state.sum_down)
    if state.n < params.min_instances:
        return None
    up = state.sum_up - state.min_up
    down = state.max_down - state.sum_down
    alarm: Alarm | None = None
    if params.direction in (Direction.UP, Direction.BOTH) and up > params.threshold:
        alarm = Alarm(Direction.UP, up, state.n)
    elif params.direction in (Direction.DOWN, Direction.BOTH) and down > params.threshold:
        alarm = Alarm(Direction.DOWN, down, state.n)
    if alarm is not None:
        state.alarms += 1
        state.reset()
    return alarm


def run_stream(
    values: list[float] | tuple[float, ...], params: PageHinkleyParams
) -> list[tuple[int, Alarm]]:
    """Every alarm (index of the value that raised it, the alarm) over a whole stream."""
    state = PageHinkleyState()
    out: list[tuple[int, Alarm]] = []
    for i, v in enumerate(values):
        alarm = page_hinkley_update(state, float(v), params)
        if alarm is not None:
            out.append((i, alarm))
    return out
