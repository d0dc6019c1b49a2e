"""The pauses' log and their undo: every ad status the service changed or proposed, with its
evidence, and a person's rollback of an applied pause (every automatic action is reversible).

A rollback re-activates only an ad the service itself paused (an ``applied`` pause record): what
the advertiser paused is never touched. It is written through the platform and recorded as its
own audited change under a key of its own, so a repeated rollback answers the first one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from adflywheel.core.domain import Status
from adflywheel.core.errors import ConflictError, NotFoundError
from adflywheel.platforms.base import AdPlatform
from adflywheel.store.engine import transaction
from adflywheel.store.models import AdStatusChange, Variant

ROLLBACK = "rollback"


def pause_history(session: Session, account_id: int, limit: int = 100) -> list[dict[str, Any]]:
    """The account's status changes, newest first."""
    rows = session.execute(
        select(AdStatusChange, Variant.external_id)
        .join(Variant, Variant.id == AdStatusChange.variant_id)
        .where(AdStatusChange.account_id == account_id)
        .order_by(AdStatusChange.id.desc())
        .limit(limit)
    ).all()
    return [change_out(record, ad) for record, ad in rows]


def change_out(record: AdStatusChange, ad: str) -> dict[str, Any]:
    return {
        "change_id": record.id,
        "ad_id": ad,
        "old_status": record.old_status,
        "new_status": record.new_status,
        "reason": record.reason,
        "mode": record.mode,
        "actor": record.actor,
        "cycle_hour": record.cycle_hour.isoformat() if record.cycle_hour else None,
        "created_at": record.created_at.isoformat(),
        "evidence": record.evidence,
    }


def undo_pause(
    factory: sessionmaker[Session],
    platform: AdPlatform | None,
    account_id: int,
    change_id: int,
    *,
    now: datetime,
    actor: str,
) -> dict[str, Any]:
    """Re-activate the ad an applied pause paused; returns the rollback's own record."""
    key = f"{ROLLBACK}:pause:{change_id}"
    with factory() as session:  # whose change it is comes first: another's is unknown (404)
        record, ad = _change(session, account_id, change_id)
        done = session.scalar(select(AdStatusChange).where(AdStatusChange.idempotency_key == key))
        if done is not None and done.mode == "applied":
            return {**change_out(done, ad), "already": True}
        if record.mode != "applied" or record.new_status != Status.PAUSED:
            raise ConflictError(
                f"status change {change_id} is a {record.mode} {record.new_status}: only an "
                "applied pause can be rolled back"
            )
    if platform is None:
        raise ConflictError("no ad platform is connected for this account: nothing can be written")
    platform.set_ad_status(ad, Status.ACTIVE)
    with transaction(factory) as session:
        record, ad = _change(session, account_id, change_id)
        record.mode = "rolled_back"
        undo = AdStatusChange(
            account_id=account_id,
            variant_id=record.variant_id,
            old_status=Status.PAUSED.value,
            new_status=Status.ACTIVE.value,
            reason=ROLLBACK,
            evidence={"rolls_back": change_id},
            mode="applied",
            actor=actor,
            cycle_hour=None,
            idempotency_key=key,
            created_at=now,
        )
        session.add(undo)
        variant = session.get(Variant, record.variant_id)
        assert variant is not None
        variant.status = Status.ACTIVE.value
        session.flush()
        return {**change_out(undo, ad), "already": False}


def _change(session: Session, account_id: int, change_id: int) -> tuple[AdStatusChange, str]:
    row = session.execute(
        select(AdStatusChange, Variant.external_id)
        .join(Variant, Variant.id == AdStatusChange.variant_id)
        .where(AdStatusChange.id == change_id, AdStatusChange.account_id == account_id)
    ).first()
    if row is None:
        raise NotFoundError(f"no status change {change_id}")
    return row[0], row[1]
