"""The shared, anonymised winner index for cross-account learning (loop 3's cycle step keeps it
current with ``sync_shared_index``; ``search_shared`` queries it).

Opt-in state belongs to the cross-account loop, which passes the opted-in account ids. Entries
are unit vectors with coarse stats only (CTR to 0.1 point, impressions as a power of ten), in an
order given by a hash of the vector; no account id, ad id or text is in the file or the answers.
Nothing is published unless at least ``min_accounts`` distinct accounts have winners in it, and
every rebuild applies the same rule.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import redis
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from adflywheel.core.settings import Settings
from adflywheel.loops import memory as core
from adflywheel.loops.dna.fingerprint import VECTOR_LENGTH
from adflywheel.services.memory.index import (
    MAX_K,
    Content,
    ContentLoader,
    ensure_index,
    indexable,
    invalidate,
    refresh_manifest,
    search_raw,
)
from adflywheel.store.engine import transaction
from adflywheel.store.memory import SHARED_SCOPE, WinnerRow, manifest


def shared_content(account_ids: Sequence[int], min_accounts: int) -> ContentLoader:
    """Qualified winners of the given accounts as unit vectors with coarse stats, ordered by a
    hash of the vector (so position says nothing about which account a vector came from);
    empty unless at least ``min_accounts`` distinct accounts have winners in it."""

    def load(session: Session) -> Content:
        rows = session.scalars(
            select(WinnerRow).where(
                WinnerRow.account_id.in_(list(account_ids)),
                WinnerRow.status == core.WinnerStatus.QUALIFIED.value,
            )
        )
        items = [r for r in rows if indexable(r) and r.latest_impressions > 0]
        if len({r.account_id for r in items}) < min_accounts:
            return Content.empty()
        vectors = core.normalise([r.vector for r in items], VECTOR_LENGTH)
        stats = [core.coarse(r.latest_clicks, r.latest_impressions).as_dict() for r in items]
        order = sorted(
            range(len(items)), key=lambda i: hashlib.sha256(vectors[i].tobytes()).digest()
        )
        extra = json.dumps([stats[i] for i in order]).encode()
        return Content(np.arange(len(items), dtype=np.int64), vectors[order], extra)

    return load


def _shared_loader(session: Session) -> Content:
    """The shared content for the members and k recorded (server-side) by the last sync."""
    row = manifest(session, SHARED_SCOPE)
    meta = (row.meta or {}) if row is not None else {}
    members = [int(a) for a in meta.get("accounts", [])]
    return shared_content(members, int(meta.get("min_accounts", 1)))(session)


def sync_shared_index(
    factory: sessionmaker[Session],
    settings: Settings,
    opted_in_account_ids: Sequence[int],
    *,
    now: datetime,
    min_accounts: int = 5,
    redis: redis.Redis | None = None,
) -> dict[str, Any]:
    """Rebuild the shared index from the opted-in accounts' qualified winners. Nothing is
    published (the index is emptied) unless at least ``min_accounts`` distinct accounts have
    winners in it; a later rebuild (a stale or missing file) applies the same rule. The result
    carries only aggregate counts."""
    if min_accounts < 1:
        raise ValueError("min_accounts must be at least 1")
    ids = sorted({int(a) for a in opted_in_account_ids})
    with transaction(factory) as session:
        content = shared_content(ids, min_accounts)(session)
        row, changed = refresh_manifest(session, SHARED_SCOPE, None, content, now)
        row.meta = {**(row.meta or {}), "accounts": ids, "min_accounts": min_accounts}
        version, count = row.version, row.count
    dropped = invalidate(redis, SHARED_SCOPE) if changed else 0
    with transaction(factory) as session:
        loaded = ensure_index(session, settings, SHARED_SCOPE, _shared_loader, now)
    return {
        "published": count > 0,
        "min_accounts": min_accounts,
        "vectors": count,
        "index_version": version,
        "index_changed": changed,
        "index_origin": loaded.origin if loaded else "empty",
        "cache_keys_dropped": dropped,
    }


def search_shared(
    factory: sessionmaker[Session],
    settings: Settings,
    vector: Sequence[float],
    k: int = 10,
    *,
    redis: redis.Redis | None = None,
) -> list[dict[str, Any]]:
    """The ``k`` most similar shared (anonymised) winners: similarity and coarse stats only.
    If the members' winners changed since the last sync, the index is rebuilt (same k rule)."""
    if not 1 <= k <= MAX_K:
        raise ValueError(f"k must be between 1 and {MAX_K}")
    query = core.normalise(vector, VECTOR_LENGTH)[0]
    with transaction(factory) as session:
        loaded = ensure_index(session, settings, SHARED_SCOPE, _shared_loader)
        if loaded is None or loaded.extra is None:
            return []
        pairs, _ = search_raw(
            session, settings, SHARED_SCOPE, _shared_loader, query, k, client=redis
        )
        loaded = ensure_index(session, settings, SHARED_SCOPE, _shared_loader)
    if loaded is None or loaded.extra is None:
        return []
    stats = json.loads(loaded.extra)
    return [{"similarity": round(s, 6), **stats[i]} for i, s in pairs if i < len(stats)]
