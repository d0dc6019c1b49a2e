"""Why ads win (per-gene lifts with intervals and shrinkage) and the win-probability model."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import numpy as np
import pytest

from adflywheel.loops.dna.fingerprint import dna_from_features, vectorise
from adflywheel.loops.dna.patterns import AdOutcome, contributions, gene_patterns
from adflywheel.loops.dna.win import (
    Example,
    PublishedPrior,
    fit,
    fit_hierarchy,
    fit_hierarchy_explained,
    labels,
    winner_threshold,
)
from adflywheel.sim.market import MarketConfig, SimulatedMarket

HOOKS = ("question", "statistic", "curiosity_gap", "offer_urgency")
TRUE = {"question": 0.25, "statistic": 0.0, "curiosity_gap": 0.0, "offer_urgency": -0.25}


def market(seed: int, n: int = 240, impressions: int = 4000) -> list[AdOutcome]:
    """Ads whose log CTR is 0.25 higher for question hooks, 0.25 lower for offers, +0.15 per
    unit of brightness above 0.5 (per 0.1), with ad-level noise far above binomial noise."""
    rng = np.random.default_rng(seed)
    ads = []
    for i in range(n):
        hook = HOOKS[i % len(HOOKS)]
        brightness = float(rng.uniform(0.2, 0.8))
        early_face = bool(rng.random() < 0.5)
        log_ctr = math.log(0.012) + TRUE[hook] + 1.5 * (brightness - 0.5)
        log_ctr += rng.normal(0.0, 0.15)
        clicks = int(rng.binomial(impressions, math.exp(log_ctr)))
        genes: dict[str, Any] = {
            "hook_type": hook,
            "brightness": brightness,
            "early_face": early_face,
            "aspect_ratio": "9:16",
        }
        ads.append(AdOutcome(genes, impressions, clicks, int(clicks * 0.6), int(clicks * 0.03)))
    return ads


def test_effects_have_the_right_sign_and_order_by_evidence() -> None:
    found = gene_patterns(market(1))
    top = [(e.gene, e.level) for e in found.effects[:4]]
    assert ("hook_type", "question") in top and ("hook_type", "offer_urgency") in top
    by = {(e.gene, e.level): e for e in found.effects}
    assert by["hook_type", "question"].lift > 0.1
    assert by["hook_type", "offer_urgency"].lift < -0.1
    assert by["brightness", "high"].lift > 0.05
    assert ("brightness", "low") not in by  # the mirror of "high" would say nothing new
    face = by["early_face", "yes"]  # no true effect: its interval covers zero
    assert face.lift_low < 0 < face.lift_high
    assured = [e.assured for e in found.effects]
    assert assured == sorted(assured, reverse=True)
    for e in found.effects:  # the lower 95% bound of the size of the effect, never below 0
        assert e.assured == pytest.approx(
            max(abs(math.log1p(e.lift)) - 1.96 * e.se_log, 0), abs=1e-3
        )
    assert found.baseline == pytest.approx(0.012, rel=0.2)
    assert ("aspect_ratio", "9:16") not in by  # a level every ad shares says nothing


def test_genes_are_ranked_by_what_the_data_is_sure_of() -> None:
    """Hook type (two real effects of ±0.25) and brightness (a real slope) come before early
    face (no effect), whose joint test says nothing; every gene's strongest level is named."""
    found = gene_patterns(market(1))
    order = [g.gene for g in found.genes]
    assert set(order[:2]) == {"hook_type", "brightness"}
    by = {g.gene: g for g in found.genes}
    hook = by["hook_type"]
    assert hook.df == 3  # four levels against their average: three free effects
    assert hook.top_level in ("question", "offer_urgency") and hook.evidence > 5
    assert hook.log10_p < -6 and hook.assured > 0.1
    face = by["early_face"]
    assert face.df == 1 and face.evidence < 2.5 and face.assured == 0.0
    assert by["brightness"].top_level == "high" and by["brightness"].top_lift > 0.05


