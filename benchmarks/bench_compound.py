"""The compound learner (loop 5) on the simulated market: synthetic data, never real ads.

1. Accuracy, time-forward: each seed's market runs ``days`` days at uniform budgets; the test
   window is the last 24 h. Every predictor predicts it from what was known at its start
   (XGBoost trained on earlier rows only; Thompson's discounted posterior; the DNA patterns of
   earlier totals); the ensemble's weights were learnt on the 24 h before (never on the test).
   Log-loss, NE (against the training base rate), headline accuracy (1 − impression-weighted
   relative error) and calibration (expected / observed clicks), pooled over the accounts.
   Cold start: ads held back until the test window (never seen) against the niche base rate.
2. ``thompson+compound`` against ``thompson`` through the harness, with two new variants per
   campaign launched on day 7: clicks per dollar over their first 72 h and over the whole run.
3. Speed: ``POST /api/ml/compound/predict`` for one ad against a uvicorn server in a subprocess
   under a concurrent httpx client; batch prediction of 100,000 variants in the pure core.

Seeds, days and sizes are parameters (``run(quick=True)`` is the smoke mode).
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from sqlalchemy import select

from adflywheel.core.clock import floor_hour
from adflywheel.core.settings import Settings
from adflywheel.loops.bandit import AllocationSettings, CampaignEvidence, VariantEvidence
from adflywheel.loops.compound.ensemble import (
    MODELS,
    EnsembleWeights,
    combine_many,
    measures,
)
from adflywheel.loops.compound.evaluation import log_loss
from adflywheel.loops.compound.features import pre_launch_context
from adflywheel.loops.compound.predictors import dna_pattern_prediction, thompson_predictions
from adflywheel.services.compound import service as cs
from adflywheel.services.compound.training import (
    TrainOptions,
    load_champion,
    promote,
    train_challenger_and_gate,
)
from adflywheel.services.dna.service import variant_dna
from adflywheel.sim.harness import SimulationSpec, simulate
from adflywheel.sim.market import MarketConfig, SimulatedMarket
from adflywheel.store.accounts import create_account, issue_key
from adflywheel.store.actuals import upsert_actuals
from adflywheel.store.catalog import sync_catalog
from adflywheel.store.engine import make_engine, make_session_factory, transaction, upgrade
from adflywheel.store.models import Account, Variant
from adflywheel.store.queries import variant_totals

HOUR = timedelta(hours=1)
LATE = 2  # new ads per campaign


# -- data ---------------------------------------------------------------------------------------


def seed_store(url: str, config: MarketConfig, hours: int, late_hour: int | None) -> dict[str, Any]:
    """Run the market ``hours`` hours at uniform budgets (the last ``LATE`` ad sets of each
    campaign paused until ``late_hour``) and load catalogue and actuals into a fresh store."""
    market = SimulatedMarket(config)
    late = [c.ad_set_ids[-LATE:] for a in market.campaign_structure() for c in a.campaigns]
    for h in range(hours):
        if late_hour is not None and h in (0, late_hour):
            for ids in late:
                for ad_set in ids:
                    market.set_ad_set_status(ad_set, h >= late_hour)
        market.step()
    engine = make_engine(url)
    upgrade(engine)
    factory = make_session_factory(engine)
    accounts: dict[int, str | None] = {}
    with transaction(factory) as session:
        for external in market.accounts():
            platform = market.platform(external)
            info = platform.account()
            account = create_account(
                session, f"sim-{external}", config.start, platform="simulated",
                platform_account_id=external, category=info.category, timezone=info.timezone,
            )  # fmt: skip
            sync_catalog(
                session, account.id, platform.list_campaigns(), platform.list_ad_sets(),
                platform.list_ads(), config.start,
            )  # fmt: skip
            rows = platform.fetch_insights(config.start, market.current_hour)
            upsert_actuals(session, account.id, rows, source="simulated", now=market.current_hour)
            accounts[account.id] = info.category
    return {"factory": factory, "engine": engine, "accounts": accounts, "end": market.current_hour}


def _accuracy(seed: int, days: int, accounts: int) -> dict[str, Any]:
    """One seed's time-forward test: per-predictor and ensemble measures, cold start."""
    config = MarketConfig(
        seed=seed, n_accounts=accounts, campaigns_per_account=3, variants_per_campaign=8,
        campaign_daily_budget_minor=40_000, retention_hours=None,
    )  # fmt: skip
    hours = days * 24
    with tempfile.TemporaryDirectory(prefix="bench-compound-") as folder:
        world = seed_store(f"sqlite:///{folder}/a.db", config, hours, late_hour=hours - 24)
        factory, end = world["factory"], world["end"]
        test_start = end - 24 * HOUR
        settings = cs.CompoundSettings(seed=seed)
        rows: list[dict[str, Any]] = []
        methods: dict[str, int] = {}
        niche_train: dict[str | None, list[int]] = {}
        with factory() as session:
            for account_id, niche in world["accounts"].items():
                learnt, _ = cs.learn_account_weights(
                    session, account_id, test_start, settings, include_xgb=True
                )
                label = learnt.method + (
                    f":{learnt.metrics.get('best_single')}"
                    if learnt.method == "best_single"
                    else ""
                )
                methods[label] = methods.get(label, 0) + 1
                model, _ = cs.holdout_model(session, account_id, test_start, settings)
                before = variant_totals(session, account_id, until=test_start)
                seen = {t.variant_id for t in before if t.impressions > 0}
                acc = niche_train.setdefault(niche, [0, 0])
                acc[0] += sum(t.impressions for t in before)
                acc[1] += sum(t.clicks for t in before)
                test = [
                    t for t in variant_totals(session, account_id, since=test_start, until=end)
                    if t.impressions > 0
                ]  # fmt: skip
                ids = [t.variant_id for t in test]
                preds = cs.base_predictions(
                    session, account_id, test_start, ids, xgb=model, settings=settings
                )
                for t in test:
                    members = preds[t.variant_id]
                    ens = cs.ensemble_of(members, learnt, unseen=t.variant_id not in seen)
                    row = {m: members[m].ctr if m in members else np.nan for m in MODELS}
                    row.update(
                        n=t.impressions, k=t.clicks, niche=niche, cold=t.variant_id not in seen,
                        ensemble=ens.prediction if ens else np.nan,
                    )  # fmt: skip
                    rows.append(row)
        world["engine"].dispose()
    base_train = sum(v[1] for v in niche_train.values()) / sum(v[0] for v in niche_train.values())
    niche_rate = {k: v[1] / v[0] for k, v in niche_train.items()}
    return {
        "seed": seed,
        "methods": methods,
        "warm": _measure([r for r in rows if not r["cold"]], base_train, niche_rate),
        "cold": _measure([r for r in rows if r["cold"]], base_train, niche_rate),
    }


