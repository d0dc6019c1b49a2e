"""The promoter's unit where ads share an ad set's budget: the ad set (issue #16).

When an ad set holds several ads, one ad's win is not its ad set's: raising the budget would
fund its siblings too, and Meta, not the service, splits the ad set's budget between them. So
in such a campaign the promoter compares ad sets — each ad set's ads' counts summed per
allocation period — and a winner is an ad set whose ads together beat the control's ad set. Its
decisions, records and reports then name the ad set (``VariantInfo.ad_id`` is the ad set's id,
and ``unit`` says so)."""

from __future__ import annotations

from adflywheel.loops.promoter import Experiment, VariantData
from adflywheel.services.promoter.data import CampaignData, VariantInfo


def pooled_by_ad_set(data: CampaignData) -> CampaignData:
    """``data`` with one variant per ad set; unchanged when every ad set has one ad."""
    groups: dict[str, list[VariantData]] = {}
    for v in data.experiment.variants:
        groups.setdefault(data.variants[v.id].ad_set_external_id, []).append(v)
    if all(len(parts) == 1 for parts in groups.values()):
        return data
    # Every ad's intended share was its ad set's budget over the sum counted once per ad: an
    # ad set's share is its first ad's, renormalised over ad sets.
    firsts = [parts[0].intended_share for parts in groups.values()]
    totals = (
        None if any(s is None for s in firsts) else [sum(col) for col in zip(*firsts, strict=True)]
    )
    variants: list[VariantData] = []
    infos: dict[str, VariantInfo] = {}
    control: str | None = None
    for ad_set, parts in groups.items():
        first = data.variants[parts[0].id]
        share = parts[0].intended_share
        variants.append(
            VariantData(
                ad_set,
                tuple(sum(col) for col in zip(*(p.impressions for p in parts), strict=True)),
                tuple(sum(col) for col in zip(*(p.clicks for p in parts), strict=True)),
                None
                if share is None or totals is None
                else tuple(s / t if t > 0 else 0.0 for s, t in zip(share, totals, strict=True)),
            )
        )
        infos[ad_set] = VariantInfo(
            first.variant_id,
            ad_set,
            first.ad_set_id,
            ad_set,
            first.campaign_external_id,
            first.budget_minor,
            any(data.variants[p.id].active for p in parts),
            unit="ad_set",
        )
        if data.experiment.control_id in {p.id for p in parts}:
            control = ad_set
    experiment = Experiment(data.experiment.key, control, tuple(variants))
    return CampaignData(experiment, infos, data.periods, data.basis)
