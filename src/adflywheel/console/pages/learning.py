"""The console's learning page (loop 6, the model registry, the power switches) and the power
switches' form (admin)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup, escape

from adflywheel.api.deps import ServicesDep
from adflywheel.console.charts import BAD, PALETTE, Series, line_chart
from adflywheel.console.deps import AdminDep, ConsoleRefusal, ViewerDep, actor
from adflywheel.console.templating import render, see_other
from adflywheel.console.views import learning
from adflywheel.core.errors import InvalidInputError
from adflywheel.services.account_settings import set_loops
from adflywheel.store.engine import transaction

router = APIRouter(include_in_schema=False)

WIDTH = 640
LEFT, RIGHT_PAD = 56.0, 12.0  # line_chart's plot area, so the marks share its time axis
MARK_COLOURS = {"retrain": PALETTE[0], "drift": BAD, "breaker": PALETTE[6]}


def _x(at: datetime) -> float:
    return at.timestamp()


def domain(series: Sequence[learning.Series]) -> tuple[float, float] | None:
    """The time span line_chart draws for these series (its x domain: the finite points)."""
    xs = [_x(p.at) for s in series for p in s.points if p.accuracy is not None]
    if not xs:
        return None
    low, high = min(xs), max(xs)
    return (low - 1, high + 1) if low == high else (low, high)


def marks_strip(
    marks: Sequence[learning.Mark], span: tuple[float, float] | None, width: int = WIDTH
) -> Markup:
    """Retrains and alarms as ticks on the accuracy chart's time axis (same plot area), each
    with its time and reason on hover; the table below lists them too."""
    if span is None:
        return Markup("")
    low, high = span
    right = width - RIGHT_PAD
    shown = [m for m in marks if low <= _x(m.at) <= high]
    body = [
        f'<line x1="{LEFT}" y1="22" x2="{right}" y2="22" stroke="#d0d7de" stroke-width="1"/>',
    ]
    for m in shown:
        x = LEFT + (_x(m.at) - low) / (high - low) * (right - LEFT)
        colour = MARK_COLOURS.get(m.kind, PALETTE[7])
        text = escape(f"{m.kind} ({m.status}) at {m.at:%Y-%m-%d %H:%M} UTC: {m.text}")
        body.append(
            f'<g><title>{text}</title><line x1="{x:.1f}" y1="8" x2="{x:.1f}" y2="36" '
            f'stroke="{colour}" stroke-width="3"/></g>'
        )
    legend_x = LEFT
    for kind, colour in MARK_COLOURS.items():
        body.append(
            f'<rect x="{legend_x:.0f}" y="42" width="10" height="10" fill="{colour}"/>'
            f'<text x="{legend_x + 14:.0f}" y="51" font-size="11" fill="#4f5b66">{kind}</text>'
        )
        legend_x += 90
    counts = ", ".join(
        f"{sum(1 for m in shown if m.kind == k)} {k}" for k in MARK_COLOURS if k in MARK_COLOURS
    )
    label = escape(f"Retrains and alarms on the same time axis: {counts}")
    return Markup(
        f'<svg class="chart" role="img" aria-label="{label}" viewBox="0 0 {width} 58" '
        f'width="{width}" height="58" xmlns="http://www.w3.org/2000/svg" '
        f'data-testid="learning-marks"><title>{label}</title>{"".join(body)}</svg>'
    )


def metric_charts(view: learning.LearningView) -> list[tuple[str, Markup]]:
    """Accuracy, calibration (with the served model's interval) and NE per base predictor."""

    def lines(attr: str) -> list[Series]:
        return [
            Series(s.model, [(p.at, getattr(p, attr)) for p in s.points], PALETTE[i % 8])
            for i, s in enumerate(view.series)
        ]

    served = next((s for s in view.series if s.model == "ensemble"), None) or (
        view.series[0] if view.series else None
    )
    band = [(p.at, p.calibration_low, p.calibration_high) for p in served.points] if served else []
    return [
        (
            "Accuracy",
            line_chart(
                lines("accuracy"),
                title="Headline accuracy per predictor (1 = every click expected)",
                y_format=lambda v: f"{v:.0%}",
                empty_message="No scored window yet",
            ),
        ),
        (
            "Calibration",
            line_chart(
                lines("calibration"),
                title="Calibration (expected / observed clicks; 1 is perfect)",
                band=band,
                band_name=f"{served.model} 95% interval" if served else "interval",
                y_format=lambda v: f"{v:.2f}",
                include_zero=False,
                empty_message="No scored window yet",
            ),
        ),
        (
            "Normalised entropy",
            line_chart(
                lines("ne"),
                title="Normalised entropy (below 1 beats the base rate)",
                y_format=lambda v: f"{v:.2f}",
                include_zero=False,
                empty_message="No scored window yet",
            ),
        ),
    ]


@router.get("/accounts/{account_id}/learning", response_class=HTMLResponse)
def learning_page(
    request: Request,
    viewer: ViewerDep,
    services: ServicesDep,
    days: Annotated[int, Query(ge=1, le=learning.MAX_DAYS)] = learning.DEFAULT_DAYS,
) -> HTMLResponse:
    with services.factory() as session:
        view = learning.build(
            session,
            viewer.account_id,
            services.clock.now(),
            services.settings.loops,
            days=days,
        )
    return render(
        request,
        viewer,
        "learning/index.html",
        {
            "view": view,
            "charts": metric_charts(view),
            "marks": marks_strip(view.marks, domain(view.series)),
        },
    )


@router.post("/accounts/{account_id}/power")
async def power(request: Request, viewer: AdminDep, services: ServicesDep) -> Response:
    """Turn loops on or off (admin): the checked boxes are the loops that run; through the
    settings service, so the audit log names the user (as ``PUT /api/ml/power`` names the key)."""
    form = await request.form(max_fields=20)
    try:
        loops = [int(str(v)) for v in form.getlist("loop")]
    except ValueError as error:
        raise ConsoleRefusal(422, "Cannot accept that", "Loops are numbers from 1 to 7.") from error
    try:
        with transaction(services.factory) as session:
            chosen = set_loops(
                session, viewer.account_id, loops, actor=actor(viewer), now=services.clock.now()
            )
    except InvalidInputError as error:  # a loop number outside 1-7
        raise ConsoleRefusal(422, "Cannot accept that", str(error)) from error
    on = ", ".join(str(n) for n in chosen) or "none"
    return see_other(request, f"/accounts/{viewer.account_id}/learning#power", f"Loops on: {on}.")