def test_numeric_genes_are_fitted_as_slopes_not_halves() -> None:
    """A linear gene: the fitted slope per account sd matches the truth (1.5 per unit of
    brightness, sd of uniform(0.2, 0.8) = 0.173, so 0.26 per sd), and the "high" half's effect
    is the slope times the half's mean standardised value (about 0.87)."""
    found = gene_patterns(market(1))
    bright = next(e for e in found.effects if e.gene == "brightness")
    assert bright.slope_per_sd == pytest.approx(1.5 * 0.6 / math.sqrt(12), rel=0.25)
    assert bright.slope_per_sd is not None
    assert math.log1p(bright.lift) == pytest.approx(bright.slope_per_sd * 0.87, rel=0.15)
    assert found.scales["brightness"][1] == pytest.approx(0.6 / math.sqrt(12), rel=0.1)
    hook = next(e for e in found.effects if e.gene == "hook_type")
    assert hook.slope_per_sd is None


def test_intervals_count_ads_not_impressions() -> None:
    """Ten times the impressions per ad barely narrows an interval driven by ad-to-ad spread."""
    few = {(e.gene, e.level): e for e in gene_patterns(market(2, impressions=4_000)).effects}
    many = {(e.gene, e.level): e for e in gene_patterns(market(2, impressions=40_000)).effects}
    key = ("hook_type", "question")
    assert many[key].se_log > 0.5 * few[key].se_log
    assert few[key].n_ads == 60 and few[key].impressions == 60 * 4_000


def test_small_groups_are_shrunk_toward_no_effect() -> None:
    ads = market(3)
    lucky = AdOutcome({"hook_type": "before_after"}, 4000, 120)  # one ad, 2.5x the baseline
    found = gene_patterns([*ads, lucky])
    effect = next(e for e in found.effects if e.level == "before_after")
    assert effect.n_ads == 1
    assert effect.shrink < 0.8
    assert 0 < effect.lift < effect.raw_lift
    assert effect.lift_high < effect.raw_high


def test_a_gene_is_not_credited_with_what_a_correlated_gene_did() -> None:
    """Faces come with testimonials; only the hook matters. The marginal (raw) face lift is
    large, the adjusted one is not."""
    rng = np.random.default_rng(9)
    ads = []
    for i in range(300):
        testimonial = i % 2 == 0
        face = bool(rng.random() < (0.9 if testimonial else 0.1))
        log_ctr = math.log(0.01) + (0.3 if testimonial else 0.0) + rng.normal(0.0, 0.1)
        genes = {"hook_type": "testimonial_ugc" if testimonial else "question", "early_face": face}
        ads.append(AdOutcome(genes, 5000, int(rng.binomial(5000, math.exp(log_ctr)))))
    by = {(e.gene, e.level): e for e in gene_patterns(ads).effects}
    face_effect = by["early_face", "yes"]
    assert face_effect.raw_lift > 0.08
    assert face_effect.lift_low < 0.05 and abs(face_effect.lift) < 0.05
    assert by["hook_type", "testimonial_ugc"].lift > 0.1


def test_cvr_patterns_and_empty_history() -> None:
    cvr = gene_patterns(market(4), metric="cvr")
    assert cvr.metric == "cvr" and cvr.events > 0
    empty = gene_patterns([])
    assert empty.effects == () and empty.baseline == 0.0
    with pytest.raises(ValueError):
        gene_patterns([], metric="cpm")


def test_per_creative_contributions() -> None:
    found = gene_patterns(market(5))
    parts = contributions(found, {"hook_type": "question", "brightness": 0.75})
    assert parts[0]["gene"] in ("hook_type", "brightness")
    assert {p["gene"] for p in parts} == {"hook_type", "brightness"}
    assert all(p["lift"] > 0 for p in parts)
    low = contributions(found, {"hook_type": "offer_urgency", "brightness": 0.25})
    assert all(p["lift"] < 0 for p in low)
    # Linear in a numeric gene: twice as far from the account mean, twice the contribution.
    mean = found.scales["brightness"][0]
    one = contributions(found, {"brightness": mean + 0.1})[0]["log_lift"]
    two = contributions(found, {"brightness": mean + 0.2})[0]["log_lift"]
    assert two == pytest.approx(2 * one, rel=0.05) and one > 0


