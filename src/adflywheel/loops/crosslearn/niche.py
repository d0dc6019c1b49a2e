"""Niche detection: which vertical an account is in, from its declared category and ad text.

A transparent model: TF-IDF (scikit-learn) fitted on the taxonomy's niche descriptions, one
centroid per niche, cosine similarity of the account's text to each centroid. A declared
category that the taxonomy lists for a niche counts as strong evidence; any other category is
read as text. Confidence is the softmax of the scores (temperature ``TEMPERATURE``), so it is
high only when one niche clearly beats the runner-up; the margin is reported beside it. The
detector is re-run whenever the account's creatives change (the service stores when).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from adflywheel.loops.crosslearn.taxonomy import TAXONOMY, NicheSpec, words

TEMPERATURE = 0.05
CATEGORY_WEIGHT = 0.3  # share of the score from the declared category, when there is one
# (0.4 before the taxonomy grew: longer niche documents give lower text similarities, so the
# category weight fell with them for clear text to still outweigh a declared category)
MIN_SCORE = 0.02  # below this best score there is no niche signal at all
MAX_TEXT_CHARS = 200_000


@dataclass(frozen=True, slots=True)
class NicheDetection:
    niche: str | None  # None: no signal (no category, no known words)
    confidence: float  # softmax probability of the top niche, in [0, 1]
    margin: float  # best score minus the runner-up's
    scores: dict[str, float]  # every niche's combined score, best first
    category_match: str | None  # the niche the declared category names exactly, if any
    n_texts: int

    def as_dict(self) -> dict[str, object]:
        return {
            "niche": self.niche,
            "confidence": self.confidence,
            "margin": self.margin,
            "scores": self.scores,
            "category_match": self.category_match,
            "n_texts": self.n_texts,
        }


# Calls to action and sales words any vertical uses: no niche signal in them.
GENERIC_WORDS = frozenset(
    words(
        "shop buy order book click tap learn more now today tonight free new sale offer deal deals "
        "limited time miss don discount save off get try start join find best week month year "
        "online link"
    )
)
_ENGLISH = TfidfVectorizer(stop_words="english").build_analyzer()


def _fold(token: str) -> str:
    """A light plural fold (``boots`` → ``boot``, not ``dress``), the same for text and taxonomy."""
    if len(token) > 3 and token.endswith("s") and not token.endswith(("ss", "us", "is")):
        return token[:-1]
    return token


def analyze(text: str) -> list[str]:
    """Lower-cased English words without stop words or generic sales words, plurals folded."""
    return [_fold(t) for t in _ENGLISH(text) if t not in GENERIC_WORDS]


class NicheDetector:
    """TF-IDF + nearest centroid over a niche taxonomy (the default: ``TAXONOMY``)."""

    def __init__(self, taxonomy: Sequence[NicheSpec] = TAXONOMY) -> None:
        if not taxonomy:
            raise ValueError("the taxonomy is empty")
        self.keys = tuple(spec.key for spec in taxonomy)
        self._vectorizer = TfidfVectorizer(analyzer=analyze, sublinear_tf=True)
        self._centroids = self._vectorizer.fit_transform([s.document() for s in taxonomy])
        self._categories = {
            c.strip().lower(): spec.key for spec in taxonomy for c in spec.categories
        }

    def _similarity(self, text: str) -> np.ndarray:
        vector = self._vectorizer.transform([text])
        return np.asarray((self._centroids @ vector.T).toarray()).reshape(-1)

    def detect(self, category: str | None, texts: Sequence[str]) -> NicheDetection:
        """The niche of an account that declares ``category`` and runs ads with ``texts``."""
        joined = "\n".join(t for t in texts if t)[:MAX_TEXT_CHARS]
        text_score = self._similarity(joined) if joined.strip() else np.zeros(len(self.keys))
        declared = (category or "").strip()
        match = self._categories.get(declared.lower()) if declared else None
        if declared:
            if match is not None:
                cat_score = np.array([1.0 if k == match else 0.0 for k in self.keys])
            else:
                cat_score = self._similarity(declared)
            score = (1.0 - CATEGORY_WEIGHT) * text_score + CATEGORY_WEIGHT * cat_score
            if not joined.strip():
                score = cat_score
        else:
            score = text_score
        order = np.argsort(-score, kind="stable")
        best = float(score[order[0]])
        second = float(score[order[1]]) if len(order) > 1 else 0.0
        scores = {self.keys[i]: round(float(score[i]), 4) for i in order}
        if best < MIN_SCORE:
            return NicheDetection(None, 0.0, 0.0, scores, match, len(texts))
        logits = (score - best) / TEMPERATURE
        probs = np.exp(logits) / np.exp(logits).sum()
        confidence = float(probs[order[0]])
        return NicheDetection(
            niche=self.keys[order[0]],
            confidence=round(confidence if math.isfinite(confidence) else 0.0, 4),
            margin=round(best - second, 4),
            scores=scores,
            category_match=match,
            n_texts=len(texts),
        )


@lru_cache(maxsize=1)
def default_detector() -> NicheDetector:
    """The detector over ``TAXONOMY`` (built once: fitting the vectorizer takes milliseconds)."""
    return NicheDetector()
