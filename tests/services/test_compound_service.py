"""The compound learner's shell on a small simulated account (synthetic data), both backends."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, select

from adflywheel.core.settings import Settings
from adflywheel.loops.dna.fingerprint import dna_from_features
from adflywheel.services.compound import service as cs
from adflywheel.services.compound.training import TrainOptions, train_challenger_and_gate
from adflywheel.sim.market import SimulatedMarket
from adflywheel.store.actuals import upsert_actuals
from adflywheel.store.engine import transaction
from adflywheel.store.ensemble import EnsembleWeightsRow
from adflywheel.store.models import Prediction
from tests.factories.clock import T0
from tests.factories.compound_world import a_champion, build_world


def test_weights_history_predictions_recorded_once(engine: Engine, settings: Settings) -> None:
    world = build_world(engine)
    decision = train_challenger_and_gate(
        world.factory, settings, world.account_id, world.end, "test",
        options=TrainOptions(holdout_hours=24, valid_hours=24),
    )  # fmt: skip
    first = cs.update_weights(world.factory, world.account_id, world.end - timedelta(hours=24))
    second = cs.update_weights(world.factory, world.account_id, world.end)
    for learnt in (first, second):
        assert learnt["method"] in ("blend", "best_single", "single")
        assert sum(learnt["weights"].values()) == pytest.approx(1.0)
        assert all(w >= 0 for w in learnt["weights"].values())
        assert learnt["metrics"]["rows"] >= 8
    with world.factory() as session:
        history = cs.weights_history(session, world.account_id)
    assert [h["id"] for h in history["history"]] == [second["id"], first["id"]]
    assert history["current"]["id"] == second["id"]
    if second["method"] == "best_single":  # the guard's collapse names its single member
        assert sorted(second["weights"].values())[-1] == 1.0

    report = cs.predict_and_record(world.factory, world.account_id, world.end)
    assert report["variants"] == 12 and report["recorded"] > 0
    with world.factory() as session:
        rows = session.scalars(
            select(Prediction).where(Prediction.account_id == world.account_id)
        ).all()
    by_model: dict[str, list[Prediction]] = {}
    for r in rows:
        by_model.setdefault(r.model_name, []).append(r)
    assert len(by_model["ensemble"]) == 12 and len(by_model["thompson"]) == 12
    assert len(by_model["dna_pattern"]) == 12
    champion = decision.champion_after
    if champion is not None:
        assert {r.model_version_id for r in by_model["xgboost"]} == {champion}
    else:
        assert "xgboost" not in by_model
    for r in rows:
        assert r.lower is not None and r.upper is not None
        assert 0 < r.lower <= r.value <= r.upper < 1
        assert r.window_start == world.end and r.window_end == world.end + timedelta(hours=24)
    again = cs.predict_and_record(world.factory, world.account_id, world.end)
    assert again["recorded"] == 0 and again["already_recorded"] == len(rows)


def test_predictions_as_of_an_hour_ignore_later_data(engine: Engine) -> None:
    world = build_world(engine)
    cutoff = world.end - timedelta(hours=48)
    with world.factory() as session:
        ids = [1, 2, 3]
        before = cs.base_predictions(session, world.account_id, cutoff, ids, xgb=None)
    # Rewrite every later hour: predictions as of the cutoff must not move.
    platform = world.market.platform(world.market.accounts()[0])
    later = [
        replace(r, clicks=0, link_clicks=0) for r in platform.fetch_insights(cutoff, world.end)
    ]
    with transaction(world.factory) as session:
        upsert_actuals(session, world.account_id, later, source="test", now=world.end)
    with world.factory() as session:
        after = cs.base_predictions(session, world.account_id, cutoff, ids, xgb=None)
        moved = cs.base_predictions(session, world.account_id, world.end, ids, xgb=None)
    assert before == after
    assert moved[1]["thompson"].ctr < before[1]["thompson"].ctr


def test_an_account_without_data_gets_no_made_up_number(engine: Engine) -> None:
    world = build_world(engine, hours=0)
    with world.factory() as session:
        with pytest.raises(cs.NoModelError, match="no model yet"):
            cs.predict_creative(
                session, world.account_id, dna_from_features({"hook_type": "question"}), world.end
            )
        with pytest.raises(cs.NoModelError):
            cs.predict_variant(session, world.account_id, 1, world.end)
    learnt = cs.update_weights(world.factory, world.account_id, world.end)
    assert learnt["method"] == "fallback" and learnt["reason"]
    report = cs.predict_and_record(world.factory, world.account_id, world.end)
    assert report["recorded"] == 0
    with world.factory() as session:
        assert session.scalar(select(func.count()).select_from(Prediction)) == 0
        assert session.scalar(select(func.count()).select_from(EnsembleWeightsRow)) == 1


def test_thompson_takes_compound_priors_only_when_given() -> None:
    from adflywheel.loops.bandit import RatePrior
    from adflywheel.services.bandit.budgets import CampaignState
    from adflywheel.services.bandit.policies import ThompsonPolicy
    from adflywheel.store.queries import VariantTotals

    def totals(i: int) -> VariantTotals:
        return VariantTotals(i, f"a{i}", i, f"s{i}", 1, "ACTIVE", "ACTIVE", False, 5_000,
                             *(0,) * 7)  # fmt: skip

    campaign = CampaignState(1, "c1", "ctr", 10_000, [totals(1), totals(2)])
    hour = T0
    plain = ThompsonPolicy().evidence(campaign, hour)
    assert all(v.prior is None for v in plain.variants)
    boosted = ThompsonPolicy(prior_provider=lambda c, h: {2: RatePrior(0.04, 800)}).evidence(
        campaign, hour
    )
    assert boosted.variants[0].prior is None
    assert boosted.variants[1].prior == RatePrior(0.04, 800)
    assert cs.prior_strength(0.1, 0.01, 2000) == 2000  # confident: capped
    assert cs.prior_strength(1.0, 0.01, 2000) == pytest.approx(1 / 0.0099)


def test_late_variants_are_held_back_until_their_launch() -> None:
    from adflywheel.sim.harness import SimulationSpec, launch_schedule

    spec = SimulationSpec(accounts=1, variants_per_campaign=4, late_variants_per_campaign=1,
                          late_launch_hour=5)  # fmt: skip
    market = SimulatedMarket(spec.market_config())
    late = {c.ad_set_ids[-1] for a in market.campaign_structure() for c in a.campaigns}
    launch_schedule(market, spec, 0)
    market.step()
    statuses = {
        s.external_id: s.status for s in market.platform(market.accounts()[0]).list_ad_sets()
    }
    assert {k for k, v in statuses.items() if v != "ACTIVE"} == late
    launch_schedule(market, spec, 5)
    statuses = {
        s.external_id: s.status for s in market.platform(market.accounts()[0]).list_ad_sets()
    }
    assert set(statuses.values()) == {"ACTIVE"}


def test_xgb_window_equals_hour_by_hour_contexts() -> None:
    import numpy as np

    from adflywheel.loops.compound.features import (
        CreativeContext,
        CtrRow,
        feature_matrix,
    )
    from adflywheel.loops.compound.xgb import train_ctr_model
    from adflywheel.loops.dna.fingerprint import VECTOR_LENGTH

    rng = np.random.default_rng(0)
    rows = []
    for v in range(12):
        vector = tuple(float(x) for x in rng.normal(size=VECTOR_LENGTH))
        for h in range(30):
            start = T0 + timedelta(hours=h)
            context = CreativeContext(
                v, 1, start, vector, timezone="America/New_York", age_hours=float(h),
                cumulative_impressions=h * 500,
            )  # fmt: skip
            rows.append(CtrRow(context, 500, int(rng.binomial(500, 0.01 + 0.002 * (v % 3)))))
    model = train_ctr_model(rows[: 30 * 9], rows[30 * 9 :], seed=0)
    contexts = [r.context for r in rows[::37]]
    fast = cs.xgb_window(model, contexts, 24)
    slow = [
        model.predict_ctr(
            feature_matrix(
                [replace(c, hour_start=c.hour_start + timedelta(hours=h), age_hours=c.age_hours + h)
                 for h in range(24)]
            )
        ).mean()
        for c in contexts
    ]  # fmt: skip
    assert np.allclose(fast, slow, rtol=1e-6)


def test_an_ad_that_never_delivered_is_predicted_as_pre_launch() -> None:
    from adflywheel.loops.compound.ensemble import BasePrediction, EnsembleWeights

    members = {"thompson": BasePrediction(0.01, 0.5), "dna_pattern": BasePrediction(0.03, 0.3)}
    learnt = EnsembleWeights({"thompson": 1.0, "dna_pattern": 0.0}, method="best_single")
    running = cs.ensemble_of(members, learnt, unseen=False)
    new = cs.ensemble_of(members, learnt, unseen=True)
    assert running is not None and running.prediction == pytest.approx(0.01)
    assert new is not None and new.prediction == pytest.approx(0.03)
    assert new.models_used == ("dna_pattern",) and new.method.startswith("pre_launch:")
    only_prior = cs.ensemble_of({"thompson": members["thompson"]}, learnt, unseen=True)
    assert only_prior is not None and only_prior.models_used == ("thompson",)


def test_xgboost_takes_part_in_served_predictions_when_a_champion_exists(
    engine: Engine, settings: Settings
) -> None:
    world = build_world(engine)
    champion = a_champion(world, settings, world.end)
    learnt = cs.update_weights(world.factory, world.account_id, world.end)
    assert learnt["xgboost_version_id"] == champion
    with world.factory() as session:
        running = cs.predict_variant(session, world.account_id, 1, world.end)
        new = cs.predict_creative(
            session, world.account_id, dna_from_features({"hook_type": "question"}), world.end
        )
    for answer in (running, new):
        assert "xgboost" in answer["predictions"]
        assert answer["xgboost_version_id"] == champion
        assert 0 < answer["predictions"]["xgboost"]["prediction"] < 1
    assert set(running["predictions"]) == {"thompson", "xgboost", "dna_pattern"}
    assert "thompson" not in new["predictions"]
    report = cs.predict_and_record(world.factory, world.account_id, world.end)
    assert report["by_model"]["xgboost"] == 12 and report["xgboost_version_id"] == champion
    with world.factory() as session:
        versions = session.scalars(
            select(Prediction.model_version_id).where(Prediction.model_name == "xgboost")
        ).all()
    assert set(versions) == {champion}
