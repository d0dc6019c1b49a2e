"""The ablation's tables from whatever shards exist (pure: shard dicts in, markdown out).

Every figure is paired by seed against Thompson alone: the same seed is the same market, so a
set's ratio to Thompson alone on that seed removes the market's own luck. Means over seeds with a
95% t-interval (Student, n − 1 degrees of freedom). All data are synthetic (a simulated market).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

from scipy import stats

from benchmarks.ablation_design import ALL_SEVEN, BASELINE, OPTIONAL, SET_NOTES, table_order

NULL_FLOOR = 0.99  # the null twin's rule: no set below 0.99x Thompson alone
SPEED_CLAIM = 10.0
ACCURACY_CLAIM = 0.90
# Rows the null-twin rule does not judge: the baseline, and the optional sets (upper bounds that
# read the market's truth, not loops of the service).
NO_RULE = frozenset({BASELINE} | {s.slug for sets in OPTIONAL.values() for s in sets})
# The references every run carries: (key prefix in the summary, label).
REFERENCES = (
    ("uniform_", "uniform split (reference)"),
    ("oracle_", "greedy oracle (reference, ignores fatigue)"),
    ("marginal_oracle_", "marginal oracle (reference, knows fatigue and daypart)"),
)

Row = dict[str, Any]
Cell = dict[str, float | int | None]


def interval(values: Sequence[float]) -> Cell:
    """Mean and its 95% t-interval (None bounds under two values)."""
    clean = [float(v) for v in values]
    if not clean:
        return {"mean": None, "low": None, "high": None, "n": 0}
    mean = statistics.fmean(clean)
    if len(clean) < 2:
        return {"mean": mean, "low": None, "high": None, "n": 1}
    half = float(stats.t.ppf(0.975, len(clean) - 1)) * statistics.stdev(clean) / len(clean) ** 0.5
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": len(clean)}


def _number(row: Row | None, key: str) -> float | None:
    value = None if row is None else row.get(key)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _ratios(pairs: list[tuple[Row, Row]], key: str, base_key: str | None = None) -> list[float]:
    """Per seed: ``key`` of the set over ``base_key`` (default ``key``) of Thompson alone."""
    out = []
    for mine, base in pairs:
        a, b = _number(mine, key), _number(base, base_key or key)
        if a is not None and b:
            out.append(a / b)
    return out


def week_means(by_day: Any) -> tuple[float | None, float | None]:
    """Headline accuracy over the first week and the last (runs under 14 days: first and last
    half), from the daily series; days without a score are skipped."""
    if not isinstance(by_day, list) or not by_day:
        return None, None
    span = min(7, max(1, len(by_day) // 2))

    def mean(days: list[Any]) -> float | None:
        scored = [float(v) for v in days if isinstance(v, (int, float))]
        return statistics.fmean(scored) if scored else None

    return mean(by_day[:span]), mean(by_day[-span:])


def _hours(rows: list[Row], prefix: str = "") -> dict[str, Any]:
    """Hours until a truly best new creative held the largest share of its campaign, pooled
    over seeds; creatives that never did are counted apart."""
    pooled = [h for r in rows for h in (r.get(f"{prefix}hours_to_lead_new_best") or [])]
    led = [float(h) for h in pooled if isinstance(h, (int, float)) and h >= 0]
    return {
        "median": statistics.median(led) if led else None,
        "mean": statistics.fmean(led) if led else None,
        "led": len(led),
        "creatives": len(pooled),
    }


def _set_row(mine: list[Row], pairs: list[tuple[Row, Row]], prefix: str = "") -> dict[str, Any]:
    """One table row. ``prefix``: a reference's keys inside Thompson alone's own runs."""
    k = prefix.__add__
    spend_ratio = _ratios(pairs, k("spend_minor"), "spend_minor")
    at_equal_spend = [
        cpd * (_number(base, "spend_minor") or 0) / 100
        for mine_row, base in pairs
        if (cpd := _number(mine_row, k("clicks_per_dollar"))) is not None
    ]
    weeks = [week_means(r.get(k("accuracy_by_day"))) for r in mine]
    first = [f for f, _ in weeks if f is not None]
    last = [v for _, v in weeks if v is not None]
    ceilings = [week_means(r.get(k("accuracy_ceiling_by_day")))[1] for r in mine]
    marginal = _ratios(
        [(r, r) for r in mine], k("clicks_per_dollar"), "marginal_oracle_clicks_per_dollar"
    )
    return {
        "seeds": sorted(int(r["seed"]) for r in mine),
        "paired": len(pairs),
        "cpd": interval(_ratios(pairs, k("clicks_per_dollar"), "clicks_per_dollar")),
        "conversions": interval(
            _ratios(pairs, k("conversions_per_dollar"), "conversions_per_dollar")
        ),
        "clicks_at_equal_spend": interval(at_equal_spend),
        "spend": interval(spend_ratio),
        "cold_start": interval(
            _ratios(pairs, k("cold_start_clicks_per_dollar"), "cold_start_clicks_per_dollar")
        ),
        "share_of_marginal_oracle": interval(marginal),
        "ne": interval([v for r in mine if (v := _number(r, k("normalized_entropy"))) is not None]),
        "accuracy_first_week": interval(first),
        "accuracy_last_week": interval(last),
        "accuracy_ceiling_last_week": interval([c for c in ceilings if c is not None]),
        "promotions": sum(int(_number(r, k("promotions")) or 0) for r in mine),
        "false_promotions": sum(int(_number(r, k("false_promotions")) or 0) for r in mine),
        "lead": _hours(mine, prefix),
        "seconds": sum(_number(r, "seconds") or 0.0 for r in mine) if not prefix else 0.0,
    }


def aggregate(scenario: str, rows: list[Row]) -> dict[str, Any]:
    """The scenario's table data: one entry per loop set found, then the references."""
    by_set: dict[str, list[Row]] = {}
    for row in rows:
        by_set.setdefault(str(row["set"]), []).append(row)
    order = [s.slug for s in table_order(scenario)]
    order += sorted(set(by_set) - set(order))
    base = {int(r["seed"]): r for r in by_set.get(BASELINE, [])}
    table: dict[str, Any] = {}
    labels = {str(r["set"]): str(r.get("set_label") or r["set"]) for r in rows}
    for slug in order:
        mine = by_set.get(slug, [])
        if not mine:
            continue
        pairs = [(r, base[int(r["seed"])]) for r in mine if int(r["seed"]) in base]
        table[slug] = {
            "label": labels[slug],
            "note": _note(slug, mine),
            **_set_row(mine, pairs),
        }
    baseline_rows = list(base.values())
    for prefix, label in REFERENCES:
        if not any(_number(r, f"{prefix}clicks_per_dollar") is not None for r in baseline_rows):
            continue
        pairs = [(r, r) for r in baseline_rows]
        table[prefix.rstrip("_")] = {
            "label": label,
            "note": "",
            **_set_row(baseline_rows, pairs, prefix),
        }
    return {
        "scenario": scenario,
        "shards": len(rows),
        "days": sorted({int(r["days"]) for r in rows if isinstance(r.get("days"), int)}),
        "quick": any(bool(r.get("quick")) for r in rows),
        "seconds": sum(_number(r, "seconds") or 0.0 for r in rows),
        "cpu_seconds": sum(_number(r, "cpu_seconds") or 0.0 for r in rows),
        "code": sorted({str(r.get("code") or "unknown") for r in rows}),
        "table": table,
    }


