"""The index of a scope, kept true to the database: manifests, load-or-rebuild, raw search and
the Redis look-up cache.

``refresh_manifest`` runs inside the transaction that changed the winners and bumps the
scope's version when the content hash of its vectors changed. ``ensure_index`` returns an index
whose content is exactly the manifest's: from this process's cache, else from the file (verified:
SHA-256, version, content hash, count), else rebuilt from the database and written back. Redis
caches (ids, similarities) of a query under the scope, its version and the query's hash; a change
both bumps the version (old keys are never read again) and deletes the scope's keys.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import faiss
import numpy as np
import redis
from numpy.typing import NDArray
from sqlalchemy.orm import Session

from adflywheel.core.settings import Settings
from adflywheel.loops import memory as core
from adflywheel.loops.dna.fingerprint import DNA_VERSION, VECTOR_LENGTH
from adflywheel.services.memory.files import IndexFileError, IndexFiles
from adflywheel.store.memory import IndexManifestRow, WinnerRow, lock_manifest, manifest

log = logging.getLogger(__name__)

CACHE_PREFIX = "adflywheel:memory"
MAX_K = 100
_LOADED_MAX = 32


@dataclass(frozen=True, slots=True)
class Content:
    """What a scope's index must hold: ids, unit vectors, and an optional side document."""

    ids: NDArray[np.int64]
    vectors: NDArray[np.float32]
    extra: bytes | None = None

    @property
    def content_hash(self) -> str:
        base = core.content_hash(self.ids, self.vectors)
        if self.extra is None:
            return base
        return hashlib.sha256(base.encode() + self.extra).hexdigest()

    @classmethod
    def empty(cls) -> Content:
        return cls(np.zeros(0, np.int64), np.zeros((0, VECTOR_LENGTH), np.float32))


@dataclass(frozen=True, slots=True)
class Loaded:
    version: int
    content_hash: str
    index: faiss.Index
    extra: bytes | None
    origin: str  # "cache", "file" or "rebuilt: <why>"


ContentLoader = Callable[[Session], Content]

_lock = threading.Lock()
_loaded: OrderedDict[tuple[str, str], Loaded] = OrderedDict()
_redis_clients: dict[str, redis.Redis] = {}


def indexable(row: WinnerRow) -> bool:
    """A winner whose vector fits the index: current DNA version, full length, not all zeros."""
    return (
        row.dna_version == DNA_VERSION
        and len(row.vector) == VECTOR_LENGTH
        and any(v != 0 for v in row.vector)
    )


def params(settings: Settings) -> core.IndexParams:
    return core.IndexParams(
        approx_min_size=settings.memory_approx_min_size,
        hnsw_ef_search=settings.memory_hnsw_ef_search,
    )


def redis_for(settings: Settings) -> redis.Redis | None:
    """One client per configured URL (connections are pooled inside it); None without Redis."""
    if not settings.redis_url:
        return None
    with _lock:
        client = _redis_clients.get(settings.redis_url)
        if client is None:
            client = redis.Redis.from_url(settings.redis_url, socket_timeout=2.0)
            _redis_clients[settings.redis_url] = client
        return client


def refresh_manifest(
    session: Session, scope: str, account_id: int | None, content: Content, now: datetime
) -> tuple[IndexManifestRow, bool]:
    """Make the scope's manifest describe ``content``; True when the version was bumped."""
    row = lock_manifest(session, scope)
    digest = content.content_hash
    if row is None:
        row = IndexManifestRow(
            scope=scope, account_id=account_id, version=0, content_hash="", dim=VECTOR_LENGTH
        )
        row.meta = {}
        session.add(row)
    changed = row.content_hash != digest
    if changed:
        row.version = (row.version or 0) + 1
        row.content_hash = digest
        row.count = len(content.ids)
        row.dim = VECTOR_LENGTH
        row.kind = None
        row.file_sha256 = None
        row.meta = {"dna_version": DNA_VERSION}
        row.updated_at = now
    session.flush()
    return row, changed


