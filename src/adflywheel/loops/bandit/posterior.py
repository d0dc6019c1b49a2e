"""Posteriors of many campaigns packed into padded (campaigns × variants) arrays, and P(best).

The model, per variant:

* impressions bought ~ Poisson(λ · spend): λ (impressions per minor unit) ~ Gamma;
* clicks | impressions ~ Binomial(p): the CTR p ~ Beta (the "Beta–Binomial for click rate");
* conversions | clicks ~ Binomial(q): the conversion rate q ~ Beta;
* revenue per conversion: a plug-in, the variant's mean shrunk toward the campaign's mean by
  ``aov_prior_conversions`` pseudo-conversions (its noise is small next to that of q).

Every prior is one pseudo-history of ``n0`` impressions: ``p ~ Beta(r·n0, (1-r)·n0)`` with the
model's rate r (or the campaign's pooled CTR), ``λ ~ Gamma(n0, n0/λ̄)`` at the campaign's pooled
price λ̄, and ``q ~ Beta(c·α0, (1-c)·α0)`` over its ``α0 = r·n0`` pseudo-clicks at the pooled
conversion rate c. With priors coupled this way the beta–gamma algebra (Gamma(a+b)·Beta(a, b) =
Gamma(a)) makes the per-dollar objectives EXACTLY single Gamma posteriors:

* clicks per minor unit        λ·p   ~ Gamma(α0 + clicks,      n0/λ̄ + spend)
* conversions per minor unit   λ·p·q ~ Gamma(c·α0 + conversions, n0/λ̄ + spend)

(it is Poisson thinning: clicks per unit spend are Poisson too), and revenue per unit spent is
the conversions Gamma times the plug-in revenue per conversion. So the per-dollar objectives need
one Gamma draw per variant and draw, the CTR objective two (a Beta). Means and central intervals
are exact (regularised incomplete Beta/Gamma inverses), not Monte Carlo.

Caveats, chosen knowingly: real CPMs vary more from hour to hour than a Poisson price implies, so
the cost part of the posterior is somewhat over-confident (discounting bounds how much history it
holds); with no conversion anywhere in a campaign, revenue per conversion is an unknown common
placeholder (1 minor unit), so ``revenue_per_dollar`` then ranks exactly as conversions per dollar.
Defaults (``default_ctr``, ``default_cvr``, ``default_cpm_minor``) matter only for a campaign
with no data, and then equally for all its variants.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from scipy.special import betaincinv, gammaincinv

from adflywheel.core.domain import Objective

from .evidence import AllocationSettings, CampaignEvidence, VariantEvidence

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.int64]
Kind = Literal["beta", "gamma"]

_NEVER_BEST = -1.0  # objective draws are >= 0: a negative scale keeps padded cells from winning


def objective_kind(objective: Objective) -> Kind:
    """Which posterior family an objective's draws come from."""
    return "beta" if objective is Objective.CTR else "gamma"


@dataclass(frozen=True, slots=True)
class PackedPosteriors:
    """Posterior parameters of C campaigns × V (max) variants; padding is inactive.

    For ``kind == "beta"`` the objective draw is Beta(a, b); for ``"gamma"`` it is
    Gamma(shape=a, rate=b) · ``scale``. ``ctr_a``/``ctr_b`` are the CTR posterior, reported for
    every objective.
    """

    kind: Kind
    a: FloatArray
    b: FloatArray
    scale: FloatArray
    active: BoolArray
    ctr_a: FloatArray
    ctr_b: FloatArray

    def means(self) -> FloatArray:
        """Exact posterior means of the objective (0 on padding)."""
        mean = self.a / (self.a + self.b) if self.kind == "beta" else self.a / self.b * self.scale
        return np.where(self.active, mean, 0.0)

    def intervals(self, level: float) -> tuple[FloatArray, FloatArray]:
        """Exact central ``level`` interval of the objective (0 on padding)."""
        tails = np.array([(1.0 - level) / 2.0, (1.0 + level) / 2.0])
        if self.kind == "beta":
            low, high = (betaincinv(self.a, self.b, q) for q in tails)
        else:
            low, high = (gammaincinv(self.a, q) / self.b * self.scale for q in tails)
        return np.where(self.active, low, 0.0), np.where(self.active, high, 0.0)

    def ctr_summary(self, level: float) -> tuple[FloatArray, FloatArray, FloatArray]:
        """CTR posterior mean and central ``level`` interval (Beta quantiles)."""
        lo_q, hi_q = (1.0 - level) / 2.0, (1.0 + level) / 2.0
        mean = self.ctr_a / (self.ctr_a + self.ctr_b)
        low = betaincinv(self.ctr_a, self.ctr_b, lo_q)
        high = betaincinv(self.ctr_a, self.ctr_b, hi_q)
        return (
            np.where(self.active, mean, 0.0),
            np.where(self.active, low, 0.0),
            np.where(self.active, high, 0.0),
        )


