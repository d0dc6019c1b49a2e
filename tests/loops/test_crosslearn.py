"""Loop 3's pure core: niche detection, clipping, k-anonymity, OpenDP's Laplace noise calibrated
to ε (checked against OpenDP's privacy map and statistically: its sampler cannot be seeded), the
privacy budget, and the niche prior's use (win probability, CTR prediction, blending)."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from scipy import stats

from adflywheel.loops.crosslearn import (
    SHARED_LEVELS,
    Contribution,
    NichePrior,
    NotPublishable,
    PrivacySettings,
    blend_effects,
    contribution,
    default_detector,
    global_prior,
    predict_ctr,
    publish,
    win_prior,
)
from adflywheel.loops.crosslearn.privacy import (
    NoisySums,
    SeededLaplaceNotPrivate,
    budget_left,
    can_spend,
    clip_vector,
    opendp_laplace,
    period_start,
)
from adflywheel.loops.crosslearn.sharing import bucket
from adflywheel.loops.dna import patterns, win
from adflywheel.loops.dna.fingerprint import dna_from_features
from adflywheel.sim.market.config import NICHES
from adflywheel.sim.market.texts import _HOOK_TEMPLATES, make_creative

# -- niche detection -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("texts", "expected"),
    [
        (["Our vitamin C serum fades dark spots; your skin will glow."], "beauty"),
        (["12-week strength program: squat, deadlift, bench. Join the gym challenge."], "fitness"),
        (["Open a high-yield savings account and stop paying bank fees."], "finance"),
        (["New linen summer dresses and relaxed-fit jeans, free returns."], "ecommerce_fashion"),
        (["The CRM that updates your sales pipeline and dashboard automatically."], "saas"),
        (["Chef-designed meal kits: fresh dinner recipes delivered weekly."], "food"),
        (["Cheap flights and beach hotels for your summer getaway."], "travel"),
        (["Grain-free kibble your dog will love, plus treats for cats."], "pets"),
    ],
)
def test_niche_from_hand_written_ads(texts: list[str], expected: str) -> None:
    found = default_detector().detect(None, texts)
    assert found.niche == expected
    assert 0.0 < found.confidence <= 1.0 and found.margin > 0


def test_niche_of_simulated_accounts_from_their_ad_text() -> None:
    rng = random.Random(1)
    hits = 0
    for niche in NICHES:
        for _ in range(10):
            ads = [make_creative(h, niche, "PeakFit", rng) for h in list(_HOOK_TEMPLATES)[:6]]
            found = default_detector().detect(None, [a.primary_text for a in ads])
            hits += found.niche == niche
    assert hits >= 57  # of 60 (synthetic copy)


def test_declared_category_counts_and_no_signal_gives_no_niche() -> None:
    detector = default_detector()
    by_category = detector.detect("Financial service", [])
    assert by_category.niche == "finance" and by_category.category_match == "finance"
    # An exact category outweighs one ambiguous line; text alone follows the text.
    assert detector.detect("Clothing store", ["Shop now"]).niche == "ecommerce_fashion"
    assert detector.detect(None, ["Lorem ipsum dolor"]).niche is None
    assert detector.detect(None, []).confidence == 0.0


def test_confidence_is_lower_when_text_mixes_niches() -> None:
    detector = default_detector()
    clear = detector.detect(None, ["protein shake for muscle after your gym workout"])
    mixed = detector.detect(None, ["protein shake recipe for a healthy dinner meal kit workout"])
    assert clear.confidence > mixed.confidence


# -- contributions, k, noise ---------------------------------------------------------------------


def _ads(seed: int, n: int = 24) -> list[patterns.AdOutcome]:
    rng = np.random.default_rng(seed)
    hooks = ["question", "before_after", "statistic", "testimonial_ugc"]
    out = []
    for i in range(n):
        hook = hooks[i % len(hooks)]
        lift = {"before_after": 0.3, "statistic": -0.2}.get(hook, 0.0)
        imps = 20_000
        clicks = int(rng.binomial(imps, 0.012 * math.exp(lift + rng.normal(0, 0.1))))
        genes = dna_from_features({"hook_type": hook, "aspect_ratio": "9:16"}).genes
        out.append(patterns.AdOutcome(genes, imps, clicks))
    return out


def test_contribution_is_clipped_and_bounded() -> None:
    settings = PrivacySettings(lift_clip=0.1, lift_l1=0.15, base_clip=0.1)
    mine = contribution(patterns.gene_patterns(_ads(0)), settings)
    assert mine is not None and len(mine.lifts) == len(SHARED_LEVELS)
    assert max(abs(v) for v in mine.lifts) <= 0.1 + 1e-12
    assert sum(abs(v) for v in mine.lifts) <= 0.15 + 1e-9
    assert abs(mine.log_base) <= 0.1 and mine.clipped
    loose = contribution(patterns.gene_patterns(_ads(0)), PrivacySettings())
    assert loose is not None
    ba = SHARED_LEVELS.index("hook_type=before_after")
    assert loose.lifts[ba] > 0.05  # the account's own positive effect is what it shares
    assert contribution(patterns.gene_patterns(_ads(0, n=3)), settings) is None  # too few ads


def test_clip_vector_scales_to_the_l1_bound() -> None:
    out = clip_vector(np.array([3.0, -3.0, 0.5]), 1.0, 1.0)
    assert np.allclose(out, [0.4, -0.4, 0.2])
    assert np.allclose(clip_vector(np.array([0.1, -0.2]), 1.0, 1.0), [0.1, -0.2])


def _contributions(n: int) -> list[Contribution]:
    base = [0.0] * len(SHARED_LEVELS)
    return [Contribution(0.2, tuple(base), 10, False) for _ in range(n)]


def test_never_publishes_below_k() -> None:
    settings = PrivacySettings(k_min=5)
    for n in range(5):
        with pytest.raises(NotPublishable):
            publish("fitness", _contributions(n), settings)
    pattern = publish("fitness", _contributions(5), settings)
    assert pattern.accounts == ">=5"


class _ExtremeDraw:
    """A noise source whose draw is one a real Laplace gives rarely: sums pushed far out."""

    name = "extreme-draw"
    epsilon = 1.0

    def __init__(self, push: float) -> None:
        self.push = push

    def release(self, count: int, base: float, lifts: np.ndarray) -> NoisySums:
        return NoisySums(float(count), base + self.push, np.asarray(lifts, float) - self.push)


@pytest.mark.parametrize("push", [-40.0, 26.0, 40.0])
def test_a_rare_noise_draw_never_publishes_a_rate_no_account_could_have(push: float) -> None:
    """The published means are projected onto the clip range every contribution lies in: a
    base CTR above 1 (a draw like +26 on five accounts once published 1.89) cannot appear."""
    settings = PrivacySettings(k_min=5)
    pattern = publish("fitness", _contributions(5), settings, mechanism=_ExtremeDraw(push))
    low, high = math.exp(-settings.base_clip), math.exp(settings.base_clip)
    assert 0.01 * low * 0.999 <= pattern.base_ctr <= 0.01 * high * 1.001
    assert pattern.base_ctr_low <= pattern.base_ctr <= pattern.base_ctr_high < 1
    for effect in pattern.effects:
        assert abs(effect.log_lift) <= settings.lift_clip
    edge = 0.01 * (high if push > 0 else low)
    assert pattern.base_ctr == pytest.approx(edge, rel=1e-3)


def test_account_count_is_published_only_as_at_least_k() -> None:
    assert bucket(5) == ">=5"
    big = publish("food", _contributions(60), PrivacySettings())
    shown = big.as_dict()
    assert big.accounts == ">=5" and shown["accounts"] == ">=5"
    # Neither the true count nor the noisy one is among the published fields (the noise is not
    # seeded, so this checks fields and values, not digits that may occur by chance).
    assert set(shown) == {
        "niche",
        "accounts",
        "epsilon",
        "base_ctr",
        "base_ctr_interval",
        "effects",
    }
    numbers = [shown["epsilon"], shown["base_ctr"], *shown["base_ctr_interval"]]
    numbers += [v for e in shown["effects"] for v in e.values() if isinstance(v, float)]
    assert 60 not in numbers and big.noisy_count not in numbers


def _discrete_laplace_mean_abs(scale: float) -> float:
    """E|X| for P(X = x) ∝ exp(-|x| / scale) on the integers, summed directly."""
    x = np.arange(-4000, 4001)
    w = np.exp(-np.abs(x) / scale)
    return float(np.sum(np.abs(x) * w) / np.sum(w))


@pytest.mark.parametrize("epsilon", [0.5, 2.0])
def test_opendp_privacy_map_is_the_epsilon_split(epsilon: float) -> None:
    """OpenDP's own accountant: each measurement's privacy map at its sensitivity is its share
    of ε (never more), and a publication reports their sum, the ε the ledger charges."""
    settings = PrivacySettings(epsilon_per_period=epsilon, epsilon_budget=epsilon)
    mechanism = opendp_laplace(settings)
    maps = (
        mechanism.count.map(1),
        mechanism.base.map(settings.base_clip),
        mechanism.lifts.map(settings.lift_l1),
    )
    for spent, share in zip(maps, settings.epsilons, strict=True):
        assert spent <= share and spent == pytest.approx(share, rel=1e-9)
    pattern = publish("saas", _contributions(20), settings)
    assert pattern.epsilon == pytest.approx(sum(maps), rel=1e-12) and pattern.epsilon <= epsilon * (
        1 + 1e-12
    )
    assert pattern.mechanism == "opendp-laplace"
    # One more unit of sensitivity than the clipping allows costs more: the map is not a constant.
    assert mechanism.base.map(2 * settings.base_clip) == pytest.approx(2 * maps[1])


@pytest.mark.parametrize("epsilon", [0.5, 2.0])
def test_noise_scale_matches_epsilon(epsilon: float) -> None:
    """OpenDP's noise is drawn from a CSPRNG, so this is statistical: over many publications of
    the same data the noisy count is discrete Laplace(1/ε_count) around the true count (its mean
    absolute deviation, computed from the pmf), and the lift sums are Laplace(Δ/ε_lift) (KS test).
    With ε used whole instead of split, the scales would be 2-5 times smaller: far outside."""
    settings = PrivacySettings(epsilon_per_period=epsilon, epsilon_budget=epsilon)
    b_count, _, b_lift = settings.scales
    assert b_count == pytest.approx(1.0 / (epsilon * settings.split[0]))
    data = _contributions(20)
    published = [publish("saas", data, settings) for _ in range(3000)]
    counts = np.array([p.noisy_count for p in published]) - 20
    assert np.all(counts == np.round(counts))  # an integer count: exact discrete sampling
    expected = _discrete_laplace_mean_abs(b_count)
    assert abs(float(np.mean(np.abs(counts))) / expected - 1.0) < 0.08  # ~4.4 se
    # The lifts' noise: the published mean times the divisor recovers Laplace(b_lift) noise
    # (the mean is rounded to 5 decimals when published: far below the scale).
    sums = np.array([p.effects[0].log_lift * max(p.noisy_count, settings.k_min) for p in published])
    assert abs(float(np.mean(np.abs(sums))) / b_lift - 1.0) < 0.08
    assert stats.kstest(sums, stats.laplace(scale=b_lift).cdf).pvalue > 0.001


def test_opendp_publications_differ_from_the_old_mechanisms_within_the_noise_bound() -> None:
    """Against the numpy mechanism it replaced (kept, seeded, as ``SeededLaplaceNotPrivate``):
    with negligible noise both publish the same pattern (the post-processing is unchanged), and
    at the default ε each OpenDP lift sum lies within the Laplace tail bound b·ln(1/β) of the
    true sum as often as the bound says (β = 1%: at most ~1% outside)."""
    lifts = tuple(0.2 if k == "hook_type=question" else -0.05 for k in SHARED_LEVELS)
    data = [Contribution(0.3, lifts, 10, False) for _ in range(12)]
    exact = PrivacySettings(epsilon_per_period=1e6, epsilon_budget=1e6)
    old = publish("saas", data, exact, SeededLaplaceNotPrivate(exact, np.random.default_rng(0)))
    new = publish("saas", data, exact)
    assert new.base_ctr == pytest.approx(old.base_ctr, rel=1e-5)
    for a, b in zip(new.effects, old.effects, strict=True):
        assert a.log_lift == pytest.approx(b.log_lift, abs=2e-5) and a.se == b.se
    settings = PrivacySettings()
    _, _, b_lift = settings.scales
    bound = b_lift * math.log(1 / 0.01)
    outside = 0
    for _ in range(300):
        p = publish("saas", data, settings)
        m = max(p.noisy_count, settings.k_min)
        true_sum = 12 * lifts[0]
        outside += abs(p.effects[0].log_lift * m - true_sum) > bound
    assert outside <= 9  # 1% of 300 is 3; 9 or more has probability < 0.5%


def test_seeded_benchmark_noise_is_reproducible_and_labelled_not_private() -> None:
    """The benchmarks' path: same seed, same publication; named so no one mistakes it."""
    settings = PrivacySettings()
    data = _contributions(8)
    one = publish(
        "saas", data, settings, SeededLaplaceNotPrivate(settings, np.random.default_rng(3))
    )
    two = publish(
        "saas", data, settings, SeededLaplaceNotPrivate(settings, np.random.default_rng(3))
    )
    assert one == two and one.mechanism == "seeded-laplace-not-private"
    assert "not private" in (SeededLaplaceNotPrivate.__doc__ or "").lower()


