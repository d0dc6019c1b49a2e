"""The edit rules' shell: when each ad set's budget last changed (from the audit log, hand-made
changes included) and the bounds every budget writer of the cycle obeys."""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from adflywheel.loops.bandit import Bounds, EditHistory, EditRules, edit_bounds
from adflywheel.loops.promoter import Guardrails
from adflywheel.platforms.base import min_daily_budget_floor_minor
from adflywheel.store.models import Account, AdSet, BudgetChange, HourlyActualRow, Variant

# Records that changed (or are about to change) a budget on the platform.
REAL_EDIT_MODES = ("applied", "pending")
# Records a dry run or recommend mode counts as edits too: its dry runs, and its recommendations
# whatever became of them (live, expired or dismissed), as before they had modes of their own.
DRY_EDIT_MODES = ("dry_run", "recommended", "expired", "dismissed")
# A change made outside the service, seen at the catalogue sync (actor EXTERNAL).
OBSERVED, EXTERNAL = "observed", "external"
# How far back an ad set's ads are looked at to find the new ones: an ad set with an older ad
# is not new (its edit rules apply), which bounds the scan.
NEW_AD_SET_DAYS = 14
# An ad set whose first impression is at most this many hours old is still new: a reset of its
# learning phase costs those hours' few results (Meta: ~50 in the week after the last
# significant edit), and the service usually first sees an ad in its first hour of delivery.
FIRST_BUDGET_HOURS = 6


def edit_histories(
    session: Session,
    account_id: int,
    now: datetime,
    rules: EditRules,
    *,
    dry_run: bool = False,
) -> dict[int, EditHistory]:
    """Each ad set's last edit, last increase and last hand-made change (by internal ad set
    id), as far back as a rule can reach. A dry run also counts its own recorded dry-run edits,
    so a stream of recommendations obeys the rules a real account would."""
    reach = max(
        rules.min_hours_between_edits, rules.min_hours_between_increases, rules.hands_off_hours
    )
    modes = (*REAL_EDIT_MODES, OBSERVED, *(DRY_EDIT_MODES if dry_run else ()))
    rows = session.execute(
        select(
            BudgetChange.ad_set_id,
            BudgetChange.created_at,
            BudgetChange.old_budget_minor,
            BudgetChange.new_budget_minor,
            BudgetChange.actor,
        ).where(
            BudgetChange.account_id == account_id,
            BudgetChange.mode.in_(modes),
            BudgetChange.created_at > now - timedelta(hours=reach),
            BudgetChange.created_at <= now,
        )
    ).all()
    last: dict[int, dict[str, datetime]] = {}
    for ad_set_id, at, old, new, actor in rows:
        seen = last.setdefault(ad_set_id, {})
        _latest(seen, "edit", at)
        if old is None or new > old:
            _latest(seen, "increase", at)
        if actor == EXTERNAL:
            _latest(seen, "external", at)
    return {
        ad_set_id: EditHistory(seen.get("edit"), seen.get("increase"), seen.get("external"))
        for ad_set_id, seen in last.items()
    }


def _latest(seen: dict[str, datetime], what: str, at: datetime) -> None:
    if what not in seen or at > seen[what]:
        seen[what] = at


def account_bounds(
    session: Session,
    platform: object | None,
    account_id: int,
    g: Guardrails,
    now: datetime,
    *,
    dry_run: bool,
) -> dict[str, Bounds]:
    """Every ad set's bounds under the account's guardrails: its edit rules, the platform's
    minimum daily budget (or the account's own floor) and the per-ad-set ceiling."""
    account = session.get(Account, account_id)
    assert account is not None
    rules = g.edit_rules()
    floor = g.min_daily_budget_minor
    if floor is None:
        floor = min_daily_budget_floor_minor(platform, account.currency)
    histories = edit_histories(session, account_id, now, rules, dry_run=dry_run)
    ad_sets = session.scalars(select(AdSet).where(AdSet.account_id == account_id)).all()
    return ad_set_bounds(
        ad_sets,
        histories,
        now,
        rules,
        floor_minor=floor,
        ceiling_minor=g.max_variant_budget_minor,
        first_budget=new_ad_sets(session, account_id, now),
    )


def new_ad_sets(session: Session, account_id: int, now: datetime) -> set[int]:
    """Internal ids of the ad sets none of whose ads delivered an impression before the last
    ``FIRST_BUDGET_HOURS`` and whose ads all appeared within ``NEW_AD_SET_DAYS``, after the
    account's first catalogue sync: their first budget costs little of Meta's learning phase.
    What the first sync found may have run for months before the service saw its first hours
    of actuals, so it is never new."""
    started_before = now - timedelta(hours=FIRST_BUDGET_HOURS)
    rows = session.execute(
        select(Variant.ad_set_id, Variant.created_at).where(Variant.account_id == account_id)
    ).all()
    known = [created for _, created in rows if created is not None]
    if not known:
        return set()
    since = max(now - timedelta(days=NEW_AD_SET_DAYS), min(known))
    recent = {a for a, created in rows if created is not None and created > since}
    old = {a for a, created in rows if created is None or created <= since}
    if not recent - old:
        return set()
    delivered = session.scalars(
        select(Variant.ad_set_id)
        .join(HourlyActualRow, HourlyActualRow.variant_id == Variant.id)
        .where(
            Variant.account_id == account_id,
            Variant.created_at > since,
            HourlyActualRow.impressions > 0,
            HourlyActualRow.hour_start < started_before,
        )
        .distinct()
    ).all()
    return recent - old - set(delivered)


