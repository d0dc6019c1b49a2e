"""How good were the CTR predictions, once their outcome window closed (loop 6's maths).

Every function takes one row per prediction: the predicted CTR ``p`` (a fraction), and the
window's actual ``impressions`` and ``clicks``. Rows with zero impressions carry no outcome and
must be dropped by the caller (they are counted apart as "no delivery").

Definitions (stated once here, used everywhere):

- **Headline accuracy** (the customer's number, threshold 0.80) is one minus the
  impression-weighted relative error, in its aggregate form::

      accuracy = 1 - sum_i n_i |p_i - a_i| / sum_i n_i a_i
               = 1 - sum_i |n_i p_i - c_i| / sum_i c_i

  where ``a_i = c_i / n_i``. Each prediction's relative error ``|p_i - a_i| / a_i`` is weighted
  by its share of the actual clicks ``n_i a_i``, so a zero-click actual adds its expected clicks
  ``n_i p_i`` to the error and nothing to the denominator (no division by zero, and it is
  penalised, not skipped). A window whose every actual is zero clicks has no accuracy (None).
  The value is clipped at 0 (an error larger than the clicks themselves is "0 % accurate").
  For one prediction this is ``1 - |p - a| / a``; with zero clicks it is None.
- **Calibration** is expected over observed clicks (He et al. 2014's direction): ``sum n_i p_i /
  sum c_i``; above 1 the model over-predicts. Its interval holds the expected clicks fixed and
  takes the exact (Clopper-Pearson) binomial interval of the pooled observed CTR.
- **Log-loss** is the mean binary cross-entropy per impression (clicks are positives), with
  predictions clipped to ``[EPS, 1 - EPS]``; **normalised entropy** divides it by the entropy of
  the background CTR (He et al. 2014), given by the caller (the CTR the model could have known).
- **AUC** ranks impressions: every click is a positive and every non-click a negative, each
  scored with its ad's predicted CTR (the Mann-Whitney form with ties counted half).

Log-loss and AUC are computed in closed form over the counts; the tests check them against
scikit-learn's weighted ``log_loss`` and ``roc_auc_score`` on impressions as rows.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special, stats

FloatArray = NDArray[np.float64]
EPS = 1e-6


def _arrays(p: ArrayLike, n: ArrayLike, c: ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
    pa = np.asarray(p, dtype=np.float64).ravel()
    na = np.asarray(n, dtype=np.float64).ravel()
    ca = np.asarray(c, dtype=np.float64).ravel()
    if not pa.shape == na.shape == ca.shape:
        raise ValueError("predictions, impressions and clicks must have the same length")
    if not (np.isfinite(pa).all() and np.isfinite(na).all() and np.isfinite(ca).all()):
        raise ValueError("predictions and counts must be finite")
    if ((pa < 0) | (pa > 1)).any():
        raise ValueError("predicted CTRs must be fractions in [0, 1]")
    if (na < 0).any() or (ca < 0).any():
        raise ValueError("impressions and clicks must be >= 0")
    if (ca > na).any():
        raise ValueError("clicks exceed impressions")
    if (na == 0).any():
        raise ValueError("rows without impressions carry no outcome; drop them first")
    return pa, na, ca


def accuracy(p: ArrayLike, n: ArrayLike, c: ArrayLike) -> float | None:
    """The headline: 1 - impression-weighted relative error (see the module docstring)."""
    pa, na, ca = _arrays(p, n, c)
    clicks = float(ca.sum())
    if clicks == 0.0:
        return None
    return max(0.0, 1.0 - float(np.abs(na * pa - ca).sum()) / clicks)


def accuracy_noise_floor(p: ArrayLike, n: ArrayLike) -> float | None:
    """The headline accuracy a perfect model would expect on these impressions: clicks are
    Poisson around ``n p``, so even the true rate misses by ``E|X - np|`` (the Poisson mean
    absolute deviation, ``2 m pmf(floor(m); m)`` for mean ``m``). Small accounts cannot reach
    0.80 at all; this number says how far from 1 pure chance puts any model."""
    pa, na, _ = _arrays(p, n, np.zeros_like(np.asarray(n, dtype=np.float64)))
    m = na * pa
    if m.sum() <= 0:
        return None
    mad = 2.0 * m * stats.poisson.pmf(np.floor(m), m)
    return max(0.0, 1.0 - float(mad.sum()) / float(m.sum()))


def relative_error(p: float, n: int, c: int) -> float | None:
    """One prediction's ``|p - a| / a``; None when the actual has no clicks."""
    pa, na, ca = _arrays([p], [n], [c])
    if ca[0] == 0:
        return None
    return float(abs(pa[0] - ca[0] / na[0]) / (ca[0] / na[0]))


