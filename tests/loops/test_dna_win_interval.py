"""The win probability's interval (Laplace approximation of the fitted logistic model)."""

from __future__ import annotations

import numpy as np

from adflywheel.loops.dna.fingerprint import VECTOR_LENGTH
from adflywheel.loops.dna.win import Example, fit


def _examples(n: int, seed: int = 0) -> list[Example]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        x = np.zeros(VECTOR_LENGTH)
        x[0] = float(i % 2)  # the first hook type: the winners' gene
        ctr = 0.04 if i % 2 else 0.015
        impressions = 2_000
        out.append(Example(tuple(x), impressions, int(rng.binomial(impressions, ctr))))
    return out


def test_the_interval_holds_the_estimate_and_narrows_with_more_ads() -> None:
    probe = tuple([1.0] + [0.0] * (VECTOR_LENGTH - 1))
    widths = []
    for n in (8, 80):
        model = fit(_examples(n), threshold_ctr=0.03)
        low, high = model.interval(probe) or (None, None)
        assert low is not None and high is not None
        assert 0.0 <= low <= model.predict(probe) <= high <= 1.0
        widths.append(high - low)
    assert widths[1] < widths[0]


def test_a_model_without_covariance_has_no_interval() -> None:
    model = fit(_examples(8), threshold_ctr=0.03)
    bare = type(model)(**{f: getattr(model, f) for f in model.__slots__ if f != "covariance"})
    assert bare.interval(tuple([0.0] * VECTOR_LENGTH)) is None
    assert bare == model  # the covariance is not part of a model's identity
