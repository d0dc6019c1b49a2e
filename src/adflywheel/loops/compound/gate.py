"""The promotion gate: may a challenger replace the reference (the champion, or the base rate)?

Both are scored on the same holdout rows that neither trained on. The challenger passes only if
(1) its predictions are finite, (2) its calibration (expected / observed clicks) is inside the band,
(3) the whole bootstrap interval of its log-loss difference to the reference, resampling
creatives, lies below zero: better by more than the noise of which creatives happened to be in
the holdout, and (4) the gain is at least ``min_relative_improvement`` of the reference's
log-loss (as MLflow's ``min_relative_change``), so a model a hair better does not churn the
champion. With no champion yet, the reference is the training base rate, so a first model must
beat "always predict the average".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from adflywheel.loops.compound.evaluation import FloatArray, paired_bootstrap, scores
from adflywheel.loops.compound.features import Dataset


@dataclass(frozen=True, slots=True)
class GateRules:
    calibration_low: float = 0.8
    calibration_high: float = 1.25
    min_relative_improvement: float = 0.001
    n_boot: int = 2000
    level: float = 0.95
    seed: int = 0
    min_test_creatives: int = 2
    min_test_clicks: int = 20

    def __post_init__(self) -> None:
        if not 0.0 < self.calibration_low < 1.0 < self.calibration_high:
            raise ValueError("the calibration band must contain 1")
        if not 0.0 <= self.min_relative_improvement < 1.0:
            raise ValueError("min_relative_improvement must be in [0, 1)")
        if self.n_boot < 100:
            raise ValueError("n_boot must be >= 100")
        if not 0.5 < self.level < 1.0:
            raise ValueError("level must be in (0.5, 1)")
        if self.min_test_creatives < 2 or self.min_test_clicks < 1:
            raise ValueError("min_test_creatives must be >= 2 and min_test_clicks >= 1")

    def as_dict(self) -> dict[str, Any]:
        return {
            "calibration_band": [self.calibration_low, self.calibration_high],
            "min_relative_improvement": self.min_relative_improvement,
            "n_boot": self.n_boot,
            "level": self.level,
            "seed": self.seed,
            "min_test_creatives": self.min_test_creatives,
            "min_test_clicks": self.min_test_clicks,
        }


@dataclass(frozen=True, slots=True)
class Verdict:
    promote: bool
    reason: str
    evidence: dict[str, Any]


def holdout_problem(holdout: Dataset, rules: GateRules) -> str | None:
    """Why the holdout is too small to judge anything, or None."""
    creatives = len(np.unique(holdout.groups)) if len(holdout) else 0
    clicks = int(holdout.clicks.sum()) if len(holdout) else 0
    if creatives < rules.min_test_creatives or clicks < rules.min_test_clicks:
        return (
            f"the holdout has {creatives} creatives and {clicks} clicks; the gate needs at least "
            f"{rules.min_test_creatives} creatives and {rules.min_test_clicks} clicks"
        )
    return None


def judge(
    challenger: FloatArray,
    reference: FloatArray,
    reference_name: str,
    holdout: Dataset,
    base_rate: float,
    rules: GateRules,
) -> Verdict:
    """Apply the gate; the evidence holds every number the decision used."""
    problem = holdout_problem(holdout, rules)
    if problem is not None:
        raise ValueError(problem)
    n, c = holdout.impressions, holdout.clicks
    base = np.full(len(holdout), base_rate)
    evidence: dict[str, Any] = {
        "rules": rules.as_dict(),
        "reference": reference_name,
        "holdout": {
            "rows": len(holdout),
            "creatives": len(np.unique(holdout.groups)),
            "impressions": int(n.sum()),
            "clicks": int(c.sum()),
        },
        "base_rate": round(base_rate, 8),
        "base_rate_scores": scores(base, n, c, base_rate).as_dict(),
    }
    if not np.all(np.isfinite(challenger)):
        evidence["challenger_scores"] = None
        return Verdict(False, "the challenger's predictions are not all finite", evidence)
    ch = scores(challenger, n, c, base_rate)
    ref = scores(reference, n, c, base_rate)
    diff = paired_bootstrap(
        challenger,
        reference,
        n,
        c,
        holdout.groups,
        n_boot=rules.n_boot,
        level=rules.level,
        seed=rules.seed,
    )
    evidence.update(
        challenger_scores=ch.as_dict(), reference_scores=ref.as_dict(), paired=diff.as_dict()
    )
    failures = []
    if ch.calibration is None or not (
        rules.calibration_low <= ch.calibration <= rules.calibration_high
    ):
        failures.append(
            f"calibration {ch.calibration if ch.calibration is None else round(ch.calibration, 3)}"
            f" is outside [{rules.calibration_low}, {rules.calibration_high}]"
        )
    if not diff.upper < 0.0:
        failures.append(
            f"log-loss difference to the {reference_name} {diff.difference:+.6f} has a "
            f"{rules.level:.0%} interval [{diff.lower:+.6f}, {diff.upper:+.6f}] that does not "
            "lie below zero"
        )
    gain = -diff.difference / ref.log_loss if ref.log_loss > 0 else 0.0
    evidence["relative_improvement"] = round(gain, 6)
    if diff.upper < 0.0 and gain < rules.min_relative_improvement:
        failures.append(
            f"the gain is {gain:.4%} of the {reference_name}'s log-loss; at least "
            f"{rules.min_relative_improvement:.2%} is required"
        )
    if failures:
        return Verdict(False, "refused: " + "; ".join(failures), evidence)
    return Verdict(
        True,
        f"beats the {reference_name} by {-diff.difference:.6f} nats per impression, {gain:.2%} "
        f"({rules.level:.0%} interval of the difference [{diff.lower:+.6f}, {diff.upper:+.6f}]) "
        f"with calibration {ch.calibration:.3f}",
        evidence,
    )
