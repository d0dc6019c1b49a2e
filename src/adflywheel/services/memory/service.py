"""Winner memory (loop 1), the service: qualify winners from the store's actuals, keep them for
good, search them by DNA similarity, and offer a k-NN CTR estimate (``knn_ctr``, which the
compound learner's ensemble does not include).

Every winner lives in ``memory_winners`` (the source of truth); the FAISS index of an account is
derived from those rows (``memory_index``). Writes happen in one transaction with the manifest
bump; the index file is then brought up to date, and the Redis look-ups of the account dropped.
Nothing here ever reads or returns another account's winners: every query is scoped by the
caller's account id, and the shared index (``sync_shared_index``) holds only unit vectors and
coarse stats in an order unrelated to accounts.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from adflywheel.core.errors import InvalidInputError, NotFoundError
from adflywheel.core.settings import Settings
from adflywheel.loops import memory as core
from adflywheel.loops.dna.fingerprint import DNA_VERSION, VECTOR_LENGTH
from adflywheel.services.dna.service import variant_dna
from adflywheel.services.memory.files import IndexFileError, IndexFiles
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
from adflywheel.services.memory.shared import search_shared, sync_shared_index
from adflywheel.store.catalog import variant_by_external
from adflywheel.store.dna import CreativeDnaRow
from adflywheel.store.engine import transaction
from adflywheel.store.memory import (
    MemoryPolicyRow,
    WinnerEvent,
    WinnerRow,
    account_scope,
    manifest,
    winners_by_id,
    winners_of,
)
from adflywheel.store.models import Variant
from adflywheel.store.queries import variant_totals

__all__ = [
    "MAX_K",
    "index_winner",
    "knn_ctr",
    "memory_stats",
    "policy_for",
    "qualify_and_index",
    "search_shared",
    "search_winners",
    "set_policy",
    "sync_shared_index",
]


def policy_for(session: Session, settings: Settings, account_id: int) -> core.WinnerPolicy:
    """The account's own bar if it set one, else the service defaults."""
    row = session.get(MemoryPolicyRow, account_id)
    if row is not None:
        return core.WinnerPolicy(
            row.threshold_ctr, int(row.min_impressions), row.min_probability, row.lapse_probability
        )
    return core.WinnerPolicy(
        settings.memory_winner_ctr,
        settings.memory_min_impressions,
        settings.memory_min_probability,
        min(settings.memory_lapse_probability, settings.memory_min_probability),
    )


def set_policy(session: Session, account_id: int, policy: core.WinnerPolicy, now: datetime) -> None:
    row = session.get(MemoryPolicyRow, account_id) or MemoryPolicyRow(account_id=account_id)
    row.threshold_ctr = policy.threshold_ctr
    row.min_impressions = policy.min_impressions
    row.min_probability = policy.min_probability
    row.lapse_probability = policy.lapse_probability
    row.updated_at = now
    session.add(row)
    session.flush()


def account_content(account_id: int) -> ContentLoader:
    """The loader of an account's index content: its winners of the current DNA version."""

    def load(session: Session) -> Content:
        rows = [r for r in winners_of(session, account_id) if indexable(r)]
        if not rows:
            return Content.empty()
        ids = np.asarray([r.id for r in rows], np.int64)
        return Content(ids, core.normalise([r.vector for r in rows], VECTOR_LENGTH))

    return load