def test_one_account_moves_the_sums_by_at_most_the_sensitivity() -> None:
    settings = PrivacySettings()
    rng = np.random.default_rng(3)
    raw = [rng.normal(0, 2.0, len(SHARED_LEVELS)) for _ in range(6)]
    clipped = [clip_vector(v, settings.lift_clip, settings.lift_l1) for v in raw]
    with_all = np.sum(clipped, axis=0)
    for i in range(6):
        without = np.sum([c for j, c in enumerate(clipped) if j != i], axis=0)
        assert float(np.abs(with_all - without).sum()) <= settings.lift_l1 + 1e-9


def test_budget_refuses_when_spent_and_recovers_after_the_window() -> None:
    settings = PrivacySettings(epsilon_per_period=1.0, epsilon_budget=2.0, window_days=30)
    now = datetime(2026, 1, 31, tzinfo=UTC)
    spent = [(now - timedelta(days=3), 1.0)]
    assert can_spend(spent, now, settings)
    spent.append((now - timedelta(days=1), 1.0))
    assert not can_spend(spent, now, settings) and budget_left(spent, now, settings) == 0
    assert can_spend(spent, now + timedelta(days=28), settings)  # the first spend left the window


def test_period_start_is_stable_within_a_period() -> None:
    origin = datetime(2024, 1, 1, tzinfo=UTC)
    a = period_start(datetime(2026, 3, 4, 5, tzinfo=UTC), 168, origin)
    b = period_start(a + timedelta(hours=167), 168, origin)
    assert a == b and period_start(a + timedelta(hours=168), 168, origin) > a


