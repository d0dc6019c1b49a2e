"""Named scenarios of the simulated market (synthetic data), fixed before any measurement.

``churn``: creative churn the way advertisers work (issue #15). Each campaign starts with
``LIVE_ADS`` live ads, one ad per ad set with its own budget (ABO); about every
``LAUNCH_EVERY_HOURS`` hours (jittered by the seed, ``LAUNCH_JITTER_HOURS`` either way) the
advertiser launches a new ad, which did not exist on the platform before, at the campaign's
usual per-ad budget, and retires the campaign's oldest live ad (an advertiser pause, its ad
set's budget taken off with it). A new ad is on the platform ``REVIEW_HOURS`` before it delivers,
as Meta reviews every ad first (most within 24 hours; one hour is the least that lets an hourly
service see it before its first impression). Accounts are dealt in turn to ``CHURN_NICHES``,
so each niche has ``ACCOUNTS_PER_NICHE`` accounts whose creative effects share the niche's gene
truth. The learning phase is on (the market's default), the accounts' guardrails "safe", and
the marginal oracle runs beside uniform and the greedy oracle. Nothing here is tuned to the
loops.

The twins differ only in ``gene_effect_scale``: ``SCENARIOS`` maps each name to it.
"""

from __future__ import annotations

import numpy as np

from adflywheel.sim.harness import SimulationSpec
from adflywheel.sim.market import Launch

SCENARIOS: dict[str, float] = {"churn": 1.0, "null": 0.0, "strong": 2.0}

CHURN_NICHES: tuple[str, ...] = ("beauty", "fitness", "finance")
ACCOUNTS_PER_NICHE = 5
CAMPAIGNS_PER_ACCOUNT = 2
LIVE_ADS = 3
LAUNCH_EVERY_HOURS = 72
LAUNCH_JITTER_HOURS = 24
REVIEW_HOURS = 1
CAMPAIGN_DAILY_BUDGET_MINOR = 20_000
# Quick mode, for tests: 3 niches x 2 accounts, one campaign each, 2 days, one launch each.
QUICK_ACCOUNTS_PER_NICHE = 2
QUICK_DAYS = 2
QUICK_LAUNCH_HOUR = 24
QUICK_JITTER_HOURS = 6


def launch_hours(seed: int, campaign: int, days: int, quick: bool = False) -> list[int]:
    """The hours at which a campaign's new ads launch: every ``LAUNCH_EVERY_HOURS`` hours from
    the first, each moved by a seeded jitter, all at least a day before the run ends (quick:
    one launch around hour ``QUICK_LAUNCH_HOUR``)."""
    rng = np.random.default_rng([seed, 15, campaign])
    if quick:
        return [QUICK_LAUNCH_HOUR + int(rng.integers(-QUICK_JITTER_HOURS, QUICK_JITTER_HOURS + 1))]
    last = days * 24 - 24 - LAUNCH_JITTER_HOURS  # the latest unjittered launch
    count = max(0, last // LAUNCH_EVERY_HOURS)
    jitter = rng.integers(-LAUNCH_JITTER_HOURS, LAUNCH_JITTER_HOURS + 1, count)
    return [LAUNCH_EVERY_HOURS * (k + 1) + int(j) for k, j in enumerate(jitter)]


def churn_spec(
    seed: int,
    policy: str,
    *,
    gene_effect_scale: float = 1.0,
    days: int = 21,
    quick: bool = False,
) -> SimulationSpec:
    """The churn scenario for one seed and policy (``gene_effect_scale``: 1 the scenario, 0 its
    null twin, 2 its strong twin; see ``SCENARIOS``). ``quick``: a tiny version for tests
    (``QUICK_*``; ``days`` is then ``QUICK_DAYS``)."""
    if quick:
        days = QUICK_DAYS
    per_niche = QUICK_ACCOUNTS_PER_NICHE if quick else ACCOUNTS_PER_NICHE
    campaigns_per_account = 1 if quick else CAMPAIGNS_PER_ACCOUNT
    accounts = per_niche * len(CHURN_NICHES)
    n_campaigns = accounts * campaigns_per_account
    schedules = [launch_hours(seed, c, days, quick) for c in range(n_campaigns)]
    n_launches = len(schedules[0]) if schedules else 0
    variants = LIVE_ADS + n_launches
    budget = CAMPAIGN_DAILY_BUDGET_MINOR // LIVE_ADS
    launches = []
    for c, hours in enumerate(schedules):
        first = c * variants  # one ad per ad set: ad set index = ad index
        for k, hour in enumerate(hours):
            launches.append(
                Launch(
                    at_hour=hour,
                    ad_set_index=first + LIVE_ADS + k,
                    budget_minor=budget,
                    retire_ad_index=first + k,  # the oldest live ad
                    review_hours=REVIEW_HOURS,
                )
            )
    return SimulationSpec(
        days=days,
        seed=seed,
        policy=policy,
        accounts=accounts,
        campaigns_per_account=campaigns_per_account,
        variants_per_campaign=variants,
        campaign_daily_budget_minor=CAMPAIGN_DAILY_BUDGET_MINOR,
        guardrails="safe",
        gene_effect_scale=gene_effect_scale,
        references=("uniform", "oracle", "marginal_oracle"),
        launches=tuple(launches),
        niches=CHURN_NICHES,
        balanced_niches=True,
    )
