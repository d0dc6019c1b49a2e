"""The static part of the simulated market (synthetic data): who exists and their hidden truth.

Accounts sit in niches; each account has campaigns of variants (ads), grouped into ad sets by the
campaign's budget structure (one ad per ad set unless ``MarketConfig.structures`` says). Everything
that does not change hour to hour is drawn here once from the seed: genes, base logit CTR, CPM,
link-click share, conversion rate, order value, view rate and audience size. Arrays are flat over
all variants, laid out account by account, campaign by campaign, so an account's variants are one
contiguous slice and a campaign's are a row of ``reshape(n_campaigns, variants_per_campaign)``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from adflywheel.sim.market.config import MarketConfig
from adflywheel.sim.market.effects import EffectModel
from adflywheel.sim.market.genes import (
    FloatArray,
    Genes,
    IntArray,
    hook_priors,
    observe,
    sample_genes,
)
from adflywheel.sim.market.texts import CATEGORY_LABELS, GENERIC_CATEGORIES, brand_name


@dataclass(frozen=True, slots=True)
class NicheProfile:
    """A vertical's typical numbers: CTR (all clicks), CPM, conversion rate of link clicks, AOV."""

    ctr: float
    cpm_minor: float
    cvr: float
    aov_minor: float


NICHE_PROFILES: dict[str, NicheProfile] = {
    "beauty": NicheProfile(ctr=0.014, cpm_minor=950.0, cvr=0.035, aov_minor=4_500.0),
    "fitness": NicheProfile(ctr=0.013, cpm_minor=850.0, cvr=0.030, aov_minor=6_000.0),
    "finance": NicheProfile(ctr=0.008, cpm_minor=1_400.0, cvr=0.020, aov_minor=12_000.0),
    "ecommerce_fashion": NicheProfile(ctr=0.012, cpm_minor=800.0, cvr=0.028, aov_minor=7_000.0),
    "saas": NicheProfile(ctr=0.009, cpm_minor=1_300.0, cvr=0.022, aov_minor=9_000.0),
    "food": NicheProfile(ctr=0.015, cpm_minor=650.0, cvr=0.045, aov_minor=3_500.0),
}

ACCOUNT_CTR_SD = 0.30
VARIANT_CTR_SD = 0.12
ACCOUNT_CPM_SD = 0.20
VARIANT_CPM_SD = 0.08
ACCOUNT_CVR_SD = 0.25
VARIANT_CVR_SD = 0.20
# Audience time zones (hours from UTC), weighted towards the Americas.
_TZ_OFFSETS = np.array([-8, -7, -6, -5, -4, -3, 0, 1, 2, 8, 10])
_TZ_WEIGHTS = np.array([4.0, 1.0, 3.0, 5.0, 1.0, 1.0, 2.0, 2.0, 1.0, 1.0, 1.0])


def logit(p: float | FloatArray) -> FloatArray:
    return np.asarray(np.log(p) - np.log1p(-np.asarray(p)), dtype=np.float64)


def sigmoid(x: FloatArray) -> FloatArray:
    out: FloatArray = 1.0 / (1.0 + np.exp(-x))
    return out