def _note(slug: str, mine: list[Row]) -> str:
    """What the set also loses, and any loop this installation could not run."""
    missing: dict[str, str] = {}
    for row in mine:
        missing.update(row.get("loops_unavailable") or {})
    parts = [SET_NOTES.get(slug, "")]
    parts += [f"loop {loop} did not run: {why}" for loop, why in sorted(missing.items())]
    return "; ".join(p for p in parts if p)


def projected_seconds(
    rows: list[Row], design: dict[str, int], key: str = "seconds"
) -> float | None:
    """The full design's machine time: each set's mean ``key`` (wall ``seconds`` or
    ``cpu_seconds``) per shard found here times its shards in ``design`` (set slug -> shards);
    sets not found yet at the mean of all found."""
    seconds = [s for r in rows if (s := _number(r, key)) is not None]
    if not seconds:
        return None
    overall = statistics.fmean(seconds)
    total = 0.0
    for slug, count in design.items():
        mine = [s for r in rows if r.get("set") == slug and (s := _number(r, key)) is not None]
        total += count * (statistics.fmean(mine) if mine else overall)
    return total


def _ratio(cell: Cell, digits: int = 3) -> str:
    mean, low, high = cell["mean"], cell["low"], cell["high"]
    if mean is None:
        return "–"
    text = f"{mean:.{digits}f}"
    if low is None or high is None:
        return text
    return f"{text} ({low:.{digits}f}–{high:.{digits}f})"


def _count(cell: Cell) -> str:
    return "–" if cell["mean"] is None else f"{cell['mean']:,.0f}"


