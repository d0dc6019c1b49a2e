"""When to retrain: accuracy under the threshold or a drift alarm, never on broken data, and
not again within a cooldown (so one drift event gives one retrain).

Noise guard: with few clicks even a perfect model scores under 0.80 (Poisson noise alone; see
``metrics.accuracy_noise_floor``). When that floor is itself under the threshold, an accuracy
under the threshold is only a reason to retrain if it is also ``noise_margin`` under the floor;
otherwise every small account would retrain every day on noise."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class RetrainPolicy:
    accuracy_threshold: float = 0.80
    cooldown: timedelta = timedelta(hours=24)
    # Below this many observed clicks the accuracy is too noisy to act on.
    min_clicks: int = 100
    noise_margin: float = 0.05

    def __post_init__(self) -> None:
        if not 0.0 < self.accuracy_threshold <= 1.0:
            raise ValueError("accuracy_threshold must be in (0, 1]")
        if self.cooldown < timedelta(0) or self.min_clicks < 0:
            raise ValueError("cooldown and min_clicks must be >= 0")


@dataclass(frozen=True, slots=True)
class RetrainDecision:
    retrain: bool
    reasons: tuple[str, ...]  # why a retrain is wanted (empty: all is well)
    blocked_by: str | None  # why a wanted retrain does not run: breaker_open | cooldown

    @property
    def reason(self) -> str:
        return "+".join(self.reasons)


def decide_retrain(
    *,
    now: datetime,
    accuracy: float | None,
    clicks: int,
    accuracy_floor: float | None = None,
    drift_streams: tuple[str, ...],
    breaker_open: bool,
    last_retrain_at: datetime | None,
    policy: RetrainPolicy | None = None,
) -> RetrainDecision:
    p = policy or RetrainPolicy()
    reasons: list[str] = []
    if accuracy is not None and clicks >= p.min_clicks and accuracy < p.accuracy_threshold:
        attainable = accuracy_floor is None or accuracy_floor >= p.accuracy_threshold
        if attainable or accuracy < accuracy_floor - p.noise_margin:  # type: ignore[operator]
            reasons.append("accuracy_below_threshold")
    if drift_streams:
        reasons.append("drift")
    if not reasons:
        return RetrainDecision(False, (), None)
    if breaker_open:
        return RetrainDecision(False, tuple(reasons), "breaker_open")
    if last_retrain_at is not None and now - last_retrain_at < p.cooldown:
        return RetrainDecision(False, tuple(reasons), "cooldown")
    return RetrainDecision(True, tuple(reasons), None)