def qualify_and_index(
    factory: sessionmaker[Session],
    settings: Settings,
    account_id: int,
    as_of: datetime,
    redis: redis.Redis | None = None,
) -> dict[str, Any]:
    """The cycle step "index new winners": evaluate every variant on its actuals before
    ``as_of``, add new winners, lapse or re-qualify old ones, refresh their DNA vectors, then
    bring the account's index up to date. Returns the counts."""
    counts = {"evaluated": 0, "qualified": 0, "requalified": 0, "lapsed": 0, "vectors_updated": 0}
    scope = account_scope(account_id)
    with transaction(factory) as session:
        policy = policy_for(session, settings, account_id)
        winners = {w.variant_id: w for w in winners_of(session, account_id)}
        current = _current_vectors(session, account_id)
        variants = {
            v.id: v
            for v in session.scalars(select(Variant).where(Variant.account_id == account_id))
        }
        for totals in variant_totals(session, account_id, until=as_of):
            counts["evaluated"] += 1
            ev = core.evaluate(totals.clicks, totals.impressions, policy)
            winner = winners.get(totals.variant_id)
            if winner is None:
                if core.transition(None, None, ev) is not None:
                    variant = variants[totals.variant_id]
                    _add_winner(session, account_id, variant, ev, policy, "cycle", as_of, "cycle")
                    counts["qualified"] += 1
                continue
            step = core.transition(
                core.WinnerStatus(winner.status), core.WinnerSource(winner.source), ev
            )
            _update_latest(winner, ev, as_of)
            if step is not None:
                winner.status, winner.status_changed_at = step[0].value, as_of
                _event(session, winner, step[1], ev, "cycle", as_of)
                counts[step[1]] += 1
            vector = current.get(winner.variant_id)
            if vector is not None and (
                vector != winner.vector or winner.dna_version != DNA_VERSION
            ):
                winner.vector, winner.dna_version = vector, DNA_VERSION
                counts["vectors_updated"] += 1
        content = account_content(account_id)(session)
        row, changed = refresh_manifest(session, scope, account_id, content, as_of)
        version = row.version
    return {
        **counts,
        "winners": len(winners) + counts["qualified"],
        "policy": _policy_dict(policy),
        **_after_change(factory, settings, scope, account_id, changed, redis, as_of),
        "index_version": version,
    }


def _after_change(
    factory: sessionmaker[Session],
    settings: Settings,
    scope: str,
    account_id: int,
    changed: bool,
    client: redis.Redis | None,
    now: datetime,
) -> dict[str, Any]:
    """Drop the scope's cached look-ups (on change) and make sure its index file is current."""
    dropped = invalidate(client, scope) if changed else 0
    with transaction(factory) as session:
        loaded = ensure_index(session, settings, scope, account_content(account_id), now)
    return {
        "index_changed": changed,
        "index_origin": loaded.origin if loaded else "empty",
        "cache_keys_dropped": dropped,
    }


def _current_vectors(session: Session, account_id: int) -> dict[int, list[float]]:
    rows = session.execute(
        select(CreativeDnaRow.variant_id, CreativeDnaRow.vector).where(
            CreativeDnaRow.account_id == account_id, CreativeDnaRow.dna_version == DNA_VERSION
        )
    )
    return {vid: [float(x) for x in vec] for vid, vec in rows}


def _add_winner(
    session: Session,
    account_id: int,
    variant: Variant,
    ev: core.Evaluation,
    policy: core.WinnerPolicy,
    source: str,
    now: datetime,
    actor: str,
) -> WinnerRow:
    dna = variant_dna(session, variant)
    text = "\n".join(t for t in (variant.headline, variant.primary_text) if t)
    row = WinnerRow(
        account_id=account_id,
        variant_id=variant.id,
        dna_version=dna.dna_version,
        vector=list(dna.vector),
        text=text,
        source=source,
        status=core.WinnerStatus.QUALIFIED.value,
        threshold_ctr=policy.threshold_ctr,
        qualified_impressions=ev.impressions,
        qualified_clicks=ev.clicks,
        qualified_probability=ev.probability_above,
        qualified_at=now,
        status_changed_at=now,
    )
    _update_latest(row, ev, now)
    session.add(row)
    session.flush()
    _event(session, row, "qualified" if source == "cycle" else "indexed_by_hand", ev, actor, now)
    return row


def _update_latest(row: WinnerRow, ev: core.Evaluation, now: datetime) -> None:
    row.latest_impressions, row.latest_clicks = ev.impressions, ev.clicks
    row.latest_probability, row.evaluated_at = ev.probability_above, now


def _event(
    session: Session, row: WinnerRow, name: str, ev: core.Evaluation, actor: str, now: datetime
) -> None:
    session.add(
        WinnerEvent(
            winner_id=row.id,
            account_id=row.account_id,
            event=name,
            impressions=ev.impressions,
            clicks=ev.clicks,
            probability=ev.probability_above,
            actor=actor,
            at=now,
        )
    )


