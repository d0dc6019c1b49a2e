"""Loop 6's pure core: prediction scoring maths, drift detection, the data-health breaker and
the retrain policy (numpy/scipy/scikit-learn, no I/O, deterministic)."""

from .breaker import BreakerParams, BreakerVerdict, HourHealth, check_health
from .drift import (
    Alarm,
    Direction,
    PageHinkleyParams,
    PageHinkleyState,
    page_hinkley_update,
    run_stream,
)
from .metrics import (
    EPS,
    Calibration,
    Scores,
    accuracy,
    accuracy_noise_floor,
    auc,
    calibration,
    ctr_interval,
    entropy,
    log_loss,
    normalized_entropy,
    relative_error,
    score_group,
    stream_statistics,
)
from .policy import RetrainDecision, RetrainPolicy, decide_retrain

__all__ = [
    "EPS",
    "Alarm",
    "BreakerParams",
    "BreakerVerdict",
    "Calibration",
    "Direction",
    "HourHealth",
    "PageHinkleyParams",
    "PageHinkleyState",
    "RetrainDecision",
    "RetrainPolicy",
    "Scores",
    "accuracy",
    "accuracy_noise_floor",
    "auc",
    "calibration",
    "check_health",
    "ctr_interval",
    "decide_retrain",
    "entropy",
    "log_loss",
    "normalized_entropy",
    "page_hinkley_update",
    "relative_error",
    "run_stream",
    "score_group",
    "stream_statistics",
]
