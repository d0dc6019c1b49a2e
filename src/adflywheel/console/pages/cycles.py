"""The console's cycle runs page and "run now" / "dry run now" (approver)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from adflywheel.api.deps import ServicesDep
from adflywheel.console.deps import ApproverDep, ViewerDep
from adflywheel.console.templating import render, see_other
from adflywheel.console.views import cycles
from adflywheel.core.errors import BusyError

router = APIRouter(include_in_schema=False)


@router.get("/accounts/{account_id}/cycles", response_class=HTMLResponse)
def cycles_page(
    request: Request,
    viewer: ViewerDep,
    services: ServicesDep,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    with services.factory() as session:
        view = cycles.build(session, viewer.account_id, page=page)
    return render(request, viewer, "cycles/index.html", {"view": view})


@router.post("/accounts/{account_id}/cycles/run")
async def run_now(
    request: Request,
    viewer: ApproverDep,
    services: ServicesDep,
    dry_run: Annotated[bool, Form()] = False,
) -> Response:
    """Run the account's current hour now, through the API's cycle runner; back to the page
    with what it did (a busy account says so)."""
    back = f"/accounts/{viewer.account_id}/cycles"
    try:
        report = await run_in_threadpool(
            cycles.run_now,
            services.settings,
            services.factory,
            services.clock,
            services.platforms,
            viewer.account_id,
            dry_run=dry_run,
        )
    except BusyError as error:
        return see_other(request, back, f"Not run: {error}", "warning")
    outcome = cycles.summary(report)
    return see_other(request, back, outcome.message, "success" if outcome.ok else "error")
