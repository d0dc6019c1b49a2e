"""The marginal oracle (synthetic data, issue #15 item 5): water-filling on true marginal clicks
per dollar, fatigue included, bounds what the greedy oracle leaves on the table."""

from __future__ import annotations

import numpy as np
import pytest

from adflywheel.core.domain import Objective
from adflywheel.sim.harness import SimulationSpec, run_reference, simulate
from adflywheel.sim.market import MarketConfig, SimulatedMarket, delivery
from adflywheel.sim.market.delivery import expected_cpm, true_ctr
from adflywheel.sim.market.waterfill import marginal_split
from adflywheel.sim.market.world import sigmoid


def _totals(market: SimulatedMarket, name: str, hours: int) -> tuple[int, int]:
    clicks = spend = 0
    truth = market.evaluation
    for _ in range(hours):
        if name == "oracle":
            market.set_budgets_bulk(truth.oracle_budgets(Objective.CLICKS_PER_DOLLAR))
        else:
            market.set_budgets_bulk(truth.marginal_oracle_budgets())
        market.step()
        hour = market.last_hour_totals()
        clicks, spend = clicks + hour.clicks, spend + hour.spend_minor
    return clicks, spend


def test_the_split_levels_marginal_clicks_per_dollar_and_keeps_each_total() -> None:
    market = SimulatedMarket(MarketConfig(seed=4, n_accounts=2, learning_phase=None))
    market.run(30)  # some fatigue, unevenly
    w, state = market._world, market._state
    ctr = true_ctr(w, state, learning=False)
    live = np.ones(ctr.shape[0], dtype=np.bool_)
    totals = market.campaign_budget_totals()
    split = marginal_split(w, state, ctr, live, totals)
    assert (np.bincount(w.campaign_of, weights=split) == totals).all()
    # The marginal value of each ad's last unit: level over the funded ads of a campaign, and
    # no unfunded ad's first unit is worth more.
    k = 1000.0 / expected_cpm(w, state.hour_index)
    s = w.config.fatigue_strength
    base = np.log(ctr / (1 - ctr)) + s * np.log1p(state.cum_impressions / w.audience)

    def marginal(b: np.ndarray) -> np.ndarray:
        out: np.ndarray = k * sigmoid(
            base - s * np.log1p((state.cum_impressions + k * b) / w.audience)
        )
        return out

    at_split = marginal(split.astype(float))
    first = marginal(np.zeros(split.shape[0]))
    for c in range(w.config.n_campaigns):
        ads = np.flatnonzero(w.campaign_of == c)
        funded = ads[split[ads] > 0]
        assert funded.size >= 1
        level = at_split[funded]
        assert level.max() - level.min() < 1e-3 * level.max()
        unfunded = ads[split[ads] == 0]
        assert (first[unfunded] <= level.max() * (1 + 1e-3)).all()


def test_with_fatigue_it_beats_the_greedy_oracle_and_uniform() -> None:
    spec = SimulationSpec(days=4, seed=3, accounts=3, learning_penalty=None)
    runs = {
        n: run_reference(spec, n, lambda: None) for n in ("uniform", "oracle", "marginal_oracle")
    }
    cpd = {n: r.clicks_per_dollar for n, r in runs.items()}
    assert cpd["marginal_oracle"] >= cpd["oracle"] > cpd["uniform"]


def test_without_fatigue_or_daypart_it_is_the_greedy_oracle(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(delivery, "TOD_CTR_AMPLITUDE", 0.0)
    monkeypatch.setattr(delivery, "TOD_CPM_AMPLITUDE", 0.0)
    config = MarketConfig(seed=6, n_accounts=2, fatigue_strength=0.0)
    greedy = _totals(SimulatedMarket(config), "oracle", 48)
    marginal = _totals(SimulatedMarket(config), "marginal_oracle", 48)
    assert marginal[0] / marginal[1] >= greedy[0] / greedy[1]
    assert marginal == greedy  # the curve is flat: the best ad takes the whole budget


@pytest.mark.slow
def test_it_runs_only_when_listed_and_reports_its_totals() -> None:
    base = SimulationSpec(days=1, seed=2, accounts=1, policy="uniform")
    plain = simulate(base).summary()
    assert not any(k.startswith("marginal_oracle") for k in plain)
    spec = SimulationSpec(days=1, seed=2, accounts=1, policy="uniform",
                          references=("uniform", "oracle", "marginal_oracle"))  # fmt: skip
    summary = simulate(spec).summary()
    assert summary["marginal_oracle_clicks"] > 0
    assert summary["marginal_oracle_spend_minor"] > 0
    assert summary["marginal_oracle_clicks_per_dollar"] == pytest.approx(
        summary["marginal_oracle_clicks"] / (summary["marginal_oracle_spend_minor"] / 100), abs=1e-6
    )
    assert {k: v for k, v in summary.items() if not k.startswith("marginal_oracle")} == plain
    with pytest.raises(ValueError, match="references"):
        simulate(SimulationSpec(days=1, references=("uniform", "oracle", "best")))
