"""The console's promotions page: candidates waiting for a person, winners promoted, the
history; approve, dismiss and roll back through the promoter's own services."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from markupsafe import Markup

from adflywheel.api.deps import ServicesDep
from adflywheel.console.charts import IntervalRow, interval_chart
from adflywheel.console.deps import ApproverDep, ViewerDep, actor
from adflywheel.console.pages.campaigns import act, platform_of
from adflywheel.console.templating import render
from adflywheel.console.views.promotions import Promotions, build_promotions
from adflywheel.services.promoter.actions import approve, dismiss, rollback

router = APIRouter(include_in_schema=False)

RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def lifts_chart(view: Promotions) -> Markup | None:
    rows = [
        IntervalRow(r.ad_name, r.lift, r.lift_low, r.lift_high)
        for r in (*view.candidates, *view.winners)
        if r.lift is not None and r.lift_low is not None and r.lift_high is not None
    ]
    if not rows:
        return None
    return interval_chart(rows, title="Lift in clicks per impression against the control")


@router.get("/accounts/{account_id}/promotions", response_class=HTMLResponse)
def promotions(request: Request, viewer: ViewerDep, services: ServicesDep) -> HTMLResponse:
    with services.factory() as session:
        view = build_promotions(session, viewer.account_id, services.clock.now())
    return render(
        request, viewer, "promotions/index.html", {"view": view, "chart": lifts_chart(view)}
    )


def _page(account_id: int) -> str:
    return f"/accounts/{account_id}/promotions"


@router.post("/accounts/{account_id}/promotions/{action_id}/approve")
def approve_promotion(
    request: Request, action_id: RowId, viewer: ApproverDep, services: ServicesDep
) -> RedirectResponse:
    return act(
        request,
        _page(viewer.account_id),
        f"Promotion {action_id} approved and applied",
        lambda: approve(
            services.factory,
            platform_of(services, viewer.account_id),
            viewer.account_id,
            action_id,
            now=services.clock.now(),
            actor=actor(viewer),
        ),
    )


@router.post("/accounts/{account_id}/promotions/{action_id}/dismiss")
def dismiss_promotion(
    request: Request, action_id: RowId, viewer: ApproverDep, services: ServicesDep
) -> RedirectResponse:
    return act(
        request,
        _page(viewer.account_id),
        f"Promotion {action_id} dismissed",
        lambda: dismiss(
            services.factory,
            None,
            viewer.account_id,
            action_id,
            now=services.clock.now(),
            actor=actor(viewer),
        ),
    )


@router.post("/accounts/{account_id}/promotions/{action_id}/rollback")
def rollback_promotion(
    request: Request, action_id: RowId, viewer: ApproverDep, services: ServicesDep
) -> RedirectResponse:
    return act(
        request,
        _page(viewer.account_id),
        f"Promotion {action_id} rolled back",
        lambda: rollback(
            services.factory,
            platform_of(services, viewer.account_id),
            viewer.account_id,
            action_id,
            now=services.clock.now(),
            actor=actor(viewer),
        ),
    )
