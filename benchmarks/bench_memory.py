"""Benchmark of the winner memory's index (loop 1) at scale, on SYNTHETIC vectors.

1,000,000 synthetic "winners" of 128 dimensions (seeded isotropic Gaussian, normalised: random
directions on the sphere, the hardest case for an approximate index because there is no cluster
structure to exploit; real DNA vectors are one-hot heavy and far more clustered). Through the
production code (``loops.memory.build`` with the service's default parameters, so HNSW past
``memory_approx_min_size``; ``IndexFiles`` for the file):

* build time of the exact (``IndexFlatIP``) and the HNSW index;
* top-10 search latency p50/p99, one query at a time as the API serves them, for exact search
  and for HNSW at several ``ef_search`` values, with recall@10 against exact search;
* write time and size of the index file (atomic write, fsync), and restart time to a usable
  index: read the manifest and the file, verify its SHA-256, deserialise, answer one query.

Run: ``python -m benchmarks.bench_memory [--quick]`` (quick: 100,000 vectors).
"""

from __future__ import annotations

import resource
import tempfile
import time
from dataclasses import replace
from typing import Any

import faiss
import numpy as np

from adflywheel.loops import memory as core
from adflywheel.services.memory.files import IndexFiles

from ._cli import print_figures

DIM = 128
K = 10
SEED = 20261125
EF_VALUES = (32, 64, 128, 256, 512)
THREADS = faiss.omp_get_max_threads()


def _synthetic(n: int, rng: np.random.Generator, batch: int = 200_000) -> np.ndarray:
    out = np.empty((n, DIM), np.float32)
    for start in range(0, n, batch):
        stop = min(n, start + batch)
        out[start:stop] = core.normalise(rng.standard_normal((stop - start, DIM)), DIM)
    return out


def _latencies(index: faiss.Index, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-query seconds (one query per call) and the ids found."""
    times = np.empty(len(queries))
    found = np.empty((len(queries), K), np.int64)
    for i, q in enumerate(queries):
        started = time.perf_counter()
        _, ids = core.search(index, q.reshape(1, -1), K)
        times[i] = time.perf_counter() - started
        found[i] = ids[0]
    return times, found


def _ms(times: np.ndarray) -> dict[str, float]:
    return {
        "p50_ms": round(float(np.percentile(times, 50)) * 1e3, 3),
        "p99_ms": round(float(np.percentile(times, 99)) * 1e3, 3),
    }


def _structured(n: int, rng: np.random.Generator, batch: int = 200_000) -> np.ndarray:
    """Vectors with a 16-dimensional latent structure (a random linear map plus noise),
    closer to how real creatives vary along a few factors."""
    mix = rng.standard_normal((16, DIM))
    out = np.empty((n, DIM), np.float32)
    for start in range(0, n, batch):
        stop = min(n, start + batch)
        latent = rng.standard_normal((stop - start, 16))
        noise = 0.3 * rng.standard_normal((stop - start, DIM))
        out[start:stop] = core.normalise(latent @ mix + noise, DIM)
    return out


def _dataset(
    name: str, n: int, n_queries: int, n_exact_timed: int, params: core.IndexParams
) -> tuple[dict[str, Any], faiss.Index, np.ndarray]:
    rng = np.random.default_rng(SEED)
    make = _synthetic if name == "isotropic" else _structured
    both = make(n + n_queries, rng)
    vectors, queries = both[:n], both[n:]
    ids = np.arange(n, dtype=np.int64)
    out: dict[str, Any] = {}
    started = time.perf_counter()
    exact = core.build(ids, vectors, core.IndexParams(approx_min_size=n + 1))
    out["build_exact_s"] = round(time.perf_counter() - started, 2)
    _, truth = exact.search(queries, K)  # batched ground truth
    faiss.omp_set_num_threads(1)  # one query per call on one thread, as a web worker serves it
    exact_times, exact_found = _latencies(exact, queries[:n_exact_timed])
    faiss.omp_set_num_threads(THREADS)
    assert (exact_found == truth[:n_exact_timed]).all()
    out["exact_search"] = {**_ms(exact_times), "recall_at_10": 1.0, "timed": n_exact_timed}
    del exact
    started = time.perf_counter()
    approx = core.build(ids, vectors, params)
    out["build_hnsw_s"] = round(time.perf_counter() - started, 2)
    assert core.kind_of(approx) is core.IndexKind.HNSW
    del vectors
    faiss.omp_set_num_threads(1)
    sweep = {}
    for ef in EF_VALUES:
        core.index.set_ef_search(approx, ef)
        times, found = _latencies(approx, queries)
        recall = round(core.recall_at_k(found, truth), 4)
        sweep[f"ef_search={ef}"] = {**_ms(times), "recall_at_10": recall}
    faiss.omp_set_num_threads(THREADS)
    out["hnsw_search"] = sweep
    return out, approx, queries


def run(quick: bool = False, n: int | None = None) -> dict[str, Any]:
    n = n or (100_000 if quick else 1_000_000)
    n_queries = 300 if quick else 1_000
    n_exact_timed = 100 if quick else 200
    defaults = core.IndexParams()  # the service's defaults (HNSW from 100,000 vectors)
    params = replace(defaults, approx_min_size=min(defaults.approx_min_size, n))
    out: dict[str, Any] = {
        "data": f"SYNTHETIC: {n:,} seeded unit vectors of {DIM} dimensions per data set",
        "vectors": n,
        "dim": DIM,
        "queries": n_queries,
        "build_threads": THREADS,
        "search_threads": 1,
        "hnsw": {"M": params.hnsw_m, "ef_construction": params.hnsw_ef_construction},
        "hnsw_default_ef_search": params.hnsw_ef_search,
    }
    for name in ("isotropic", "structured"):
        figures, approx, queries = _dataset(name, n, n_queries, n_exact_timed, params)
        out[name] = figures
        if name == "isotropic":
            out["file"] = _file_figures(approx, queries, n, params, repeats=1 if quick else 3)
        del approx
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 0)
    return out


def _file_figures(
    approx: faiss.Index, queries: np.ndarray, n: int, params: core.IndexParams, repeats: int
) -> dict[str, Any]:
    """Write the HNSW index as the service does, then time restarts to a usable index."""
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as folder:
        files = IndexFiles(folder)
        started = time.perf_counter()
        data = core.to_bytes(approx)
        files.write(
            "bench", version=1, content_hash="0" * 64, count=n, dim=DIM, kind="hnsw", data=data
        )
        out["write_s"] = round(time.perf_counter() - started, 2)
        out["size_mb"] = round(len(data) / 1e6, 1)
        del data
        restarts = []
        for _ in range(repeats):
            started = time.perf_counter()
            _, raw, _ = IndexFiles(folder).read("bench")  # manifest, bytes, SHA-256 check
            loaded = core.from_bytes(raw)
            del raw
            core.index.set_ef_search(loaded, params.hnsw_ef_search)
            core.search(loaded, queries[:1], K)
            restarts.append(time.perf_counter() - started)
            del loaded
        out["restart_to_usable_s"] = round(float(np.median(restarts)), 2)
        out["restart_repeats"] = repeats
    return out


if __name__ == "__main__":
    print_figures(run, __doc__, "100,000 vectors instead of 1,000,000")
