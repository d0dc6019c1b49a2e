"""The console's campaigns pages: the list, one campaign, and a person's approve / dismiss /
rollback of a budget change (the bandit services the API and CLI call too)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from markupsafe import Markup
from sqlalchemy.orm import Session, sessionmaker

from adflywheel.api.deps import Services, ServicesDep
from adflywheel.console.charts import ShareSeries, share_chart
from adflywheel.console.deps import ApproverDep, ViewerDep, actor, not_found
from adflywheel.console.templating import money, render, see_other
from adflywheel.console.views.campaigns import (
    CampaignDetail,
    build_campaign_detail,
    build_campaign_list,
)
from adflywheel.core.errors import AdflywheelError, ConflictError, NotFoundError, UpstreamError
from adflywheel.platforms.base import AdPlatform, PlatformError
from adflywheel.services.bandit.approvals import approve_change, rollback_change
from adflywheel.services.bandit.recommendations import change_by_id, dismiss_change

router = APIRouter(include_in_schema=False)

RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]
ExternalId = Annotated[str, Path(min_length=1, max_length=100)]


def platform_of(services: Services, account_id: int) -> AdPlatform | None:
    """The account's connected platform; None when it has none (the services then refuse to
    write, 409, which the page shows as a message)."""
    try:
        return services.platforms(account_id)
    except PlatformError:
        return None


def act(
    request: Request, back: str, done: str, call: Callable[[], dict[str, Any]]
) -> RedirectResponse:
    """Run one action; back to ``back`` with what happened, or why it was refused."""
    try:
        result = call()
    except NotFoundError as error:
        raise not_found(str(error)) from error
    except (ConflictError, UpstreamError) as error:
        return see_other(request, back, str(error), "error")
    except AdflywheelError as error:
        return see_other(request, back, str(error), "error")
    if result.get("already"):
        return see_other(request, back, f"{done} already.", "info")
    return see_other(request, back, f"{done}.")


@router.get("/accounts/{account_id}/campaigns", response_class=HTMLResponse)
def campaign_list(request: Request, viewer: ViewerDep, services: ServicesDep) -> HTMLResponse:
    with services.factory() as session:
        view = build_campaign_list(session, viewer.account_id, services.clock.now())
    return render(request, viewer, "campaigns/list.html", {"view": view})


def shares_chart(view: CampaignDetail) -> Markup:
    return share_chart(
        list(view.shares.days),
        [ShareSeries(label, list(values)) for label, values in view.shares.series],
        title=f"Each ad's share of {view.name}'s budget, last {len(view.shares.days)} days",
    )


@router.get("/accounts/{account_id}/campaigns/{campaign_id}", response_class=HTMLResponse)
def campaign_detail(
    request: Request, campaign_id: ExternalId, viewer: ViewerDep, services: ServicesDep
) -> HTMLResponse:
    now = services.clock.now()
    try:
        with services.factory() as session:
            view = build_campaign_detail(
                session,
                viewer.account_id,
                campaign_id,
                now,
                lambda minor: money(minor, viewer.currency),
            )
    except NotFoundError as error:
        raise not_found() from error
    return render(
        request,
        viewer,
        "campaigns/detail.html",
        {"view": view, "chart": shares_chart(view), "now": now},
    )


def _back(factory: sessionmaker[Session], account_id: int, change_id: int, now: datetime) -> str:
    """The page of the change's campaign (404 for a change not in this account)."""
    try:
        with factory() as session:
            change = change_by_id(session, account_id, change_id, now)
    except NotFoundError as error:
        raise not_found() from error
    return f"/accounts/{account_id}/campaigns/{change['campaign_id']}"


@router.post("/accounts/{account_id}/budget-changes/{change_id}/approve")
def approve(
    request: Request, change_id: RowId, viewer: ApproverDep, services: ServicesDep
) -> RedirectResponse:
    now = services.clock.now()
    back = _back(services.factory, viewer.account_id, change_id, now)
    return act(
        request,
        back,
        f"Budget change {change_id} approved and applied",
        lambda: approve_change(
            services.factory,
            platform_of(services, viewer.account_id),
            viewer.account_id,
            change_id,
            now=now,
            actor=actor(viewer),
        ),
    )


@router.post("/accounts/{account_id}/budget-changes/{change_id}/dismiss")
def dismiss(
    request: Request, change_id: RowId, viewer: ApproverDep, services: ServicesDep
) -> RedirectResponse:
    now = services.clock.now()
    back = _back(services.factory, viewer.account_id, change_id, now)
    return act(
        request,
        back,
        f"Recommendation {change_id} dismissed",
        lambda: dismiss_change(
            services.factory, viewer.account_id, change_id, now=now, actor=actor(viewer)
        ),
    )


@router.post("/accounts/{account_id}/budget-changes/{change_id}/rollback")
def rollback(
    request: Request, change_id: RowId, viewer: ApproverDep, services: ServicesDep
) -> RedirectResponse:
    now = services.clock.now()
    back = _back(services.factory, viewer.account_id, change_id, now)
    return act(
        request,
        back,
        f"Budget change {change_id} rolled back",
        lambda: rollback_change(
            services.factory,
            platform_of(services, viewer.account_id),
            viewer.account_id,
            change_id,
            now=now,
            actor=actor(viewer),
        ),
    )