def _measure(
    rows: list[dict[str, Any]], base: float, niche: dict[str | None, float]
) -> dict[str, Any]:
    names = [*MODELS, "ensemble"]
    cols = {m: np.array([r[m] for r in rows], dtype=np.float64) for m in names}
    n = np.array([r["n"] for r in rows], dtype=np.float64)
    k = np.array([r["k"] for r in rows], dtype=np.float64)
    p_niche = np.array([niche[r["niche"]] for r in rows])
    answered = {m: np.isfinite(cols[m]) for m in names}
    common = np.logical_and.reduce([answered[m] for m in names if answered[m].any()])
    out: dict[str, Any] = {"rows": len(rows), "rows_all_answered": int(common.sum())}
    if common.sum() == 0 or k[common].sum() == 0:
        return out
    niche_loss = log_loss(p_niche[common], n[common], k[common])
    out["niche_base_rate_log_loss"] = niche_loss
    for m in names:
        if not answered[m].any():
            out[m] = None
            continue
        found = measures(cols[m][common], n[common], k[common], base)
        found["vs_niche_base_rate"] = found["log_loss"] / niche_loss
        out[m] = found
    return out


def _harness(args: tuple[str, int, int, int]) -> dict[str, Any]:
    policy, seed, days, launch = args
    spec = SimulationSpec(
        days=days, seed=seed, policy=policy, variants_per_campaign=6,
        late_variants_per_campaign=LATE, late_launch_hour=launch,
    )  # fmt: skip
    started = time.perf_counter()
    result = simulate(spec)
    end = min(launch + 72, days * 24)
    return {
        "policy": policy,
        "seed": seed,
        "first_72h": result.policy.window_clicks_per_dollar(launch, end),
        "first_72h_uniform": result.uniform.window_clicks_per_dollar(launch, end),
        "whole_run": result.policy.clicks_per_dollar,
        "whole_run_uniform": result.uniform.clicks_per_dollar,
        "errors": len(result.cycle_errors),
        "seconds": round(time.perf_counter() - started, 1),
    }


