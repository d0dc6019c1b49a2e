"""How genes move true CTR, conversion rate and view rate in the simulated market (synthetic data).

Effects live on the logit scale, in three layers: a global effect per gene, a deviation shared by
every account of a niche (what cross-account learning should find), and a small per-account
deviation. Hook effects are centred (they sum to zero over hook types); numeric effects are per
standard deviation of the gene, and two genes have an inverted-U shape and one pair interacts, so
a tree model has something a linear one misses.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from adflywheel.core.domain import HOOK_TYPES
from adflywheel.sim.market.genes import (
    ASPECTS,
    GENE_COLUMN,
    HOOK_INDEX,
    NUMERIC_GENES,
    FloatArray,
    Genes,
    IntArray,
)

# Global hook effects on logit CTR, before centring.
_HOOK_CTR = {
    "question": 0.14,
    "curiosity_gap": 0.20,
    "bold_claim": 0.05,
    "statistic": -0.02,
    "negative_warning": 0.12,
    "problem_solution": 0.07,
    "testimonial_ugc": 0.15,
    "social_proof": 0.02,
    "before_after": 0.06,
    "offer_urgency": -0.05,
    "how_to_list": 0.0,
    "pattern_interrupt": 0.11,
    "direct_address": -0.04,
}
# Niche-specific hook deviations shared by all accounts of the niche (on top of random ones).
_HOOK_NICHE = {
    "beauty": {"before_after": 0.22, "testimonial_ugc": 0.10, "statistic": -0.10},
    "fitness": {"before_after": 0.18, "pattern_interrupt": 0.08, "how_to_list": 0.06},
    "finance": {"statistic": 0.20, "negative_warning": 0.10, "pattern_interrupt": -0.12},
    "ecommerce_fashion": {"offer_urgency": 0.25, "social_proof": 0.08, "how_to_list": -0.08},
    "saas": {"how_to_list": 0.18, "problem_solution": 0.12, "before_after": -0.12},
    "food": {"offer_urgency": 0.18, "curiosity_gap": 0.06, "negative_warning": -0.10},
}
# Clicks are not sales: clickbait hooks convert worse, offers and proof convert better.
_HOOK_CVR = {
    "curiosity_gap": -0.30,
    "pattern_interrupt": -0.15,
    "bold_claim": -0.05,
    "offer_urgency": 0.30,
    "testimonial_ugc": 0.12,
    "social_proof": 0.12,
    "problem_solution": 0.10,
}
_ASPECT_CTR = {"9:16": 0.08, "1:1": 0.0, "16:9": -0.10}
# Global linear effects per gene sd on logit CTR.
_NUMERIC_CTR = {
    "duration_s": -0.05,
    "cuts_per_10s": 0.03,
    "time_to_first_cut_s": -0.06,
    "brightness": 0.03,
    "colourfulness": 0.04,
    "face_share": 0.04,
    "early_face": 0.06,
    "text_share": -0.02,
    "has_music": 0.03,
    "speech_share": 0.02,
    "loudness_lufs": 0.0,
}
# Inverted U: -curvature * z**2 (too slow or too frantic; too quiet or too loud).
_CURVATURE = {"cuts_per_10s": 0.05, "loudness_lufs": 0.04}
# A face in the first seconds helps a testimonial far more than other hooks.
_FACE_TESTIMONIAL = 0.10

HOOK_NICHE_SD = 0.06
HOOK_ACCOUNT_SD = 0.03
NUMERIC_NICHE_SD = 0.03
NUMERIC_ACCOUNT_SD = 0.01


def _centre(values: FloatArray) -> FloatArray:
    out: FloatArray = values - values.mean(axis=-1, keepdims=True)
    return out


@dataclass(frozen=True, slots=True)
class EffectModel:
    """All gene effects of one market, drawn once from its seed."""

    hook_global: FloatArray  # (H,)
    hook_niche: FloatArray  # (N, H) deviation
    hook_account: FloatArray  # (A, H) deviation
    numeric_global: FloatArray  # (K,)
    numeric_niche: FloatArray  # (N, K)
    numeric_account: FloatArray  # (A, K)
    aspect: FloatArray  # (3,)
    curvature: FloatArray  # (K,)
    hook_cvr: FloatArray  # (H,)
    scale: float
    niches: tuple[str, ...]

    @classmethod
    def draw(
        cls, rng: np.random.Generator, niches: tuple[str, ...], n_accounts: int, scale: float
    ) -> EffectModel:
        n_h, n_k, n_n = len(HOOK_TYPES), len(NUMERIC_GENES), len(niches)
        hook_niche = rng.normal(0.0, HOOK_NICHE_SD, (n_n, n_h))
        for n, name in enumerate(niches):
            for hook, value in _HOOK_NICHE.get(name, {}).items():
                hook_niche[n, HOOK_INDEX[hook]] += value
        return cls(
            hook_global=_centre(np.array([_HOOK_CTR[h] for h in HOOK_TYPES])),
            hook_niche=_centre(hook_niche),
            hook_account=_centre(rng.normal(0.0, HOOK_ACCOUNT_SD, (n_accounts, n_h))),
            numeric_global=np.array([_NUMERIC_CTR[g] for g in NUMERIC_GENES]),
            numeric_niche=rng.normal(0.0, NUMERIC_NICHE_SD, (n_n, n_k)),
            numeric_account=rng.normal(0.0, NUMERIC_ACCOUNT_SD, (n_accounts, n_k)),
            aspect=np.array([_ASPECT_CTR[a] for a in ASPECTS]),
            curvature=np.array([_CURVATURE.get(g, 0.0) for g in NUMERIC_GENES]),
            hook_cvr=_centre(np.array([_HOOK_CVR.get(h, 0.0) for h in HOOK_TYPES])),
            scale=scale,
            niches=niches,
        )

    def ctr_logit(self, genes: Genes, niche_of: IntArray, account_of: IntArray) -> FloatArray:
        """The genes' contribution to each variant's logit CTR."""
        z = genes.standardised()
        hook = (
            self.hook_global[genes.hook]
            + self.hook_niche[niche_of, genes.hook]
            + self.hook_account[account_of, genes.hook]
        )
        slopes = (
            self.numeric_global + self.numeric_niche[niche_of] + self.numeric_account[account_of]
        )
        numeric = (slopes * z).sum(axis=1) - (self.curvature * z**2).sum(axis=1)
        early_face = genes.numeric[:, GENE_COLUMN["early_face"]]
        testimonial = genes.hook == HOOK_INDEX["testimonial_ugc"]
        interaction = _FACE_TESTIMONIAL * (early_face - 0.5) * testimonial
        out: FloatArray = self.scale * (hook + numeric + self.aspect[genes.aspect] + interaction)
        return out

    def shifted(self, top_k: int, factor: float) -> EffectModel:
        """The same market after a concept drift: the ``top_k`` largest global effects (hooks
        and numeric genes together, by absolute size) multiplied by ``factor``; hooks re-centred
        so the average creative's CTR barely moves while the winners change."""
        effects = np.concatenate([self.hook_global, self.numeric_global])
        top = np.argsort(-np.abs(effects), kind="stable")[:top_k]
        scale = np.ones_like(effects)
        scale[top] = factor
        n_h = self.hook_global.shape[0]
        return replace(
            self,
            hook_global=_centre(self.hook_global * scale[:n_h]),
            numeric_global=self.numeric_global * scale[n_h:],
        )

    def cvr_logit(self, genes: Genes) -> FloatArray:
        """The genes' contribution to each variant's logit conversion rate (of link clicks)."""
        out: FloatArray = self.scale * self.hook_cvr[genes.hook]
        return out

    def report(self, niche: str | None = None) -> GeneEffects:
        """The effects as evaluation code reads them: global, or global plus a niche's deviation."""
        hook = self.hook_global.copy()
        numeric = self.numeric_global.copy()
        if niche is not None:
            if niche not in self.niches:
                raise KeyError(f"unknown niche {niche!r}")
            n = self.niches.index(niche)
            hook = hook + self.hook_niche[n]
            numeric = numeric + self.numeric_niche[n]
        s = self.scale
        return GeneEffects(
            niche=niche,
            hook={h: float(s * v) for h, v in zip(HOOK_TYPES, hook, strict=True)},
            aspect={a: float(s * v) for a, v in zip(ASPECTS, self.aspect, strict=True)},
            numeric_per_sd={g: float(s * v) for g, v in zip(NUMERIC_GENES, numeric, strict=True)},
            curvature_per_sd2={
                g: float(s * v) for g, v in zip(NUMERIC_GENES, self.curvature, strict=True) if v
            },
            face_testimonial_interaction=s * _FACE_TESTIMONIAL,
        )


@dataclass(frozen=True, slots=True)
class GeneEffects:
    """Ground-truth gene effects on logit CTR (evaluation only).

    ``hook`` is centred over hook types, so ``exp(hook[h]) - 1`` is roughly the CTR lift of hook
    ``h`` over the average hook. ``numeric_per_sd`` is the linear slope per gene sd (see
    ``genes.GENE_SD``); ``curvature_per_sd2`` the inverted-U term subtracted per squared sd.
    """

    niche: str | None
    hook: dict[str, float]
    aspect: dict[str, float]
    numeric_per_sd: dict[str, float]
    curvature_per_sd2: dict[str, float]
    face_testimonial_interaction: float
