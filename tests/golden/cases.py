"""Golden outputs: what the service produces on the simulated market (synthetic data), recorded so
that a change meant to move no behaviour can prove it did not.

``make golden`` rewrites ``data/`` from the current code; a change that moves behaviour on
purpose commits the regenerated files in its own commit, so the diff is reviewed.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

DATA = Path(__file__).parent / "data"
# Keys whose values are wall-clock timings, never behaviour.
TIMING_KEYS = frozenset(
    {"seconds", "elapsed_seconds", "duration_seconds", "started_at", "finished_at"}
)

SIMULATE_POLICIES = (
    "uniform",
    "thompson",
    "thompson_stationary",
    "thompson_promote",
    "thompson+compound",
    "epsilon_greedy",
    "ucb1",
    "loops=2",
    "loops=all",
)
SEEDS = (7, 11)
DAYS = 2
ACCOUNTS = 2


def strip_timings(value: Any) -> Any:
    """Without timings, and every float to 12 significant digits: numpy's vectorised paths
    differ between CPUs in a float's last bits, which is not behaviour (counts, money and ids
    are compared exactly)."""
    if isinstance(value, dict):
        return {k: strip_timings(v) for k, v in value.items() if k not in TIMING_KEYS}
    if isinstance(value, list):
        return [strip_timings(v) for v in value]
    if isinstance(value, float):
        return float(f"{value:.12g}")
    return value


def _dump(value: Any) -> str:
    return json.dumps(strip_timings(value), sort_keys=True, indent=1, default=str) + "\n"


def simulate_output(policy: str, seed: int) -> str:
    """The last stdout line of ``adflywheel simulate --json`` (the CLI users run)."""
    from adflywheel.cli.app import app

    result = CliRunner().invoke(
        app,
        [
            "simulate",
            "--json",
            "--days",
            str(DAYS),
            "--seed",
            str(seed),
            "--accounts",
            str(ACCOUNTS),
            "--policy",
            policy,
        ],
    )
    assert result.exit_code == 0, result.output
    return _dump(json.loads(result.stdout.strip().splitlines()[-1]))


def cycle_reports(seed: int, hours: int = 30) -> str:
    """The reports of a short run of the hourly cycle with every loop on, hour by hour."""
    from adflywheel.core.clock import ManualClock
    from adflywheel.core.settings import Settings
    from adflywheel.cycle.context import CycleDeps, CycleOptions
    from adflywheel.cycle.runner import run_cycle
    from adflywheel.sim.market import MarketConfig, SimulatedMarket
    from adflywheel.store.engine import make_engine, make_session_factory, transaction, upgrade
    from tests.factories.market import bind_market_accounts

    market = SimulatedMarket(
        MarketConfig(seed=seed, n_accounts=2, campaigns_per_account=2, variants_per_campaign=4)
    )
    clock = ManualClock(market.current_hour)
    reports: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/golden.db"
        engine = make_engine(url)
        upgrade(engine)
        factory = make_session_factory(engine)
        settings = Settings(
            data_dir=Path(folder), database_url=url, bandit_seed=seed, scheduler_enabled=False
        )
        with transaction(factory) as session:
            ids = bind_market_accounts(session, market, clock.now(), prefix="golden-", profile=True)
        options = CycleOptions(actuals_lookback_hours=6, loops=frozenset(range(1, 8)))
        for _ in range(hours):
            market.step()
            clock.advance(timedelta(hours=1))
            for external, account_id in ids.items():
                deps = CycleDeps(factory, clock, market.platform(external), settings=settings)
                reports.append(run_cycle(account_id, deps, options).as_dict())
        engine.dispose()
    return _dump(reports)


@dataclass(frozen=True)
class Case:
    name: str
    produce: Callable[[], str]

    @property
    def path(self) -> Path:
        return DATA / f"{self.name}.json"


def _slug(policy: str) -> str:
    return policy.replace("=", "-").replace("+", "-plus-")


CASES: tuple[Case, ...] = (
    *(
        Case(f"simulate-{_slug(p)}-seed{s}", lambda p=p, s=s: simulate_output(p, s))
        for p in SIMULATE_POLICIES
        for s in SEEDS
    ),
    *(Case(f"cycle-seed{s}", lambda s=s: cycle_reports(s)) for s in SEEDS),
)
