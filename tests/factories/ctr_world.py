"""A small seeded world for the CTR model and registry tests (synthetic data).

Creatives differ by hook type and duration, which drive their true CTR together with the hour of
day and fatigue; so a model on DNA and context can beat the base rate on creatives it never saw.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import Engine, insert

from adflywheel.loops.compound.features import CtrRow, HourCount, rows_for_variant
from adflywheel.loops.dna.fingerprint import dna_from_features
from adflywheel.store import rollups
from adflywheel.store.engine import make_session_factory, transaction
from adflywheel.store.models import AdSet, Campaign, HourlyActualRow, Variant

HOOKS = ("question", "statistic", "bold_claim", "how_to_list")
HOOK_EFFECT = {"question": 0.9, "statistic": 0.3, "bold_claim": -0.4, "how_to_list": 0.0}


def creative(i: int, rng: np.random.Generator) -> dict[str, object]:
    return {"hook_type": HOOKS[i % len(HOOKS)], "duration_s": float(rng.uniform(6, 45))}


def true_ctr(features: dict[str, object], hour: datetime, age_hours: float) -> float:
    duration = float(features["duration_s"])  # type: ignore[arg-type]
    logit = (
        -4.0
        + HOOK_EFFECT[str(features["hook_type"])]
        - 0.6 * (duration - 20.0) / 15.0
        + 0.3 * math.sin(2 * math.pi * hour.hour / 24.0)
        - 0.004 * age_hours
    )
    return 1.0 / (1.0 + math.exp(-logit))


def simulate_counts(
    features: dict[str, object],
    start: datetime,
    hours: int,
    rng: np.random.Generator,
    impressions: int = 400,
) -> list[HourCount]:
    out = []
    for h in range(hours):
        t = start + timedelta(hours=h)
        n = int(rng.poisson(impressions))
        out.append(HourCount(t, n, int(rng.binomial(n, true_ctr(features, t, float(h))))))
    return out


def ctr_rows(
    n_creatives: int, start: datetime, hours: int, seed: int = 0, account_id: int = 1
) -> list[CtrRow]:
    """Rows built directly (no store) for the pure-core tests."""
    rng = np.random.default_rng(seed)
    rows: list[CtrRow] = []
    for i in range(n_creatives):
        features = creative(i, rng)
        vector = dna_from_features(features).vector
        counts = simulate_counts(features, start, hours, rng)
        rows.extend(rows_for_variant(i + 1, account_id, vector, counts, niche="beauty"))
    return rows


def populate(
    engine: Engine,
    account_id: int,
    start: datetime,
    hours: int,
    *,
    n_creatives: int = 20,
    seed: int = 0,
    prefix: str = "",
    impressions: int = 400,
) -> list[int]:
    """Store a campaign of ``n_creatives`` variants (with features) and their hourly actuals."""
    rng = np.random.default_rng(seed)
    ids: list[int] = []
    counts: list[dict[str, object]] = []
    with transaction(make_session_factory(engine)) as session:
        campaign = Campaign(account_id=account_id, external_id=f"{prefix}c", name="test")
        session.add(campaign)
        session.flush()
        for i in range(n_creatives):
            features = creative(i, rng)
            ad_set = AdSet(
                account_id=account_id, campaign_id=campaign.id, external_id=f"{prefix}s{i}"
            )
            session.add(ad_set)
            session.flush()
            variant = Variant(
                account_id=account_id,
                campaign_id=campaign.id,
                ad_set_id=ad_set.id,
                external_id=f"{prefix}a{i}",
                observed_features=features,
                created_at=start,
            )
            session.add(variant)
            session.flush()
            ids.append(variant.id)
            counts.extend(
                {
                    "variant_id": variant.id,
                    "hour_start": c.hour_start,
                    "account_id": account_id,
                    "impressions": c.impressions,
                    "clicks": c.clicks,
                    "link_clicks": c.clicks,
                    "spend_minor": c.impressions,
                    "source": "test",
                    "updated_at": start,
                }
                for c in simulate_counts(features, start, hours, rng, impressions)
            )
        session.execute(insert(HourlyActualRow), counts)
        # Written behind the repository's back (fast): bring the running totals in step.
        rollups.rebuild(session, account_id)
    return ids