def test_settings_reject_bad_values() -> None:
    for bad in (
        {"k_min": 1},
        {"epsilon_per_period": 0.0},
        {"epsilon_per_period": math.inf},
        {"split": (0.5, 0.5, 0.5)},
        {"epsilon_budget": 0.5},
        {"lift_l1": 0.0},
    ):
        with pytest.raises(ValueError):
            PrivacySettings(**bad)  # type: ignore[arg-type]


# -- priors --------------------------------------------------------------------------------------


def _prior(favoured: str = "before_after", lift: float = 0.5, sd: float = 0.15) -> NichePrior:
    """A published prior as sharp as one gets at ε = 1 with ~20 accounts (sd >= ~0.15)."""
    effects = {k: (0.0, 0.15) for k in SHARED_LEVELS}
    effects[f"hook_type={favoured}"] = (lift, sd)
    return NichePrior("fitness", 0.012, 0.3, effects, ">=20", 1.0)


def _examples(hook_ctr: dict[str, float], per_hook: int, seed: int = 0) -> list[win.Example]:
    rng = np.random.default_rng(seed)
    out = []
    for hook, ctr in hook_ctr.items():
        vector = dna_from_features({"hook_type": hook}).vector
        for _ in range(per_hook):
            imps = 5_000
            out.append(win.Example(vector, imps, int(rng.binomial(imps, ctr))))
    return out


