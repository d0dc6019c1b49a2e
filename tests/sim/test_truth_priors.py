"""The evaluation-only truth prior (issue #15's upper bound): young variants get the market's
truth at the strongest allowed strength, seasoned ones nothing; ``genes`` is ``ad`` without the
ad's idiosyncratic factor; the harness resolves ``loops=2+truth-prior=<kind>`` to the service's
own Thompson and nothing else changes (synthetic data)."""

from __future__ import annotations

import dataclasses
from datetime import datetime

import numpy as np
import pytest

from adflywheel.core.loops import Loop
from adflywheel.loops.bandit.evidence import AllocationSettings
from adflywheel.services.bandit.budgets import CampaignState
from adflywheel.services.bandit.policies import THOMPSON_SETTINGS, ThompsonPolicy
from adflywheel.services.crosslearn.priors import PRIOR_HORIZON_IMPRESSIONS
from adflywheel.sim.harness import SimulationSpec, resolve_policy, run_policy
from adflywheel.sim.market import GeneShift, MarketConfig, SimulatedMarket
from adflywheel.sim.market.delivery import TOD_CTR_AMPLITUDE, _evening_curve
from adflywheel.sim.market.world import logit
from adflywheel.sim.truth_priors import TruthPriors
from adflywheel.store.queries import HourlySeries, VariantTotals

HOUR = datetime(2026, 1, 5)


def _market(gene_shift: GeneShift | None = None) -> SimulatedMarket:
    return SimulatedMarket(
        MarketConfig(
            seed=11,
            n_accounts=2,
            campaigns_per_account=1,
            variants_per_campaign=4,
            gene_shift=gene_shift,
        )
    )


def _totals(variant_id: int, ad_id: str, impressions: int) -> VariantTotals:
    return VariantTotals(
        variant_id, ad_id, variant_id, f"as{variant_id}", 1, "ACTIVE", "ACTIVE", False, 1000,
        impressions, impressions // 100, impressions // 160, impressions // 100, 0, 0, 0,
    )  # fmt: skip


def _campaign(market: SimulatedMarket) -> CampaignState:
    """The first campaign's four ads: new, just young, seasoned by its totals, seasoned by its
    hourly series only (its totals say 10)."""
    ads = market._world.ad_ids[:4]
    horizon = int(PRIOR_HORIZON_IMPRESSIONS)
    variants = [
        _totals(1, ads[0], 0),
        _totals(2, ads[1], horizon - 1),
        _totals(3, ads[2], horizon),
        _totals(4, ads[3], 10),
    ]
    series = HourlySeries([HOUR], [horizon], [200], [2000], [0], [0])
    return CampaignState(1, "c1", "clicks_per_dollar", 20_000, variants, hourly={4: series})


def test_young_variants_get_the_ads_true_ctr_at_launch_and_seasoned_ones_nothing() -> None:
    market = _market()
    provider = TruthPriors("ad")
    provider.bind(market)
    priors = provider(_campaign(market), HOUR)
    assert set(priors) == {1, 2}
    # What the creative delivers at hour 0 (no fatigue, drift or collapse yet; its ad set's
    # learning penalty in), daypart removed: read from the delivery's truth, not from the
    # provider's formula.
    w = market._world
    tod = TOD_CTR_AMPLITUDE * _evening_curve(w, 0)[w.account_of]
    launch = logit(market.evaluation.true_ctr_array(learning=False)) - tod
    penalty = market.evaluation.learning_factor_array()
    assert penalty[0] < 1 and penalty[1] < 1  # new ad sets are learning: the prior carries it
    for variant_id, index in ((1, 0), (2, 1)):
        prior = priors[variant_id]
        delivered = penalty[index] / (1 + np.exp(-launch[index]))
        assert prior.rate == pytest.approx(float(delivered), rel=1e-9)
        assert prior.strength == AllocationSettings().max_prior_impressions == 2000.0


def test_genes_differs_from_ad_by_exactly_the_idiosyncratic_factor() -> None:
    market = _market()
    w = market._world
    ad = logit(market.evaluation.launch_ctr_array())
    genes = logit(market.evaluation.launch_ctr_array(genes_only=True))
    assert np.allclose(ad - genes, w.variant_logit, atol=1e-9)
    assert np.std(w.variant_logit) > 0.05  # the factor is there to remove
    # What is left is niche + account + genes: less the genes, one level per account.
    level = genes - w.effects.ctr_logit(w.genes, w.niche_of, w.account_of)
    for a in range(w.config.n_accounts):
        assert np.ptp(level[w.account_slice(a)]) < 1e-9
    through = TruthPriors("genes")
    through.bind(market)
    rate = through(_campaign(market), HOUR)[1].rate
    penalty = market.evaluation.learning_factor_array()[0]
    assert rate == pytest.approx(float(penalty / (1 + np.exp(-genes[0]))), rel=1e-9)


