"""Benchmark of loop 6 on the simulated market (synthetic data): drift detection, accuracy
and NE around an injected concept drift, and the data-health breaker.

* Detection: a 12-account market at uniform budgets; on day 7 (hour 168) the top 4 global gene
  effects flip sign (``GeneShift``). The predictor under watch is the simple one the brief names:
  each variant's discounted posterior mean CTR as of the hour (half-life 72 h, shrunk to its
  account's discounted CTR with 200 pseudo-impressions), predicting the next 24 hours. Every hour
  the windows that just closed are scored per account with ``stream_statistics`` and fed to the
  service's Page-Hinkley defaults (loss stream "up", calibration stream "both"). Reported: the
  detection delay per account (hours from the shift to the first alarm), and false alarms per
  account-month on the same market without the shift (30 days, several seeds).
* Accuracy and NE (per account, pooled over its ads' 24-hour windows): the day before the
  shift, the day after it, and the day after the alarm with and without a retrain (the retrain
  restarts the predictor from the last 24 hours only, the "challenger on recent data").
* Breaker: one simulated account through the real service (``validate_and_maybe_retrain`` on a
  SQLite file) for 4 days of healthy data and then 12 hours whose clicks never arrive
  (impressions continue): retrains and alerts with the breaker on, and, as the counterfactual,
  with it off.

Run: ``python -m benchmarks.bench_drift [--quick]``.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from adflywheel.core.domain import HourlyActual
from adflywheel.loops.monitor import (
    Direction,
    PageHinkleyParams,
    PageHinkleyState,
    accuracy,
    normalized_entropy,
    page_hinkley_update,
    stream_statistics,
)
from adflywheel.services.monitor.service import MonitorSettings, validate_and_maybe_retrain
from adflywheel.sim.market import GeneShift, MarketConfig, SimulatedMarket
from adflywheel.store.accounts import create_account
from adflywheel.store.actuals import upsert_actuals
from adflywheel.store.catalog import sync_catalog, variant_ids_by_external
from adflywheel.store.engine import make_engine, make_session_factory, transaction, upgrade
from adflywheel.store.models import Prediction

Array = NDArray[np.float64]
HALF_LIFE, PSEUDO, WINDOW, WARMUP = 72.0, 200.0, 24, 48
LOSS = MonitorSettings().loss_detector  # the service's defaults
CAL = MonitorSettings().calibration_detector
TRADE_OFF = ((0.5, 25.0), (0.5, 50.0), (1.0, 25.0), (1.0, 50.0), (1.5, 50.0))


@dataclass
class Delivery:
    impressions: Array  # (hours, n)
    clicks: Array
    account_of: NDArray[np.int64]
    n_accounts: int


def _deliver(config: MarketConfig, hours: int) -> Delivery:
    market = SimulatedMarket(config)
    imps, clicks = np.zeros((hours, config.n_variants)), np.zeros((hours, config.n_variants))
    for h in range(hours):
        market.step()
        record = market.history(h)
        assert record is not None
        imps[h], clicks[h] = record.impressions, record.clicks
    account_of = np.repeat(np.arange(config.n_accounts), config.n_variants // config.n_accounts)
    return Delivery(imps, clicks, account_of, config.n_accounts)


def _predictions(d: Delivery, restart_at: dict[int, int] | None = None) -> Array:
    """p[t] = each variant's discounted posterior mean from the hours before t. With
    ``restart_at`` {account: hour}, that account forgets everything before ``hour - 24``."""
    hours, n = d.impressions.shape
    g = 0.5 ** (1.0 / HALF_LIFE)
    s_n, s_c = np.zeros(n), np.zeros(n)
    out = np.zeros((hours, n))
    restart_at = restart_at or {}
    resets = {h - WINDOW: a for a, h in restart_at.items()}
    for t in range(hours):
        if t in resets:
            mask = d.account_of == resets[t]
            s_n[mask], s_c[mask] = 0.0, 0.0
        acc_n = np.bincount(d.account_of, s_n, d.n_accounts)
        acc_c = np.bincount(d.account_of, s_c, d.n_accounts)
        prior = np.where(acc_n > 0, acc_c / np.maximum(acc_n, 1), 0.01)[d.account_of]
        out[t] = (s_c + PSEUDO * prior) / (s_n + PSEUDO)
        s_n, s_c = g * s_n + d.impressions[t], g * s_c + d.clicks[t]
    return out


def _window(d: Delivery, t: int) -> tuple[Array, Array]:
    return d.impressions[t : t + WINDOW].sum(axis=0), d.clicks[t : t + WINDOW].sum(axis=0)


def _streams(d: Delivery, p: Array) -> dict[int, Array]:
    """Per account, the (loss, calibration) statistics of the windows closing each hour."""
    hours = d.impressions.shape[0]
    out: dict[int, list[tuple[float, float]]] = {a: [] for a in range(d.n_accounts)}
    for t in range(WARMUP, hours - WINDOW + 1):
        n, c = _window(d, t)
        for a in range(d.n_accounts):
            m = (d.account_of == a) & (n > 0)
            out[a].append(stream_statistics(p[t][m], n[m], c[m]) if m.any() else (0.0, 0.0))
    return {a: np.array(v) for a, v in out.items()}


def _alarms(
    streams: dict[int, Array], loss: PageHinkleyParams = LOSS, cal: PageHinkleyParams = CAL
) -> dict[int, list[int]]:
    """Alarm hours (when the window closed) per account, both streams, resetting as the service."""
    out: dict[int, list[int]] = {}
    for a, values in streams.items():
        s_loss, s_cal, hits = PageHinkleyState(), PageHinkleyState(), []
        for i, (loss_z, cal_z) in enumerate(values):
            hit = page_hinkley_update(s_loss, float(loss_z), loss) is not None
            hit = (page_hinkley_update(s_cal, float(cal_z), cal) is not None) or hit
            if hit:
                hits.append(WARMUP + i + WINDOW)
                s_loss.reset()
                s_cal.reset()
        out[a] = hits
    return out


def _quality(d: Delivery, p: Array, a: int, start: int, end: int) -> tuple[float, float]:
    """Accuracy and NE of account ``a`` over the windows closing in ``[start, end)``."""
    ps, ns, cs = [], [], []
    for close in range(max(start, WINDOW), min(end, d.impressions.shape[0] + 1)):
        n, c = _window(d, close - WINDOW)
        m = (d.account_of == a) & (n > 0)
        ps.append(p[close - WINDOW][m])
        ns.append(n[m])
        cs.append(c[m])
    pp, nn, cc = np.concatenate(ps), np.concatenate(ns), np.concatenate(cs)
    lo = max(start - WINDOW - 168, 0)
    m = d.account_of == a
    bg = d.clicks[lo : start - WINDOW, m].sum() / max(
        d.impressions[lo : start - WINDOW, m].sum(), 1
    )
    acc = accuracy(pp, nn, cc)
    return (float("nan") if acc is None else acc), normalized_entropy(pp, nn, cc, float(bg))


def detection(
    seeds: tuple[int, ...],
    days: int,
    shift_day: int,
    top_k: int,
    factor: float,
    budget: int = MarketConfig().campaign_daily_budget_minor,
) -> dict[str, Any]:
    shift = shift_day * 24
    delays: list[float] = []
    missed, pre_false = 0, 0
    before, after, no_retrain, retrained = [], [], [], []
    for seed in seeds:
        config = MarketConfig(
            seed=seed,
            gene_shift=GeneShift(shift, top_k, factor),
            campaign_daily_budget_minor=budget,
        )
        d = _deliver(config, days * 24)
        p = _predictions(d)
        alarms = _alarms(_streams(d, p))
        first: dict[int, int] = {}
        for a, hours in alarms.items():
            pre_false += sum(1 for h in hours if h < shift)
            post = [h for h in hours if h >= shift]
            if post:
                first[a] = post[0]
                delays.append(post[0] - shift)
            else:
                missed += 1
        p_retrained = _predictions(d, first)
        for a in range(d.n_accounts):
            before.append(_quality(d, p, a, shift - 24, shift))
            after.append(_quality(d, p, a, shift + 24, shift + 48))
            if a in first and first[a] + 48 <= days * 24:
                no_retrain.append(_quality(d, p, a, first[a] + 24, first[a] + 48))
                retrained.append(_quality(d, p_retrained, a, first[a] + 24, first[a] + 48))
    n_accounts = len(seeds) * 12

    def med(rows: list[tuple[float, float]], i: int) -> float:
        return round(float(np.nanmedian([r[i] for r in rows])), 4) if rows else float("nan")

    return {
        "shift": f"top {top_k} gene effects x {factor} at hour {shift}",
        "campaign_daily_budget_minor": budget,
        "accounts": n_accounts,
        "detected": n_accounts - missed,
        "delay_hours_median": float(np.median(delays)) if delays else None,
        "delay_hours_p25_p75": [float(np.percentile(delays, q)) for q in (25, 75)]
        if delays
        else None,
        "detected_within_48h": sum(1 for x in delays if x <= 48),
        "false_alarms_before_shift": pre_false,
        "accuracy_median": {
            "day_before": med(before, 0),
            "day_after": med(after, 0),
            "after_alarm_no_retrain": med(no_retrain, 0),
            "after_alarm_retrained": med(retrained, 0),
        },
        "ne_median": {
            "day_before": med(before, 1),
            "day_after": med(after, 1),
            "after_alarm_no_retrain": med(no_retrain, 1),
            "after_alarm_retrained": med(retrained, 1),
        },
    }


def false_alarms(
    seeds: tuple[int, ...], days: int, budget: int = MarketConfig().campaign_daily_budget_minor
) -> dict[str, Any]:
    """Alarms on the market without the injected shift, for the defaults and a trade-off grid."""
    streams = []
    for seed in seeds:
        d = _deliver(MarketConfig(seed=seed, campaign_daily_budget_minor=budget), days * 24)
        streams.append(_streams(d, _predictions(d)))
    account_months = sum(len(s) for s in streams) * (days * 24 - WARMUP - WINDOW) / (30 * 24)

    def rate(loss: PageHinkleyParams, cal: PageHinkleyParams) -> float:
        alarms = sum(len(h) for s in streams for h in _alarms(s, loss, cal).values())
        return round(alarms / account_months, 3)

    grid = {
        f"delta {dl}, threshold {th}": rate(
            PageHinkleyParams(delta=dl, threshold=th, direction=Direction.UP),
            PageHinkleyParams(delta=dl, threshold=th),
        )
        for dl, th in TRADE_OFF
    }
    return {
        "account_months": round(account_months, 2),
        "per_account_month_defaults": rate(LOSS, CAL),
        "per_account_month_grid": grid,
    }


def breaker(hours_ok: int = 96, hours_broken: int = 12) -> dict[str, Any]:
    """The real service on a SQLite file: healthy days, then a feed whose clicks vanish."""
    return {
        "breaker_on": _breaker_arm(True, hours_ok, hours_broken),
        "breaker_off": _breaker_arm(False, hours_ok, hours_broken),
    }


def _breaker_arm(enabled: bool, hours_ok: int, hours_broken: int) -> dict[str, Any]:
    config = MarketConfig(
        seed=11, n_accounts=1, campaigns_per_account=4, campaign_daily_budget_minor=20_000
    )
    market = SimulatedMarket(config)
    d = _deliver(config, hours_ok + hours_broken)
    p = _predictions(d)
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'b.db'}")
        upgrade(engine)
        factory = make_session_factory(engine)
        platform = market.platform(market.accounts()[0])
        start = config.start
        with transaction(factory) as session:
            account_id = create_account(session, "sim", start).id
            sync_catalog(
                session,
                account_id,
                platform.list_campaigns(),
                platform.list_ad_sets(),
                platform.list_ads(),
                start,
            )
            ids = variant_ids_by_external(session, account_id)
        ads = list(market.ad_ids)
        calls: list[tuple[datetime, str]] = []
        alerts: list[str] = []

        def retrain(factory: Any, account: int, now: datetime, reason: str) -> dict[str, Any]:
            calls.append((now, reason))
            return {"fake": True}

        settings = MonitorSettings(breaker_enabled=enabled)
        broken_at = hours_ok
        tripped_at = None
        for h in range(hours_ok + hours_broken):
            clicks = d.clicks[h] if h < broken_at else np.zeros_like(d.clicks[h])
            rows = [
                HourlyActual(ad, start + timedelta(hours=h), int(d.impressions[h, i]),
                             int(clicks[i]), 0, 0)
                for i, ad in enumerate(ads)
            ]  # fmt: skip
            with transaction(factory) as session:
                upsert_actuals(session, account_id, rows, source="sim", now=start)
                for i, ad in enumerate(ads):
                    t0 = start + timedelta(hours=h + 1)
                    session.add(
                        Prediction(
                            account_id=account_id, variant_id=ids[ad], model_name="ensemble",
                            metric="ctr", value=float(p[h + 1 if h + 1 < len(p) else h, i]),
                            predicted_at=t0, window_start=t0,
                            window_end=t0 + timedelta(hours=WINDOW),
                        )
                    )  # fmt: skip
            now = start + timedelta(hours=h + 1)
            result = validate_and_maybe_retrain(
                factory,
                account_id,
                now,
                retrain=retrain,
                alerts=lambda k, m, _d: alerts.append(f"{k}: {m}"),
                settings=settings,
            )
            accuracy_at_end = result["accuracy"]
            if result["breaker"]["open"] and tripped_at is None and h >= broken_at:
                tripped_at = h + 1 - broken_at
        engine.dispose()
    broken = start + timedelta(hours=broken_at)
    return {
        "retrains_before_break": sum(1 for t, _ in calls if t <= broken),
        "retrains_during_broken_feed": sum(1 for t, _ in calls if t > broken),
        "retrain_hours": [(int((t - start).total_seconds() // 3600), r) for t, r in calls],
        "hours_to_trip": tripped_at,
        "headline_accuracy_at_end": accuracy_at_end,
        "alerts": sorted({a.split(":")[0] for a in alerts}),
    }


def run(quick: bool = False) -> dict[str, Any]:
    started = time.perf_counter()
    seeds = (1, 2) if quick else (1, 2, 3, 4, 5)
    result = {
        "synthetic": True,
        "drift_day_7_flip_top4": detection(seeds, 10 if quick else 12, 7, 4, -1.0),
        "drift_day_7_reverse_top6_x2": detection(seeds, 10 if quick else 12, 7, 6, -2.0),
        "no_drift_30_days": false_alarms(seeds if not quick else (1,), 8 if quick else 30),
        "drift_day_7_flip_top4_budget_x10": detection(
            seeds, 10 if quick else 12, 7, 4, -1.0, budget=100_000
        ),
        "no_drift_30_days_budget_x10": false_alarms(
            seeds if not quick else (1,), 8 if quick else 30, budget=100_000
        ),
        "breaker": breaker(48 if quick else 96, 12),
    }
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


if __name__ == "__main__":
    from benchmarks._cli import print_figures

    print_figures(run, __doc__, "two seeds, shorter runs")