def test_win_probability_uses_the_niche_prior_when_thin_and_own_data_when_rich() -> None:
    published = win_prior(_prior())
    ba = dna_from_features({"hook_type": "before_after"}).vector
    q = dna_from_features({"hook_type": "question"}).vector
    assert win.fit_hierarchy([], published=None) is None
    thin = win.fit_hierarchy([], published=published)
    assert thin is not None and thin.level == "niche" and "fitness" in thin.prior
    assert thin.predict(ba) > thin.predict(q) + 0.1
    # This account's data say the opposite: question ads win, before/after ads do not.
    rich_data = _examples({"question": 0.03, "before_after": 0.008, "statistic": 0.012}, 30)
    rich = win.fit_hierarchy(rich_data, published=published, fixed_ctr=0.02)
    assert rich is not None and rich.level == "account"
    assert rich.predict(q) > 0.6 and rich.predict(ba) < 0.2
    assert rich.predict(q) > thin.predict(q) + 0.3


def test_predict_ctr_moves_from_the_prior_to_the_ad_as_evidence_grows() -> None:
    genes = dna_from_features({"hook_type": "before_after"}).genes
    none_rate, none_n = predict_ctr(None, genes)
    assert (none_rate, none_n) == (0.01, 100.0)
    prior = _prior()
    rate0, n0 = predict_ctr(prior, genes)
    assert rate0 == pytest.approx(0.012 * math.exp(0.5), rel=0.01) and n0 > 100
    late, _ = predict_ctr(prior, genes, impressions=1_000_000, clicks=5_000)
    assert late == pytest.approx(0.005, rel=0.05)


