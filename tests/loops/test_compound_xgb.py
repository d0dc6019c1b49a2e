"""The XGBoost CTR model: it learns what is there, stops early, round-trips, refuses bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import xgboost as xgb

from adflywheel.loops.compound.evaluation import (
    calibration,
    entropy,
    log_loss,
    paired_bootstrap,
    scores,
)
from adflywheel.loops.compound.features import (
    N_FEATURES,
    CreativeContext,
    CtrRow,
    dataset,
    feature_matrix,
    pre_launch_context,
)
from adflywheel.loops.compound.xgb import (
    CtrModel,
    InsufficientDataError,
    split_time_forward_grouped,
    train_ctr_model,
)
from adflywheel.loops.dna.fingerprint import dna_from_features
from tests.factories.ctr_world import ctr_rows

T0 = datetime(2026, 3, 2, tzinfo=UTC)


@pytest.fixture(scope="module")
def trained() -> tuple[CtrModel, list[CtrRow], list[CtrRow]]:
    rows = ctr_rows(60, T0, 72, seed=0)
    train, valid, test = split_time_forward_grouped(
        rows, valid_start=T0 + timedelta(hours=24), test_start=T0 + timedelta(hours=48)
    )
    return train_ctr_model(train, valid, seed=1), train, test


def test_it_beats_the_base_rate_on_creatives_it_never_saw(
    trained: tuple[CtrModel, list[CtrRow], list[CtrRow]],
) -> None:
    model, train, test = trained
    data = dataset(test)
    seen = {r.variant_id for r in train}
    assert not seen & set(data.groups.tolist())
    p = model.predict_ctr(data.X)
    ours = scores(p, data.impressions, data.clicks, model.base_rate)
    base = scores(
        np.full(len(data), model.base_rate), data.impressions, data.clicks, model.base_rate
    )
    assert ours.log_loss < base.log_loss
    assert ours.normalised_entropy < 0.99
    assert ours.calibration is not None and 0.8 < ours.calibration < 1.25
    diff = paired_bootstrap(
        p, np.full(len(data), model.base_rate), data.impressions, data.clicks, data.groups
    )
    assert diff.upper < 0


def test_early_stopping_keeps_the_best_round(
    trained: tuple[CtrModel, list[CtrRow], list[CtrRow]],
) -> None:
    model, _, _ = trained
    assert 1 <= model.info["trees"] <= 200
    assert model.best_iteration == model.info["trees"] - 1
    # The training facts name the creatives it saw, for the gate's exclusions.
    assert model.info["train_creatives"] and model.info["valid_creatives"]
    assert not set(model.info["train_creatives"]) & set(model.info["valid_creatives"])


def test_training_is_deterministic_for_a_seed() -> None:
    rows = ctr_rows(12, T0, 48, seed=2)
    train, valid, test = split_time_forward_grouped(
        rows, valid_start=T0 + timedelta(hours=24), test_start=T0 + timedelta(hours=36)
    )
    X = dataset(test).X
    a = train_ctr_model(train, valid, seed=3, params={"n_estimators": 30})
    b = train_ctr_model(train, valid, seed=3, params={"n_estimators": 30})
    np.testing.assert_array_equal(a.predict_ctr(X), b.predict_ctr(X))


def test_artifact_round_trip_is_native_and_exact(
    trained: tuple[CtrModel, list[CtrRow], list[CtrRow]],
) -> None:
    model, _, test = trained
    data = model.to_bytes()
    assert data[:1] == b"{"  # UBJSON object, not a pickle
    again = CtrModel.from_bytes(data)
    X = dataset(test).X
    np.testing.assert_array_equal(again.predict_ctr(X), model.predict_ctr(X))
    assert again.schema == model.schema and again.best_iteration == model.best_iteration
    assert again.info["train_creatives"] == model.info["train_creatives"]
    with pytest.raises((ValueError, xgb.core.XGBoostError)):
        CtrModel.from_bytes(b"not a model")
    # A plain booster without the schema is refused, never fed guessed columns.
    plain = xgb.Booster(model_file=None)
    plain.load_model(bytearray(data))
    plain.set_attr(adflywheel_meta=None)
    with pytest.raises(ValueError, match="metadata"):
        CtrModel.from_bytes(bytes(plain.save_raw(raw_format="ubj")))


def test_cold_start_predicts_from_dna_and_context(
    trained: tuple[CtrModel, list[CtrRow], list[CtrRow]],
) -> None:
    model, _, _ = trained
    at = T0 + timedelta(days=10)
    good = dna_from_features({"hook_type": "question", "duration_s": 8}).vector
    bad = dna_from_features({"hook_type": "bold_claim", "duration_s": 44}).vector
    p = model.predict_ctr(
        feature_matrix([pre_launch_context(1, good, at), pre_launch_context(1, bad, at)])
    )
    assert np.all((p > 0) & (p < 1))
    assert p[0] > p[1]  # the planted hook and duration effects


def test_bad_inputs_are_refused(trained: tuple[CtrModel, list[CtrRow], list[CtrRow]]) -> None:
    model, train, _ = trained
    with pytest.raises(ValueError, match="columns"):
        model.predict_ctr(np.zeros((2, N_FEATURES - 1)))
    assert model.predict_ctr(np.zeros((0, N_FEATURES))).shape == (0,)
    with pytest.raises(ValueError, match="unknown parameters"):
        train_ctr_model(train, train, seed=0, params={"max_dept": 3})
    no_clicks = [CtrRow(r.context, r.impressions, 0) for r in train[:50]]
    with pytest.raises(InsufficientDataError, match="clicks"):
        train_ctr_model(train, no_clicks, seed=0)
    with pytest.raises(InsufficientDataError):
        train_ctr_model([], train, seed=0)


def test_measures_match_their_definitions() -> None:
    n, c = np.array([100.0, 300.0]), np.array([2.0, 4.0])
    p = np.array([0.02, 0.02])
    expected = -(6 * np.log(0.02) + 394 * np.log(0.98)) / 400
    assert log_loss(p, n, c) == pytest.approx(expected)
    assert calibration(p, n, c) == pytest.approx(8 / 6)
    assert calibration(p, n, np.zeros(2)) is None
    assert entropy(0.015) == pytest.approx(
        log_loss(np.full(2, 0.015), np.array([1000.0, 1000.0]), np.array([15.0, 15.0]))
    )
    with pytest.raises(ValueError):
        log_loss(p, np.zeros(2), np.zeros(2))


def test_the_bootstrap_sees_noise_and_signal() -> None:
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(20), 10)
    n = np.full(200, 500.0)
    truth = np.repeat(rng.uniform(0.005, 0.03, 20), 10)
    c = rng.binomial(500, truth).astype(float)
    base = np.full(200, c.sum() / n.sum())
    better = paired_bootstrap(truth, base, n, c, groups, seed=1)
    assert better.upper < 0
    same = paired_bootstrap(base * 1.0001, base, n, c, groups, seed=1)
    assert same.lower < 0 < same.upper or abs(same.difference) < 1e-6
    again = paired_bootstrap(truth, base, n, c, groups, seed=1)
    assert again == better  # seeded


def test_rows_need_a_consistent_context() -> None:
    with pytest.raises(ValueError):
        CreativeContext(1, 1, T0, (0.0,))


def test_contributions_explain_each_prediction(
    trained: tuple[CtrModel, list[CtrRow], list[CtrRow]],
) -> None:
    model, _, test = trained
    X = dataset(test).X[:20]
    phi = model.contributions(X)
    assert phi.shape == (20, N_FEATURES + 1)
    logit = np.log(model.predict_ctr(X) / (1 - model.predict_ctr(X)))
    np.testing.assert_allclose(phi.sum(axis=1), logit, atol=1e-4)
    with pytest.raises(ValueError, match="columns"):
        model.contributions(np.zeros((1, 3)))