@dataclass(frozen=True, slots=True)
class Layout:
    """Where each variant of each campaign sits in the padded (C, V) grid."""

    variants: list[VariantEvidence]
    rows: IntArray
    cols: IntArray
    sizes: IntArray
    width: int

    @classmethod
    def of(cls, campaigns: Sequence[CampaignEvidence]) -> Layout:
        sizes = np.fromiter((len(c.variants) for c in campaigns), dtype=np.int64)
        n_cells = int(sizes.sum())
        rows = np.repeat(np.arange(len(campaigns), dtype=np.int64), sizes)
        cols = np.arange(n_cells, dtype=np.int64) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        width = int(sizes.max()) if len(campaigns) else 1
        return cls([v for c in campaigns for v in c.variants], rows, cols, sizes, width)

    def grid(self, values: Sequence[float], fill: float = 0.0) -> FloatArray:
        """Scatter one value per variant into a padded float grid."""
        out = np.full((len(self.sizes), self.width), fill, dtype=np.float64)
        out[self.rows, self.cols] = values
        return out

    def active(self) -> BoolArray:
        out = np.zeros((len(self.sizes), self.width), dtype=np.bool_)
        out[self.rows, self.cols] = [v.active for v in self.variants]
        return out


_MIN_PSEUDO_COUNT = 1e-300
"""The least pseudo-count of a prior: no evidence at all, but a shape whose log-space draws stay
finite (``log(u) / a`` overflows below about 1e-306)."""


def pack(layout: Layout, objective: Objective, settings: AllocationSettings) -> PackedPosteriors:
    """Turn evidence objects into padded posterior arrays (one pass over the variants)."""
    variants, column = layout.variants, layout.grid
    imps = column([float(v.impressions) for v in variants])
    clicks = column([float(v.clicks) for v in variants])
    spend = column([float(v.spend_minor) for v in variants])
    convs = column([float(v.conversions) for v in variants])
    revenue = column([float(v.revenue_minor) for v in variants])
    prior_rate = column([v.prior.rate if v.prior else np.nan for v in variants], np.nan)
    prior_n = column([v.prior.strength if v.prior else np.nan for v in variants], np.nan)
    active = layout.active()

    m = settings.default_prior_strength
    pooled_ctr = (clicks.sum(1) + settings.default_ctr * m) / (imps.sum(1) + m)
    m_clicks = m * settings.default_ctr
    pooled_cvr = (convs.sum(1) + settings.default_cvr * m_clicks) / (clicks.sum(1) + m_clicks)
    default_spend = m * settings.default_cpm_minor / 1000.0
    pooled_price = (imps.sum(1) + m) / (spend.sum(1) + default_spend)  # impressions per minor

    has_prior = ~np.isnan(prior_rate)
    n0 = np.where(has_prior, np.minimum(prior_n, settings.max_prior_impressions), m)
    n0 = np.maximum(n0, _MIN_PSEUDO_COUNT)
    rate0 = np.where(has_prior, prior_rate, pooled_ctr[:, None])
    # A prior too weak to register (a strength or rate·n0 underflowing to a denormal or 0, e.g.
    # a strength of 5e-324) would leave a shape parameter that makes draws, means and intervals
    # NaN or infinite: each is floored at a pseudo-count that is no evidence at all.
    alpha0 = np.maximum(rate0 * n0, _MIN_PSEUDO_COUNT)
    ctr_a = alpha0 + clicks
    ctr_b = np.maximum((1.0 - rate0) * n0, _MIN_PSEUDO_COUNT) + (imps - clicks)

    ones = np.ones_like(ctr_a)
    if objective is Objective.CTR:
        a, b, scale = ctr_a, ctr_b, ones
    else:
        rate = n0 / pooled_price[:, None] + spend
        if objective is Objective.CLICKS_PER_DOLLAR:
            a = ctr_a
        else:
            a = np.maximum(pooled_cvr[:, None] * alpha0, _MIN_PSEUDO_COUNT) + convs
        scale = ones * float(10**settings.currency_exponent)
        if objective is Objective.REVENUE_PER_DOLLAR:
            # Revenue per minor unit spent is unit-free: it *is* revenue per dollar (ROAS).
            total_conv = convs.sum(1)
            pooled_aov = np.where(
                total_conv > 0, revenue.sum(1) / np.maximum(total_conv, 1e-300), 1.0
            )[:, None]
            k = settings.aov_prior_conversions
            denom = convs + k
            scale = np.where(
                denom > 0, (revenue + pooled_aov * k) / np.where(denom > 0, denom, 1.0), pooled_aov
            )
        b = rate

    # Padding and paused variants: harmless parameters, never drawn as best.
    a = np.where(active, a, 1.0)
    b = np.where(active, b, 1.0)
    scale = np.where(active, scale, _NEVER_BEST)
    return PackedPosteriors(
        kind=objective_kind(objective),
        a=a,
        b=b,
        scale=scale,
        active=active,
        ctr_a=np.where(active, ctr_a, 1.0),
        ctr_b=np.where(active, ctr_b, 1.0),
    )