def ctr_interval(clicks: int, impressions: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper-Pearson) interval of a CTR."""
    if impressions <= 0 or not 0 <= clicks <= impressions:
        raise ValueError("need 0 <= clicks <= impressions and impressions > 0")
    # The Clopper-Pearson bounds as beta quantiles (what scipy's binomtest(...).proportion_ci
    # (method="exact") computes, without its per-call overhead).
    alpha = 1.0 - confidence
    low = 0.0 if clicks == 0 else stats.beta.ppf(alpha / 2, clicks, impressions - clicks + 1)
    high = (
        1.0
        if clicks == impressions
        else stats.beta.ppf(1 - alpha / 2, clicks + 1, impressions - clicks)
    )
    return float(low), float(high)


@dataclass(frozen=True, slots=True)
class Calibration:
    ratio: float | None  # expected / observed clicks; None without clicks
    lower: float | None
    upper: float | None  # None (unbounded) when the observed CTR's interval reaches zero
    expected_clicks: float
    observed_clicks: int


def calibration(p: ArrayLike, n: ArrayLike, c: ArrayLike, confidence: float = 0.95) -> Calibration:
    pa, na, ca = _arrays(p, n, c)
    expected = float((na * pa).sum())
    observed, impressions = int(ca.sum()), int(na.sum())
    if observed == 0:
        return Calibration(None, None, None, expected, 0)
    low, high = ctr_interval(observed, impressions, confidence)
    ratio = expected / observed
    lower = expected / (impressions * high)
    upper = expected / (impressions * low) if low > 0 else None
    return Calibration(ratio, lower, upper, expected, observed)


def entropy(rate: float) -> float:
    """Binary entropy (nats) of a background rate."""
    q = min(max(rate, EPS), 1 - EPS)
    return float(-(q * np.log(q) + (1 - q) * np.log1p(-q)))


def log_loss(p: ArrayLike, n: ArrayLike, c: ArrayLike) -> float:
    """Mean cross-entropy per impression (nats), predictions clipped to [EPS, 1 - EPS]: the
    same number as scikit-learn's weighted ``log_loss`` on impressions as rows (tested), in
    closed form over the counts (the per-call validation of scikit-learn costs ~10 ms)."""
    pa, na, ca = _arrays(p, n, c)
    q = np.clip(pa, EPS, 1 - EPS)
    total = -(special.xlogy(ca, q) + special.xlogy(na - ca, 1 - q)).sum()
    return float(total / na.sum())


def normalized_entropy(p: ArrayLike, n: ArrayLike, c: ArrayLike, background_ctr: float) -> float:
    """Log-loss over the entropy of the background CTR; below 1 beats predicting that CTR."""
    if not 0.0 < background_ctr < 1.0:
        raise ValueError("the background CTR must be in (0, 1)")
    return log_loss(p, n, c) / entropy(background_ctr)


def auc(p: ArrayLike, n: ArrayLike, c: ArrayLike) -> float | None:
    """Ranking quality across ads; None with fewer than two ads or without both outcomes."""
    pa, na, ca = _arrays(p, n, c)
    positives, negatives = ca, na - ca
    if pa.size < 2 or positives.sum() == 0 or negatives.sum() == 0:
        return None
    # Mann-Whitney over tied groups: each click beats every non-click of a lower score and
    # ties half with those of its own score (equal to scikit-learn's weighted roc_auc_score).
    scores, group = np.unique(pa, return_inverse=True)
    pos = np.bincount(group, weights=positives, minlength=scores.size)
    neg = np.bincount(group, weights=negatives, minlength=scores.size)
    below = np.concatenate([[0.0], np.cumsum(neg)[:-1]])
    wins = float((pos * (below + 0.5 * neg)).sum())
    return wins / float(positives.sum() * negatives.sum())


@dataclass(frozen=True, slots=True)
class Scores:
    """Every measure of one group of scored predictions."""

    n_predictions: int
    impressions: int
    clicks: int
    expected_clicks: float
    accuracy: float | None
    calibration: float | None
    calibration_lower: float | None
    calibration_upper: float | None
    log_loss: float
    normalized_entropy: float | None
    auc: float | None
    background_ctr: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def score_group(
    p: ArrayLike, n: ArrayLike, c: ArrayLike, background_ctr: float | None = None
) -> Scores:
    """All measures at once. Without a usable background CTR (none given, or 0 or 1) NE is
    None; the caller passes the CTR of the data the model could have known (see the service)."""
    pa, na, ca = _arrays(p, n, c)
    if pa.size == 0:
        raise ValueError("nothing to score")
    cal = calibration(pa, na, ca)
    usable = background_ctr is not None and 0.0 < background_ctr < 1.0
    return Scores(
        n_predictions=int(pa.size),
        impressions=int(na.sum()),
        clicks=int(ca.sum()),
        expected_clicks=cal.expected_clicks,
        accuracy=accuracy(pa, na, ca),
        calibration=cal.ratio,
        calibration_lower=cal.lower,
        calibration_upper=cal.upper,
        log_loss=log_loss(pa, na, ca),
        normalized_entropy=(
            normalized_entropy(pa, na, ca, float(background_ctr))
            if usable and background_ctr is not None
            else None
        ),
        auc=auc(pa, na, ca),
        background_ctr=background_ctr,
    )


def stream_statistics(p: ArrayLike, n: ArrayLike, c: ArrayLike) -> tuple[float, float]:
    """The two numbers the drift detectors watch, both standardised so that a model that is
    right gives about N(0, 1) whatever the account's size:

    - loss: the excess log-loss of the model over each ad's own observed rate (the deviance
      ``G = 2 * sum(c log(c / np) + (n - c) log((n - c) / (n (1 - p))))``), standardised as a
      chi-square with one degree of freedom per ad: ``(G - k) / sqrt(2k)``. It rises when ads
      move in either direction, which the pooled calibration can miss.
    - calibration: the pooled residual ``(observed - expected) / sqrt(expected)`` (Poisson).
    """
    pa, na, ca = _arrays(p, n, c)
    if pa.size == 0:
        raise ValueError("nothing to score")
    q = np.clip(pa, EPS, 1 - EPS)
    expected = na * q
    with np.errstate(divide="ignore", invalid="ignore"):
        pos = np.where(ca > 0, ca * np.log(ca / expected), 0.0)
        neg_obs = na - ca
        neg = np.where(neg_obs > 0, neg_obs * np.log(neg_obs / (na * (1 - q))), 0.0)
    g = 2.0 * float((pos + neg).sum())
    k = pa.size
    loss_z = (g - k) / float(np.sqrt(2.0 * k))
    total = float(expected.sum())
    cal_z = (float(ca.sum()) - total) / float(np.sqrt(total)) if total > 0 else 0.0
    return loss_z, cal_z