def _null_rule(cell: Cell) -> str:
    mean, low = cell["mean"], cell["low"]
    if mean is None:
        return "–"
    verdict = "pass" if mean >= NULL_FLOOR else "FAIL"
    if low is None:
        return f"{verdict} (one seed)"
    side = "above" if low >= NULL_FLOOR else "reaches below"
    return f"{verdict} (interval {side} {NULL_FLOOR})"


def _lead(lead: dict[str, Any]) -> str:
    if not lead["creatives"]:
        return "–"
    if lead["median"] is None:
        return f"never (0/{lead['creatives']} led)"
    return (
        f"{lead['median']:.0f} h, mean {lead['mean']:.1f} h ({lead['led']}/{lead['creatives']} led)"
    )


def speed_up(table: dict[str, Any], slug: str, key: str = "median") -> float | None:
    """Thompson alone's hours to lead over the set's (``key``: median or mean); inf when the
    set's are 0 h and Thompson alone's are not, 1 when both are 0 h."""
    mine, base = table.get(slug, {}).get("lead"), table.get(BASELINE, {}).get("lead")
    if not mine or not base or mine[key] is None or base[key] is None:
        return None
    if mine[key] == 0:
        return 1.0 if base[key] == 0 else math.inf
    return float(base[key] / mine[key])


def _times(value: float | None) -> str:
    return "–" if value is None else ("∞" if math.isinf(value) else f"{value:.2f}×")