# -- speed --------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _load(
    url: str, key: str, body: dict[str, Any], total: int, concurrency: int
) -> dict[str, Any]:
    latencies: list[float] = []
    queue = iter(range(total))
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=url, headers=headers, limits=limits, timeout=60
    ) as client:
        for _ in range(20):  # warm-up: caches, model load
            (await client.post("/api/ml/compound/predict", json=body)).raise_for_status()

        async def worker() -> None:
            for _ in queue:
                t = time.perf_counter()
                response = await client.post("/api/ml/compound/predict", json=body)
                response.raise_for_status()
                latencies.append(time.perf_counter() - t)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    ms = np.array(latencies) * 1000.0
    return {
        "requests": total,
        "concurrency": concurrency,
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "requests_per_s": round(total / wall, 1),
    }


def _speed(requests: int, concurrency: int) -> dict[str, Any]:
    """A server over a store with one simulated account (7 days, 16 ads), all three models."""
    now = floor_hour(datetime.now(UTC))
    config = MarketConfig(
        seed=11, n_accounts=1, campaigns_per_account=2, variants_per_campaign=8,
        campaign_daily_budget_minor=60_000, start=now - 7 * 24 * HOUR, retention_hours=None,
    )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-compound-api-") as folder:
        url = f"sqlite:///{folder}/api.db"
        world = seed_store(url, config, 7 * 24, late_hour=None)
        factory = world["factory"]
        account_id = next(iter(world["accounts"]))
        settings = Settings(data_dir=Path(folder), database_url=url)
        decision = train_challenger_and_gate(
            factory, settings, account_id, now, "benchmark", options=TrainOptions(seed=11)
        )
        forced = False
        if decision.version_id is not None and not decision.promoted:
            with transaction(factory) as session:  # to time all three predictors (labelled)
                promote(session, decision.version_id, "benchmark", "time all three models",
                        account_id=account_id, now=now)  # fmt: skip
            forced = True
        cs.update_weights(factory, account_id, now)
        with transaction(factory) as session:
            account = session.get(Account, account_id)
            assert account is not None
            key = issue_key(session, account, now).key
            ad = session.scalar(
                select(Variant.external_id).where(Variant.account_id == account_id).limit(1)
            )
            assert ad is not None
        with factory() as session:
            champion = load_champion(session, account_id) is not None
        world["engine"].dispose()
        port = _free_port()
        env = {
            **os.environ,
            "ADFLYWHEEL_DATABASE_URL": url,
            "ADFLYWHEEL_DATA_DIR": folder,
            "ADFLYWHEEL_SCHEDULER_ENABLED": "false",
        }
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "benchmarks.bench_compound:_app",
             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(200):
                try:
                    httpx.get(f"{base}/health", timeout=1)
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
            body = {"variant_id": ad}
            first = httpx.post(
                f"{base}/api/ml/compound/predict", json=body,
                headers={"Authorization": f"Bearer {key}"}, timeout=60,
            ).json()  # fmt: skip
            load = asyncio.run(_load(base, key, body, requests, concurrency))
        finally:
            server.terminate()
            server.wait(timeout=30)
    return {
        **load,
        "models_used": first.get("models_used"),
        "method": first.get("method"),
        "xgboost_champion": champion,
        "champion_forced_for_timing": forced,
        "gate_decision": decision.status,
        "server": "uvicorn, 1 worker, SQLite",
    }


def _app() -> Any:
    """The app factory uvicorn imports in the server subprocess (settings from the env)."""
    from adflywheel.api.app import create_app

    return create_app(Settings())