@dataclass(frozen=True, slots=True)
class World:
    """Static structure and hidden truth of one market."""

    config: MarketConfig
    account_niche: IntArray  # (A,) index into config.niches
    account_category: tuple[str | None, ...]
    account_brand: tuple[str, ...]
    account_tz: IntArray  # (A,) hours from UTC of the account's audience
    account_of: IntArray  # (n,)
    campaign_of: IntArray  # (n,) global campaign index
    niche_of: IntArray  # (n,)
    genes: Genes
    observed: Genes
    effects: EffectModel
    base_logit: FloatArray  # (n,) niche + account + genes + idiosyncratic
    # (n,) the idiosyncratic part of ``base_logit``: what no gene explains (evaluation only)
    variant_logit: FloatArray
    # (n,) change of logit CTR once the configured gene shift happens (zeros without one)
    gene_shift_logit: FloatArray
    cpm_minor: FloatArray  # (n,) expected CPM before the time-of-day factor
    link_rate: FloatArray  # (n,) link clicks per click
    cvr: FloatArray  # (n,) conversions per link click
    view_rate: FloatArray  # (n,) 3-second views per impression
    aov_minor: FloatArray  # (A,) average order value
    audience: FloatArray  # (n,) people reachable; frequency = impressions / audience
    account_ids: tuple[str, ...]
    campaign_ids: tuple[str, ...]
    ad_set_ids: tuple[str, ...]
    ad_ids: tuple[str, ...]
    # Budget structures: ads are grouped into ad sets in order, ad sets into campaigns in order,
    # so an ad set's ads and a campaign's ad sets are contiguous. One ad per ad set by default
    # (then ``ad_set_of`` is ``arange(n)``).
    ad_set_of: IntArray  # (n,) global ad set index of every ad
    ad_set_start: IntArray  # (m,) first ad of every ad set
    ad_set_campaign: IntArray  # (m,) global campaign index of every ad set
    campaign_ad_set_start: IntArray  # (C + 1,) campaign c has ad sets [start[c], start[c + 1])
    campaign_budgeted: NDArray[np.bool_]  # (C,) the campaign has the budget (CBO)
    estimate_z: FloatArray  # (n,) fixed noise of Meta's estimate of each ad (DeliverySplit)

    @property
    def n_ad_sets(self) -> int:
        return int(self.ad_set_start.shape[0])

    @property
    def one_ad_per_ad_set(self) -> bool:
        return self.n_ad_sets == int(self.account_of.shape[0])

    def ad_set_slice(self, a: int) -> slice:
        """Account ``a``'s ad sets in the flat ad set order."""
        cpa = self.config.campaigns_per_account
        start = self.campaign_ad_set_start
        return slice(int(start[a * cpa]), int(start[(a + 1) * cpa]))

    @property
    def per_account(self) -> int:
        return self.config.campaigns_per_account * self.config.variants_per_campaign

    def account_slice(self, a: int) -> slice:
        return slice(a * self.per_account, (a + 1) * self.per_account)


def _rng(config: MarketConfig, part: int) -> np.random.Generator:
    """An independent stream per part of the world, so adding a part never reshuffles another."""
    return np.random.default_rng([config.seed, 7_919, part])


