"""Loop 3's shell on both databases: opt-in, idempotent contributions, k-anonymous publication
(also after an opt-out), the privacy budget, re-detection, and the priors other loops read."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select, update

from adflywheel.loops.crosslearn import NotPublishable, PrivacySettings, publish
from adflywheel.loops.crosslearn.privacy import opendp_laplace, period_start
from adflywheel.loops.dna.fingerprint import dna_from_features
from adflywheel.services.crosslearn import service as service
from adflywheel.services.dna import service as dna_service
from adflywheel.store.accounts import create_account
from adflywheel.store.crosslearn import (
    AccountNiche,
    NicheContribution,
    NichePatternRow,
    PrivacyLedgerRow,
    current_niche,
    latest_pattern,
)
from adflywheel.store.engine import make_session_factory, transaction
from adflywheel.store.models import Variant
from tests.factories.crosslearn_data import load_account, market_now
from tests.factories.helpers import count_rows

WEEK = timedelta(hours=168)


def _opt_in(engine: Engine, account_id: int, now: datetime, on: bool = True) -> None:
    with transaction(make_session_factory(engine)) as session:
        service.set_settings(session, account_id, now, opted_in=on)


def test_sharing_is_off_by_default_and_a_period_contribution_is_idempotent(
    engine: Engine,
) -> None:
    account_id, _ = load_account(engine, 0)
    factory = make_session_factory(engine)
    report = service.contribute_and_publish(factory, account_id, market_now())
    assert report["contributed"] is False and "not opted in" in report["reason"]
    assert count_rows(engine, NicheContribution) == 0
    _opt_in(engine, account_id, market_now())
    first = service.contribute_and_publish(factory, account_id, market_now())
    again = service.contribute_and_publish(factory, account_id, market_now() + timedelta(hours=1))
    assert first["contributed"] and again["contributed"] and first["niche"] == "fitness"
    assert first["period_start"] == again["period_start"]
    with factory() as session:
        rows = session.scalars(select(NicheContribution)).all()
        assert len(rows) == 1 and rows[0].account_id == account_id
        assert len(rows[0].lifts) > 0 and rows[0].n_ads == 8


def _five_contribute(engine: Engine) -> list[int]:
    factory = make_session_factory(engine)
    ids = [load_account(engine, i)[0] for i in range(5)]
    for account_id in ids:
        _opt_in(engine, account_id, market_now())
        assert service.contribute_and_publish(factory, account_id, market_now())["contributed"]
    return ids


def test_publishes_only_with_k_opted_in_accounts_once_and_spends_budget_once(
    engine: Engine,
) -> None:
    factory = make_session_factory(engine)
    ids = _five_contribute(engine)
    # Not before the period is over.
    with transaction(factory) as session, pytest.raises(NotPublishable):
        period = period_start(market_now(), 168, service.PERIOD_ORIGIN)
        service.publish_period(session, "fitness", period, market_now(), PrivacySettings())
    # An opt-out withdraws the unpublished contribution: four remain, nothing is published.
    _opt_in(engine, ids[4], market_now(), on=False)
    assert count_rows(engine, NicheContribution) == 4
    report = service.contribute_and_publish(factory, ids[0], market_now() + WEEK)
    assert report["published"] is None and "fewer than 5" in report["not_published"]
    assert count_rows(engine, NichePatternRow) == 0 and count_rows(engine, PrivacyLedgerRow) == 0
    # Back to five in the next period: published once, budget spent once.
    _opt_in(engine, ids[4], market_now() + WEEK)
    for account_id in ids:
        assert service.contribute_and_publish(factory, account_id, market_now() + WEEK)[
            "contributed"
        ]
    report = service.contribute_and_publish(factory, ids[0], market_now() + 2 * WEEK)
    assert report["published"] is not None and report["published"]["accounts"] == ">=5"
    again = service.contribute_and_publish(factory, ids[1], market_now() + 2 * WEEK)
    assert again["published"]["period_start"] == report["published"]["period_start"]
    assert count_rows(engine, NichePatternRow) == 1 and count_rows(engine, PrivacyLedgerRow) == 1
    with factory() as session:
        row = latest_pattern(session, "fitness")
        assert row is not None
        text = repr(row.pattern().as_dict())
        assert "sim_act" not in text and "account_id" not in text


def test_budget_exhaustion_refuses_publication(engine: Engine) -> None:
    factory = make_session_factory(engine)
    settings = PrivacySettings(epsilon_per_period=1.0, epsilon_budget=2.0)
    now = market_now()
    with transaction(factory) as session:
        ids = [create_account(session, f"acct-{i}", now).id for i in range(5)]
        for account_id in ids:
            service.set_settings(session, account_id, now, opted_in=True)
        periods = [now - WEEK * 4, now - WEEK * 3, now - WEEK * 2]
        for p in periods:
            for account_id in ids:
                session.add(
                    NicheContribution(
                        account_id=account_id, niche="saas", period_start=p, log_base=0.1,
                        lifts=[0.0] * 23, n_ads=10, clipped=False, updated_at=now,
                    )
                )  # fmt: skip
    for p in periods[:2]:
        with transaction(factory) as session:
            service.publish_period(session, "saas", p, now, settings)
    with transaction(factory) as session, pytest.raises(NotPublishable, match="budget"):
        service.publish_period(session, "saas", periods[2], now, settings)
    with factory() as session:
        # The ledger charges what OpenDP's privacy map says each release spends.
        charged = opendp_laplace(settings).epsilon
        rows = session.scalars(select(PrivacyLedgerRow)).all()
        assert [r.epsilon for r in rows] == [charged, charged]
        assert {r.mechanism for r in rows} == {"opendp-laplace"}
        assert {r.epsilon for r in session.scalars(select(NichePatternRow))} == {charged}
        assert sum(r.epsilon for r in rows) == pytest.approx(2.0)
        stats = service.stats(session, ids[0], settings, now)
        assert stats["niche_budget"] is None  # no niche detected for this account yet
        assert [p["publications"] for p in stats["published"]] == [2]


def test_niche_is_redetected_when_creatives_change(engine: Engine) -> None:
    account_id, _ = load_account(engine, 1, with_actuals=False)
    factory = make_session_factory(engine)
    with transaction(factory) as session:
        first, changed = service.detect_niche(session, account_id, market_now())
        assert first.niche == "fitness" and changed
        _, changed = service.detect_niche(session, account_id, market_now())
        assert not changed
        service.set_settings(session, account_id, market_now(), declared="Software company")
        _, changed = service.detect_niche(session, account_id, market_now())
        assert changed


def test_win_probability_uses_the_niche_prior_when_thin_and_own_data_when_rich(
    engine: Engine,
) -> None:
    factory = make_session_factory(engine)
    thin_id, _ = load_account(engine, 6, name="newcomer", with_actuals=False)
    dna = dna_from_features({"hook_type": "before_after", "aspect_ratio": "9:16"})
    with transaction(factory) as session:
        before = dna_service.score(session, thin_id, dna)
    assert before["win_probability"] is None and before["prior_used"]["level"] == "none"
    ids = _five_contribute(engine)
    assert service.contribute_and_publish(factory, ids[0], market_now() + WEEK)["published"]
    with transaction(factory) as session:
        # Never detected nor stored: its niche is detected from its current ads when read.
        assert session.get(AccountNiche, thin_id) is None
        prior = service.niche_prior(session, thin_id)
        assert prior is not None and prior.niche == "fitness" and prior.accounts == ">=5"
        thin = dna_service.score(session, thin_id, dna)
        rich = dna_service.score(session, ids[0], dna)
    assert thin["win_probability"] is not None and thin["prior_used"]["level"] == "niche"
    assert thin["win_model"]["level"] == "niche" and thin["win_model"]["n_ads"] == 0
    assert "fitness" in thin["win_reason"]
    assert rich["win_model"]["level"] == "account" and rich["win_model"]["n_ads"] == 8
    assert "fitness" in rich["win_model"]["prior"]


def test_two_accounts_publishing_the_same_period_at_once_share_one_publication(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A deterministic interleaving: account A has checked that the period is not published and
    is drawing its noise when account B's whole step runs and publishes the same niche and
    period. A's insert loses the unique constraint; it returns B's publication, no error."""
    factory = make_session_factory(engine)
    ids = _five_contribute(engine)
    real = publish
    other: dict[str, Any] = {}

    def interleaved(*args: Any, **kwargs: Any) -> Any:
        monkeypatch.setattr(service, "publish", real)
        other.update(service.contribute_and_publish(factory, ids[1], market_now() + WEEK))
        return real(*args, **kwargs)

    monkeypatch.setattr(service, "publish", interleaved)
    mine = service.contribute_and_publish(factory, ids[0], market_now() + WEEK)
    assert other["published"] is not None and "not_published" not in mine
    assert mine["published"] == other["published"]
    assert count_rows(engine, NichePatternRow) == 1 and count_rows(engine, PrivacyLedgerRow) == 1
    # Later calls read the one stored publication.
    again = service.contribute_and_publish(factory, ids[2], market_now() + WEEK)
    assert again["published"] == other["published"]


