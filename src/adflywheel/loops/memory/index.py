"""FAISS indexes over unit vectors: exact (``IndexFlatIP``) while small, HNSW past a size.

Why HNSW rather than IVF: it needs no training pass (an index can be rebuilt from the database
in one step, whatever its size) and it adds vectors incrementally; its cost is build time.
Measured recall@10 against exact search (``benchmarks/bench_memory.py``, 1,000,000 synthetic
128-d vectors): 0.9993 at ``ef_search`` 128 on structured vectors, but only 0.155 on isotropic
random ones (no neighbourhood structure), so the exact index is kept up to a configured size
(``approx_min_size``). Both are wrapped in
``IndexIDMap2`` so search returns the database's winner ids. Inner product on unit vectors is
cosine similarity.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import faiss
import numpy as np
from numpy.typing import NDArray


class IndexKind(StrEnum):
    FLAT = "flat"
    HNSW = "hnsw"


@dataclass(frozen=True, slots=True)
class IndexParams:
    approx_min_size: int = 100_000  # from this many vectors on, build HNSW
    hnsw_m: int = 32
    hnsw_ef_construction: int = 64
    hnsw_ef_search: int = 128

    def kind_for(self, count: int) -> IndexKind:
        return IndexKind.HNSW if count >= self.approx_min_size else IndexKind.FLAT


def build(
    ids: NDArray[np.int64], unit_vectors: NDArray[np.float32], params: IndexParams
) -> faiss.Index:
    """An index of ``unit_vectors`` (rows of unit length) under ``ids``."""
    n, dim = unit_vectors.shape
    if len(ids) != n:
        raise ValueError("one id per vector")
    kind = params.kind_for(n)
    if kind is IndexKind.HNSW:
        hnsw = faiss.IndexHNSWFlat(dim, params.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = params.hnsw_ef_construction
        hnsw.hnsw.efSearch = params.hnsw_ef_search
        inner: faiss.Index = hnsw
    else:
        inner = faiss.IndexFlatIP(dim)
    index = faiss.IndexIDMap2(inner)
    if n:
        index.add_with_ids(
            np.ascontiguousarray(unit_vectors, np.float32), np.ascontiguousarray(ids, np.int64)
        )
    return index


def kind_of(index: faiss.Index) -> IndexKind:
    inner = _inner(index)
    return IndexKind.HNSW if isinstance(inner, faiss.IndexHNSW) else IndexKind.FLAT


def set_ef_search(index: faiss.Index, ef_search: int) -> None:
    inner = _inner(index)
    if isinstance(inner, faiss.IndexHNSW):
        inner.hnsw.efSearch = ef_search


def _inner(index: faiss.Index) -> faiss.Index:
    """The index inside the id map (FAISS returns the wrapper after deserialising)."""
    if isinstance(index, faiss.IndexIDMap2 | faiss.IndexIDMap):
        return faiss.downcast_index(index.index)
    return index


def search(
    index: faiss.Index, unit_queries: NDArray[np.float32], k: int
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """Similarities and ids of the ``k`` nearest, best first; ids of −1 (fewer than k stored)
    are dropped by the callers."""
    if k < 1:
        raise ValueError("k must be at least 1")
    k = min(k, max(1, int(index.ntotal)))
    sims, ids = index.search(np.ascontiguousarray(unit_queries, np.float32), k)
    return sims, ids


def to_bytes(index: faiss.Index) -> bytes:
    return bytes(faiss.serialize_index(index).tobytes())


def from_bytes(data: bytes) -> faiss.Index:
    """Raises ``ValueError`` for bytes that are not a whole FAISS index."""
    try:
        return faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
    except RuntimeError as error:
        raise ValueError(f"not a readable FAISS index: {error}") from error


def recall_at_k(approx_ids: NDArray[np.int64], exact_ids: NDArray[np.int64]) -> float:
    """Mean share of the exact top-k found by the approximate top-k."""
    if approx_ids.shape != exact_ids.shape:
        raise ValueError("the two result sets must have the same shape")
    hits = sum(
        len(set(a.tolist()) & set(e.tolist())) for a, e in zip(approx_ids, exact_ids, strict=True)
    )
    return hits / exact_ids.size
