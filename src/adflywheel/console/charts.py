"""Charts as server-side SVG: no JavaScript, no charting library, a few kilobytes per chart.

Pure functions from numbers to ``Markup``: a time series with an optional interval band and
baseline (``line_chart``), estimates with intervals around zero (``interval_chart``: why ads
win, lifts) and shares of a whole over time (``share_chart``). Every chart is an ``<svg
role="img">`` with a ``<title>`` and ``aria-label``; missing or non-finite values are gaps, and
a chart with nothing to draw says so instead of failing. Colours use presentation attributes
(the pages' CSP allows no inline scripts; styles come from console.css).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from markupsafe import Markup, escape

X = datetime | date | float | int
Formatter = Callable[[float], str]

PALETTE = (
    "#0b5cad",
    "#b35900",
    "#1a7f37",
    "#8250df",
    "#cf222e",
    "#0a7b83",
    "#9a6700",
    "#6e7781",
)
BAND_FILL = "#c9ddf2"
BASELINE_COLOUR = "#57606a"
GRID_COLOUR = "#d0d7de"
TEXT_COLOUR = "#4f5b66"
GOOD = "#1a7f37"
BAD = "#cf222e"
NEUTRAL = "#57606a"


@dataclass(frozen=True, slots=True)
class Series:
    """A named line: ``(x, y)`` points, y None for a gap."""

    name: str
    points: Sequence[tuple[X, float | None]]
    colour: str | None = None


@dataclass(frozen=True, slots=True)
class IntervalRow:
    """An estimate with its interval (e.g. a gene's effect on CTR, a promotion's lift)."""

    label: str
    estimate: float
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class ShareSeries:
    """One part of a whole (an ad's share of its budget) at each x of ``share_chart``."""

    name: str
    values: Sequence[float | None]
    colour: str | None = None


def _x_value(x: X) -> float:
    if isinstance(x, datetime):
        return (x if x.tzinfo else x.replace(tzinfo=UTC)).timestamp()
    if isinstance(x, date):
        return float(x.toordinal())
    return float(x)


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _default_x_label(x: X) -> str:
    if isinstance(x, datetime):
        return f"{x.day} {x:%b %H:%M}" if x.hour or x.minute else f"{x.day} {x:%b}"
    if isinstance(x, date):
        return f"{x.day} {x:%b}"
    return _short_number(float(x))


def _short_number(value: float) -> str:
    size = abs(value)
    if size >= 1e9:
        return f"{value / 1e9:.3g}B"
    if size >= 1e6:
        return f"{value / 1e6:.3g}M"
    if size >= 1e4:
        return f"{value / 1e3:.3g}k"
    return f"{value:.3g}"


def _nice_ticks(low: float, high: float, count: int = 4) -> list[float]:
    """Round tick values covering [low, high] (1, 2, 2.5 or 5 times a power of ten apart)."""
    span = high - low
    if span <= 0 or not math.isfinite(span):
        return [low]
    raw = span / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.ceil(low / step - 1e-9) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(0.0 if abs(value) < step * 1e-9 else value)
        value += step
    return ticks


def _domain(values: Sequence[float], include: float | None = None) -> tuple[float, float]:
    finite = [v for v in values if math.isfinite(v)]
    if include is not None:
        finite.append(include)
    if not finite:
        return 0.0, 1.0
    low, high = min(finite), max(finite)
    if low == high:
        pad = abs(low) * 0.1 or 1.0
        return low - pad, high + pad
    pad = (high - low) * 0.05
    low_padded = low - pad if include is None or low < include else low
    high_padded = high + pad if include is None or high > include else high
    return low_padded, high_padded


def _f(value: float) -> str:
    return f"{value:.1f}"


def _svg(width: int, height: int, title: str, body: list[str], description: str = "") -> Markup:
    label = escape(title)
    desc = f"<desc>{escape(description)}</desc>" if description else ""
    return Markup(
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{label}" '
        f'preserveAspectRatio="xMinYMin meet"><title>{label}</title>{desc}'
        + "".join(body)
        + "</svg>"
    )


def _empty(width: int, height: int, title: str, message: str) -> Markup:
    return _svg(
        width,
        height,
        title,
        [
            f'<rect x="0.5" y="0.5" width="{width - 1}" height="{height - 1}" fill="none" '
            f'stroke="{GRID_COLOUR}" stroke-dasharray="4 4"/>',
            f'<text x="{width / 2:.1f}" y="{height / 2:.1f}" text-anchor="middle" '
            f'fill="{TEXT_COLOUR}" font-size="13">{escape(message)}</text>',
        ],
        message,
    )


def _text(x: float, y: float, text: str, anchor: str = "start", size: int = 11) -> str:
    return (
        f'<text x="{_f(x)}" y="{_f(y)}" text-anchor="{anchor}" fill="{TEXT_COLOUR}" '
        f'font-size="{size}">{escape(text)}</text>'
    )


def _legend(entries: Sequence[tuple[str, str, bool]], x0: float, y: float, right: float) -> str:
    """One row of ``(name, colour, dashed)`` swatches from ``x0``, wrapped by truncation."""
    parts = []
    x = x0
    for name, colour, dashed in entries:
        shown = name if len(name) <= 24 else name[:23] + "…"
        width = 22 + 6.2 * len(shown)
        if x + width > right:
            break
        dash = ' stroke-dasharray="5 3"' if dashed else ""
        parts.append(
            f'<line x1="{_f(x)}" y1="{_f(y - 4)}" x2="{_f(x + 14)}" y2="{_f(y - 4)}" '
            f'stroke="{colour}" stroke-width="3"{dash}/>'
        )
        parts.append(_text(x + 18, y, shown))
        x += width + 10
    return "".join(parts)


def line_chart(
    series: Sequence[Series],
    *,
    title: str,
    band: Sequence[tuple[X, float | None, float | None]] | None = None,
    band_name: str = "interval",
    baseline: Series | None = None,
    y_format: Formatter = _short_number,
    x_format: Callable[[X], str] = _default_x_label,
    include_zero: bool = True,
    width: int = 640,
    height: int = 240,
    empty_message: str = "No data yet",
) -> Markup:
    """Lines over x (time or numbers); ``band`` an interval (low, high) at each x drawn behind
    them; ``baseline`` a dashed reference line (e.g. the account's own recent average)."""
    lines = [s for s in series if any(_finite(y) for _, y in s.points)]
    base = baseline if baseline and any(_finite(y) for _, y in baseline.points) else None
    band_points = [(x, lo, hi) for x, lo, hi in band or () if _finite(lo) and _finite(hi)]
    if not lines and base is None and not band_points:
        return _empty(width, height, title, empty_message)
    left, right, top, bottom = 56.0, width - 12.0, 28.0, height - 26.0
    drawn = [*lines, *([base] if base else [])]
    finite_points = [(x, y) for s in drawn for x, y in s.points if y is not None and _finite(y)]
    xs = [x for x, _ in finite_points] + [x for x, _, _ in band_points]
    ys = [y for _, y in finite_points]
    ys += [v for _, lo, hi in band_points for v in (lo, hi) if v is not None]
    x_values = [_x_value(x) for x in xs]
    x_low, x_high = min(x_values), max(x_values)
    if x_low == x_high:
        x_low, x_high = x_low - 1, x_high + 1
    y_low, y_high = _domain(ys, 0.0 if include_zero else None)

    def sx(x: X) -> float:
        return left + (_x_value(x) - x_low) / (x_high - x_low) * (right - left)

    def sy(y: float) -> float:
        return bottom - (y - y_low) / (y_high - y_low) * (bottom - top)

    body: list[str] = []
    for tick in _nice_ticks(y_low, y_high):
        y = sy(tick)
        body.append(
            f'<line x1="{_f(left)}" y1="{_f(y)}" x2="{_f(right)}" y2="{_f(y)}" '
            f'stroke="{GRID_COLOUR}" stroke-width="1"/>'
        )
        body.append(_text(left - 6, y + 4, y_format(tick), "end"))
    ordered = sorted(xs, key=_x_value)
    for x, anchor in ((ordered[0], "start"), (ordered[-1], "end")):
        body.append(_text(sx(x), bottom + 17, x_format(x), anchor))
    if len(ordered) > 2:
        middle = ordered[len(ordered) // 2]
        body.append(_text(sx(middle), bottom + 17, x_format(middle), "middle"))
    if band_points:
        ordered_band = sorted(
            ((x, float(lo or 0.0), float(hi or 0.0)) for x, lo, hi in band_points),
            key=lambda p: _x_value(p[0]),
        )
        upper = [f"{_f(sx(x))},{_f(sy(hi))}" for x, _, hi in ordered_band]
        lower = [f"{_f(sx(x))},{_f(sy(lo))}" for x, lo, _ in reversed(ordered_band)]
        body.append(
            f'<polygon points="{" ".join(upper + lower)}" fill="{BAND_FILL}" '
            f'fill-opacity="0.7" stroke="none"/>'
        )
    legend: list[tuple[str, str, bool]] = []
    if base is not None:
        body.extend(_polylines(base.points, sx, sy, BASELINE_COLOUR, dashed=True))
        legend.append((base.name, BASELINE_COLOUR, True))
    for index, line in enumerate(lines):
        colour = line.colour or PALETTE[index % len(PALETTE)]
        body.extend(_polylines(line.points, sx, sy, colour))
        legend.append((line.name, colour, False))
    if band_points:
        legend.append((band_name, BAND_FILL, False))
    body.append(_legend(legend, left, 16, right))
    return _svg(width, height, title, body)


def _polylines(
    points: Sequence[tuple[X, float | None]],
    sx: Callable[[X], float],
    sy: Callable[[float], float],
    colour: str,
    *,
    dashed: bool = False,
) -> list[str]:
    """One polyline per run of finite points (a gap breaks the line); a lone point is a dot."""
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in sorted(points, key=lambda p: _x_value(p[0])):
        if y is not None and math.isfinite(y):
            runs[-1].append((sx(x), sy(float(y))))
        elif runs[-1]:
            runs.append([])
    dash = ' stroke-dasharray="6 4"' if dashed else ""
    shapes = []
    for run in runs:
        if len(run) == 1:
            x, y = run[0]
            shapes.append(f'<circle cx="{_f(x)}" cy="{_f(y)}" r="2.5" fill="{colour}"/>')
        elif run:
            coordinates = " ".join(f"{_f(x)},{_f(y)}" for x, y in run)
            shapes.append(
                f'<polyline points="{coordinates}" fill="none" stroke="{colour}" '
                f'stroke-width="2" stroke-linejoin="round"{dash}/>'
            )
    return shapes


def interval_chart(
    rows: Sequence[IntervalRow],
    *,
    title: str,
    x_format: Formatter = lambda v: f"{v * 100:+.0f}%",
    reference: float = 0.0,
    width: int = 640,
    row_height: int = 26,
    empty_message: str = "Nothing to compare yet",
) -> Markup:
    """One row per estimate: a dot and its interval, beside a reference line (zero: no
    effect). Green when the whole interval is above the reference, red when below, grey when
    it straddles it (the evidence does not say which way)."""
    usable = [r for r in rows if all(math.isfinite(v) for v in (r.estimate, r.low, r.high))]
    if not usable:
        return _empty(width, 80, title, empty_message)
    label_width = min(220.0, max(80.0, 7.0 * max(len(r.label) for r in usable)))
    left, right, top = label_width + 12, width - 16.0, 10.0
    height = int(top + row_height * len(usable) + 30)
    bottom = height - 30.0
    values = [v for r in usable for v in (r.low, r.high, r.estimate)]
    x_low, x_high = _domain(values, reference)

    def sx(x: float) -> float:
        return left + (x - x_low) / (x_high - x_low) * (right - left)

    body: list[str] = []
    for tick in _nice_ticks(x_low, x_high):
        x = sx(tick)
        body.append(
            f'<line x1="{_f(x)}" y1="{_f(top)}" x2="{_f(x)}" y2="{_f(bottom)}" '
            f'stroke="{GRID_COLOUR}" stroke-width="1"/>'
        )
        body.append(_text(x, bottom + 16, x_format(tick), "middle"))
    zero = sx(reference)
    body.append(
        f'<line x1="{_f(zero)}" y1="{_f(top)}" x2="{_f(zero)}" y2="{_f(bottom)}" '
        f'stroke="{BASELINE_COLOUR}" stroke-width="1.5"/>'
    )
    for index, row in enumerate(usable):
        y = top + row_height * (index + 0.5)
        low, high = min(row.low, row.high), max(row.low, row.high)
        colour = GOOD if low > reference else BAD if high < reference else NEUTRAL
        label = row.label if len(row.label) <= 30 else row.label[:29] + "…"
        summary = f"{row.label}: {x_format(row.estimate)} ({x_format(low)} to {x_format(high)})"
        body.append(
            f"<g><title>{escape(summary)}</title>"
            + _text(label_width + 4, y + 4, label, "end")
            + f'<line x1="{_f(sx(low))}" y1="{_f(y)}" x2="{_f(sx(high))}" y2="{_f(y)}" '
            f'stroke="{colour}" stroke-width="3" stroke-linecap="round"/>'
            + f'<circle cx="{_f(sx(row.estimate))}" cy="{_f(y)}" r="4.5" fill="{colour}"/></g>'
        )
    return _svg(width, height, title, body)


def _share_value(values: Sequence[float | None], index: int) -> float:
    value = values[index] if index < len(values) else None
    return max(0.0, value) if value is not None and math.isfinite(value) else 0.0


def share_chart(
    xs: Sequence[X],
    parts: Sequence[ShareSeries],
    *,
    title: str,
    x_format: Callable[[X], str] = _default_x_label,
    width: int = 640,
    height: int = 220,
    empty_message: str = "No budget history yet",
) -> Markup:
    """Stacked shares of a whole at each x (each column scaled to 100%; a column summing to
    zero or less is left blank)."""
    columns: list[tuple[X, list[float]]] = []
    for index, x in enumerate(xs):
        values = [_share_value(p.values, index) for p in parts]
        total = sum(values)
        if total > 0:
            columns.append((x, [v / total for v in values]))
    if not columns or not parts:
        return _empty(width, height, title, empty_message)
    columns.sort(key=lambda c: _x_value(c[0]))
    left, right, top, bottom = 44.0, width - 12.0, 28.0, height - 26.0
    x_low, x_high = _x_value(columns[0][0]), _x_value(columns[-1][0])
    if x_low == x_high:
        x_low, x_high = x_low - 1, x_high + 1

    def sx(x: X) -> float:
        return left + (_x_value(x) - x_low) / (x_high - x_low) * (right - left)

    def sy(share: float) -> float:
        return bottom - share * (bottom - top)

    body: list[str] = []
    for tick in (0.0, 0.5, 1.0):
        body.append(
            f'<line x1="{_f(left)}" y1="{_f(sy(tick))}" x2="{_f(right)}" y2="{_f(sy(tick))}" '
            f'stroke="{GRID_COLOUR}" stroke-width="1"/>'
        )
        body.append(_text(left - 6, sy(tick) + 4, f"{tick:.0%}", "end"))
    cumulative = [0.0] * len(columns)
    legend: list[tuple[str, str, bool]] = []
    for index, part in enumerate(parts):
        colour = part.colour or PALETTE[index % len(PALETTE)]
        lower = list(cumulative)
        cumulative = [c + column[1][index] for c, column in zip(cumulative, columns, strict=True)]
        if len(columns) == 1:
            body.append(
                f'<rect x="{_f(left)}" y="{_f(sy(cumulative[0]))}" width="{_f(right - left)}" '
                f'height="{_f(sy(lower[0]) - sy(cumulative[0]))}" fill="{colour}"/>'
            )
        else:
            upper_points = [
                f"{_f(sx(c[0]))},{_f(sy(v))}" for c, v in zip(columns, cumulative, strict=True)
            ]
            lower_points = [
                f"{_f(sx(c[0]))},{_f(sy(v))}"
                for c, v in reversed(list(zip(columns, lower, strict=True)))
            ]
            body.append(
                f'<polygon points="{" ".join(upper_points + lower_points)}" fill="{colour}" '
                f'fill-opacity="0.85" stroke="#ffffff" stroke-width="0.5"><title>'
                f"{escape(part.name)}</title></polygon>"
            )
        legend.append((part.name, colour, False))
    first, last = columns[0][0], columns[-1][0]
    body.append(_text(sx(first) if len(columns) > 1 else left, bottom + 17, x_format(first)))
    if len(columns) > 1:
        body.append(_text(sx(last), bottom + 17, x_format(last), "end"))
    body.append(_legend(legend, left, 16, right))
    return _svg(width, height, title, body)
