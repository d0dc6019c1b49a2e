"""A launched ad in Meta's review (synthetic data, issue #15): on the platform, active with its
budget, delivering nothing, so the service can see it and set its first budget before its first
impression; then live with the budget it has."""

from __future__ import annotations

from adflywheel.sim.market import Launch, MarketConfig, SimulatedMarket


def test_an_ad_in_review_is_listed_active_delivers_nothing_and_keeps_a_new_budget() -> None:
    config = MarketConfig(
        seed=3,
        n_accounts=1,
        campaigns_per_account=1,
        variants_per_campaign=3,
        launches=(Launch(at_hour=5, ad_set_index=2, budget_minor=3_000, review_hours=2),),
    )
    market = SimulatedMarket(config)
    platform = market.platform(market.accounts()[0])
    new_set, new_ad = market.ad_set_ids[2], market.ad_ids[2]

    def listed() -> dict[str, tuple[str, int | None]]:
        return {s.external_id: (s.status, s.daily_budget_minor) for s in platform.list_ad_sets()}

    for _ in range(3):
        market.step()
    assert new_set not in listed()  # hours 0-2: not on the platform
    market.step()  # hour 3: listed, in review
    assert listed()[new_set] == ("ACTIVE", 3_000)
    assert new_ad in {a.external_id for a in platform.list_ads()}
    record = market.history(3)
    assert record is not None and record.impressions[2] == 0
    market.set_budgets_bulk({new_set: 4_000})  # the service's first budget, during review
    market.step()  # hour 4: still in review
    record = market.history(4)
    assert record is not None and record.impressions[2] == 0
    market.step()  # hour 5: live, with the budget the service gave it
    record = market.history(5)
    assert record is not None and record.impressions[2] > 0
    assert listed()[new_set] == ("ACTIVE", 4_000)
    assert market.evaluation.learning(new_set) == "learning"


def test_without_review_an_ad_appears_as_it_starts_delivering() -> None:
    config = MarketConfig(
        seed=3,
        n_accounts=1,
        campaigns_per_account=1,
        variants_per_campaign=3,
        launches=(Launch(at_hour=2, ad_set_index=2, budget_minor=3_000),),
    )
    market = SimulatedMarket(config)
    platform = market.platform(market.accounts()[0])
    market.step()
    market.step()
    assert market.ad_set_ids[2] not in {s.external_id for s in platform.list_ad_sets()}
    market.step()
    record = market.history(2)
    assert record is not None and record.impressions[2] > 0
