"""The creatives page: each ad's thumbnail, genes, CTR and win probability with their intervals,
and "why ads win" (gene effects with intervals), all from loop 4's service.

The account's history is read once per page (three queries: ads, summed actuals grouped in SQL,
stored DNA documents); the win model is fitted once on it and scores every ad shown.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from adflywheel.core.loops import Loop, unavailable
from adflywheel.loops.dna.fingerprint import Dna, dna_from_document
from adflywheel.loops.dna.win import WinModel
from adflywheel.loops.monitor import ctr_interval
from adflywheel.services.dna import service as dna_service
from adflywheel.store import rollups
from adflywheel.store.dna import CreativeDnaRow
from adflywheel.store.memory import WinnerRow
from adflywheel.store.models import (
    ActualRevision,
    Campaign,
    CycleRun,
    HourlyActualRow,
    Variant,
)

PAGE_SIZE = 24
EFFECTS_SHOWN = 12
# The genes a card shows, in order, with how a marketer reads them.
CARD_GENES: tuple[tuple[str, str], ...] = (
    ("hook_type", "Hook"),
    ("aspect_ratio", "Shape"),
    ("duration_s", "Length"),
    ("cuts_per_10s", "Cuts / 10 s"),
    ("early_face", "Face in first 3 s"),
    ("early_text", "Text in first 3 s"),
    ("has_music", "Music"),
)
GENE_LABELS: dict[str, str] = {
    **dict(CARD_GENES),
    "time_to_first_cut_s": "First cut",
    "brightness": "Brightness",
    "contrast": "Contrast",
    "colorfulness": "Colourfulness",
    "motion_energy": "Motion",
    "early_motion": "Motion in first 3 s",
    "face_share": "Time with a face",
    "text_share": "Time with text",
    "speech_share": "Speech",
    "loudness_lufs": "Loudness",
    "time_to_first_sound_s": "First sound",
    "tempo_bpm": "Tempo",
    "onset_rate": "Beats a second",
    "has_audio": "Sound",
}


@dataclass(frozen=True, slots=True)
class Estimate:
    """A value with its 95% interval (fractions)."""

    value: float
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class AdCard:
    ad_id: str
    name: str
    campaign: str
    status: str
    has_video: bool  # the platform says the ad has a video
    thumbnail: bool  # a frame of it is stored (its DNA was extracted from the video)
    dna_source: str | None  # "video", "features" or None (not extracted yet)
    impressions: int
    clicks: int
    ctr: Estimate | None
    win: Estimate | None
    genes: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Effect:
    """One gene level's lift on CTR against the account baseline, shrunk, with its interval."""

    gene: str
    level: str
    label: str
    lift: float
    low: float
    high: float
    n_ads: int
    impressions: int


@dataclass(frozen=True, slots=True)
class CreativesView:
    ads: tuple[AdCard, ...]
    total_ads: int
    page: int
    pages: int
    win_note: str  # what the win probability rests on, or why there is none
    baseline_ctr: float | None
    effects: tuple[Effect, ...]
    video_off: str | None  # why videos cannot be analysed here (the [dna] extra), else None
    memory_winners: int


def gene_text(name: str, value: Any) -> str:
    """A gene's value as a marketer reads it."""
    if value is None:
        return "unknown"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if name == "hook_type":
        return str(value).replace("_", " ")
    if name.endswith("_s") and isinstance(value, int | float):
        return f"{float(value):.1f} s"
    if name in ("face_share", "text_share", "speech_share") and isinstance(value, int | float):
        return f"{float(value):.0%}"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def level_label(gene: str, level: str) -> str:
    """ "Hook: question", "Face in first 3 s: yes", "Length: above 15.0"."""
    name = GENE_LABELS.get(gene, gene.replace("_", " "))
    text = level.replace("_", " ")
    if text in ("1", "True", "true"):
        text = "yes"
    elif text in ("0", "False", "false"):
        text = "no"
    return f"{name}: {text}"


def win_estimate(model: WinModel | None, dna: Dna) -> Estimate | None:
    """The win probability of a creative with its Laplace interval (None without a model)."""
    if model is None:
        return None
    p = model.predict(dna.vector)
    band = model.interval(dna.vector) or (p, p)
    return Estimate(p, band[0], band[1])


def ctr_estimate(clicks: int, impressions: int) -> Estimate | None:
    if impressions <= 0 or not 0 <= clicks <= impressions:
        return None
    low, high = ctr_interval(clicks, impressions)
    return Estimate(clicks / impressions, low, high)