def test_the_gene_shift_moves_the_truth_once_it_is_due() -> None:
    market = _market(gene_shift=GeneShift(at_hour=1))
    provider = TruthPriors("genes")
    provider.bind(market)
    truth = market.evaluation
    before = truth.launch_ctr_array(genes_only=True)
    market.step()
    after = truth.launch_ctr_array(genes_only=True)
    w = market._world
    assert np.allclose(logit(after) - logit(before), w.gene_shift_logit, atol=1e-9)
    # The provider reads the shifted truth, with the learning penalty of this hour.
    rates = np.array(list(provider.rates().values()))
    assert np.allclose(rates, after * truth.learning_factor_array(), rtol=1e-12)
    assert np.abs(w.gene_shift_logit).max() > 0.01


def test_the_provider_needs_a_market_and_a_known_kind() -> None:
    with pytest.raises(RuntimeError, match="bind"):
        TruthPriors("ad")(_campaign(_market()), HOUR)
    with pytest.raises(ValueError, match="'ad', 'genes'"):
        TruthPriors("creative")  # type: ignore[arg-type]


def test_the_harness_resolves_truth_priors_to_the_services_thompson() -> None:
    for kind in ("ad", "genes"):
        policy, loops = resolve_policy(f"loops=2+truth-prior={kind}", 5)
        assert loops == frozenset({Loop.BANDIT})
        assert isinstance(policy, ThompsonPolicy)
        assert isinstance(policy.prior_provider, TruthPriors)
        assert policy.prior_provider.kind == kind
        assert policy.prior_provider.market is None  # run_policy binds the run's market
        # What step.budget_policy builds for loop 2 alone (seed = the spec's seed).
        assert dataclasses.replace(policy, prior_provider=None) == ThompsonPolicy(seed=5)
        assert policy.settings == THOMPSON_SETTINGS
    # The existing spellings are as they were.
    assert resolve_policy("loops=2", 5) == (None, frozenset({Loop.BANDIT}))
    assert resolve_policy("thompson", 5)[1] == frozenset({Loop.DNA})


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("loops=2+truth-prior=creative", "truth prior kind must be one of"),
        ("loops=2+truth-prior=", "truth prior kind must be one of"),
        ("loops=1,2+truth-prior=ad", "Thompson alone"),
        ("loops=all+truth-prior=ad", "Thompson alone"),
    ],
)
def test_the_harness_rejects_a_bad_truth_prior(name: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        resolve_policy(name, 1)


@pytest.mark.slow
def test_a_tiny_run_binds_the_market_and_the_prior_moves_money() -> None:
    """Through the service's cycle: no errors, and the truth prior changes the budget writes
    against Thompson alone on the same market."""
    writes: dict[str, list[tuple[int, int, int]]] = {}
    for policy in ("loops=2", "loops=2+truth-prior=ad"):
        spec = SimulationSpec(days=1, seed=3, policy=policy, accounts=1, campaigns_per_account=1)
        market = SimulatedMarket(spec.market_config())
        _, errors, _, loops = run_policy(spec, lambda: None, market=market)
        assert errors == [] and loops == frozenset({Loop.BANDIT})
        edits = market.evaluation.budget_edits()
        writes[policy] = [(w.hour, w.ad_set_index, w.new_minor) for w in edits]
    assert writes["loops=2"] and writes["loops=2"] != writes["loops=2+truth-prior=ad"]


def test_the_loose_truth_prior_lifts_only_the_allocators_prior_guards() -> None:
    policy, loops = resolve_policy("loops=2+truth-prior=ad+loose", 5)
    assert loops == frozenset({Loop.BANDIT}) and isinstance(policy, ThompsonPolicy)
    assert isinstance(policy.prior_provider, TruthPriors)
    assert policy.prior_provider.kind == "ad" and policy.prior_provider.strength == 20_000.0
    assert policy.settings.prior_tilt == 1.0
    assert policy.settings.max_prior_impressions == 20_000.0
    # Everything else is the service's Thompson.
    assert (
        dataclasses.replace(
            policy.settings,
            prior_tilt=THOMPSON_SETTINGS.prior_tilt,
            max_prior_impressions=THOMPSON_SETTINGS.max_prior_impressions,
        )
        == THOMPSON_SETTINGS
    )
    with pytest.raises(ValueError, match="'ad', 'genes'"):
        resolve_policy("loops=2+truth-prior=nope+loose", 5)


def test_on_the_null_twin_even_the_genes_truth_cannot_rank_a_campaigns_ads() -> None:
    """With creatives that do not matter (``gene_effect_scale = 0``) a perfect gene model
    predicts one rate for every ad of an account: whatever a loop learns from genes there is
    noise, and a prior built from it can only chase noise (its cost is bounded by the prior
    cap: tests/loops/test_prior_money.py). On the churn world it does rank them."""
    for scale, ranks in ((0.0, False), (1.0, True)):
        config = MarketConfig(
            seed=11, n_accounts=2, campaigns_per_account=2, variants_per_campaign=5,
            gene_effect_scale=scale,
        )  # fmt: skip
        market = SimulatedMarket(config)
        truth = market.evaluation
        genes = truth.launch_ctr_array(genes_only=True)
        ads = truth.launch_ctr_array()
        w = market._world
        spread = max(np.ptp(genes[w.account_slice(a)]) for a in range(config.n_accounts))
        assert bool(spread > 1e-4) is ranks
        # The ads themselves still differ (their own factor): the null twin is not flat.
        assert min(np.ptp(ads[w.account_slice(a)]) for a in range(config.n_accounts)) > 1e-4
