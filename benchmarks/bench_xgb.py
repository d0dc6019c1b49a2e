"""The XGBoost CTR model and its promotion gate on the simulated market (synthetic data only).

Each seed's market runs ``days`` days at uniform budgets and is loaded into a fresh store; then
every account trains a challenger through the registry exactly as the service does
(``train_challenger_and_gate`` at the end of the run: holdout = the last 48 h of creatives held
out by the grouped split, so every holdout creative is one the model never saw; early stopping
on the 48 h before, on other creatives). Reported per seed and pooled: wall time of a whole
account retrain (read, train, score, store), XGBoost's own fit time, and holdout log-loss, NE
and calibration of the model against the account's training base rate, with the gate's verdict.

Run: ``python -m benchmarks.bench_xgb [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from adflywheel.core.settings import Settings
from adflywheel.services.compound.training import TrainOptions, train_challenger_and_gate
from adflywheel.sim.market import MarketConfig, SimulatedMarket
from adflywheel.store.accounts import create_account
from adflywheel.store.actuals import upsert_actuals
from adflywheel.store.catalog import sync_catalog
from adflywheel.store.engine import make_engine, make_session_factory, transaction, upgrade
from adflywheel.store.models import ModelVersion


def _market(seed: int, days: int, accounts: int) -> SimulatedMarket:
    market = SimulatedMarket(
        MarketConfig(
            seed=seed,
            n_accounts=accounts,
            campaigns_per_account=3,
            variants_per_campaign=8,
            campaign_daily_budget_minor=40_000,
            retention_hours=None,
        )
    )
    for _ in range(days * 24):
        market.step()
    return market


def _load(market: SimulatedMarket, url: str) -> tuple[Any, list[int]]:
    engine = make_engine(url)
    upgrade(engine)
    factory = make_session_factory(engine)
    start = market.config.start
    ids: list[int] = []
    with transaction(factory) as session:
        for external in market.accounts():
            platform = market.platform(external)
            info = platform.account()
            account = create_account(
                session,
                f"sim-{external}",
                start,
                platform="simulated",
                platform_account_id=external,
                category=info.category,
                timezone=info.timezone,
            )
            sync_catalog(
                session,
                account.id,
                platform.list_campaigns(),
                platform.list_ad_sets(),
                platform.list_ads(),
                start,
            )
            rows = platform.fetch_insights(start, market.current_hour)
            upsert_actuals(session, account.id, rows, source="simulated", now=market.current_hour)
            ids.append(account.id)
    return engine, ids


def one_seed(
    seed: int, days: int, accounts: int, params: dict[str, Any] | None = None
) -> dict[str, Any]:
    started = time.perf_counter()
    market = _market(seed, days, accounts)
    simulate_s = time.perf_counter() - started
    out: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-xgb-") as folder:
        engine, ids = _load(market, f"sqlite:///{Path(folder) / 'x.db'}")
        settings = Settings(data_dir=Path(folder))
        factory = make_session_factory(engine)
        for account_id in ids:
            t0 = time.perf_counter()
            decision = train_challenger_and_gate(
                factory, settings, account_id, market.current_hour, "benchmark",
                options=TrainOptions(seed=seed, params=params),
            )  # fmt: skip
            wall = time.perf_counter() - t0
            row: dict[str, Any] = {
                "account_id": account_id,
                "status": decision.status,
                "retrain_seconds": round(wall, 3),
            }
            if decision.version_id is not None:
                with factory() as session:
                    version = session.get(ModelVersion, decision.version_id)
                    assert version is not None
                    metrics = version.metrics
                ev = decision.evidence
                row.update(
                    fit_seconds=metrics["train_seconds"],
                    trees=metrics["trees"],
                    train_rows=metrics["rows"]["train"],
                    holdout=ev["holdout"],
                    xgb=ev["challenger_scores"],
                    base_rate=ev["base_rate_scores"],
                    paired_ci=[ev["paired"]["ci_lower"], ev["paired"]["ci_upper"]],
                )
            else:
                row["reason"] = decision.reason
            out.append(row)
        engine.dispose()
    return {"seed": seed, "simulate_seconds": round(simulate_s, 2), "accounts": out}


def _pooled(rows: list[dict[str, Any]], key: str) -> dict[str, float]:
    """Impression-weighted log-loss and NE, and expected / observed clicks, over accounts."""
    n = sum(r[key]["impressions"] for r in rows)
    clicks = sum(r[key]["clicks"] for r in rows)
    loss = sum(r[key]["log_loss"] * r[key]["impressions"] for r in rows) / n
    ne = sum(r[key]["normalised_entropy"] * r[key]["impressions"] for r in rows) / n
    expected = sum(r[key]["calibration"] * r[key]["clicks"] for r in rows)
    return {
        "log_loss": round(loss, 6),
        "normalised_entropy": round(ne, 4),
        "calibration": round(expected / clicks, 4),
        "impressions": n,
        "clicks": clicks,
    }


def run(quick: bool = False) -> dict[str, Any]:
    seeds = [0] if quick else [0, 1, 2, 3, 4]
    days = 7 if quick else 14
    accounts = 2 if quick else 4
    results = [one_seed(s, days, accounts) for s in seeds]
    trained = [a for r in results for a in r["accounts"] if "xgb" in a]
    summary: dict[str, Any] = {
        "synthetic": True,
        "days": days,
        "seeds": seeds,
        "accounts_per_seed": accounts,
        "creatives_per_account": 24,
        "per_seed": results,
        "statuses": {
            s: sum(1 for r in results for a in r["accounts"] if a["status"] == s)
            for s in ("promoted", "refused", "insufficient_data")
        },
    }
    if trained:
        summary["retrain_seconds_median"] = statistics.median(a["retrain_seconds"] for a in trained)
        summary["retrain_seconds_max"] = max(a["retrain_seconds"] for a in trained)
        summary["fit_seconds_median"] = statistics.median(a["fit_seconds"] for a in trained)
        summary["xgb_holdout_pooled"] = _pooled(trained, "xgb")
        summary["base_rate_holdout_pooled"] = _pooled(trained, "base_rate")
        summary["accounts_where_xgb_beats_base_rate"] = sum(
            1 for a in trained if a["xgb"]["log_loss"] < a["base_rate"]["log_loss"]
        )
        summary["accounts_trained"] = len(trained)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print(json.dumps(run(quick=args.quick), indent=2))


if __name__ == "__main__":
    main()