def _batch(n_variants: int) -> dict[str, Any]:
    """100,000 variants: Thompson posteriors, XGBoost 24-hour windows, DNA patterns and the
    blend, in the pure core (one process), each part timed."""
    rng = np.random.default_rng(0)
    per = 10
    campaigns = []
    for c in range(n_variants // per):
        variants = []
        for v in range(per):
            imps = float(rng.integers(0, 50_000))
            variants.append(
                VariantEvidence(f"{c}:{v}", imps, float(rng.binomial(int(imps), 0.012)), 0)
            )
        campaigns.append(CampaignEvidence(str(c), tuple(variants)))
    timings: dict[str, float] = {}
    t = time.perf_counter()
    thompson = thompson_predictions(campaigns, AllocationSettings())
    timings["thompson"] = time.perf_counter() - t

    # A model trained on a simulated account; 100,000 creatives with random genes.
    config = MarketConfig(seed=3, n_accounts=1, campaigns_per_account=3, variants_per_campaign=8,
                          campaign_daily_budget_minor=40_000, retention_hours=None)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-compound-batch-") as folder:
        world = seed_store(f"sqlite:///{folder}/b.db", config, 7 * 24, late_hour=None)
        account_id = next(iter(world["accounts"]))
        with world["factory"]() as session:
            model, _ = cs.holdout_model(session, account_id, world["end"], cs.DEFAULT)
            found = cs.account_patterns(session, account_id, world["end"])
            variants = session.scalars(select(Variant).where(Variant.account_id == account_id))
            dnas = [variant_dna(session, v) for v in variants]
        world["engine"].dispose()
    assert model is not None
    genes, vectors = [d.genes for d in dnas], [d.vector for d in dnas]
    pick = rng.integers(0, len(dnas), n_variants)
    at = world["end"]
    t = time.perf_counter()
    contexts = [pre_launch_context(1, vectors[i], at) for i in pick]
    xgb = cs.xgb_window(model, contexts, 24)
    timings["xgboost_24h"] = time.perf_counter() - t
    t = time.perf_counter()
    dna = np.array(
        [p.ctr if (p := dna_pattern_prediction(found, genes[i])) else np.nan for i in pick]
    )
    timings["dna_pattern"] = time.perf_counter() - t
    t = time.perf_counter()
    ids = [v.id for c in campaigns for v in c.variants]
    tp = np.array([thompson[i].ctr for i in ids])
    ts = np.array([thompson[i].sd_logit or 0.0 for i in ids])
    learnt = EnsembleWeights({"thompson": 0.5, "xgboost": 0.3, "dna_pattern": 0.2}, slope=1.1)
    blended, _ = combine_many(
        {"thompson": tp, "xgboost": xgb, "dna_pattern": dna}, {"thompson": ts}, learnt
    )
    timings["blend"] = time.perf_counter() - t
    total = sum(timings.values())
    assert np.isfinite(blended).all()
    return {
        "variants": n_variants,
        "seconds": {k: round(v, 3) for k, v in timings.items()},
        "total_seconds": round(total, 3),
        "variants_per_s": round(n_variants / total),
    }


def run(
    quick: bool = False,
    *,
    seeds: tuple[int, ...] | None = None,
    days: int | None = None,
    accounts: int = 4,
    harness: bool = True,
    speed: bool = True,
) -> dict[str, Any]:
    seeds = seeds or ((1, 2) if quick else (1, 2, 3, 4, 5))
    days = days or (4 if quick else 14)
    out: dict[str, Any] = {"synthetic": True, "seeds": list(seeds), "days": days}
    with ProcessPoolExecutor(2) as pool:
        jobs = [(s, days, accounts) for s in seeds]
        out["accuracy"] = [_log("accuracy", r) for r in pool.map(_accuracy_job, jobs)]
    out["accuracy_mean"] = _log("accuracy_mean", _mean_accuracy(out["accuracy"]))
    if speed:
        out["api"] = _log("api", _speed(200 if quick else 2000, 8 if quick else 16))
        out["batch"] = _log("batch", _batch(10_000 if quick else 100_000))
    if harness:
        launch = 48 if quick else 7 * 24
        # Spawned, not forked: the parent has run XGBoost's OpenMP threads by now, and a forked
        # child that trains XGBoost again can hang on their inherited locks.
        with ProcessPoolExecutor(2, mp_context=get_context("spawn")) as pool:
            runs = [(p, s, days, launch) for s in seeds for p in ("thompson", "thompson+compound")]
            out["harness"] = [_log("harness", r) for r in pool.map(_harness, runs)]
    return out


def _accuracy_job(args: tuple[int, int, int]) -> dict[str, Any]:
    return _accuracy(*args)


def _log(part: str, result: Any) -> Any:
    """Each figure to stderr as it arrives, so a long run that is stopped keeps what it had."""
    import json

    print(json.dumps({part: result}, default=str), file=sys.stderr, flush=True)
    return result


def _mean_accuracy(per_seed: list[dict[str, Any]]) -> dict[str, Any]:
    mean: dict[str, Any] = {}
    for part in ("warm", "cold"):
        mean[part] = {}
        for m in (*MODELS, "ensemble"):
            values = [s[part][m] for s in per_seed if s[part].get(m)]
            if values:
                mean[part][m] = {
                    k: round(statistics.fmean(v[k] for v in values), 5)
                    for k in ("log_loss", "ne", "accuracy", "calibration", "vs_niche_base_rate")
                }
    return mean


def main() -> None:
    import argparse
    import json

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int, nargs="*")
    parser.add_argument("--days", type=int)
    parser.add_argument("--no-harness", action="store_true")
    parser.add_argument("--no-speed", action="store_true")
    args = parser.parse_args()
    figures = run(
        quick=args.quick,
        seeds=tuple(args.seeds) if args.seeds else None,
        days=args.days,
        harness=not args.no_harness,
        speed=not args.no_speed,
    )
    print(json.dumps(figures, indent=2, default=str))


if __name__ == "__main__":
    main()