def index_winner(
    factory: sessionmaker[Session],
    settings: Settings,
    account_id: int,
    ad_id: str,
    now: datetime,
    *,
    actor: str = "api",
    redis: redis.Redis | None = None,
) -> dict[str, Any]:
    """Add an ad of the account to memory by hand (or re-qualify it); ``NotFoundError`` when the
    account has no such ad. Hand-added winners are not lapsed by the cycle."""
    scope = account_scope(account_id)
    with transaction(factory) as session:
        variant = variant_by_external(session, account_id, ad_id)
        if variant is None:
            raise NotFoundError(f"no ad {ad_id!r}")
        policy = policy_for(session, settings, account_id)
        totals = [t for t in variant_totals(session, account_id) if t.variant_id == variant.id]
        ev = core.evaluate(totals[0].clicks, totals[0].impressions, policy)
        row = session.scalar(select(WinnerRow).where(WinnerRow.variant_id == variant.id))
        created = row is None
        if row is None:
            row = _add_winner(session, account_id, variant, ev, policy, "manual", now, actor)
        else:
            dna = variant_dna(session, variant)
            row.vector, row.dna_version = list(dna.vector), dna.dna_version
            row.source = core.WinnerSource.MANUAL.value
            if row.status != core.WinnerStatus.QUALIFIED.value:
                row.status, row.status_changed_at = core.WinnerStatus.QUALIFIED.value, now
            _update_latest(row, ev, now)
            _event(session, row, "indexed_by_hand", ev, actor, now)
        content = account_content(account_id)(session)
        manifest_row, changed = refresh_manifest(session, scope, account_id, content, now)
        result = {"created": created, "winner": _winner_dict(row, ad_id, None)}
        version = manifest_row.version
    after = _after_change(factory, settings, scope, account_id, changed, redis, now)
    return {**result, **after, "index_version": version}


def search_winners(
    factory: sessionmaker[Session],
    settings: Settings,
    account_id: int,
    *,
    k: int = 10,
    vector: Sequence[float] | None = None,
    ad_id: str | None = None,
    redis: redis.Redis | None = None,
) -> dict[str, Any]:
    """The ``k`` past winners of the account most similar (cosine over DNA vectors) to a raw
    DNA vector or to one of the account's ads (``ad_id``, itself excluded). ``NotFoundError``
    for an unknown ad, ``InvalidInputError`` for a bad vector or k."""
    if not 1 <= k <= MAX_K:
        raise InvalidInputError(f"k must be between 1 and {MAX_K}")
    if (vector is None) == (ad_id is None):
        raise InvalidInputError("give exactly one of a vector or an ad id")
    with transaction(factory) as session:
        exclude = None
        if ad_id is not None:
            variant = variant_by_external(session, account_id, ad_id)
            if variant is None:
                raise NotFoundError(f"no ad {ad_id!r}")
            vector, exclude = variant_dna(session, variant).vector, variant.id
        assert vector is not None
        try:
            query = core.normalise(vector, VECTOR_LENGTH)[0]
        except ValueError as error:  # a wrong width, a value not finite, a zero vector
            raise InvalidInputError(str(error)) from error
        scope = account_scope(account_id)
        pairs, origin = search_raw(
            session, settings, scope, account_content(account_id), query, k + 1, client=redis
        )
        rows = winners_by_id(session, account_id, [i for i, _ in pairs])
        ads = _ad_ids(session, [r.variant_id for r in rows.values()])
        results = [
            _winner_dict(rows[i], ads[rows[i].variant_id], sim)
            for i, sim in pairs
            if i in rows and rows[i].variant_id != exclude
        ][:k]
        m = manifest(session, scope)
        index = {"version": m.version, "count": m.count, "kind": m.kind} if m else None
    return {"k": k, "results": results, "index": index, "served_from": origin}