_SMALL_SHAPE = 0.5  # below this float32 Gamma draws can underflow to 0 and tie: use logs
Sampler = Callable[[int, np.random.Generator], NDArray[np.floating]]


def _log_gamma(a: FloatArray, size: tuple[int, ...], rng: np.random.Generator) -> FloatArray:
    """log of Gamma(a) draws without underflow: Gamma(a) = Gamma(a + 1) · U^(1/a) for small a."""
    small = a < _SMALL_SHAPE
    out = np.log(rng.standard_gamma(np.where(small, a + 1.0, a), size=size))
    out += np.where(small, np.log(rng.random(size=size)) / a, 0.0)
    return out


def _tiny_rows(post: PackedPosteriors) -> BoolArray:
    """Campaigns whose draws need the log path (any shape parameter below ``_SMALL_SHAPE``)."""
    tiny = post.a < _SMALL_SHAPE
    if post.kind == "beta":
        tiny |= post.b < _SMALL_SHAPE
    return np.asarray((tiny & post.active).any(axis=1))


def _sampler(post: PackedPosteriors, rows: IntArray, tiny: bool) -> Sampler:
    """A function drawing (n, len(rows), V) objective draws, or their logarithms (a monotone
    transform, all the argmax needs); inactive cells never win.

    The usual path draws float32 Gammas: twice as fast through memory, and its 1e-7 relative
    precision is far below any posterior's spread. Campaigns with tiny shape parameters take an
    exact float64 log path instead.
    """
    a, b, scale = post.a[rows], post.b[rows], post.scale[rows]
    inactive = ~post.active[rows]
    mask = inactive[None, :, :] if inactive.any() else None
    f32 = np.float32

    def masked(draws: NDArray[np.floating]) -> NDArray[np.floating]:
        if mask is not None:
            np.copyto(draws, -np.inf, where=mask)
        return draws

    if post.kind == "gamma" and not tiny:
        a32, factor = a.astype(f32), (scale / b).astype(f32)  # negative factor on inactive

        def gamma(n: int, rng: np.random.Generator) -> NDArray[np.floating]:
            draws = rng.standard_gamma(a32, size=(n, *a.shape), dtype=f32)
            draws *= factor
            return draws

        return gamma
    if post.kind == "gamma":
        log_factor = np.log(np.where(inactive, 1.0, scale / b))

        def log_gamma(n: int, rng: np.random.Generator) -> NDArray[np.floating]:
            return masked(_log_gamma(a, (n, *a.shape), rng) + log_factor)

        return log_gamma
    if not tiny:
        a32, b32 = a.astype(f32), b.astype(f32)

        def beta(n: int, rng: np.random.Generator) -> NDArray[np.floating]:
            g1 = rng.standard_gamma(a32, size=(n, *a.shape), dtype=f32)
            g2 = rng.standard_gamma(b32, size=(n, *a.shape), dtype=f32)
            np.add(g1, g2, out=g2)
            np.divide(g1, g2, out=g1)  # Beta(a, b) = G(a) / (G(a) + G(b))
            return masked(g1)

        return beta

    def log_beta(n: int, rng: np.random.Generator) -> NDArray[np.floating]:
        log_g1 = _log_gamma(a, (n, *a.shape), rng)
        return masked(log_g1 - np.logaddexp(log_g1, _log_gamma(b, (n, *a.shape), rng)))

    return log_beta


def win_counts(
    post: PackedPosteriors, n_draws: int, rng: np.random.Generator, chunk_elements: int
) -> IntArray:
    """How often each variant has the best objective draw, per campaign: (C, V) counts.

    Vectorised Monte Carlo over all campaigns at once; the Python loop runs over chunks of
    ``chunk_elements`` draws (memory bound), never over campaigns or variants.
    """
    n_c, width = post.a.shape
    counts = np.zeros((n_c, width), dtype=np.int64)
    block = max(1, chunk_elements // width)
    tiny_rows = _tiny_rows(post)
    for tiny in (False, True):
        group = np.flatnonzero(tiny_rows == tiny)
        for start in range(0, len(group), block):
            rows = group[start : start + block]
            cells = len(rows) * width
            offsets = np.arange(len(rows), dtype=np.int64) * width
            per_chunk = max(1, chunk_elements // cells)
            draw = _sampler(post, rows, tiny)
            block_counts = np.zeros(cells, dtype=np.int64)
            done = 0
            while done < n_draws:
                n = min(per_chunk, n_draws - done)
                best = draw(n, rng).argmax(axis=2)
                best += offsets
                block_counts += np.bincount(best.ravel(), minlength=cells)
                done += n
            counts[rows] = block_counts.reshape(len(rows), width)
    return counts


def probability_best(
    post: PackedPosteriors, n_draws: int, rng: np.random.Generator, chunk_elements: int
) -> FloatArray:
    """Monte Carlo P(best) per variant, (C, V); rows sum to 1, zero on inactive cells."""
    wins = win_counts(post, n_draws, rng, chunk_elements)
    return np.where(post.active, wins / float(n_draws), 0.0)
