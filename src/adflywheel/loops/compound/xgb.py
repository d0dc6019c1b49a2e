"""The XGBoost CTR model: binomial log-loss on aggregated rows, early stopping, native artifacts.

Each row is (creative, hour) with impressions and clicks; the label is clicks / impressions with
sample weight impressions under ``binary:logistic``, which is exactly the binomial log-likelihood of
the clicks. Early stopping watches a validation slice of other creatives, earlier than the test
slice, so the test slice stays untouched. Artifacts are XGBoost's own UBJSON (never pickle), with
the feature schema stored inside so a model is never fed columns it was not trained on.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import xgboost as xgb

from adflywheel.loops.compound.evaluation import FloatArray, clip
from adflywheel.loops.compound.features import (
    FEATURE_SCHEMA,
    CtrRow,
    Dataset,
    FeatureSchema,
    dataset,
)

DEFAULT_PARAMS: dict[str, Any] = {
    "max_depth": 4,
    "eta": 0.1,
    "min_child_weight": 1.0,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "lambda": 1.0,
    "n_estimators": 200,
    "early_stopping_rounds": 20,
    # One thread: on a shared 2-core machine OpenMP's second thread made training 10x slower.
    "nthread": 1,
}
_BOOSTER_KEYS = {"max_depth", "eta", "min_child_weight", "subsample", "colsample_bytree", "lambda"}
_ALLOWED = {*_BOOSTER_KEYS, "n_estimators", "early_stopping_rounds", "nthread"}


class InsufficientDataError(ValueError):
    """Too little data to train or to judge a model; the message says what is missing."""


def creative_rank_key(variant_id: int | None, salt: str) -> bytes:
    return hashlib.blake2b(f"{salt}:{variant_id}".encode(), digest_size=8).digest()


def split_time_forward_grouped(
    rows: Sequence[CtrRow],
    *,
    valid_start: datetime,
    test_start: datetime,
    end: datetime | None = None,
    valid_share: float = 0.2,
    test_share: float = 0.2,
    salt: str = "ctr",
) -> tuple[list[CtrRow], list[CtrRow], list[CtrRow]]:
    """Split rows into (train, valid, test) so that no creative sits on two sides and nothing at
    or after ``test_start`` is trained or stopped on: train rows start before ``test_start``,
    valid rows in ``[valid_start, test_start)``, test rows in ``[test_start, end)``.

    Validation creatives differ from training creatives, so early stopping measures what the
    test measures (creatives the model never saw); letting training run up to ``test_start``
    keeps the age and frequency features from being extrapolated further than needed.

    Creatives are ranked by a salted hash of their key (deterministic, independent of row order
    and outcomes); the first ``test_share`` of them (at least one) are test creatives, the next
    ``valid_share`` (at least one) validation creatives, the rest training creatives.
    """
    if not valid_start <= test_start:
        raise ValueError("valid_start must not be after test_start")
    if end is not None and end < test_start:
        raise ValueError("end must not be before test_start")
    if not (0.0 < test_share < 1.0 and 0.0 < valid_share < 1.0 and valid_share + test_share < 1.0):
        raise ValueError("valid_share and test_share must be in (0, 1) and sum below 1")
    creatives = sorted({r.variant_id for r in rows}, key=lambda v: creative_rank_key(v, salt))
    n = len(creatives)
    if n < 3:
        raise InsufficientDataError(
            f"{n} creatives with data; at least 3 are needed (train, validation and test "
            "creatives must differ)"
        )
    n_test = max(1, math.floor(test_share * n + 0.5))
    n_valid = max(1, math.floor(valid_share * n + 0.5))
    n_test, n_valid = min(n_test, n - 2), min(n_valid, n - 1 - min(n_test, n - 2))
    test_ids = set(creatives[:n_test])
    valid_ids = set(creatives[n_test : n_test + n_valid])
    train: list[CtrRow] = []
    valid: list[CtrRow] = []
    test: list[CtrRow] = []
    for r in rows:
        t = r.hour_start
        if r.variant_id in test_ids:
            if t >= test_start and (end is None or t < end):
                test.append(r)
        elif r.variant_id in valid_ids:
            if valid_start <= t < test_start:
                valid.append(r)
        elif t < test_start:
            train.append(r)
    return train, valid, test


@dataclass(slots=True)
class CtrModel:
    """A trained booster with the schema it expects and what its training saw."""

    booster: xgb.Booster
    schema: FeatureSchema
    best_iteration: int
    base_rate: float
    params: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    def predict_ctr(self, X: FloatArray) -> FloatArray:
        """Predicted CTR per row of ``X`` (columns in ``schema.names`` order)."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != len(self.schema.names):
            raise ValueError(
                f"expected a matrix with {len(self.schema.names)} columns "
                f"({self.schema.version}); got shape {X.shape}"
            )
        if X.shape[0] == 0:
            return np.zeros(0, dtype=np.float64)
        matrix = xgb.DMatrix(X, feature_names=list(self.schema.names), missing=np.nan)
        p = self.booster.predict(matrix, iteration_range=(0, self.best_iteration + 1))
        return clip(np.asarray(p, dtype=np.float64))

    def contributions(self, X: FloatArray) -> FloatArray:
        """SHAP values per row in logit space: (n, features + 1), the last column the bias; a
        row sums to the logit of its predicted CTR."""
        X = np.asarray(X, dtype=np.float64)
        self.predict_ctr(X[:0] if X.ndim == 2 else X)  # the same shape checks
        matrix = xgb.DMatrix(X, feature_names=list(self.schema.names), missing=np.nan)
        out = self.booster.predict(
            matrix, pred_contribs=True, iteration_range=(0, self.best_iteration + 1)
        )
        return np.asarray(out, dtype=np.float64)

    def to_bytes(self) -> bytes:
        """XGBoost's native UBJSON, with the schema and training facts as booster attributes."""
        self.booster.set_attr(
            adflywheel_meta=json.dumps(
                {
                    "schema": self.schema.as_dict(),
                    "best_iteration": self.best_iteration,
                    "base_rate": self.base_rate,
                    "params": self.params,
                    "info": self.info,
                },
                sort_keys=True,
            )
        )
        return bytes(self.booster.save_raw(raw_format="ubj"))

    @classmethod
    def from_bytes(cls, data: bytes) -> CtrModel:
        booster = xgb.Booster(params={"nthread": 1})
        booster.load_model(bytearray(data))
        raw = booster.attr("adflywheel_meta")
        if raw is None:
            raise ValueError("not an adflywheel CTR model: its metadata attribute is missing")
        meta = json.loads(raw)
        s = meta["schema"]
        schema = FeatureSchema(str(s["version"]), tuple(s["names"]), str(s["dna_version"]))
        return cls(
            booster,
            schema,
            int(meta["best_iteration"]),
            float(meta["base_rate"]),
            dict(meta.get("params", {})),
            dict(meta.get("info", {})),
        )