def minimums(floors: dict[str, int], bounds: dict[str, Bounds]) -> dict[str, int]:
    """Each ad set's minimum for the allocator: its promotion floor, raised to its edit bound's
    low end and kept within its high end (the edit rules rank above a floor)."""
    return {k: min(max(floors.get(k, 0), b.low), b.high) for k, b in bounds.items()}


def ad_set_bounds(
    ad_sets: Iterable[AdSet],
    histories: dict[int, EditHistory],
    now: datetime,
    rules: EditRules,
    *,
    floor_minor: int,
    ceiling_minor: int | None,
    first_budget: AbstractSet[int] = frozenset(),
) -> dict[str, Bounds]:
    """The bounds of each ad set with a budget, by external id (``first_budget``: internal ids
    of the new ad sets, see ``new_ad_sets``)."""
    return {
        a.external_id: edit_bounds(
            a.daily_budget_minor,
            histories.get(a.id, EditHistory()),
            now,
            rules,
            floor_minor=floor_minor,
            ceiling_minor=ceiling_minor,
            first_budget=a.id in first_budget,
        )
        for a in ad_sets
        if a.daily_budget_minor is not None
    }


def stored_budgets(session: Session, account_id: int) -> dict[str, int | None]:
    """Each ad set's daily budget as the service last knew it (by external id)."""
    rows = session.execute(
        select(AdSet.external_id, AdSet.daily_budget_minor).where(AdSet.account_id == account_id)
    ).all()
    return {external: budget for external, budget in rows}


def record_external_edits(
    session: Session,
    account_id: int,
    before: dict[str, int | None],
    now: datetime,
    hour: datetime,
) -> list[dict[str, object]]:
    """After a catalogue sync: every ad set whose budget the platform reports differently from
    what the service last knew, and no change of the service's explains, was changed by hand
    (in Ads Manager). Each is recorded (actor ``external``, mode ``observed``): the new budget is
    the baseline from now on, and the edit rules leave the ad set alone for ``hands_off_hours``.
    Returns what was seen."""
    seen: list[dict[str, object]] = []
    ad_sets = session.execute(
        select(AdSet.id, AdSet.external_id, AdSet.daily_budget_minor).where(
            AdSet.account_id == account_id
        )
    ).all()
    moved = [
        (ad_set_id, external_id, before[external_id], new)
        for ad_set_id, external_id, new in ad_sets
        if before.get(external_id) is not None and new is not None and before[external_id] != new
    ]
    if not moved:
        return seen
    # Read in two queries for every moved ad set: the service's changes that explain a budget,
    # and the keys already recorded (a re-run hour).
    ours = _ours(session, [m[0] for m in moved], now)
    keys = {m[1]: f"external:{account_id}:{hour.isoformat()}:{m[1]}" for m in moved}
    recorded = set(
        session.scalars(
            select(BudgetChange.idempotency_key).where(
                BudgetChange.idempotency_key.in_(list(keys.values()))
            )
        )
    )
    for ad_set_id, external_id, old, new in moved:
        if (ad_set_id, new) in ours or keys[external_id] in recorded:
            continue
        session.add(
            BudgetChange(
                account_id=account_id,
                ad_set_id=ad_set_id,
                old_budget_minor=old,
                new_budget_minor=new,
                reason="external_edit",
                evidence={"seen_at_sync": hour.isoformat()},
                mode=OBSERVED,
                actor=EXTERNAL,
                cycle_hour=hour,
                idempotency_key=keys[external_id],
                created_at=now,
            )
        )
        seen.append({"ad_set_id": external_id, "old": old, "new": new})
    session.flush()
    return seen


def _ours(session: Session, ad_set_ids: list[int], now: datetime) -> set[tuple[int, int]]:
    """The (ad set, budget) pairs a change of the service's (written, maybe not yet marked)
    explains."""
    rows = session.execute(
        select(BudgetChange.ad_set_id, BudgetChange.new_budget_minor)
        .where(
            BudgetChange.ad_set_id.in_(ad_set_ids),
            BudgetChange.mode.in_(REAL_EDIT_MODES),
            BudgetChange.created_at > now - timedelta(days=2),
        )
        .distinct()
    ).all()
    return {(ad_set_id, budget) for ad_set_id, budget in rows}
