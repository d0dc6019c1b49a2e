"""Hidden creative genes of the simulated market's variants (synthetic data).

Each variant gets a hook type, an aspect class and numeric visual/audio genes, drawn vectorised.
The platform never shows these directly: it shows ``observe`` output, the genes as an imperfect
DNA extractor would measure them (numeric noise, occasional hook misclassification).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from adflywheel.core.domain import HOOK_TYPES

HOOK_INDEX: dict[str, int] = {h: i for i, h in enumerate(HOOK_TYPES)}

ASPECTS: tuple[str, ...] = ("9:16", "1:1", "16:9")

# Numeric genes in column order, the (mean, sd) that standardise them, and their valid range.
NUMERIC_GENES: tuple[str, ...] = (
    "duration_s",
    "cuts_per_10s",
    "time_to_first_cut_s",
    "brightness",
    "colourfulness",
    "face_share",
    "early_face",
    "text_share",
    "has_music",
    "speech_share",
    "loudness_lufs",
)
GENE_COLUMN: dict[str, int] = {g: i for i, g in enumerate(NUMERIC_GENES)}
GENE_MEAN = np.array([20.0, 3.0, 2.0, 0.55, 45.0, 0.4, 0.55, 0.25, 0.7, 0.5, -16.0])
GENE_SD = np.array([9.0, 1.8, 1.5, 0.15, 15.0, 0.2, 0.5, 0.15, 0.46, 0.2, 4.0])
GENE_LOW = np.array([5.0, 0.1, 0.1, 0.0, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0, -40.0])
GENE_HIGH = np.array([60.0, 15.0, 15.0, 1.0, 120.0, 1.0, 1.0, 1.0, 1.0, 1.0, -5.0])
BINARY_GENES: tuple[str, ...] = ("early_face", "has_music")

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Genes:
    """Genes of n variants: ``hook`` and ``aspect`` are category indices, ``numeric`` is (n, k)."""

    hook: IntArray
    aspect: IntArray
    numeric: FloatArray

    def standardised(self) -> FloatArray:
        """(x - mean) / sd per numeric gene, the scale on which effects are defined."""
        out: FloatArray = (self.numeric - GENE_MEAN) / GENE_SD
        return out

    def as_dict(self, i: int) -> dict[str, float | str]:
        """Variant ``i``'s genes, named."""
        row: dict[str, float | str] = {
            "hook_type": HOOK_TYPES[int(self.hook[i])],
            "aspect_ratio": ASPECTS[int(self.aspect[i])],
        }
        for name, col in GENE_COLUMN.items():
            row[name] = float(self.numeric[i, col])
        return row


def hook_priors(
    n_niches: int, niche_names: tuple[str, ...], rng: np.random.Generator
) -> FloatArray:
    """Per-niche hook-type frequencies: creative habits differ by vertical (beauty loves
    before/after, SaaS loves how-to): hook choice and niche are confounded, as in real accounts."""
    habits = {
        "beauty": ("before_after", "testimonial_ugc", "question"),
        "fitness": ("before_after", "pattern_interrupt", "direct_address"),
        "finance": ("statistic", "negative_warning", "question"),
        "ecommerce_fashion": ("offer_urgency", "social_proof", "pattern_interrupt"),
        "saas": ("how_to_list", "statistic", "problem_solution"),
        "food": ("offer_urgency", "testimonial_ugc", "curiosity_gap"),
    }
    weights = np.ones((n_niches, len(HOOK_TYPES)))
    for n, name in enumerate(niche_names):
        for hook in habits.get(name, ()):
            weights[n, HOOK_INDEX[hook]] += 1.0
    weights *= rng.gamma(8.0, 1.0 / 8.0, size=weights.shape)
    out: FloatArray = weights / weights.sum(axis=1, keepdims=True)
    return out


def sample_genes(rng: np.random.Generator, niche_of: IntArray, priors: FloatArray) -> Genes:
    """Draw genes for variants whose niches are ``niche_of``; a few genes follow the hook type
    (a testimonial shows a face and talks; a pattern interrupt cuts early)."""
    n = int(niche_of.shape[0])
    cum = np.cumsum(priors[niche_of], axis=1)
    hook = (rng.random(n)[:, None] > cum).sum(axis=1).astype(np.int64)
    hook = np.minimum(hook, len(HOOK_TYPES) - 1)
    aspect = rng.choice(len(ASPECTS), size=n, p=[0.6, 0.25, 0.15]).astype(np.int64)

    is_testimonial = hook == HOOK_INDEX["testimonial_ugc"]
    is_interrupt = hook == HOOK_INDEX["pattern_interrupt"]
    num = np.empty((n, len(NUMERIC_GENES)))
    num[:, 0] = rng.lognormal(np.log(18.0), 0.45, n)
    cuts = rng.gamma(3.0, 1.0, n) * np.where(is_testimonial, 0.5, 1.0)
    num[:, 1] = cuts
    first_cut = rng.exponential(10.0 / np.maximum(cuts, 0.2) / 2.0)
    num[:, 2] = np.where(is_interrupt, first_cut * 0.25, first_cut)
    num[:, 3] = rng.beta(6.0, 5.0, n)
    num[:, 4] = rng.normal(45.0, 15.0, n)
    face = rng.beta(2.0, 3.0, n)
    face = np.where(is_testimonial, 0.5 + 0.5 * face, face)
    num[:, 5] = face
    num[:, 6] = rng.random(n) < 0.15 + 0.8 * face
    num[:, 7] = rng.beta(2.0, 6.0, n)
    num[:, 8] = rng.random(n) < 0.7
    speech = rng.beta(3.0, 3.0, n)
    num[:, 9] = np.where(is_testimonial, 0.5 + 0.5 * speech, speech)
    num[:, 10] = rng.normal(-16.0, 4.0, n)
    num = np.clip(num, GENE_LOW, GENE_HIGH)
    return Genes(hook=hook, aspect=aspect, numeric=num)


def observe(genes: Genes, rng: np.random.Generator, noise: float, misclassify: float) -> Genes:
    """The genes as an extractor measures them: additive noise (``noise`` gene-sds), binary genes
    flipped with probability ``noise / 2``, hook types replaced by a random other type with
    probability ``misclassify``. Aspect ratio is container metadata, so it is exact."""
    n, k = genes.numeric.shape
    num = genes.numeric + rng.normal(0.0, 1.0, (n, k)) * (noise * GENE_SD)
    for name in BINARY_GENES:
        col = GENE_COLUMN[name]
        flip = rng.random(n) < noise / 2.0
        num[:, col] = np.where(flip, 1.0 - genes.numeric[:, col], genes.numeric[:, col])
    num = np.clip(num, GENE_LOW, GENE_HIGH)
    wrong = rng.random(n) < misclassify
    shift = rng.integers(1, len(HOOK_TYPES), n)
    hook = np.where(wrong, (genes.hook + shift) % len(HOOK_TYPES), genes.hook).astype(np.int64)
    return Genes(hook=hook, aspect=genes.aspect.copy(), numeric=num)
