"""Loop 3 feeding loop 2: ``NichePriors``, the Thompson prior of a new variant from its niche's
published pattern — only for variants with no delivery yet, and nothing without a pattern."""

from __future__ import annotations

import dataclasses
import math
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from adflywheel.loops.crosslearn import NichePrior, account_ratio, predict_ctr, predict_log_ctr
from adflywheel.services.bandit.budgets import CampaignState, load_campaign_state
from adflywheel.services.bandit.policies import ThompsonPolicy
from adflywheel.services.crosslearn import service as service
from adflywheel.services.crosslearn.priors import NichePriors, NicheView, new_variant_priors
from adflywheel.store.crosslearn import current_niche
from adflywheel.store.engine import make_session_factory, transaction
from adflywheel.store.models import Campaign, Variant
from adflywheel.store.queries import HourlySeries, VariantTotals
from tests.factories.crosslearn_data import load_account, market_now

WEEK = timedelta(hours=168)
H0 = datetime(2026, 1, 5)


def _totals(variant_id: int, impressions: int, clicks: int) -> VariantTotals:
    return VariantTotals(
        variant_id, f"ad{variant_id}", variant_id, f"as{variant_id}", 1, "ACTIVE", "ACTIVE",
        False, 1000, impressions, clicks, clicks, impressions // 100, 0, 0, 0,
    )  # fmt: skip


PRIOR = NichePrior(
    niche="fitness",
    base_ctr=0.012,
    base_log_sd=0.3,
    effects={"hook_type=question": (0.4, 0.1), "hook_type=before_after": (-0.2, 0.1)},
    accounts=">=5",
    epsilon=1.0,
)


def test_young_variants_get_a_prior_from_the_pattern_without_their_own_clicks() -> None:
    variants = [_totals(1, 50_000, 1200), _totals(2, 0, 0), _totals(3, 0, 0), _totals(4, 0, 0)]
    # Variant 4 has no totals yet but already one hour of delivery in its series: still young.
    series = HourlySeries([H0], [120], [2], [50], [0], [0])
    campaign = CampaignState(1, "c1", "clicks_per_dollar", 4000, variants, {4: series})
    genes = {
        1: {"hook_type": "question"},
        2: {"hook_type": "question"},
        3: {"hook_type": "before_after"},
        4: {"hook_type": "question"},
    }
    delivered = {1: (genes[1], 50_000.0, 1200.0), 4: (genes[4], 120.0, 2.0)}
    priors = new_variant_priors(PRIOR, campaign, NicheView(PRIOR, genes, delivered))
    assert set(priors) == {2, 3, 4}  # 1 is seasoned: its own evidence is ten times any prior
    # The niche's lifts order them; the account's observed/expected ratio scales both.
    assert priors[2].rate > priors[3].rate
    expected = {k: i * math.exp(predict_log_ctr(PRIOR, g)[0]) for k, (g, i, _) in delivered.items()}
    ratio = account_ratio(PRIOR, 1202.0, expected[1] + expected[4])
    rate, n0 = predict_ctr(PRIOR, genes[2], account_ratio=ratio)
    assert priors[2].rate == pytest.approx(rate) and priors[2].strength == pytest.approx(n0)
    assert ratio > 1.0 and priors[2].rate > predict_ctr(PRIOR, genes[2])[0]
    # Variant 4's own two clicks are left out of its ratio: its prior holds no evidence of its own.
    own_ratio = account_ratio(PRIOR, 1200.0, expected[1])
    assert priors[4].rate == pytest.approx(predict_ctr(PRIOR, genes[4], account_ratio=own_ratio)[0])
    # Without a niche pattern: nothing. With every variant delivered: nothing, nothing read.
    calls: list[int] = []

    def no_pattern(c: CampaignState, h: datetime) -> NicheView:
        calls.append(1)
        return NicheView(None, genes)

    assert NichePriors(source=no_pattern)(campaign, H0) == {} and calls == [1]
    delivered_only = dataclasses.replace(campaign, variants=[variants[0]], hourly={})
    assert NichePriors(source=no_pattern)(delivered_only, H0) == {} and calls == [1]


def _publish_fitness(engine: Engine) -> None:
    factory = make_session_factory(engine)
    ids = [load_account(engine, i)[0] for i in range(5)]
    for account_id in ids:
        with transaction(factory) as session:
            service.set_settings(session, account_id, market_now(), opted_in=True)
        assert service.contribute_and_publish(factory, account_id, market_now())["contributed"]
    assert service.contribute_and_publish(factory, ids[0], market_now() + WEEK)["published"]


def _state(engine: Engine, account_id: int, until: datetime) -> CampaignState:
    with make_session_factory(engine)() as session:
        campaign = session.scalars(select(Campaign).where(Campaign.account_id == account_id)).one()
        state = load_campaign_state(session, account_id, campaign, until)
    assert state is not None
    return state


def test_store_backed_priors_for_a_newcomer_of_a_published_niche(engine: Engine) -> None:
    factory = make_session_factory(engine)
    newcomer, _ = load_account(engine, 6, name="newcomer", with_actuals=False)
    hour = market_now() + WEEK
    state = _state(engine, newcomer, hour)
    provider = NichePriors()
    with pytest.raises(RuntimeError, match="bind"):
        provider(state, hour)
    provider.bind(factory)
    assert provider(state, hour) == {}  # nothing published yet
    _publish_fitness(engine)
    fresh = NichePriors(factory)
    priors = fresh(state, hour + timedelta(hours=1))
    assert set(priors) == {v.variant_id for v in state.variants} and len(priors) == 8
    assert all(0 < p.rate < 0.5 and 0 < p.strength <= 2000 for p in priors.values())
    # A seasoned variant gets none; a young one that delivered keeps its own; the others theirs.
    first, second = state.variants[0], state.variants[1]
    seasoned = dataclasses.replace(first, impressions=25_000, clicks=300)
    young = dataclasses.replace(second, impressions=900, clicks=12)
    partly = dataclasses.replace(state, variants=[seasoned, young, *state.variants[2:]])
    assert set(fresh(partly, hour + timedelta(hours=2))) == set(priors) - {first.variant_id}
    # Thompson takes them as its prior provider.
    proposal = ThompsonPolicy(prior_provider=fresh).propose(state, hour + timedelta(hours=3))
    assert sum(proposal.budgets.values()) == state.total_budget_minor


def test_no_prior_when_the_accounts_own_niche_has_no_pattern(engine: Engine) -> None:
    """Fitness is published; an account that declares itself a software company is in 'saas',
    which is not: no prior (no fallback to another niche or the global average)."""
    factory = make_session_factory(engine)
    _publish_fitness(engine)
    other, _ = load_account(engine, 7, name="software", with_actuals=False)
    with transaction(factory) as session:
        # A software company's ads (the simulated market's texts are all fitness ones).
        for variant in session.scalars(select(Variant).where(Variant.account_id == other)):
            variant.headline = "The CRM your sales team will actually use"
            variant.primary_text = "Automate your pipeline, integrations and reports. Free trial."
            variant.description = "B2B software, SaaS"
        service.set_settings(session, other, market_now(), declared="Software company")
    with factory() as session:
        assert current_niche(session, other) == "saas"
    hour = market_now() + WEEK
    assert NichePriors(factory)(_state(engine, other, hour), hour) == {}
