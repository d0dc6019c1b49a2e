"""The console's overview page: the account's month against its own baseline, what the flywheel
did in the last 24 hours, open alerts, the mode with its switch, the holdout's verdict."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from markupsafe import Markup

from adflywheel.api.deps import ServicesDep
from adflywheel.console.charts import Series, line_chart
from adflywheel.console.deps import AdminDep, ConsoleRefusal, ViewerDep, actor
from adflywheel.console.templating import money, render, see_other
from adflywheel.console.views.overview import Metric, Overview, build_overview, holdout_view
from adflywheel.core.domain import AccountMode
from adflywheel.core.errors import ConflictError
from adflywheel.services.account_settings import set_mode
from adflywheel.store.engine import transaction

router = APIRouter(include_in_schema=False)


def metric_charts(view: Overview) -> list[tuple[Metric, Markup]]:
    """One small chart per metric: its days, and its baseline as a dashed line."""

    def fmt(metric: Metric) -> Callable[[float], str]:
        if metric.unit == "money":
            return lambda v: money(v, view.currency)
        if metric.unit == "per_unit":
            return lambda v: f"{v:.3g}"
        return lambda v: f"{v:,.0f}"

    out = []
    for metric in view.metrics:
        label = metric_label(metric, view.currency)
        points = list(zip(view.days, metric.values, strict=True))
        baseline = (
            Series("your usual day", [(d, metric.baseline) for d in view.days])
            if metric.baseline is not None
            else None
        )
        chart = line_chart(
            [Series(label, points)],
            title=f"{label} per day, last {len(view.days)} days",
            baseline=baseline,
            y_format=fmt(metric),
            height=200,
        )
        out.append((metric, chart))
    return out


def metric_label(metric: Metric, currency: str) -> str:
    return f"{metric.label} {currency}" if metric.unit == "per_unit" else metric.label


@router.get("/accounts/{account_id}/overview", response_class=HTMLResponse)
def overview(request: Request, viewer: ViewerDep, services: ServicesDep) -> HTMLResponse:
    with services.factory() as session:
        view = build_overview(
            session,
            viewer.account_id,
            services.clock.now(),
            lambda minor: money(minor, viewer.currency),
        )
    return render(
        request,
        viewer,
        "overview/index.html",
        {
            "view": view,
            "charts": metric_charts(view),
            "label": lambda m: metric_label(m, view.currency),
        },
    )


@router.get("/accounts/{account_id}/overview/holdout", response_class=HTMLResponse)
def holdout(request: Request, viewer: ViewerDep, services: ServicesDep) -> HTMLResponse:
    """The holdout's report, a fragment of its own: it reads the month again per campaign, so
    the overview does not wait for it (htmx loads it after the page)."""
    with services.factory() as session:
        view = holdout_view(session, viewer.account_id, services.clock.now(), viewer.currency)
    fragment = bool(request.headers.get("HX-Request"))
    page = "overview/_holdout.html" if fragment else "overview/holdout.html"
    return render(request, viewer, page, {"holdout": view})


@router.post("/accounts/{account_id}/mode")
def switch_mode(
    request: Request,
    viewer: AdminDep,
    services: ServicesDep,
    mode: Annotated[str, Form(max_length=20)] = "",
) -> RedirectResponse:
    """Recommend or autopilot, through the same service as ``PUT /api/ml/accounts/me/mode``:
    autopilot is refused (flash) while its preconditions are missing."""
    try:
        wanted = AccountMode(mode)
    except ValueError as error:
        raise ConsoleRefusal(
            422, "Cannot accept that", "The mode is either recommend or autopilot."
        ) from error
    back = f"/accounts/{viewer.account_id}/overview"
    try:
        with transaction(services.factory) as session:
            set_mode(
                session,
                viewer.account_id,
                wanted,
                actor=actor(viewer),
                now=services.clock.now(),
            )
    except ConflictError as error:
        return see_other(request, back, f"Autopilot was not switched on: {error}", "error")
    words = {
        AccountMode.RECOMMEND: "Recommend mode: decisions are shown for approval, nothing is "
        "written.",
        AccountMode.AUTOPILOT: "Autopilot: decisions within the guardrails are written.",
    }
    return see_other(request, back, words[wanted])