def examples(ads: list[AdOutcome]) -> list[Example]:
    return [Example(vectorise(a.genes), a.impressions, a.clicks) for a in ads]


def test_win_probability_depends_on_the_dna_and_explains_itself() -> None:
    model = fit_hierarchy(examples(market(6)))
    assert model is not None
    assert model.threshold_rule.startswith("account upper quartile")  # nobody reaches 3%
    good = vectorise({"hook_type": "question", "brightness": 0.8, "aspect_ratio": "9:16"})
    bad = vectorise({"hook_type": "offer_urgency", "brightness": 0.2, "aspect_ratio": "9:16"})
    assert model.predict(good) > 0.5 > model.predict(bad)
    top = model.contributions(good)[0]
    assert top["gene"] in ("hook_type", "brightness") and float(top["logit"]) > 0


def test_no_history_means_no_probability() -> None:
    assert fit_hierarchy([]) is None
    thin = [Example(vectorise({"hook_type": "question"}), 100, 2)] * 10
    assert fit_hierarchy(thin) is None  # ten ads, none with 500 impressions


def test_thin_accounts_lean_on_the_niche_prior() -> None:
    niche = examples(market(7, n=400))
    account = examples(market(8, n=6))
    alone = fit_hierarchy(account)
    helped = fit_hierarchy(account, niche=niche)
    assert alone is not None and helped is not None and helped.prior == "niche"
    good = vectorise({"hook_type": "question", "brightness": 0.8})
    bad = vectorise({"hook_type": "offer_urgency", "brightness": 0.2})
    gap_alone = alone.predict(good) - alone.predict(bad)
    gap_helped = helped.predict(good) - helped.predict(bad)
    assert gap_helped > gap_alone


def test_a_fixed_threshold_is_used_when_winners_reach_it() -> None:
    ex = [Example(vectorise({}), 1000, c) for c in (40, 35, 31, 5, 4, 3)]
    assert winner_threshold(ex, None) == (0.03, "ctr >= 0.0300")
    model = fit(ex, threshold_ctr=0.03)
    assert model.n_winners == 3


def _varied(clicks: list[int]) -> list[Example]:
    hooks = ("question", "statistic", "offer_urgency")
    return [Example(vectorise({"hook_type": hooks[i % 3]}), 1000, c) for i, c in enumerate(clicks)]


def test_zero_clicks_give_no_probability_and_say_why() -> None:
    """The reviewed bug: 6 ads x 1,000 impressions x 0 clicks made the upper quartile 0, every
    ad a 'winner' (ctr >= 0) and every creative ~0.99. Now there is no model, and a reason."""
    ads = _varied([0] * 6)
    assert winner_threshold(ads, None) is None
    got = fit_hierarchy_explained(ads)
    assert got.model is None and fit_hierarchy(ads) is None
    assert got.reason.startswith("no usable history")
    assert "none of the 6 ads with enough impressions has a click" in got.reason


def test_ties_at_the_quartile_do_not_make_winners() -> None:
    # Five ads tie at 1%, one reaches 2%: only the one strictly above the quartile wins.
    ads = _varied([10, 10, 10, 10, 10, 20])
    found = winner_threshold(ads, None)
    assert found is not None
    threshold, rule = found
    assert threshold > 0.01 and "ctr > 0.0100" in rule
    assert labels(ads, threshold) == [False] * 5 + [True]
    model = fit_hierarchy(ads)
    assert model is not None and model.n_winners == 1
    # All tied: nobody is better than typical, so there is nothing to learn.
    tied = fit_hierarchy_explained(_varied([10] * 6))
    assert tied.model is None and "none of the 6 ads" in tied.reason and "winner" in tied.reason
    # One click among six ads: the quartile is still 0, so it is not a threshold either.
    one = fit_hierarchy_explained(_varied([0, 0, 0, 0, 0, 1]))
    assert one.model is None and "upper quartile of CTR" in one.reason