def build_world(config: MarketConfig) -> World:
    """Draw the whole static market from ``config.seed``."""
    n_a, n_c, n_v = config.n_accounts, config.campaigns_per_account, config.variants_per_campaign
    niches = config.niches
    profiles = [NICHE_PROFILES[n] for n in niches]

    rng = _rng(config, 0)
    account_niche = rng.integers(0, len(niches), n_a).astype(np.int64)
    if config.balanced_niches:  # drawn all the same, so the streams after it do not move
        account_niche = np.arange(n_a, dtype=np.int64) % len(niches)
    account_tz = rng.choice(_TZ_OFFSETS, size=n_a, p=_TZ_WEIGHTS / _TZ_WEIGHTS.sum())
    declared = rng.random(n_a)
    categories: list[str | None] = []
    for a in range(n_a):
        if declared[a] < config.category_share * 0.9:
            categories.append(CATEGORY_LABELS[niches[account_niche[a]]])
        elif declared[a] < config.category_share:
            categories.append(GENERIC_CATEGORIES[a % len(GENERIC_CATEGORIES)])
        else:
            categories.append(None)
    brands = tuple(brand_name(random.Random(f"{config.seed}:brand:{a}")) for a in range(n_a))

    per_account = n_c * n_v
    account_of = np.repeat(np.arange(n_a, dtype=np.int64), per_account)
    campaign_of = np.repeat(np.arange(n_a * n_c, dtype=np.int64), n_v)
    niche_of = account_niche[account_of]
    n = int(account_of.shape[0])

    effects = EffectModel.draw(_rng(config, 1), niches, n_a, config.gene_effect_scale)
    genes = sample_genes(
        _rng(config, 2), niche_of, hook_priors(len(niches), niches, _rng(config, 3))
    )
    observed = observe(genes, _rng(config, 4), config.feature_noise, config.hook_misclassification)

    rng = _rng(config, 5)
    niche_ctr = logit(np.array([p.ctr for p in profiles]))
    gene_logit = effects.ctr_logit(genes, niche_of, account_of)
    shift = config.gene_shift
    gene_shift_logit = (
        effects.shifted(shift.top_k, shift.factor).ctr_logit(genes, niche_of, account_of)
        - gene_logit
        if shift is not None
        else np.zeros(n)
    )
    account_logit = rng.normal(0.0, ACCOUNT_CTR_SD, n_a)
    variant_logit = rng.normal(0.0, VARIANT_CTR_SD, n)  # drawn in the same order as always
    base_logit = niche_ctr[niche_of] + account_logit[account_of] + gene_logit + variant_logit
    niche_cpm = np.array([p.cpm_minor for p in profiles])
    cpm = (
        niche_cpm[niche_of]
        * rng.lognormal(0.0, ACCOUNT_CPM_SD, n_a)[account_of]
        * rng.lognormal(0.0, VARIANT_CPM_SD, n)
    )
    link_rate = np.clip(rng.normal(0.6, 0.06, n), 0.3, 0.9)
    cvr = sigmoid(
        logit(np.array([p.cvr for p in profiles]))[niche_of]
        + rng.normal(0.0, ACCOUNT_CVR_SD, n_a)[account_of]
        + effects.cvr_logit(genes)
        + rng.normal(0.0, VARIANT_CVR_SD, n)
    )
    view_rate = sigmoid(-0.85 + 0.8 * gene_logit + rng.normal(0.0, 0.15, n))
    aov = np.array([p.aov_minor for p in profiles])[account_niche] * rng.lognormal(0.0, 0.3, n_a)
    daily_impressions = config.campaign_daily_budget_minor * 1000.0 / cpm
    audience = np.maximum(
        config.audience_days * daily_impressions * rng.lognormal(0.0, 0.3, n), 1_000.0
    )

    prefix = config.id_prefix
    account_ids = tuple(f"{prefix}_act_{a:04d}" for a in range(n_a))
    campaign_ids = tuple(f"{account_ids[a]}_c{c:02d}" for a in range(n_a) for c in range(n_c))
    ad_ids = tuple(f"{cid}_ad{v:02d}" for cid in campaign_ids for v in range(n_v))
    ad_set_of: list[int] = []
    ad_set_ids_list: list[str] = []
    campaign_sets = [0]
    for c, cid in enumerate(campaign_ids):
        per = config.ads_per_ad_set_in(c)
        first = len(ad_set_ids_list)
        ad_set_of.extend(first + v // per for v in range(n_v))
        ad_set_ids_list.extend(f"{cid}_s{k:02d}" for k in range(config.ad_sets_in(c)))
        campaign_sets.append(len(ad_set_ids_list))
    ad_set_of_arr = np.asarray(ad_set_of, dtype=np.int64)
    ad_set_start = np.flatnonzero(np.diff(ad_set_of_arr, prepend=-1)).astype(np.int64)
    campaign_ad_set_start = np.asarray(campaign_sets, dtype=np.int64)
    return World(
        config=config,
        account_niche=account_niche,
        account_category=tuple(categories),
        account_brand=brands,
        account_tz=account_tz.astype(np.int64),
        account_of=account_of,
        campaign_of=campaign_of,
        niche_of=niche_of,
        genes=genes,
        observed=observed,
        effects=effects,
        base_logit=base_logit,
        variant_logit=variant_logit,
        gene_shift_logit=gene_shift_logit,
        cpm_minor=cpm,
        link_rate=link_rate,
        cvr=cvr,
        view_rate=view_rate,
        aov_minor=aov,
        audience=audience,
        account_ids=account_ids,
        campaign_ids=campaign_ids,
        ad_set_ids=tuple(ad_set_ids_list),
        ad_ids=ad_ids,
        ad_set_of=ad_set_of_arr,
        ad_set_start=ad_set_start,
        ad_set_campaign=np.repeat(
            np.arange(n_a * n_c, dtype=np.int64), np.diff(campaign_ad_set_start)
        ),
        campaign_ad_set_start=campaign_ad_set_start,
        campaign_budgeted=np.array(
            [config.structure_of(c) == "campaign_budget" for c in range(n_a * n_c)],
            dtype=np.bool_,
        ),
        # Its own stream: drawing it shifts no other part of the world.
        estimate_z=_rng(config, 6).normal(0.0, 1.0, n),
    )
