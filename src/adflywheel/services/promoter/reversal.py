"""Growth that no longer earns its keep is given back.

A promotion that grew its campaign's total (``campaign_growth``) stands while its winner keeps
winning. Each run re-tests every variant with the same always-valid test that promoted it (valid
at every look, so checking each hour is no peeking); a variant promoted with growth that the test
no longer calls a winner has its promotion rolled back through the ordinary one-call rollback
(audited, idempotent), bringing the campaign's total back down. In recommend mode or a dry run
the reversal is only reported.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from adflywheel.platforms.base import AdPlatform
from adflywheel.services.promoter.actions import rollback
from adflywheel.services.promoter.funding import GROWTH
from adflywheel.services.promoter.report import PromotionReport
from adflywheel.services.promoter.service import PROMOTE, RAMP, PromotionError
from adflywheel.store.models import BudgetChange


def reverse_faded_growth(
    factory: sessionmaker[Session],
    platform: AdPlatform | None,
    account_id: int,
    report: PromotionReport,
    *,
    now: datetime,
    actor: str,
) -> list[dict[str, Any]]:
    """Roll back the standing growth promotions whose variant is no longer a winner (the first
    of them per ad set: a rollback undoes the later ones with it). Returns what was done."""
    tested = {d.variant_id: d for d in report.decisions}
    with factory() as session:
        standing = _standing_growth(session, account_id)
    out: list[dict[str, Any]] = []
    done_ad_sets: set[int] = set()
    for record_id, ad_set_id, variant in standing:
        decision = tested.get(variant)
        if decision is None or decision.winner or ad_set_id in done_ad_sets:
            continue
        why = f"no longer a winner ({decision.reason.value})"
        if report.dry_run or platform is None:
            out.append({"action_id": record_id, "variant": variant, "mode": "dry_run", "why": why})
            continue
        try:
            undone = rollback(factory, platform, account_id, record_id, now=now, actor=actor)
        except PromotionError as error:
            out.append({"action_id": record_id, "variant": variant, "error": str(error)})
            continue
        done_ad_sets.add(ad_set_id)
        out.append({"action_id": record_id, "variant": variant, "mode": undone["mode"], "why": why})
    return out


def _standing_growth(session: Session, account_id: int) -> list[tuple[int, int, str]]:
    """(record, ad set, variant) of applied growth promotions, oldest first."""
    records = session.scalars(
        select(BudgetChange)
        .where(
            BudgetChange.account_id == account_id,
            BudgetChange.reason.in_((PROMOTE, RAMP)),
            BudgetChange.mode == "applied",
        )
        .order_by(BudgetChange.id)
    ).all()
    return [
        (r.id, r.ad_set_id, str(r.evidence.get("variant_id")))
        for r in records
        if r.evidence.get("funding") == GROWTH
    ]