def test_concurrent_publish_period_in_two_threads_is_safe(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two sessions on two connections, both past the "already published?" check before either
    inserts (a barrier inside the draw): one publication, one ledger entry, both return it."""
    factory = make_session_factory(engine)
    _five_contribute(engine)
    period = period_start(market_now(), 168, service.PERIOD_ORIGIN)
    real = publish
    barrier = threading.Barrier(2, timeout=30)

    def both_checked(*args: Any, **kwargs: Any) -> Any:
        barrier.wait()
        return real(*args, **kwargs)

    monkeypatch.setattr(service, "publish", both_checked)
    results: list[tuple[int, float]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with transaction(factory) as session:
                row = service.publish_period(
                    session, "fitness", period, market_now() + WEEK, PrivacySettings()
                )
                results.append((row.id, row.base_ctr))
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert len(results) == 2 and results[0] == results[1]
    assert count_rows(engine, NichePatternRow) == 1 and count_rows(engine, PrivacyLedgerRow) == 1


def test_the_niche_of_an_account_that_did_not_opt_in_follows_its_creatives(
    engine: Engine,
) -> None:
    """Re-detection runs in every account's step, opted in or not (own data only): the stored
    niche follows the ads; nothing is contributed; readers see the current niche at once."""
    account_id, _ = load_account(engine, 2)
    factory = make_session_factory(engine)
    first = service.contribute_and_publish(factory, account_id, market_now())
    assert first["contributed"] is False and "not opted in" in first["reason"]
    assert first["niche"] == "fitness" and first["niche_redetected"] is True
    same = service.contribute_and_publish(factory, account_id, market_now() + timedelta(hours=1))
    assert same["niche"] == "fitness" and same["niche_redetected"] is False
    with transaction(factory) as session:
        session.execute(
            update(Variant)
            .where(Variant.account_id == account_id)
            .values(
                headline="The CRM dashboard for sales teams",
                primary_text="Automate reports and your pipeline: project software for founders",
                description="Productivity app platform",
            )
        )
    with factory() as session:  # before any step: read as current, without storing
        assert current_niche(session, account_id) == "saas"
        stored = session.get(AccountNiche, account_id)
        assert stored is not None and stored.niche == "fitness"
    later = service.contribute_and_publish(factory, account_id, market_now() + timedelta(hours=2))
    assert later["niche"] == "saas" and later["niche_redetected"] is True
    assert later["contributed"] is False
    with factory() as session:
        stored = session.get(AccountNiche, account_id)
        assert stored is not None and stored.niche == "saas"
    assert count_rows(engine, NicheContribution) == 0