def _win_note(fitted_reason: str, model: WinModel | None) -> str:
    if model is None:
        return fitted_reason or "no win model yet"
    if model.level == "account":
        return (
            f"from {model.n_ads} ads of this account with enough impressions, "
            f"{model.n_winners} of them winners ({model.threshold_rule})"
        )
    return f"from the {model.level} pattern shared across accounts ({model.threshold_rule})"


def effects_of(found: dict[str, Any], limit: int = EFFECTS_SHOWN) -> tuple[Effect, ...]:
    """The CTR effects of ``history_patterns`` as rows for the chart, strongest first."""
    ctr = found.get("ctr") or {}
    rows = []
    for e in (ctr.get("effects") or [])[:limit]:
        rows.append(
            Effect(
                gene=str(e["gene"]),
                level=str(e["level"]),
                label=level_label(str(e["gene"]), str(e["level"])),
                lift=float(e["lift"]),
                low=float(e["lift_low"]),
                high=float(e["lift_high"]),
                n_ads=int(e["n_ads"]),
                impressions=int(e["impressions"]),
            )
        )
    return tuple(rows)


@dataclass(frozen=True, slots=True)
class AdRow:
    """An ad as the page needs it (one row of one query)."""

    variant_id: int
    ad_id: str
    name: str
    status: str
    video_uri: str | None
    primary_text: str
    headline: str
    campaign_id: str
    campaign_name: str


@dataclass(frozen=True, slots=True)
class AccountCreatives:
    """What every creatives view reads once: the ads, their totals, DNA and the win model."""

    ads: list[AdRow]
    totals: dict[int, rollups.Sums]  # all-time, by variant id (every ad, zeros included)
    documents: dict[int, dict[str, Any]]
    dnas: dict[int, Dna]
    history: list[dna_service.AdHistory]
    model: WinModel | None
    win_note: str
    patterns: dict[str, Any]  # ``history_patterns`` (CTR) of the history


# The account's creatives state is costly on a large account (the all-time totals of every ad,
# the win model and the gene patterns: seconds for 1,000 ads), and it only changes when new
# actuals, revisions, DNA, ads or a cycle arrive. So it is kept per account under a fingerprint
# of those (a few indexed aggregates), and for at most CACHE_SECONDS whatever happens.
CACHE_SECONDS = 600.0
CACHE_SIZE = 16
_CACHE: OrderedDict[tuple[Any, ...], tuple[float, AccountCreatives]] = OrderedDict()
_CACHE_LOCK = threading.Lock()


def fingerprint(session: Session, account_id: int) -> tuple[Any, ...]:
    """What the state depends on, in one round trip of indexed aggregates."""
    mine = account_id
    row = session.execute(
        select(
            select(func.max(HourlyActualRow.hour_start))
            .where(HourlyActualRow.account_id == mine)
            .scalar_subquery(),
            select(func.max(ActualRevision.id))
            .where(ActualRevision.account_id == mine)
            .scalar_subquery(),
            select(func.count(CreativeDnaRow.id))
            .where(CreativeDnaRow.account_id == mine)
            .scalar_subquery(),
            select(func.max(CreativeDnaRow.extracted_at))
            .where(CreativeDnaRow.account_id == mine)
            .scalar_subquery(),
            select(func.count(Variant.id)).where(Variant.account_id == mine).scalar_subquery(),
            select(func.max(CycleRun.started_at))
            .where(CycleRun.account_id == mine)
            .scalar_subquery(),
        )
    ).one()
    return (str(session.get_bind().engine.url), account_id, *tuple(row))


def clear_cache() -> None:
    with _CACHE_LOCK:
        _CACHE.clear()


def forget(account_id: int) -> None:
    """Drop the account's cached state (after the console itself changed its DNA)."""
    with _CACHE_LOCK:
        for key in [k for k in _CACHE if k[1] == account_id]:
            del _CACHE[key]


def load(session: Session, account_id: int) -> AccountCreatives:
    """The account's state, from the cache while its fingerprint holds (and for at most
    ``CACHE_SECONDS``), else read afresh (``read``)."""
    key = fingerprint(session, account_id)
    now = time.monotonic()
    with _CACHE_LOCK:
        found = _CACHE.get(key)
        if found is not None and now - found[0] < CACHE_SECONDS:
            _CACHE.move_to_end(key)
            return found[1]
    state = read(session, account_id)
    with _CACHE_LOCK:
        _CACHE[key] = (now, state)
        _CACHE.move_to_end(key)
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    return state