def knn_ctr(
    session: Session,
    settings: Settings,
    account_id: int,
    vector: Sequence[float],
    k: int = 10,
    *,
    redis: redis.Redis | None = None,
) -> core.KnnCtr | None:
    """A k-NN CTR estimate from memory: CTR pooled over the ``k`` most similar winners (latest
    stats), weighted by similarity; None when memory has nothing similar. Winners are selected
    for high CTR, so this estimate is biased upward. The compound learner's ensemble leaves it
    out: no holdout weight has been measured for it."""
    query = core.normalise(vector, VECTOR_LENGTH)[0]
    pairs, _ = search_raw(
        session,
        settings,
        account_scope(account_id),
        account_content(account_id),
        query,
        k,
        client=redis,
    )
    rows = winners_by_id(session, account_id, [i for i, _ in pairs])
    kept = [(rows[i], s) for i, s in pairs if i in rows]
    return core.knn_estimate(
        [s for _, s in kept],
        [r.latest_impressions for r, _ in kept],
        [r.latest_clicks for r, _ in kept],
    )


def memory_stats(
    factory: sessionmaker[Session], settings: Settings, account_id: int
) -> dict[str, Any]:
    """Counts by status and source, the policy, and the index: version, size, kind, and whether
    its file is present and current."""
    scope = account_scope(account_id)
    with factory() as session:
        grouped = session.execute(
            select(WinnerRow.status, WinnerRow.source, func.count())
            .where(WinnerRow.account_id == account_id)
            .group_by(WinnerRow.status, WinnerRow.source)
        ).all()
        m = manifest(session, scope)
        policy = policy_for(session, settings, account_id)
        last = session.scalar(
            select(func.max(WinnerRow.evaluated_at)).where(WinnerRow.account_id == account_id)
        )
    by_status: dict[str, int] = {}
    by_source: dict[str, int] = {}
    for status, source, n in grouped:
        by_status[status] = by_status.get(status, 0) + int(n)
        by_source[source] = by_source.get(source, 0) + int(n)
    index: dict[str, Any] | None = None
    if m is not None:
        index = {"version": m.version, "count": m.count, "dim": m.dim, "kind": m.kind}
        index["content_hash"] = m.content_hash
        index["built_at"] = m.built_at.isoformat() if m.built_at else None
        index["file"] = _file_state(settings, scope, m.version, m.content_hash)
    return {
        "winners": sum(by_status.values()),
        "by_status": by_status,
        "by_source": by_source,
        "policy": _policy_dict(policy),
        "last_evaluated_at": last.isoformat() if last else None,
        "index": index,
    }


def _file_state(settings: Settings, scope: str, version: int, content_hash: str) -> str:
    try:
        stored = IndexFiles(settings.resolved_artifacts_url).read_manifest(scope)
    except IndexFileError:
        return "missing"
    return (
        "current" if (stored.version, stored.content_hash) == (version, content_hash) else "stale"
    )


def _policy_dict(policy: core.WinnerPolicy) -> dict[str, Any]:
    return {
        "threshold_ctr": policy.threshold_ctr,
        "min_impressions": policy.min_impressions,
        "min_probability": policy.min_probability,
        "lapse_probability": policy.lapse_probability,
    }


def _ad_ids(session: Session, variant_ids: list[int]) -> dict[int, str]:
    if not variant_ids:
        return {}
    rows = session.execute(
        select(Variant.id, Variant.external_id).where(Variant.id.in_(variant_ids))
    )
    return {vid: ext for vid, ext in rows}


def _winner_dict(row: WinnerRow, ad_id: str, similarity: float | None) -> dict[str, Any]:
    latest_ctr = row.latest_clicks / row.latest_impressions if row.latest_impressions else None
    first_ctr = (
        row.qualified_clicks / row.qualified_impressions if row.qualified_impressions else None
    )
    out: dict[str, Any] = {
        "ad_id": ad_id,
        "status": row.status,
        "source": row.source,
        "text": row.text,
        "threshold_ctr": row.threshold_ctr,
        "latest": {
            "impressions": row.latest_impressions,
            "clicks": row.latest_clicks,
            "ctr": latest_ctr,
            "probability_above_threshold": round(row.latest_probability, 6),
            "evaluated_at": row.evaluated_at.isoformat(),
        },
        "at_qualification": {
            "impressions": row.qualified_impressions,
            "clicks": row.qualified_clicks,
            "ctr": first_ctr,
            "probability_above_threshold": round(row.qualified_probability, 6),
            "at": row.qualified_at.isoformat(),
        },
        "status_changed_at": row.status_changed_at.isoformat(),
    }
    if similarity is not None:
        out = {"similarity": round(similarity, 6), **out}
    return out