def test_all_winners_give_no_probability() -> None:
    got = fit_hierarchy_explained(_varied([40, 35, 31, 50, 60, 33]))
    assert got.model is None and "all 6 ads with enough impressions are winners" in got.reason


def test_a_published_prior_answers_an_account_without_contrast() -> None:
    """With a niche's published pattern there is history to base it on: the niche's. The
    answer comes at the niche's threshold and differs between creatives (never a constant)."""
    published = PublishedPrior(
        name="test niche", level="niche", base_log_ctr=math.log(0.012), base_log_sd=0.3,
        effects={"hook_type=question": (0.4, 0.1), "hook_type=offer_urgency": (-0.4, 0.1)},
    )  # fmt: skip
    got = fit_hierarchy_explained(_varied([0] * 6), published=published)
    assert got.model is not None and got.model.level == "niche"
    assert "has a click" in got.note and "no contrast" in got.model.threshold_rule
    q = vectorise({"hook_type": "question"})
    offer = vectorise({"hook_type": "offer_urgency"})
    assert got.model.predict(q) > got.model.predict(offer) + 0.01


def test_a_big_effect_on_few_ads_outranks_a_small_sure_one() -> None:
    """Ranking by the effect the data is sure of (its lower 95% bound), not by certainty: a
    +65% hook (e^0.5) on 10 ads comes before a +14% brightness half that 800 ads make surer."""
    rng = np.random.default_rng(11)
    ads = []
    for i in range(800):
        hook = "testimonial_ugc" if i < 10 else ("question", "statistic")[i % 2]
        bright = float(rng.uniform(0.2, 0.8))
        log_ctr = math.log(0.01) + (0.5 if i < 10 else 0.0) + 1.0 * (bright - 0.5)
        log_ctr += rng.normal(0.0, 0.3)
        genes = {"hook_type": hook, "brightness": bright}
        ads.append(AdOutcome(genes, 50_000, int(rng.binomial(50_000, math.exp(log_ctr)))))
    found = gene_patterns(ads)
    by = {(e.gene, e.level): e for e in found.effects}
    hook_effect, bright_effect = by["hook_type", "testimonial_ugc"], by["brightness", "high"]
    assert bright_effect.evidence > hook_effect.evidence  # the slope is the more certain ...
    assert found.effects[0] is hook_effect  # ... but the hook is what matters most, and surely so
    assert [g.gene for g in found.genes] == ["hook_type", "brightness"]


def test_why_ads_win_on_a_small_simulated_market() -> None:
    """Synthetic: 240 ads, 14 simulated days, DNA from the noisy features the platform shows.
    The hook type matters most in the hidden truth; it comes among the first three genes, and
    its truly strongest level (among levels with 5 ads or more) has the right sign."""
    config = MarketConfig(seed=1, n_accounts=1, campaigns_per_account=40, retention_hours=None)
    market = SimulatedMarket(config)
    market.run(24 * 14)
    account = market.accounts()[0]
    platform = market.platform(account)
    ads = platform.list_ads()
    totals = {ad.external_id: [0, 0] for ad in ads}
    for row in platform.fetch_insights(config.start, config.start + timedelta(days=14)):
        totals[row.ad_id][0] += row.impressions
        totals[row.ad_id][1] += row.clicks
    outcomes = [
        AdOutcome(dna_from_features(ad.observed_features, "").genes, *totals[ad.external_id])
        for ad in ads
    ]
    found = gene_patterns(outcomes)
    assert "hook_type" in [g.gene for g in found.genes[:3]]
    table = market.evaluation.gene_effects(market.evaluation.niche(account)).hook
    levels = [str(market.evaluation.genes(ad.external_id)["hook_type"]) for ad in ads]
    mean = float(np.mean([table[level] for level in levels]))
    common = [lv for lv in set(levels) if levels.count(lv) >= 5]
    strongest = max(common, key=lambda lv: abs(table[lv] - mean))
    reported = next(e for e in found.effects if e.gene == "hook_type" and e.level == strongest)
    assert np.sign(reported.lift) == np.sign(table[strongest] - mean)
