"""Budget policies by name, so a policy can cross a process boundary as a string: Thompson's
variants and the baselines it is measured against (the harness and the executor use them)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from adflywheel.services.bandit.budgets import BudgetPolicy
from adflywheel.services.bandit.policies import (
    THOMPSON_SETTINGS,
    EpsilonGreedyPolicy,
    ThompsonPolicy,
    UCB1Policy,
    UniformPolicy,
)
from adflywheel.services.compound.priors import CompoundPriors

POLICIES: dict[str, Callable[[int], BudgetPolicy]] = {
    "uniform": lambda seed: UniformPolicy(),
    "thompson": lambda seed: ThompsonPolicy(seed=seed),
    "thompson_stationary": lambda seed: ThompsonPolicy(
        replace(THOMPSON_SETTINGS, half_life_hours=None), seed=seed, name="thompson_stationary"
    ),
    "thompson_promote": lambda seed: ThompsonPolicy(seed=seed, name="thompson_promote"),
    # The compound learner's contextual boost: the compound (XGBoost + DNA patterns) prediction
    # as each variant's Thompson prior; the caller binds the provider to its store.
    "thompson+compound": lambda seed: ThompsonPolicy(
        seed=seed, name="thompson+compound", prior_provider=CompoundPriors(seed=seed)
    ),
    "epsilon_greedy": lambda seed: EpsilonGreedyPolicy(),
    "ucb1": lambda seed: UCB1Policy(),
}


def policy_named(name: str, seed: int) -> BudgetPolicy:
    """The policy called ``name``, seeded; an unknown name is an error."""
    if name not in POLICIES:
        raise ValueError(f"unknown policy {name!r}; choose from {sorted(POLICIES)}")
    return POLICIES[name](seed)