def test_blend_weights_own_evidence_more_as_it_grows() -> None:
    prior = _prior("statistic", 0.2, 0.1)
    small = patterns.gene_patterns(_ads(1, n=8))
    large = patterns.gene_patterns(_ads(1, n=80))

    def weight(found: patterns.Patterns) -> float:
        rows = {f"{r['gene']}={r['level']}": r for r in blend_effects(prior, found)}
        return float(rows["hook_type=statistic"]["own_weight"])

    assert 0 < weight(small) < weight(large) < 1
    no_data = {f"{r['gene']}={r['level']}": r for r in blend_effects(prior, None)}
    assert no_data["hook_type=statistic"]["own_weight"] == 0.0


def test_global_prior_averages_niches_and_labels_the_win_model_global() -> None:
    a = NichePrior("fitness", 0.01, 0.3, {"hook_type=question": (0.2, 0.1)}, ">=5", 1.0)
    b = NichePrior("finance", 0.04, 0.3, {"hook_type=question": (0.0, 0.1)}, ">=5", 1.0)
    overall = global_prior([a, b])
    assert overall is not None and overall.niche == "global"
    assert overall.base_ctr == pytest.approx(0.02, rel=1e-6)  # geometric mean of 1% and 4%
    assert overall.effects["hook_type=question"][0] == pytest.approx(0.1)
    assert global_prior([]) is None
    model = win.fit_hierarchy([], published=win_prior(overall, "global"))
    assert model is not None and model.level == "global" and "global" in model.prior


def test_noisy_publications_move_the_prior_less_than_precise_ones() -> None:
    lifts = tuple(0.3 if k == "hook_type=question" else 0.0 for k in SHARED_LEVELS)
    data = [Contribution(0.5, lifts, 10, False) for _ in range(50)]
    exact = PrivacySettings(epsilon_per_period=1e6, epsilon_budget=1e6)
    precise = NichePrior.from_pattern(publish("saas", data, exact))
    assert precise.base_ctr == pytest.approx(0.01 * math.exp(0.5), rel=0.02)
    assert precise.effects["hook_type=question"][0] == pytest.approx(0.3, rel=0.05)
    noisy = [
        NichePrior.from_pattern(
            publish("saas", data[:5], PrivacySettings(epsilon_per_period=0.2))
        ).effects["hook_type=question"][0]
        for _ in range(200)
    ]
    raw = [
        publish("saas", data[:5], PrivacySettings(epsilon_per_period=0.2))
        .effects[SHARED_LEVELS.index("hook_type=question")]
        .log_lift
        for _ in range(200)
    ]
    assert float(np.std(noisy)) < 0.5 * float(np.std(raw))
