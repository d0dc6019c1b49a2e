"""The units a budget policy splits, from the ads the store knows (issue #16): one arm per ad
set with a daily budget — several ads sharing an ad set are judged together — and what paused
ad sets give back to the campaign's active ones."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from adflywheel.core.domain import ACTUAL_METRICS, Status
from adflywheel.store.queries import HourlySeries, VariantTotals


def reclaim_from_paused(
    paused: Mapping[str, int], lows: Mapping[str, int], absorbable: int | None
) -> dict[str, int]:
    """Paused ad sets' budgets lowered toward their lowest allowed (the platform's minimum and
    the edit rules' step), so the campaign's active ad sets can spend what the advertiser's
    campaign total meant (issue #16: a paused ad set used to take its share of the campaign's
    spend with it). The campaign's total over active and paused ad sets is unchanged, so the
    account's total and ceiling are too; nothing is re-activated, and an ad set that comes back
    starts from its lowered budget and earns its share again. Only what the active ad sets may
    take (``absorbable``, None for no limit) is taken, largest budgets first. Returns each
    lowered ad set's new budget."""
    out: dict[str, int] = {}
    left = absorbable
    for key in sorted(paused, key=lambda k: (-paused[k], k)):
        low = min(lows.get(key, paused[key]), paused[key])
        take = paused[key] - low if left is None else min(paused[key] - low, left)
        if take <= 0:
            continue
        out[key] = paused[key] - take
        if left is not None:
            left -= take
    return out


def ad_set_arms(
    variants: Sequence[VariantTotals], series: Mapping[int, HourlySeries]
) -> tuple[list[VariantTotals], dict[int, HourlySeries], set[int]]:
    """The units a budget policy can split: one arm per ad set that has a daily budget.

    An ad set with one ad is that ad. An ad set with several ads (they share its budget, and
    Meta splits it between them) is one arm whose evidence is the sum of its active ads' (all
    its ads' when none is active), keyed by its first ad's variant id and returned in
    ``pooled``: its budget moves on the ad set's evidence, never on one ad's. Ad sets without a
    daily budget (a campaign budget, a lifetime budget) are not arms: nothing of theirs can be
    set to a daily amount; nor are deleted ones. Returns the arms, their hourly series and the
    pooled arms' ids."""
    by_ad_set: dict[int, list[VariantTotals]] = {}
    for v in variants:
        # A deleted ad set can be given nothing (Meta refuses writes to it): not an arm.
        if v.budget_minor is not None and v.ad_set_status != Status.DELETED:
            by_ad_set.setdefault(v.ad_set_id, []).append(v)
    arms: list[VariantTotals] = []
    hourly: dict[int, HourlySeries] = {}
    pooled: set[int] = set()
    for ads in by_ad_set.values():
        if len(ads) == 1:
            arms.append(ads[0])
            if ads[0].variant_id in series:
                hourly[ads[0].variant_id] = series[ads[0].variant_id]
            continue
        live = [v for v in ads if v.status == "ACTIVE"] or ads
        first = live[0]
        arm = VariantTotals(
            first.variant_id,
            first.ad_id,
            first.ad_set_id,
            first.ad_set_external_id,
            first.campaign_id,
            first.status,
            first.ad_set_status,
            any(v.is_control for v in ads),
            first.budget_minor,
            *(sum(getattr(v, name) for v in live) for name in ACTUAL_METRICS),
        )
        arms.append(arm)
        pooled.add(arm.variant_id)
        merged = _merged_series([series[v.variant_id] for v in live if v.variant_id in series])
        if merged is not None:
            hourly[arm.variant_id] = merged
    arms.sort(key=lambda v: v.variant_id)
    return arms, hourly, pooled


def _merged_series(parts: Sequence[HourlySeries]) -> HourlySeries | None:
    """Several ads' hourly rows summed hour by hour (oldest first)."""
    if not parts:
        return None
    sums: dict[datetime, list[int]] = {}
    for part in parts:
        columns = zip(
            part.hour_starts,
            part.impressions,
            part.clicks,
            part.spend_minor,
            part.conversions,
            part.revenue_minor,
            strict=True,
        )
        for hour, *values in columns:
            row = sums.setdefault(hour, [0] * 5)
            for i, value in enumerate(values):
                row[i] += value
    hours = sorted(sums)
    return HourlySeries(hours, *([sums[h][i] for h in hours] for i in range(5)))
