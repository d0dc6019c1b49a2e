"""The SVG charts: valid XML, every drawn point inside the canvas, gaps and empty input handled."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

from adflywheel.console.charts import (
    IntervalRow,
    Series,
    ShareSeries,
    interval_chart,
    line_chart,
    share_chart,
)

SVG = "{http://www.w3.org/2000/svg}"
T = datetime(2026, 12, 1, tzinfo=UTC)


def parse(markup: str) -> ET.Element:
    root = ET.fromstring(str(markup))
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    assert root.get("aria-label")
    assert root.find(f"{SVG}title") is not None
    return root


def coordinates(root: ET.Element) -> list[tuple[float, float]]:
    """Every x,y a shape is drawn at (polylines, polygons, circles, lines, rects)."""
    found: list[tuple[float, float]] = []
    for element in root.iter():
        tag = element.tag.removeprefix(SVG)
        if tag in ("polyline", "polygon"):
            for pair in (element.get("points") or "").split():
                x, y = pair.split(",")
                found.append((float(x), float(y)))
        elif tag == "circle":
            found.append((float(element.get("cx", "0")), float(element.get("cy", "0"))))
        elif tag == "line":
            found.append((float(element.get("x1", "0")), float(element.get("y1", "0"))))
            found.append((float(element.get("x2", "0")), float(element.get("y2", "0"))))
        elif tag == "rect":
            x, y = float(element.get("x", "0")), float(element.get("y", "0"))
            found += [
                (x, y),
                (x + float(element.get("width", "0")), y + float(element.get("height", "0"))),
            ]
    return found


def assert_inside(root: ET.Element) -> None:
    _, _, width, height = (float(v) for v in (root.get("viewBox") or "").split())
    points = coordinates(root)
    assert points
    for x, y in points:
        assert math.isfinite(x) and math.isfinite(y)
        assert 0 <= x <= width and 0 <= y <= height, (x, y)


def hours(values: list[float | None]) -> list[tuple[datetime, float | None]]:
    return [(T + timedelta(hours=i), v) for i, v in enumerate(values)]


def test_a_line_chart_draws_each_series_inside_the_canvas_with_its_band_and_baseline() -> None:
    chart = line_chart(
        [Series("Spend", hours([10.0, 30.0, 20.0, 50.0]))],
        title="Spend per hour",
        band=[(x, (v or 0) - 5, (v or 0) + 5) for x, v in hours([10.0, 30.0, 20.0, 50.0])],
        baseline=Series("Last 7 days", hours([25.0, 25.0, 25.0, 25.0])),
    )
    root = parse(chart)
    assert_inside(root)
    polylines = root.findall(f".//{SVG}polyline")
    assert len(polylines) == 2  # the series and the dashed baseline
    assert any(p.get("stroke-dasharray") for p in polylines)
    assert root.find(f".//{SVG}polygon") is not None  # the band
    assert "Spend per hour" in chart and "Last 7 days" in chart


def test_higher_values_are_drawn_higher() -> None:
    root = parse(line_chart([Series("a", hours([1.0, 100.0]))], title="t"))
    ((x1, y1), (x2, y2)) = [
        tuple(float(v) for v in pair.split(","))
        for pair in (root.find(f".//{SVG}polyline").get("points") or "").split()  # type: ignore[union-attr]
    ]
    assert x2 > x1 and y2 < y1  # SVG's y grows downwards


def test_gaps_break_the_line_and_non_finite_values_are_gaps() -> None:
    root = parse(
        line_chart(
            [Series("a", hours([1.0, 2.0, None, float("nan"), 3.0, 4.0, float("inf")]))],
            title="t",
        )
    )
    assert len(root.findall(f".//{SVG}polyline")) == 2
    assert_inside(root)


def test_a_single_point_is_a_dot_and_a_flat_series_is_inside() -> None:
    root = parse(line_chart([Series("a", hours([5.0]))], title="t"))
    assert root.find(f".//{SVG}circle") is not None
    assert_inside(root)
    assert_inside(parse(line_chart([Series("a", hours([0.0, 0.0, 0.0]))], title="t")))


def test_empty_input_says_so_in_a_valid_chart() -> None:
    for chart in (
        line_chart([], title="Clicks"),
        line_chart([Series("a", hours([None, float("nan")]))], title="Clicks"),
        interval_chart([], title="Why ads win"),
        interval_chart([IntervalRow("x", float("nan"), 0, 1)], title="Why ads win"),
        share_chart([], [], title="Shares"),
        share_chart([T], [ShareSeries("a", [0.0])], title="Shares"),
    ):
        root = parse(chart)
        assert "yet" in "".join(root.itertext())


def test_names_are_escaped() -> None:
    chart = line_chart([Series("<script>alert(1)</script>", hours([1.0, 2.0]))], title="a & b")
    assert "<script>" not in chart
    root = parse(chart)
    assert root.get("aria-label") == "a & b"


def test_an_interval_chart_colours_rows_by_what_the_interval_says() -> None:
    rows = [
        IntervalRow("hook in 2s", 0.2, 0.1, 0.3),
        IntervalRow("no captions", -0.2, -0.3, -0.1),
        IntervalRow("music", 0.01, -0.1, 0.12),
    ]
    root = parse(interval_chart(rows, title="Gene effects"))
    assert_inside(root)
    colours = [c.get("fill") for c in root.findall(f".//{SVG}circle")]
    assert len(colours) == 3 and len(set(colours)) == 3
    text = "".join(root.itertext())
    assert "hook in 2s" in text and "+20%" in text


def test_an_interval_chart_always_shows_the_zero_line() -> None:
    root = parse(interval_chart([IntervalRow("a", 2.0, 1.5, 2.5)], title="t"))
    assert_inside(root)
    # Drawn at zero: the reference line sits left of every interval.
    reference = next(
        line for line in root.findall(f".//{SVG}line") if line.get("stroke-width") == "1.5"
    )
    circle = root.find(f".//{SVG}circle")
    assert circle is not None
    assert float(reference.get("x1", "0")) < float(circle.get("cx", "0"))


def test_a_share_chart_stacks_to_the_whole() -> None:
    xs = [T + timedelta(days=i) for i in range(3)]
    root = parse(
        share_chart(
            xs,
            [ShareSeries("ad 1", [1.0, 3.0, 0.0]), ShareSeries("ad 2", [1.0, 1.0, 2.0])],
            title="Share of budget",
        )
    )
    assert_inside(root)
    polygons = root.findall(f".//{SVG}polygon")
    assert len(polygons) == 2
    tops = [float(p.split(",")[1]) for p in (polygons[1].get("points") or "").split()[:3]]
    assert max(tops) - min(tops) < 0.2  # the top part's upper edge is the 100% line


def test_charts_are_small() -> None:
    series = [Series(f"ad {i}", hours([float(j % 7) for j in range(24 * 30)])) for i in range(5)]
    chart = line_chart(series, title="a month of hours")
    assert len(chart) < 120_000
    assert re.search(r"\d\.\d\d\d", chart) is None  # coordinates rounded to 0.1
