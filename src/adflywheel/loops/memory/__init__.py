"""Loop 1: winner memory, the pure core (scipy, numpy and FAISS in memory; no files, no database).

``qualify``: who is a winner (threshold, evidence, lapsing with hysteresis). ``vectors``: unit
vectors, content hashes, the k-NN CTR estimate and the coarse stats a shared vector carries.
``index``: exact or HNSW FAISS indexes, (de)serialisation and recall.
"""

from .index import IndexKind, IndexParams, build, from_bytes, kind_of, recall_at_k, search, to_bytes
from .qualify import (
    Evaluation,
    WinnerPolicy,
    WinnerSource,
    WinnerStatus,
    evaluate,
    probability_above,
    transition,
)
from .vectors import CoarseStats, KnnCtr, coarse, content_hash, knn_estimate, normalise, query_hash

__all__ = [
    "CoarseStats",
    "Evaluation",
    "IndexKind",
    "IndexParams",
    "KnnCtr",
    "WinnerPolicy",
    "WinnerSource",
    "WinnerStatus",
    "build",
    "coarse",
    "content_hash",
    "evaluate",
    "from_bytes",
    "kind_of",
    "knn_estimate",
    "normalise",
    "probability_above",
    "query_hash",
    "recall_at_k",
    "search",
    "to_bytes",
    "transition",
]