def markdown(
    data: dict[str, Any],
    projected: dict[str, float | None] | None = None,
    design_shards: int = 0,
) -> str:
    """The scenario's tables: money, learning, and the customer's claims with their definitions."""
    table, scenario = data["table"], data["scenario"]
    days = ", ".join(str(d) for d in data["days"]) or "?"
    head = [
        f"### Ablation, scenario `{scenario}`{' (quick mode)' if data['quick'] else ''}",
        "",
        f"Simulated market (synthetic data), {days} days, {data['shards']} shards found. Each "
        "figure is paired by seed against Thompson alone (loops=2) on the same market: the mean "
        "over seeds of the per-seed ratio, with its 95% paired t-interval. References (uniform, "
        "oracles) come from Thompson alone's runs of the same seeds. Code: "
        f"{', '.join(data.get('code') or ['unknown'])}"
        f"{' (MIXED: shards from several versions)' if len(data.get('code') or []) > 1 else ''}.",
        "",
        "**Money.** Clicks and conversions per dollar ÷ Thompson alone's; clicks at Thompson's "
        "spend = the set's clicks per dollar × Thompson alone's spend (mean over seeds), beside "
        "the spend ratio; cold start = every new creative's first 72 hours after launch; share of "
        "the marginal oracle = the set's clicks per dollar ÷ that of the oracle that splits each "
        "hour by true marginal clicks per dollar, fatigue and daypart included (what learning "
        "could still gain). Null-twin rule: every set ≥ 0.99× Thompson alone (binding on `null`). "
        "A leave-one-out set removes that loop only: the loop registry (core/loops.py) declares no "
        "loop that needs another; what the others lose with it is in the learning table.",
        "",
        "| set | seeds paired | clicks/$ ÷ Thompson | conversions/$ ÷ Thompson | "
        "clicks at Thompson's spend | spend ÷ Thompson | cold start clicks/$ ÷ Thompson | "
        "share of marginal oracle | null-twin rule |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for slug, row in table.items():
        rule = (
            "–"
            if slug in NO_RULE or slug in ("uniform", "oracle", "marginal_oracle")
            else (_null_rule(row["cpd"]))
        )
        head.append(
            f"| {row['label']} | {row['paired']} | {_ratio(row['cpd'])} | "
            f"{_ratio(row['conversions'])} | {_count(row['clicks_at_equal_spend'])} | "
            f"{_ratio(row['spend'])} | {_ratio(row['cold_start'])} | "
            f"{_ratio(row['share_of_marginal_oracle'])} | {rule} |"
        )
    head += [
        "",
        "**Learning.** Prediction NE = loop 6's normalised entropy over the last simulated day "
        "(< 1 beats predicting the base rate); headline accuracy = 1 − impression-weighted "
        "relative error, per ad and day, mean of the first week's days → the last week's (runs "
        "under 14 days: first half → last half); promotions (of which false: the promoted ad was "
        "not truly better than its control), summed over seeds; hours to lead = hours after launch "
        "until a truly best new creative held the largest share of its campaign, median pooled "
        "over seeds (how many led within the run). Ceiling = the headline accuracy a model that "
        "knew the true rates would expect on the same scored impressions, last week (binomial "
        "noise alone; loop 6's noise floor).",
        "",
        "| set | NE, last day | headline accuracy, first week → last week | ceiling, last week | "
        "promotions (false) | hours to lead: median (led) | what the set also loses |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in table.values():
        head.append(
            f"| {row['label']} | {_ratio(row['ne'])} | {_ratio(row['accuracy_first_week'])} → "
            f"{_ratio(row['accuracy_last_week'])} | "
            f"{_ratio(row['accuracy_ceiling_last_week'])} | {row['promotions']} "
            f"({row['false_promotions']}) | {_lead(row['lead'])} | {row['note'] or '–'} |"
        )
    head += ["", *_claims(table), "", *_machine_time(data, projected, design_shards)]
    return "\n".join(head) + "\n"


def _claims(table: dict[str, Any]) -> list[str]:
    speed = speed_up(table, ALL_SEVEN)
    speed_verdict = "–" if speed is None else ("met" if speed >= SPEED_CLAIM else "not met")
    speed_text = f"medians {_times(speed)} (means {_times(speed_up(table, ALL_SEVEN, 'mean'))})"
    everything = table.get(ALL_SEVEN)
    accuracy, accuracy_verdict = "not measured (no accuracy series in the shards)", "–"
    if everything and everything["accuracy_last_week"]["mean"] is not None:
        last = everything["accuracy_last_week"]
        accuracy = f"{_ratio(everything['accuracy_first_week'])} → {_ratio(last)}"
        accuracy_verdict = "met" if last["mean"] >= ACCURACY_CLAIM else "not met"
    return [
        "**The customer's claims, defined before measuring.**",
        "",
        "| claim | definition | measured (all seven loops) | verdict |",
        "|---|---|---|---|",
        '| "10× learning speed" | hours until a truly best new creative holds the largest share '
        "of its campaign (hours_to_lead_new_best), median pooled over seeds: Thompson alone's ÷ "
        f"all seven's; met at ≥ {SPEED_CLAIM:.0f}× | {speed_text} | {speed_verdict} |",
        '| "accuracy 70% → 90%+" | headline accuracy (1 − impression-weighted relative error, '
        "per ad and day) in the first week against the last week, all seven loops; met when the "
        f"last week's mean ≥ {ACCURACY_CLAIM} | {accuracy} | {accuracy_verdict} |",
    ]


def _machine_time(
    data: dict[str, Any], projected: dict[str, float | None] | None, design_shards: int
) -> list[str]:
    wall, cpu = data["seconds"], data.get("cpu_seconds") or 0.0
    days = ", ".join(str(d) for d in data["days"]) or "?"
    found = (
        f"Machine time of the {data['shards']} shards found (the sum of each shard's own "
        f"seconds): {wall / 3600:.2f} h wall ({wall:,.0f} s), {cpu / 3600:.2f} h CPU "
        f"({cpu:,.0f} s; wall exceeds CPU when the machine is shared)."
    )
    if not projected or projected.get("seconds") is None:
        return [found]
    cpu_projected = projected.get("cpu_seconds")
    cpu_text = f", {cpu_projected / 3600:.2f} h CPU" if cpu_projected else ""
    return [
        found + f" Projected full design at these shards' length ({days} days; {design_shards} "
        "shards, each set at its mean per shard found here): "
        f"{projected['seconds'] / 3600:.2f} h wall{cpu_text}."
    ]


SUMMARY_ROWS = ("uniform", "marginal_oracle")  # the references the summary keeps


def summary_markdown(datas: list[dict[str, Any]]) -> str:
    """One short table over the scenarios run so far (the README's): each set's clicks per
    dollar and cold start against Thompson alone, and its share of the marginal oracle."""
    lines = [
        "| scenario | set | seeds | clicks/$ ÷ Thompson alone | first 72 h of new ads "
        "÷ Thompson | share of the marginal oracle |",
        "|---|---|---|---|---|---|",
    ]
    for data in datas:
        for slug, row in data["table"].items():
            if slug in {prefix.rstrip("_") for prefix, _ in REFERENCES} - set(SUMMARY_ROWS):
                continue
            label = str(row["label"]).split(" (")[0]
            seeds = len(row["seeds"]) if slug not in SUMMARY_ROWS else row["paired"]
            lines.append(
                f"| {data['scenario']} | {label} | {seeds} | {_ratio(row['cpd'])} | "
                f"{_ratio(row['cold_start'])} | {_ratio(row['share_of_marginal_oracle'])} |"
            )
    return "\n".join(lines) + "\n"
