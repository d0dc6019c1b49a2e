"""One ad's creative page, and a clip scored before launch: its DNA section by section, the win
probability with its interval and per-gene reasons, the compound model's predicted CTR with its
interval, and the most similar past winners.

Predictions are as of the hour (as the API's ``POST /api/ml/predict``), so the compound
service's account-wide state is computed once an hour, not once a page. Every number comes from
the services the API answers with: loop 4 (``dna_service``), loop 5
(``compound_service.predict_variant`` / ``predict_creative``) and loop 1 (``search_winners``).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from adflywheel.console.views.creatives import (
    GENE_LABELS,
    AdCard,
    Estimate,
    card,
    ctr_estimate,
    forget,
    gene_text,
    load,
    win_estimate,
)
from adflywheel.core.clock import floor_hour
from adflywheel.core.errors import AdflywheelError, NotFoundError
from adflywheel.core.settings import Settings
from adflywheel.loops.dna.fingerprint import Dna
from adflywheel.loops.dna.win import WinModel
from adflywheel.services.compound import service as compound_service
from adflywheel.services.dna import service as dna_service
from adflywheel.services.memory.service import search_winners
from adflywheel.store.catalog import variant_by_external

SIMILAR_SHOWN = 6
CONTRIBUTIONS_SHOWN = 8
Pairs = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Predicted:
    """The compound model's CTR for the next 24 hours with its 90% interval, or why it has
    none; ``confidence``: the share of the account's between-ad spread the prediction removes."""

    ctr: Estimate | None
    confidence: float | None
    method: str
    note: str


@dataclass(frozen=True, slots=True)
class Similar:
    ad_id: str
    text: str
    similarity: float
    status: str
    ctr: Estimate | None


@dataclass(frozen=True, slots=True)
class Reason:
    """One gene's push on the win probability (logit units; positive helps)."""

    label: str
    logit: float


@dataclass(frozen=True, slots=True)
class DnaPanel:
    """What the page shows of one creative's DNA and its prospects."""

    genes: Pairs
    hook: Pairs
    visual: Pairs
    audio: Pairs
    missing: tuple[str, ...]
    win: Estimate | None
    win_note: str
    reasons: tuple[Reason, ...]
    predicted: Predicted | None  # None: loaded after the page (``ad_prediction``)
    similar: tuple[Similar, ...]
    similar_note: str


@dataclass(frozen=True, slots=True)
class AdDetailView:
    card: AdCard
    headline: str
    text: str
    thumbnail_at_s: float | None
    panel: DnaPanel


@dataclass(frozen=True, slots=True)
class ScoredClip:
    file_name: str
    thumbnail_src: str  # a data: URI of the frame (nothing is stored for a clip not launched)
    thumbnail_at_s: float
    panel: DnaPanel


def _pairs(section: dict[str, Any], skip: tuple[str, ...] = ()) -> Pairs:
    out = []
    for key, value in section.items():
        if key in skip or isinstance(value, list | dict):
            continue
        label = GENE_LABELS.get(key, key.replace("_", " ").capitalize())
        out.append((label, gene_text(key, value)))
    return tuple(out)


def _reasons(model: WinModel | None, dna: Dna) -> tuple[Reason, ...]:
    if model is None:
        return ()
    return tuple(
        Reason(GENE_LABELS.get(str(c["gene"]), str(c["gene"])), float(c["logit"]))
        for c in model.contributions(dna.vector)[:CONTRIBUTIONS_SHOWN]
    )


def _predicted(answer: dict[str, Any] | None, note: str = "") -> Predicted:
    if answer is None:
        return Predicted(None, None, "none", note)
    low, high = answer["interval"]
    value = float(answer["prediction"])
    return Predicted(
        Estimate(value, float(low), float(high)),
        float(answer["confidence"]) if answer.get("confidence") is not None else None,
        str(answer.get("method", "")),
        f"from {', '.join(answer.get('models_used') or []) or 'no model'}",
    )


def _similar(
    factory: sessionmaker[Session],
    settings: Settings,
    account_id: int,
    *,
    ad_id: str | None = None,
    vector: tuple[float, ...] | None = None,
) -> tuple[tuple[Similar, ...], str]:
    try:
        found = search_winners(
            factory, settings, account_id, k=SIMILAR_SHOWN, ad_id=ad_id, vector=vector
        )
    except AdflywheelError as error:  # a zero vector, an ad gone since the page was read
        return (), str(error)
    out = []
    for r in found["results"]:
        latest = r["latest"]
        out.append(
            Similar(
                ad_id=str(r["ad_id"]),
                text=str(r["text"]),
                similarity=float(r["similarity"]),
                status=str(r["status"]),
                ctr=ctr_estimate(int(latest["clicks"]), int(latest["impressions"])),
            )
        )
    note = "" if out else "no other winner in memory yet: winners are kept as ads qualify"
    return tuple(out), note


