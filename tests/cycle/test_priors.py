"""Which Thompson priors the cycle's reallocation uses for each set of loops."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from adflywheel.core.settings import Settings
from adflywheel.loops.bandit import RatePrior
from adflywheel.services.bandit.step import LayeredPriors, budget_policy
from adflywheel.services.compound.serving_priors import ServingPriors
from adflywheel.services.crosslearn.priors import NichePriors

HOUR = datetime(2026, 1, 5, 12, tzinfo=UTC)


def _ctx(loops: set[int], tmp_path: Any) -> Any:
    deps = SimpleNamespace(policy=None, factory=object(), settings=Settings(data_dir=tmp_path))
    return SimpleNamespace(deps=deps, loops=frozenset(loops))


def test_a_later_provider_replaces_an_earlier_ones_prior() -> None:
    niche = lambda c, h: {1: RatePrior(0.02, 500.0), 2: RatePrior(0.03, 500.0)}  # noqa: E731
    compound = lambda c, h: {2: RatePrior(0.05, 900.0)}  # noqa: E731
    merged = LayeredPriors((niche, compound))(None, HOUR)  # type: ignore[arg-type]
    assert merged == {1: RatePrior(0.02, 500.0), 2: RatePrior(0.05, 900.0)}


def test_thompson_alone_has_no_prior_provider(tmp_path: Any) -> None:
    policy = budget_policy(_ctx({2}, tmp_path))
    assert policy.prior_provider is None  # type: ignore[attr-defined]


def test_loops_3_and_5_layer_the_niche_and_compound_priors(tmp_path: Any) -> None:
    policy = budget_policy(_ctx({2, 3, 5}, tmp_path))
    provide = policy.prior_provider  # type: ignore[attr-defined]
    assert isinstance(provide, LayeredPriors)
    assert [type(p) for p in provide.providers] == [NichePriors, ServingPriors]


def test_loop_3_alone_uses_the_niche_prior(tmp_path: Any) -> None:
    policy = budget_policy(_ctx({2, 3}, tmp_path))
    provide = policy.prior_provider  # type: ignore[attr-defined]
    assert isinstance(provide, LayeredPriors)
    assert [type(p) for p in provide.providers] == [NichePriors]
