"""Loop 5's Thompson priors (``CompoundPriors`` in the harness, ``ServingPriors`` in the cycle):
only a variant that has not delivered gets one, computed from data without its evidence, and it
keeps that prior after launch."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, select

from adflywheel.core.settings import Settings
from adflywheel.loops.bandit import RatePrior
from adflywheel.services.bandit.budgets import CampaignState
from adflywheel.services.compound import service as cs
from adflywheel.services.compound.priors import CompoundPriors
from adflywheel.services.compound.serving_priors import ServingPriors, champion_at
from adflywheel.store.models import Campaign, Variant
from adflywheel.store.queries import variant_totals
from tests.factories.clock import T0
from tests.factories.compound_world import World, a_champion, build_world


def campaigns(world: World, hour: datetime) -> list[CampaignState]:
    with world.factory() as session:
        rows = session.execute(
            select(Campaign.id, Campaign.external_id).where(Campaign.account_id == world.account_id)
        ).all()
        return [
            CampaignState(
                cid,
                external,
                "ctr",
                120_000,
                variant_totals(session, world.account_id, campaign_id=cid, until=hour),
            )
            for cid, external in rows
        ]


def served(provider: CompoundPriors, world: World, hour: datetime) -> dict[int, RatePrior]:
    out: dict[int, RatePrior] = {}
    for campaign in campaigns(world, hour):
        out.update(provider(campaign, hour))
    return out


def late_variant(world: World) -> int:
    with world.factory() as session:
        found = session.scalar(
            select(Variant.id).where(
                Variant.account_id == world.account_id, Variant.external_id == world.late_ad
            )
        )
    assert found is not None
    return found


def test_only_an_undelivered_variant_gets_a_prior_and_keeps_it_after_launch(
    engine: Engine, settings: Settings
) -> None:
    launch = T0 - timedelta(hours=24)
    world = build_world(engine, late_launch=launch)
    late = late_variant(world)
    provider = CompoundPriors()
    provider.bind(world.factory, settings.data_dir)

    before = served(provider, world, launch)  # refreshes: trains, learns weights, priors
    assert set(before) == {late}  # every other ad has delivered: its clicks are in the models
    prior = before[late]
    assert 0 < prior.rate < 1 and prior.strength > 0

    after = served(provider, world, launch + timedelta(hours=1))  # it delivers from `launch`
    assert after == {late: prior}
    later = served(provider, world, world.end)  # a refresh on data that now holds its clicks
    assert len(provider.log) == 2
    assert later == {late: prior}  # frozen: the new models do not replace it

    # A provider that first sees the account now finds every ad delivering: no compound prior.
    fresh = CompoundPriors()
    fresh.bind(world.factory, settings.data_dir)
    assert served(fresh, world, world.end) == {}


def test_serving_priors_keep_the_prior_of_the_cycle_before_launch(
    engine: Engine, settings: Settings
) -> None:
    launch = T0 - timedelta(hours=24)
    world = build_world(engine, late_launch=launch)
    late = late_variant(world)
    first = a_champion(world, settings, launch)  # trained on data before the launch
    cs.update_weights(world.factory, world.account_id, launch)
    cs.predict_and_record(world.factory, world.account_id, launch)  # loop 5 sees it at `launch`

    cycle_at_launch = ServingPriors()
    cycle_at_launch.bind(world.factory, settings.data_dir)
    before = served(cycle_at_launch, world, launch)
    assert set(before) == {late}
    with world.factory() as session:
        model = champion_at(session, world.account_id, launch)
        assert model is not None and model.version_id == first

    # A day later a new champion (trained on the late ad's clicks) and new weights serve; the
    # cycle builds a new provider every hour, which must still give the launch-time prior.
    second = a_champion(world, settings, world.end)
    cs.update_weights(world.factory, world.account_id, world.end)
    with world.factory() as session:
        model = champion_at(session, world.account_id, world.end)
        assert model is not None and model.version_id == second != first
    cycle_later = ServingPriors()
    cycle_later.bind(world.factory, settings.data_dir)
    assert served(cycle_later, world, world.end) == before


def test_serving_priors_give_none_to_an_ad_loop_5_first_saw_delivering(
    engine: Engine, settings: Settings
) -> None:
    launch = T0 - timedelta(hours=24)
    world = build_world(engine, late_launch=launch)
    a_champion(world, settings, launch)
    cs.update_weights(world.factory, world.account_id, world.end)
    cs.predict_and_record(world.factory, world.account_id, world.end)  # loop 5 starts now
    provider = ServingPriors()
    provider.bind(world.factory, settings.data_dir)
    assert served(provider, world, world.end) == {}