def _check_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    merged = dict(DEFAULT_PARAMS)
    if params:
        unknown = set(params) - _ALLOWED
        if unknown:
            raise ValueError(f"unknown parameters {sorted(unknown)}; allowed: {sorted(_ALLOWED)}")
        merged.update(params)
    if int(merged["n_estimators"]) < 1 or int(merged["early_stopping_rounds"]) < 1:
        raise ValueError("n_estimators and early_stopping_rounds must be >= 1")
    return merged


def _dmatrix(data: Dataset, schema: FeatureSchema) -> xgb.DMatrix:
    return xgb.DMatrix(
        data.X,
        label=data.ctr,
        weight=data.impressions,
        feature_names=list(schema.names),
        missing=np.nan,
    )


def train_ctr_model(
    train_rows: Sequence[CtrRow],
    valid_rows: Sequence[CtrRow],
    *,
    seed: int,
    params: Mapping[str, Any] | None = None,
) -> CtrModel:
    """Fit on ``train_rows``, stop early on ``valid_rows`` (never the test slice).

    Raises ``InsufficientDataError`` when either slice has no impressions or no clicks, since
    then there is nothing to learn or nothing to stop on.
    """
    merged = _check_params(params)
    train, valid = dataset(train_rows), dataset(valid_rows)
    for name, data in (("training", train), ("validation", valid)):
        if len(data) == 0 or data.clicks.sum() <= 0:
            raise InsufficientDataError(
                f"the {name} slice has {int(data.impressions.sum())} impressions and "
                f"{int(data.clicks.sum())} clicks; a model needs both"
            )
    base_rate = float(train.clicks.sum() / train.impressions.sum())
    booster_params: dict[str, Any] = {k: merged[k] for k in _BOOSTER_KEYS}
    booster_params.update(
        objective="binary:logistic",
        eval_metric="logloss",
        tree_method="hist",
        base_score=base_rate,
        seed=seed,
        nthread=int(merged["nthread"]),
    )
    started = time.perf_counter()
    booster = xgb.train(
        booster_params,
        _dmatrix(train, FEATURE_SCHEMA),
        num_boost_round=int(merged["n_estimators"]),
        evals=[(_dmatrix(valid, FEATURE_SCHEMA), "valid")],
        early_stopping_rounds=int(merged["early_stopping_rounds"]),
        verbose_eval=False,
    )
    seconds = time.perf_counter() - started
    best = int(getattr(booster, "best_iteration", int(merged["n_estimators"]) - 1))
    info = {
        "train_rows": len(train),
        "valid_rows": len(valid),
        "train_impressions": int(train.impressions.sum()),
        "train_clicks": int(train.clicks.sum()),
        "valid_impressions": int(valid.impressions.sum()),
        "valid_clicks": int(valid.clicks.sum()),
        "train_creatives": sorted(int(g) for g in np.unique(train.groups)),
        "valid_creatives": sorted(int(g) for g in np.unique(valid.groups)),
        "trees": best + 1,
        "train_seconds": round(seconds, 4),
        "seed": seed,
    }
    return CtrModel(booster, FEATURE_SCHEMA, best, base_rate, merged, info)