def ensure_index(
    session: Session,
    settings: Settings,
    scope: str,
    load_content: ContentLoader,
    now: datetime | None = None,
) -> Loaded | None:
    """The scope's index, matching its manifest; None when the scope has no manifest yet."""
    row = manifest(session, scope)
    if row is None:
        return None
    key = (settings.resolved_artifacts_url, scope)
    with _lock:
        hit = _loaded.get(key)
        if hit is not None and (hit.version, hit.content_hash) == (row.version, row.content_hash):
            _loaded.move_to_end(key)
            return Loaded(hit.version, hit.content_hash, hit.index, hit.extra, "cache")
    files = IndexFiles(settings.resolved_artifacts_url)
    try:
        loaded = _from_file(files, scope, row)
    except IndexFileError as error:
        loaded = _rebuild(session, settings, files, scope, row, load_content, str(error))
        if now is not None:
            row.built_at = now
    with _lock:
        _loaded[key] = loaded
        _loaded.move_to_end(key)
        while len(_loaded) > _LOADED_MAX:
            _loaded.popitem(last=False)
    return loaded


def forget(settings: Settings, scope: str) -> None:
    """Drop this process's loaded copy (tests simulate a restart with it)."""
    with _lock:
        _loaded.pop((settings.resolved_artifacts_url, scope), None)


def _from_file(files: IndexFiles, scope: str, row: IndexManifestRow) -> Loaded:
    stored, data, extra = files.read(scope)
    if (stored.version, stored.content_hash) != (row.version, row.content_hash):
        raise IndexFileError(
            f"the index file of {scope} is stale (file v{stored.version}, database v{row.version})"
        )
    try:
        index = core.from_bytes(data)
    except ValueError as error:
        raise IndexFileError(str(error)) from error
    if index.ntotal != row.count or index.d != row.dim:
        raise IndexFileError(f"the index file of {scope} holds {index.ntotal}, not {row.count}")
    return Loaded(row.version, row.content_hash, index, extra, "file")


def _rebuild(
    session: Session,
    settings: Settings,
    files: IndexFiles,
    scope: str,
    row: IndexManifestRow,
    load_content: ContentLoader,
    why: str,
) -> Loaded:
    content = load_content(session)
    if content.content_hash != row.content_hash:
        # The database moved on without the manifest (an interrupted writer): trust the rows.
        row, _ = refresh_manifest(session, scope, row.account_id, content, row.updated_at)
    index = core.build(content.ids, content.vectors, params(settings))
    data = core.to_bytes(index)
    stored = files.write(
        scope,
        version=row.version,
        content_hash=row.content_hash,
        count=int(index.ntotal),
        dim=row.dim,
        kind=core.kind_of(index).value,
        data=data,
        extra=content.extra,
    )
    row.kind, row.file_sha256 = stored.kind, stored.sha256
    log.info("rebuilt the %s index v%s from the database: %s", scope, row.version, why)
    return Loaded(row.version, row.content_hash, index, content.extra, f"rebuilt: {why}")


def search_raw(
    session: Session,
    settings: Settings,
    scope: str,
    load_content: ContentLoader,
    query: NDArray[np.float32],
    k: int,
    *,
    client: redis.Redis | None = None,
) -> tuple[list[tuple[int, float]], str]:
    """(id, similarity) pairs best first, and where they came from ("redis", "cache", "file",
    "rebuilt: …", "empty")."""
    row = manifest(session, scope)
    if row is None or row.count == 0:
        return [], "empty"
    key = (
        f"{CACHE_PREFIX}:{scope}:v{row.version}:{row.content_hash[:16]}:{core.query_hash(query, k)}"
    )
    if client is not None:
        try:
            raw = client.get(key)
        except redis.RedisError as error:
            log.warning("redis look-up failed, searching directly: %s", error)
            raw = None
        if isinstance(raw, bytes):
            return [(int(i), float(s)) for i, s in json.loads(raw)], "redis"
    loaded = ensure_index(session, settings, scope, load_content)
    if loaded is None:
        return [], "empty"
    core.index.set_ef_search(loaded.index, settings.memory_hnsw_ef_search)
    sims, ids = core.search(loaded.index, query.reshape(1, -1), k)
    pairs = [(int(i), float(s)) for i, s in zip(ids[0], sims[0], strict=True) if i >= 0]
    if client is not None:
        try:
            client.set(key, json.dumps(pairs), ex=settings.memory_cache_ttl_s)
        except redis.RedisError as error:
            log.warning("redis cache write failed: %s", error)
    return pairs, loaded.origin


def invalidate(client: redis.Redis | None, scope: str) -> int:
    """Delete every cached look-up of the scope; returns how many keys went."""
    if client is None:
        return 0
    try:
        keys = list(client.scan_iter(match=f"{CACHE_PREFIX}:{scope}:*", count=500))
        return int(client.delete(*keys)) if keys else 0
    except redis.RedisError as error:
        log.warning("redis invalidation failed (old keys expire by version anyway): %s", error)
        return 0