def _panel(
    dna: Dna,
    model: WinModel | None,
    win_note: str,
    predicted: Predicted | None,
    similar: tuple[tuple[Similar, ...], str],
) -> DnaPanel:
    return DnaPanel(
        genes=tuple((GENE_LABELS.get(k, k), gene_text(k, v)) for k, v in dna.genes.items()),
        hook=_pairs(dna.hook_dna, ("hook_rules_matched",)),
        visual=_pairs(dna.visual_dna),
        audio=_pairs(dna.audio_dna),
        missing=tuple(GENE_LABELS.get(m, m) for m in dna.missing),
        win=win_estimate(model, dna),
        win_note=win_note,
        reasons=_reasons(model, dna),
        predicted=predicted,
        similar=similar[0],
        similar_note=similar[1],
    )


def ad_detail(
    factory: sessionmaker[Session],
    settings: Settings,
    account_id: int,
    ad_id: str,
) -> AdDetailView:
    """One ad of the account; ``NotFoundError`` for an ad it does not have. Its predicted CTR
    is not here: it costs the compound service's account-wide state on the hour's first look,
    so the page loads it after itself (``ad_prediction``)."""
    with factory() as session:
        state = load(session, account_id)
        ad = next((a for a in state.ads if a.ad_id == ad_id), None)
        if ad is None:
            raise NotFoundError(f"no ad {ad_id!r}")
        dna = state.dnas[ad.variant_id]
    thumb = (state.documents.get(ad.variant_id) or {}).get("thumbnail") or {}
    similar = _similar(factory, settings, account_id, ad_id=ad_id)
    return AdDetailView(
        card=card(state, ad),
        headline=ad.headline,
        text=ad.primary_text,
        thumbnail_at_s=thumb.get("at_s"),
        panel=_panel(dna, state.model, state.win_note, None, similar),
    )


def ad_prediction(session: Session, account_id: int, ad_id: str, now: datetime) -> Predicted:
    """The compound model's CTR for one of the account's ads over the next hours, as of the
    hour; ``NotFoundError`` for an ad it does not have."""
    variant = variant_by_external(session, account_id, ad_id)
    if variant is None:
        raise NotFoundError(f"no ad {ad_id!r}")
    try:
        answer = compound_service.predict_variant(session, account_id, variant.id, floor_hour(now))
    except NotFoundError as error:
        return _predicted(None, str(error))
    return _predicted(answer)


def score_clip(
    factory: sessionmaker[Session],
    settings: Settings,
    account_id: int,
    data: bytes,
    text: str,
    file_name: str,
    now: datetime,
) -> ScoredClip:
    """A clip not launched yet: its DNA and frame (``dna_service.extract_video``; its errors
    propagate with their kinds: 415 not a video, 422 unreadable, 503 no video stack), then the
    same scoring as an ad's. Nothing is stored."""
    extracted = dna_service.extract_video(data, text)
    dna = extracted.dna
    with factory() as session:
        state = load(session, account_id)
        try:
            answer = compound_service.predict_creative(session, account_id, dna, floor_hour(now))
            predicted = _predicted(answer)
        except NotFoundError as error:
            predicted = _predicted(None, str(error))
    similar = _similar(factory, settings, account_id, vector=dna.vector)
    src = "data:image/jpeg;base64," + base64.b64encode(extracted.thumbnail.jpeg).decode("ascii")
    return ScoredClip(
        file_name=file_name,
        thumbnail_src=src,
        thumbnail_at_s=extracted.thumbnail.at_s,
        panel=_panel(dna, state.model, state.win_note, predicted, similar),
    )


def store_ad_video(
    factory: sessionmaker[Session],
    settings: Settings,
    account_id: int,
    ad_id: str,
    data: bytes,
    now: datetime,
) -> float:
    """Extract one of the account's ads' DNA from its video and store it with its frame (what
    ``POST /api/ml/variants/{ad_id}/dna`` does with a video); the ad's primary text is the text.
    Returns the frame's time in the clip. ``NotFoundError`` for an ad the account does not have;
    the extractor's errors propagate with their kinds (415, 422, 503)."""
    with factory() as session:
        variant = variant_by_external(session, account_id, ad_id)
        if variant is None:
            raise NotFoundError(f"no ad {ad_id!r}")
        text = variant.primary_text
    extracted = dna_service.extract_video(data, text)
    with factory() as session, session.begin():
        variant = variant_by_external(session, account_id, ad_id)
        if variant is None:
            raise NotFoundError(f"no ad {ad_id!r}")
        dna_service.store_dna(
            session, account_id, variant, extracted.dna, "video", now,
            thumbnail=extracted.thumbnail, artifacts_url=settings.resolved_artifacts_url,
        )  # fmt: skip
    forget(account_id)
    return extracted.thumbnail.at_s