def read(session: Session, account_id: int) -> AccountCreatives:
    """Three queries (ads, actuals summed in SQL, stored DNA), one fit of the win model and
    the gene patterns."""
    rows = session.execute(
        select(
            Variant.id,
            Variant.external_id,
            Variant.name,
            Variant.status,
            Variant.video_uri,
            Variant.primary_text,
            Variant.headline,
            Variant.observed_features,
            Campaign.external_id,
            Campaign.name,
        )
        .join(Campaign, Campaign.id == Variant.campaign_id)
        .where(Variant.account_id == account_id)
    ).all()
    # All-time sums from the running totals (a read of ad × day rows, not of every hour).
    delivered = rollups.variant_sums(session, account_id)
    totals = {r[0]: delivered.get(r[0], rollups.Sums()) for r in rows}
    documents = dna_service.stored_documents(session, account_id)
    kept: dict[int, dict[str, Any]] = {}  # what the cards need of each document
    ads: list[AdRow] = []
    history: list[dna_service.AdHistory] = []
    dnas: dict[int, Dna] = {}
    for r in rows:
        ad = AdRow(r[0], r[1], r[2] or r[1], r[3], r[4], r[5] or "", r[6] or "", r[8], r[9] or r[8])
        ads.append(ad)
        document = documents.pop(ad.variant_id, None)
        if document is not None:
            dna = dna_from_document(document)
            kept[ad.variant_id] = {k: document.get(k) for k in ("source", "thumbnail")}
        else:
            dna = dna_service.features_dna(r[7], ad.primary_text)
        dnas[ad.variant_id] = dna
        t = totals.get(ad.variant_id)
        if t is not None:
            history.append(
                dna_service.AdHistory(
                    ad.variant_id, ad.ad_id, dna, t.impressions, t.clicks, t.link_clicks,
                    t.conversions,
                )
            )  # fmt: skip
    fitted, _ = dna_service.fit_win_model(session, account_id, history)
    found = (
        dna_service.history_patterns(history, limit=EFFECTS_SHOWN, metrics=("ctr",))
        if history
        else {}
    )
    return AccountCreatives(
        ads, totals, kept, dnas, history, fitted.model, _win_note(fitted.reason, fitted.model),
        found,
    )  # fmt: skip


def card(state: AccountCreatives, ad: AdRow) -> AdCard:
    t = state.totals.get(ad.variant_id)
    impressions, clicks = (t.impressions, t.clicks) if t is not None else (0, 0)
    document = state.documents.get(ad.variant_id) or {}
    dna = state.dnas[ad.variant_id]
    return AdCard(
        ad_id=ad.ad_id,
        name=ad.name,
        campaign=ad.campaign_name,
        status=ad.status,
        has_video=bool(ad.video_uri) or document.get("source") == "video",
        thumbnail=bool(document.get("thumbnail")),
        dna_source=document.get("source") if document else None,
        impressions=impressions,
        clicks=clicks,
        ctr=ctr_estimate(clicks, impressions),
        win=win_estimate(state.model, dna),
        genes=tuple(
            (label, gene_text(g, dna.genes[g]))
            for g, label in CARD_GENES
            if dna.genes.get(g) is not None
        ),
    )


def build(
    session: Session, account_id: int, *, page: int = 1, campaign: str | None = None
) -> CreativesView:
    """The page: ads ordered by impressions (then id), ``PAGE_SIZE`` a page."""
    state = load(session, account_id)
    found = state.patterns
    shown = [a for a in state.ads if campaign is None or a.campaign_id == campaign]

    def seen(a: AdRow) -> int:
        t = state.totals.get(a.variant_id)
        return int(t.impressions) if t is not None else 0

    shown.sort(key=lambda a: (-seen(a), a.ad_id))
    pages = max(1, -(-len(shown) // PAGE_SIZE))
    page = min(max(1, page), pages)
    cards = [card(state, a) for a in shown[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]]
    ctr = found.get("ctr") or {}
    winners = session.scalar(
        select(func.count()).select_from(WinnerRow).where(WinnerRow.account_id == account_id)
    )
    return CreativesView(
        ads=tuple(cards),
        total_ads=len(shown),
        page=page,
        pages=pages,
        win_note=state.win_note,
        baseline_ctr=float(ctr["baseline"]) if ctr.get("n_ads") else None,
        effects=effects_of(found),
        video_off=unavailable(Loop.DNA),
        memory_winners=int(winners or 0),
    )
