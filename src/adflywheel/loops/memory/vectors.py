"""Vectors for cosine search, content hashes for staleness, the k-NN CTR estimate, and the
coarse statistics the shared (cross-account) index may carry."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

F32 = NDArray[np.float32]


def normalise(
    vectors: Sequence[Sequence[float]] | Sequence[float] | NDArray[np.floating], dim: int
) -> F32:
    """Rows scaled to unit length (inner product = cosine). Rejects a wrong width, non-finite
    values and zero vectors (no direction, so no similarity) with ``ValueError``."""
    array = np.asarray(vectors, dtype=np.float32)
    if array.ndim == 1:
        array = array.reshape(1, -1)
    if array.ndim != 2 or array.shape[1] != dim:
        raise ValueError(f"vectors must have {dim} values each")
    if not np.isfinite(array).all():
        raise ValueError("vectors must hold finite numbers")
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    if (norms == 0).any():
        raise ValueError("a zero vector has no direction to compare")
    return np.ascontiguousarray(array / norms, dtype=np.float32)


def content_hash(ids: Sequence[int] | NDArray[np.int64], vectors: F32) -> str:
    """SHA-256 over the (id, vector) pairs in id order: equal hashes, equal index content."""
    order = np.argsort(np.asarray(ids, dtype=np.int64), kind="stable")
    digest = hashlib.sha256()
    digest.update(np.asarray(ids, dtype=np.int64)[order].tobytes())
    digest.update(np.ascontiguousarray(vectors[order], dtype=np.float32).tobytes())
    return digest.hexdigest()


def query_hash(vector: F32, k: int) -> str:
    return hashlib.sha256(vector.astype(np.float32).tobytes() + k.to_bytes(4, "big")).hexdigest()


class KnnCtr(NamedTuple):
    """A k-NN CTR estimate: pooled CTR of the nearest winners, weighted by similarity."""

    ctr: float
    n: int  # neighbours with positive similarity that were used
    similarity: float  # their mean cosine similarity


def knn_estimate(
    similarities: Sequence[float], impressions: Sequence[int], clicks: Sequence[int]
) -> KnnCtr | None:
    """Σ wᵢ·clicksᵢ / Σ wᵢ·impressionsᵢ with wᵢ = similarity (only positive similarities count).

    Pooling counts rather than averaging rates lets a neighbour with more evidence weigh more.
    None when no neighbour is similar at all or none has impressions."""
    sims = np.asarray(similarities, dtype=np.float64)
    imps = np.asarray(impressions, dtype=np.float64)
    hits = np.asarray(clicks, dtype=np.float64)
    keep = (sims > 0) & (imps > 0)
    if not keep.any():
        return None
    w = sims[keep]
    ctr = float((w * hits[keep]).sum() / (w * imps[keep]).sum())
    return KnnCtr(ctr, int(keep.sum()), float(w.mean()))


@dataclass(frozen=True, slots=True)
class CoarseStats:
    """What a shared (anonymised) vector carries: CTR to 0.1 percentage point and impressions
    as a power of ten; never an account, variant, text or exact count."""

    ctr: float
    impressions_at_least: int

    def as_dict(self) -> dict[str, float | int]:
        return {"ctr": self.ctr, "impressions_at_least": self.impressions_at_least}


def coarse(clicks: int, impressions: int) -> CoarseStats:
    if impressions <= 0:
        raise ValueError("a winner has impressions")
    bucket = 10 ** math.floor(math.log10(impressions))
    return CoarseStats(round(clicks / impressions, 3), bucket)
