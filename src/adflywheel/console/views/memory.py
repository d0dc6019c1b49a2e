"""The winner memory as a gallery (loop 1): every ad the account kept as a winner, with its frame
when it has one, and "find similar" (the memory service's DNA-similarity search)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session, sessionmaker

from adflywheel.console.views.creatives import Estimate, ctr_estimate
from adflywheel.core.settings import Settings
from adflywheel.loops.dna.fingerprint import DNA_VERSION
from adflywheel.services.memory.service import memory_stats, search_winners
from adflywheel.store.dna import CreativeDnaRow
from adflywheel.store.memory import WinnerRow
from adflywheel.store.models import Variant

PAGE_SIZE = 24
SIMILAR_K = 12


@dataclass(frozen=True, slots=True)
class WinnerTile:
    ad_id: str
    name: str
    text: str
    status: str  # qualified | lapsed
    source: str  # cycle | manual
    ctr: Estimate | None
    impressions: int
    probability: float  # P(true CTR above the account's winner bar), latest evidence
    thumbnail: bool
    similarity: float | None = None


@dataclass(frozen=True, slots=True)
class MemoryView:
    tiles: tuple[WinnerTile, ...]
    total: int
    page: int
    pages: int
    by_status: dict[str, int]
    threshold_ctr: float
    min_probability: float
    index_note: str
    like: str | None  # the ad the tiles are similar to, when "find similar" was asked
    like_note: str


def _thumbnails(session: Session, variant_ids: list[int]) -> set[int]:
    """Which of these ads have a stored frame (their DNA document records one)."""
    if not variant_ids:
        return set()
    rows = session.execute(
        select(CreativeDnaRow.variant_id, CreativeDnaRow.document).where(
            CreativeDnaRow.variant_id.in_(variant_ids), CreativeDnaRow.dna_version == DNA_VERSION
        )
    )
    return {int(v) for v, doc in rows if (doc or {}).get("thumbnail")}


def _index_note(stats: dict[str, object]) -> str:
    index = stats.get("index")
    if not isinstance(index, dict):
        return "no index yet: it is built by the first cycle that finds a winner"
    return f"index v{index['version']}: {index['count']} vectors, file {index['file']}"


def build(
    factory: sessionmaker[Session],
    settings: Settings,
    account_id: int,
    *,
    page: int = 1,
    like: str | None = None,
) -> MemoryView:
    """The gallery page, or with ``like`` (an ad id of the account) the winners most similar to
    it; ``NotFoundError`` for an ad the account does not have."""
    stats = memory_stats(factory, settings, account_id)
    policy = stats["policy"]
    like_note = ""
    with factory() as session:
        if like is not None:
            found = search_winners(factory, settings, account_id, k=SIMILAR_K, ad_id=like)
            results = found["results"]
            ids = [str(r["ad_id"]) for r in results]
            names = dict(
                session.execute(
                    select(Variant.external_id, Variant.id).where(
                        Variant.account_id == account_id, Variant.external_id.in_(ids)
                    )
                ).all()
            )
            thumbs = _thumbnails(session, list(names.values()))
            tiles = tuple(
                WinnerTile(
                    ad_id=str(r["ad_id"]),
                    name=str(r["ad_id"]),
                    text=str(r["text"]),
                    status=str(r["status"]),
                    source=str(r["source"]),
                    ctr=ctr_estimate(int(r["latest"]["clicks"]), int(r["latest"]["impressions"])),
                    impressions=int(r["latest"]["impressions"]),
                    probability=float(r["latest"]["probability_above_threshold"]),
                    thumbnail=names.get(str(r["ad_id"])) in thumbs,
                    similarity=float(r["similarity"]),
                )
                for r in results
            )
            if not tiles:
                like_note = "no winner in memory is similar yet"
            return MemoryView(
                tiles, len(tiles), 1, 1, dict(stats["by_status"]), float(policy["threshold_ctr"]),
                float(policy["min_probability"]), _index_note(stats), like, like_note,
            )  # fmt: skip
        total = int(
            session.scalar(
                select(func.count())
                .select_from(WinnerRow)
                .where(WinnerRow.account_id == account_id)
            )
            or 0
        )
        pages = max(1, -(-total // PAGE_SIZE))
        page = min(max(1, page), pages)
        qualified_first = case((WinnerRow.status == "qualified", 0), else_=1)
        rows = session.execute(
            select(WinnerRow, Variant.external_id, Variant.name)
            .join(Variant, Variant.id == WinnerRow.variant_id)
            .where(WinnerRow.account_id == account_id)
            .order_by(qualified_first, WinnerRow.latest_probability.desc(), WinnerRow.id)
            .offset((page - 1) * PAGE_SIZE)
            .limit(PAGE_SIZE)
        ).all()
        thumbs = _thumbnails(session, [w.variant_id for w, _, _ in rows])
        tiles = tuple(
            WinnerTile(
                ad_id=ext,
                name=name or ext,
                text=w.text,
                status=w.status,
                source=w.source,
                ctr=ctr_estimate(w.latest_clicks, w.latest_impressions),
                impressions=w.latest_impressions,
                probability=w.latest_probability,
                thumbnail=w.variant_id in thumbs,
            )
            for w, ext, name in rows
        )
    return MemoryView(
        tiles, total, page, pages, dict(stats["by_status"]), float(policy["threshold_ctr"]),
        float(policy["min_probability"]), _index_note(stats), None, like_note,
    )  # fmt: skip
