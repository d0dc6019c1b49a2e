"""Benchmark of the simulated ad market (synthetic data).

Measures what bounds a large simulation: building the market, one vectorised hour of delivery
(``market.step``) over 1,000 accounts x 50 variants, the platform-facing cost of fetching that
hour's insights for every account, and one oracle-policy hour at market level.

Run: ``python -m benchmarks.bench_simulator [--quick]``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import timedelta

from adflywheel.sim.market import MarketConfig, SimulatedMarket
from benchmarks._cli import print_figures


def _timed(fn: Callable[[], object], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def run(quick: bool = False) -> dict[str, float | int]:
    """Figures for the simulator; ``quick`` uses 100 accounts and fewer repeats."""
    n_accounts = 100 if quick else 1_000
    repeats = 3 if quick else 10
    config = MarketConfig(
        seed=0, n_accounts=n_accounts, campaigns_per_account=5, variants_per_campaign=10
    )
    t0 = time.perf_counter()
    market = SimulatedMarket(config)
    build_s = time.perf_counter() - t0

    market.step()  # warm-up
    step_times = _timed(market.step, repeats)

    accounts = market.accounts()
    platforms = [market.platform(a) for a in accounts]
    rows = 0

    def fetch_last_hour() -> None:
        nonlocal rows
        end = market.current_hour
        start = end - timedelta(hours=1)
        rows = sum(len(p.fetch_insights(start, end)) for p in platforms)

    fetch_times = _timed(fetch_last_hour, max(repeats // 3, 1))
    list_ads_first_s = _timed(lambda: [p.list_ads() for p in platforms], 1)[0]
    list_ads_s = _timed(lambda: [p.list_ads() for p in platforms], 1)[0]

    def oracle_hour() -> None:
        market.set_budgets_bulk(market.evaluation.oracle_budgets())
        market.step()

    oracle_times = _timed(oracle_hour, repeats)
    return {
        "accounts": n_accounts,
        "variants": config.n_variants,
        "build_s": round(build_s, 4),
        "step_median_s": round(statistics.median(step_times), 4),
        "step_max_s": round(max(step_times), 4),
        "fetch_insights_all_accounts_median_s": round(statistics.median(fetch_times), 4),
        "fetch_rows": rows,
        "list_ads_all_accounts_first_s": round(list_ads_first_s, 4),
        "list_ads_all_accounts_cached_s": round(list_ads_s, 4),
        "oracle_hour_median_s": round(statistics.median(oracle_times), 4),
    }


def main() -> None:
    print_figures(run, __doc__, quick_help="100 accounts, fewer repeats")


if __name__ == "__main__":
    main()
