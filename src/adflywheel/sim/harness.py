"""The evaluation harness: run the service hour by hour against the simulated market.

The policy under test goes through the service's own path (store, platform interface, cycle).
References run on identical markets (same seed) at market level: ``uniform`` (each campaign's
budget split evenly, never changed), ``oracle`` (each hour, each campaign's whole budget on the
variant that is truly best right now, read from the evaluation-only truth) and, when asked for,
``marginal_oracle`` (each hour, each campaign's budget split by true marginal clicks per dollar,
fatigue included: a bound on what learning could still gain). All figures are synthetic: they
come from the simulated market, not from real ads.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from adflywheel.core.clock import ManualClock
from adflywheel.core.domain import AccountMode, Objective, per_dollar
from adflywheel.core.loops import Loop, parse_loops
from adflywheel.core.settings import Settings
from adflywheel.cycle.context import CycleDeps, CycleOptions
from adflywheel.cycle.runner import run_cycle
from adflywheel.loops.promoter import Guardrails
from adflywheel.services.bandit.baselines import POLICIES
from adflywheel.services.bandit.budgets import BudgetPolicy
from adflywheel.services.bandit.policies import THOMPSON_SETTINGS, ThompsonPolicy
from adflywheel.services.compound.priors import CompoundPriors
from adflywheel.services.crosslearn.service import set_settings
from adflywheel.services.promoter.settings import PromoterSettings, store_settings
from adflywheel.sim.coldstart import ColdStartTrace
from adflywheel.sim.market import (
    NICHES,
    AdvertiserPause,
    Collapse,
    GeneShift,
    Launch,
    LearningPhase,
    MarketConfig,
    SimulatedMarket,
)
from adflywheel.sim.metrics import LearningTrace
from adflywheel.sim.truth_priors import TruthPriors, truth_kind
from adflywheel.store.accounts import create_account
from adflywheel.store.engine import make_engine, make_session_factory, transaction, upgrade

HOUR = timedelta(hours=1)
# Policies whose cycle also runs the auto-promoter (loop 7) after the reallocation.
PROMOTING = frozenset({"thompson_promote"})
LOOPS_PREFIX = "loops="
TRUTH_PRIOR = "+truth-prior="  # loops=2+truth-prior=ad: Thompson alone with a perfect prior
# ...+loose: the allocator's guards on a prior lifted (tilt 1: a gated variant may take 0 to 2x
# its fair share; strength 20,000 impressions): what those guards cost a perfect prior.
LOOSE = "+loose"
LOOSE_PRIOR_IMPRESSIONS = 20_000.0


def resolve_policy(name: str, seed: int) -> tuple[BudgetPolicy | None, frozenset[Loop]]:
    """A named policy (it replaces loop 2; Creative DNA runs, the promoter when asked), a
    loop set such as ``loops=2``, ``loops=1,2,3`` or ``loops=all`` (the service's own loops), or
    ``loops=2+truth-prior=ad`` / ``=genes``: Thompson alone fed a perfect prior read from the
    market's truth (``sim.truth_priors``; an evaluation-only upper bound, bound to the run's
    market by ``run_policy``)."""
    if name.startswith(LOOPS_PREFIX) and TRUTH_PRIOR in name:
        return _truth_prior_policy(name, seed)
    if name.startswith(LOOPS_PREFIX):
        return None, parse_loops(name.removeprefix(LOOPS_PREFIX))
    if name not in POLICIES:
        raise ValueError(
            f"unknown policy {name!r}; choose from {sorted(POLICIES)} or a loop set "
            "such as 'loops=2', 'loops=1,2,3', 'loops=all'"
        )
    loops = {Loop.DNA, Loop.PROMOTER} if name in PROMOTING else {Loop.DNA}
    return POLICIES[name](seed), frozenset(loops)


def _truth_prior_policy(name: str, seed: int) -> tuple[BudgetPolicy, frozenset[Loop]]:
    """``loops=2+truth-prior=<kind>``: the service's own Thompson (the seed and settings
    ``step.budget_policy`` gives loop 2 alone) with ``TruthPriors(kind)`` as its prior provider."""
    base, _, kind = name.partition(TRUTH_PRIOR)
    if parse_loops(base.removeprefix(LOOPS_PREFIX)) != {Loop.BANDIT}:
        raise ValueError(
            f"{name!r}: a truth prior runs with Thompson alone, write 'loops=2{TRUTH_PRIOR}<kind>'"
        )
    kind, loose = kind.removesuffix(LOOSE), kind.endswith(LOOSE)
    try:
        provider = TruthPriors(truth_kind(kind))
    except ValueError as error:
        raise ValueError(f"{name!r}: {error}") from None
    if not loose:
        return ThompsonPolicy(seed=seed, prior_provider=provider), frozenset({Loop.BANDIT})
    provider.strength = LOOSE_PRIOR_IMPRESSIONS
    settings = replace(
        THOMPSON_SETTINGS, prior_tilt=1.0, max_prior_impressions=LOOSE_PRIOR_IMPRESSIONS
    )
    policy = ThompsonPolicy(settings=settings, seed=seed, prior_provider=provider)
    return policy, frozenset({Loop.BANDIT})


REFERENCES = ("uniform", "oracle", "marginal_oracle")


@dataclass(frozen=True, slots=True)
class SimulationSpec:
    days: int = 2
    seed: int = 7
    policy: str = "uniform"
    accounts: int = 3
    campaigns_per_account: int = 2
    variants_per_campaign: int = 5
    campaign_daily_budget_minor: int = 20_000
    collapse_best_at_hour: int | None = None
    collapse_factor: float = 0.3
    # New variants: the last ``late_variants_per_campaign`` ad sets of every campaign stay paused
    # until hour ``late_launch_hour`` of the run (0: all run from the start).
    late_variants_per_campaign: int = 0
    late_launch_hour: int = 0
    # Concept drift: from day ``drift_day`` the top gene effects flip sign (GeneShift).
    drift_day: int | None = None
    # The simulated accounts' guardrails, set explicitly: "safe" (today's defaults on autopilot,
    # the account ceiling at its starting daily total) or "legacy" (the service before its
    # money-safety rules: no ceiling, promotions x2 growing campaigns, no edit rules) or
    # "recommend" (the service's defaults as they are: recommend mode, nothing is written).
    guardrails: str = "safe"
    # The learning phase's penalty (the market's default, 0.2, leaves the market as it is);
    # None turns the phase off (the null twin: the market as before the phase was modelled).
    learning_penalty: float | None = LearningPhase().penalty
    # Budget structures (MarketConfig.structures, cycled over campaigns): the default is one ad
    # per ad set with its own budget, the market as it always was.
    structures: tuple[str, ...] = ("ad_set_budgets",)
    ads_per_ad_set: int = 3
    campaign_budget_ads_per_ad_set: int = 1
    # The advertiser pausing ad sets mid-run (MarketConfig.advertiser_pauses).
    advertiser_pauses: tuple[AdvertiserPause, ...] = ()
    # Keep each hour's true value per ad (``market.evaluation.value_at``), for benchmarks.
    record_truth: bool = False
    # Scales every gene effect (MarketConfig.gene_effect_scale): 0 is the null twin (creatives
    # do not matter), 2 a strong twin.
    gene_effect_scale: float = 1.0
    # The references run beside the policy: "uniform" and "oracle" always; "marginal_oracle"
    # only when listed (it adds its totals to the summary).
    references: tuple[str, ...] = ("uniform", "oracle")
    # Ads the advertiser launches mid-run, hidden until then (MarketConfig.launches; see
    # scenarios.churn_spec); runs with launches add the cold-start measures to the summary.
    launches: tuple[Launch, ...] = ()
    niches: tuple[str, ...] = NICHES
    balanced_niches: bool = False

    def market_config(self) -> MarketConfig:
        collapses = (
            (Collapse(at_hour=self.collapse_best_at_hour, factor=self.collapse_factor),)
            if self.collapse_best_at_hour is not None
            else ()
        )
        return MarketConfig(
            seed=self.seed,
            n_accounts=self.accounts,
            campaigns_per_account=self.campaigns_per_account,
            variants_per_campaign=self.variants_per_campaign,
            campaign_daily_budget_minor=self.campaign_daily_budget_minor,
            collapses=collapses,
            gene_shift=GeneShift(at_hour=self.drift_day * 24)
            if self.drift_day is not None
            else None,
            learning_phase=self._learning_phase(),
            structures=self.structures,
            ads_per_ad_set=self.ads_per_ad_set,
            campaign_budget_ads_per_ad_set=self.campaign_budget_ads_per_ad_set,
            advertiser_pauses=self.advertiser_pauses,
            record_truth=self.record_truth,
            gene_effect_scale=self.gene_effect_scale,
            launches=self.launches,
            niches=self.niches,
            balanced_niches=self.balanced_niches,
        )

    def _learning_phase(self) -> LearningPhase | None:
        if self.learning_penalty is None:
            return None
        default = LearningPhase()
        if self.learning_penalty == default.penalty:
            return default
        return LearningPhase(penalty=self.learning_penalty)


@dataclass(slots=True)
class RunTotals:
    """What one run delivered, and its running totals hour by hour (for plots)."""

    clicks: int = 0
    conversions: int = 0
    spend_minor: int = 0
    revenue_minor: int = 0
    impressions: int = 0
    cumulative_clicks: list[int] = field(default_factory=list)
    cumulative_spend_minor: list[int] = field(default_factory=list)
    # New ads' first hours (runs with launches only; None without).
    cold_start: ColdStartTrace | None = None

    def add_hour(self, market: SimulatedMarket) -> None:
        if self.cold_start is not None:
            self.cold_start.observe(market)
        hour = market.last_hour_totals()
        self.clicks += hour.clicks
        self.conversions += hour.conversions
        self.spend_minor += hour.spend_minor
        self.revenue_minor += hour.revenue_minor
        self.impressions += hour.impressions
        self.cumulative_clicks.append(self.clicks)
        self.cumulative_spend_minor.append(self.spend_minor)

    @property
    def clicks_per_dollar(self) -> float:
        return per_dollar(self.clicks, self.spend_minor)

    def window_clicks_per_dollar(self, start: int, end: int) -> float:
        """Clicks per dollar over hours ``[start, end)`` of the run (0 = the first hour)."""
        clicks = self.cumulative_clicks[end - 1] - (
            self.cumulative_clicks[start - 1] if start else 0
        )
        spend = self.cumulative_spend_minor[end - 1] - (
            self.cumulative_spend_minor[start - 1] if start else 0
        )
        return per_dollar(clicks, spend)

    def cumulative_clicks_per_dollar(self) -> list[float]:
        return [
            per_dollar(c, s)
            for c, s in zip(self.cumulative_clicks, self.cumulative_spend_minor, strict=True)
        ]


@dataclass(slots=True)
class SimulationResult:
    spec: SimulationSpec
    policy: RunTotals
    uniform: RunTotals
    oracle: RunTotals
    cycle_errors: list[str]
    trace: LearningTrace = field(default_factory=LearningTrace)
    loops: frozenset[Loop] = frozenset()
    marginal_oracle: RunTotals | None = None

    def summary(self) -> dict[str, Any]:
        """The one-line JSON report: the policy's totals beside the references'."""
        p, u, o = self.policy, self.uniform, self.oracle
        regret = 1.0 - p.clicks_per_dollar / o.clicks_per_dollar if o.clicks_per_dollar else None
        return {
            "synthetic": True,
            "policy": self.spec.policy,
            "days": self.spec.days,
            "seed": self.spec.seed,
            "accounts": self.spec.accounts,
            "campaigns": self.spec.accounts * self.spec.campaigns_per_account,
            "variants": self.spec.accounts
            * self.spec.campaigns_per_account
            * self.spec.variants_per_campaign,
            "impressions": p.impressions,
            "clicks": p.clicks,
            "conversions": p.conversions,
            "spend_minor": p.spend_minor,
            "revenue_minor": p.revenue_minor,
            "clicks_per_dollar": round(p.clicks_per_dollar, 6),
            "conversions_per_dollar": round(per_dollar(p.conversions, p.spend_minor), 6),
            "oracle_clicks": o.clicks,
            "oracle_spend_minor": o.spend_minor,
            "oracle_clicks_per_dollar": round(o.clicks_per_dollar, 6),
            "uniform_clicks": u.clicks,
            "uniform_spend_minor": u.spend_minor,
            "uniform_clicks_per_dollar": round(u.clicks_per_dollar, 6),
            "uniform_conversions_per_dollar": round(per_dollar(u.conversions, u.spend_minor), 6),
            "oracle_conversions_per_dollar": round(per_dollar(o.conversions, o.spend_minor), 6),
            "lift_vs_uniform": round(p.clicks_per_dollar / u.clicks_per_dollar - 1.0, 6)
            if u.clicks_per_dollar
            else None,
            "regret_vs_oracle": round(regret, 6) if regret is not None else None,
            "cycle_errors": self.cycle_errors,
            "loops": sorted(self.loops),
            **self._learning(),
            **self._marginal_oracle(),
            **self._cold_start(),
        }

    def _marginal_oracle(self) -> dict[str, Any]:
        m = self.marginal_oracle
        if m is None:
            return {}
        return {
            "marginal_oracle_clicks": m.clicks,
            "marginal_oracle_spend_minor": m.spend_minor,
            "marginal_oracle_clicks_per_dollar": round(m.clicks_per_dollar, 6),
        }

    def _cold_start(self) -> dict[str, Any]:
        """New ads' first 72 hours, for the policy and each reference; loop 6's accuracy per
        day (runs with launches only: other runs' summaries are as they were)."""
        if self.policy.cold_start is None:
            return {}
        out = self.policy.cold_start.summary()
        runs = (("uniform_", self.uniform), ("oracle_", self.oracle))
        for prefix, run in (*runs, ("marginal_oracle_", self.marginal_oracle)):
            if run is not None and run.cold_start is not None:
                out.update(run.cold_start.summary(prefix))
        if Loop.MONITOR in self.loops:
            out["accuracy_by_day"] = self.trace.accuracy_by_day(self.spec.days)
            out["accuracy_ceiling_by_day"] = self.trace.accuracy_by_day(
                self.spec.days, self.trace.accuracy_ceiling
            )
        return out

    def _learning(self) -> dict[str, Any]:
        """Validation's figures when it ran (accuracy, calibration, NE, retrains); promotions."""
        learned = self.trace.summary()
        out: dict[str, Any] = {}
        if Loop.MONITOR in self.loops:
            for key in ("accuracy", "calibration", "normalized_entropy", "retrains"):
                out[key] = learned[key]
        if Loop.PROMOTER in self.loops:
            for key in ("promotions", "false_promotions"):
                out[key] = learned[key]
        for key in ("best_doubled_campaigns", "campaigns", "hours_to_double_median"):
            out[key] = learned[key]
        return out


@contextmanager
def _scratch_database(workdir: Path | None) -> Iterator[tuple[str, Path]]:
    """A fresh SQLite database and a folder for the run's artifacts (models, indexes)."""
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
        path = workdir / "simulation.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        shutil.rmtree(workdir / "artifacts", ignore_errors=True)
        yield f"sqlite:///{path}", workdir
        return
    with tempfile.TemporaryDirectory(prefix="adflywheel-sim-") as folder:
        yield f"sqlite:///{Path(folder) / 'simulation.db'}", Path(folder)


def launch_schedule(market: SimulatedMarket, spec: SimulationSpec, hour: int) -> None:
    """Hold the spec's late variants back until their launch hour (before the hour is run)."""
    late = spec.late_variants_per_campaign
    if not late or spec.late_launch_hour <= 0 or hour not in (0, spec.late_launch_hour):
        return
    for account in market.campaign_structure():
        for campaign in account.campaigns:
            for ad_set_id in campaign.ad_set_ids[-late:]:
                market.set_ad_set_status(ad_set_id, hour >= spec.late_launch_hour)


def run_reference(spec: SimulationSpec, name: str, on_hour: Callable[[], None]) -> RunTotals:
    """A reference policy at market level: ``uniform``, ``oracle`` or ``marginal_oracle``.
    With launches, the oracles place each campaign's intended total (its starting one), so
    what a launch adds and a retirement takes off does not move their spend."""
    if name not in REFERENCES:
        raise ValueError(f"unknown reference {name!r}")
    market = SimulatedMarket(spec.market_config())
    truth = market.evaluation
    totals = RunTotals(cold_start=ColdStartTrace.for_market(market))
    intended = truth.intended_campaign_totals() if spec.launches else None
    for hour in range(spec.days * 24):
        launch_schedule(market, spec, hour)
        if name == "oracle":
            market.set_budgets_bulk(truth.oracle_budgets(Objective.CLICKS_PER_DOLLAR, intended))
        elif name == "marginal_oracle":
            market.set_budgets_bulk(truth.marginal_oracle_budgets(intended))
        market.step()
        totals.add_hour(market)
        on_hour()
    return totals


def simulated_guardrails(kind: str, starting_total_minor: int) -> Guardrails:
    """A simulated account's guardrails: on autopilot, explicitly (see ``SimulationSpec``);
    ``"recommend"`` is the service's defaults as they are (recommend mode: nothing is written)."""
    if kind == "recommend":
        return Guardrails()
    if kind == "safe":
        return Guardrails(mode=AccountMode.AUTOPILOT, max_account_budget_minor=starting_total_minor)
    if kind == "legacy":
        return Guardrails(
            mode=AccountMode.AUTOPILOT,
            max_account_budget_minor=2**53 - 1,  # no ceiling, as before
            ramp_max_step=None,
            approval_threshold_minor=None,
            campaign_growth=True,
            max_growth_per_week=10.0,
            min_daily_budget_minor=1,
            max_edit_step=None,
            edit_dead_band=0.0,
            min_hours_between_edits=0.0,
            min_hours_between_increases=0.0,
            hands_off_hours=0.0,
        )
    raise ValueError(f"guardrails must be 'safe', 'legacy' or 'recommend', not {kind!r}")


def run_policy(
    spec: SimulationSpec,
    on_hour: Callable[[], None],
    workdir: Path | None = None,
    market: SimulatedMarket | None = None,
) -> tuple[RunTotals, list[str], LearningTrace, frozenset[Loop]]:
    """The policy under test, through the service: store, platform interface and cycle.
    ``market``: a fresh ``SimulatedMarket(spec.market_config())`` the caller keeps, to read its
    evaluation afterwards (budget writes, learning); by default the run builds its own."""
    policy, loops = resolve_policy(spec.policy, spec.seed)
    market = market if market is not None else SimulatedMarket(spec.market_config())
    clock = ManualClock(market.current_hour)
    totals, trace = RunTotals(cold_start=ColdStartTrace.for_market(market)), LearningTrace()
    errors: list[str] = []
    with _scratch_database(workdir) as (url, folder):
        # Every place the run keeps state is passed, so ADFLYWHEEL_* (a real data folder,
        # artifacts store, database or Redis) cannot pull it out of its scratch folder.
        settings = Settings(
            data_dir=folder,
            database_url=url,
            artifacts_url=str((folder / "artifacts").resolve()),
            redis_url=None,
            bandit_seed=spec.seed,
            scheduler_enabled=False,
        )
        engine = make_engine(url)
        upgrade(engine)
        factory = make_session_factory(engine)
        provider = getattr(policy, "prior_provider", None)
        if isinstance(provider, CompoundPriors):
            provider.bind(factory, folder)
        elif isinstance(provider, TruthPriors):
            provider.bind(market)
        account_ids: dict[str, int] = {}
        with transaction(factory) as session:
            for external in market.accounts():
                info = market.platform(external).account()
                account = create_account(
                    session,
                    f"sim-{external}",
                    clock.now(),
                    platform="simulated",
                    platform_account_id=external,
                    currency=info.currency,
                    timezone=info.timezone,
                    category=info.category,
                )
                account_ids[external] = account.id
                # Campaigns report their ad sets' budgets summed, or their campaign budget (CBO).
                starting_total = sum(
                    c.daily_budget_minor or 0 for c in market.platform(external).list_campaigns()
                )
                guardrails = simulated_guardrails(spec.guardrails, starting_total)
                store_settings(
                    session,
                    account.id,
                    PromoterSettings(guardrails=guardrails),
                    now=clock.now(),
                    actor="simulate",
                )
                if Loop.CROSSLEARN in loops:  # cross-account learning on: every account opts in
                    set_settings(session, account.id, clock.now(), opted_in=True)
        options = CycleOptions(actuals_lookback_hours=6, loops=loops)
        trace.start(market)
        for hour in range(spec.days * 24):
            launch_schedule(market, spec, hour)
            market.step()
            totals.add_hour(market)
            clock.advance(HOUR)
            reports = []
            for external, account_id in account_ids.items():
                deps = CycleDeps(
                    factory, clock, market.platform(external), policy, settings=settings
                )
                report = run_cycle(account_id, deps, options)
                reports.append(report.as_dict())
                errors.extend(
                    f"{report.hour_start:%Y-%m-%dT%H} {k}: {v}" for k, v in report.errors.items()
                )
            trace.observe(market, reports)
            on_hour()
        engine.dispose()
    return totals, errors, trace, loops


def simulate(
    spec: SimulationSpec,
    *,
    on_hour: Callable[[], None] = lambda: None,
    workdir: Path | None = None,
) -> SimulationResult:
    """Run the policy and the spec's references on identical seeded markets."""
    if spec.days < 1:
        raise ValueError("days must be at least 1")
    unknown = set(spec.references) - set(REFERENCES)
    if unknown or not {"uniform", "oracle"} <= set(spec.references):
        raise ValueError(
            f"references must include 'uniform' and 'oracle' and be among {REFERENCES}, "
            f"not {spec.references}"
        )
    policy_totals, errors, trace, loops = run_policy(spec, on_hour, workdir)
    uniform = run_reference(spec, "uniform", on_hour)
    oracle = run_reference(spec, "oracle", on_hour)
    marginal = (
        run_reference(spec, "marginal_oracle", on_hour)
        if "marginal_oracle" in spec.references
        else None
    )
    return SimulationResult(
        spec, policy_totals, uniform, oracle, errors, trace, loops, marginal_oracle=marginal
    )
