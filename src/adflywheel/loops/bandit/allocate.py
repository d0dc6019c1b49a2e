"""Thompson-sampling budget allocation: the public entry points of the pure core.

``allocate_many`` handles thousands of campaigns in one vectorised pass per objective:
pack → P(best) by Monte Carlo → floored shares → bounded, capped, integer budgets.
``thompson_select`` draws one variant for a serving decision from the same posteriors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from numbers import Integral
from typing import NamedTuple

import numpy as np

from adflywheel.core.domain import Objective

from .budget import BudgetInputs, feasible_box, floored_shares, round_to_total, water_fill
from .evidence import AllocationSettings, CampaignEvidence
from .posterior import Layout, pack, probability_best, win_counts


class VariantAllocation(NamedTuple):
    """One variant's new budget and the evidence behind it (for the audit log and the API).

    ``target_share`` is the floored P(best) share; ``share`` is ``budget_minor / total`` after
    bounds, caps and rounding. ``gated``: below the minimum of evidence: budget held (never
    raised; lowered only when the gated variants together hold more than ``max_gated_share``).
    The objective is in its natural unit (CTR as a fraction; clicks or conversions per major
    currency unit; revenue per unit of spend). Intervals are central, of ``interval`` mass.
    (Named tuples, not dataclasses: ten thousand campaigns build 100k of them per reallocation.)
    """

    variant_id: str
    active: bool
    gated: bool
    p_best: float
    target_share: float
    share: float
    budget_minor: int
    objective_mean: float
    objective_low: float
    objective_high: float
    ctr_mean: float
    ctr_low: float
    ctr_high: float


class CampaignAllocation(NamedTuple):
    """A campaign's reallocation. ``cap_relaxed``/``floor_relaxed`` say that the change cap (or
    evidence gate) or the floor could not hold for every variant and gave way proportionally.

    ``held_at_minimum``: active variants whose P(best) share of the total is below their minimum
    budget (Meta's minimum daily budget of an ad set, say), held at that minimum. ``paused``:
    with ``AllocationSettings.pause_tail_below_minimum``, the variants paused because the active
    variants' minimums did not fit under the total (least likely to be best first); their rows
    say ``active=False`` and budget 0, and the caller must pause their ad sets.
    """

    campaign_id: str
    objective: Objective
    total_budget_minor: int
    variants: tuple[VariantAllocation, ...]
    n_draws: int
    interval: float
    cap_relaxed: bool
    floor_relaxed: bool
    held_at_minimum: tuple[str, ...] = ()
    paused: tuple[str, ...] = ()

    def budgets(self) -> dict[str, int]:
        return {v.variant_id: v.budget_minor for v in self.variants}

    def variant(self, variant_id: str) -> VariantAllocation:
        for v in self.variants:
            if v.variant_id == variant_id:
                return v
        raise KeyError(variant_id)


def _check_inputs(campaigns: Sequence[CampaignEvidence], totals: Sequence[int]) -> list[int]:
    if len(campaigns) != len(totals):
        raise ValueError(
            f"got {len(campaigns)} campaigns but {len(totals)} total budgets: one per campaign"
        )
    ids = [c.id for c in campaigns]
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate campaign ids {sorted({i for i in ids if ids.count(i) > 1})}")
    checked: list[int] = []
    for campaign, total in zip(campaigns, totals, strict=True):
        owner = f"campaign {campaign.id!r}"
        if not isinstance(campaign, CampaignEvidence):
            raise ValueError(f"expected CampaignEvidence, got {type(campaign).__name__}")
        if isinstance(total, bool) or not isinstance(total, Integral):
            raise ValueError(
                f"{owner}: total budget must be an integer of minor currency units, got {total!r}"
            )
        t = int(total)
        if t < 0:
            raise ValueError(f"{owner}: total budget is negative ({t})")
        live = [v for v in campaign.variants if v.active]
        if not live and t > 0:
            raise ValueError(f"{owner}: no active variant to receive the total budget {t}")
        floor = sum(v.min_budget_minor for v in live)
        if t < floor:
            raise ValueError(
                f"{owner}: total budget {t} is below the sum of the active variants' "
                f"minimum budgets ({floor})"
            )
        if live and all(v.max_budget_minor is not None for v in live):
            ceiling = sum(int(v.max_budget_minor or 0) for v in live)
            if t > ceiling:
                raise ValueError(
                    f"{owner}: total budget {t} is above the sum of the active variants' "
                    f"maximum budgets ({ceiling})"
                )
        checked.append(t)
    return checked


def _allocate_group(
    campaigns: Sequence[CampaignEvidence],
    totals: Sequence[int],
    objective: Objective,
    settings: AllocationSettings,
    rng: np.random.Generator,
) -> list[CampaignAllocation]:
    """All campaigns sharing one objective, vectorised."""
    layout = Layout.of(campaigns)
    post = pack(layout, objective, settings)
    active = post.active
    p_best = probability_best(post, settings.n_draws, rng, settings.chunk_elements)
    shares = floored_shares(p_best, active, settings.floor_share, settings.max_floor_total)

    total = np.asarray(totals, dtype=np.int64)
    grid, variants = layout.grid, layout.variants
    inputs = BudgetInputs(
        total=total,
        active=active,
        gated=grid([v.gate_impressions < settings.min_impressions for v in variants]) > 0,
        current=grid([float(v.current_budget_minor or 0) for v in variants]),
        min_budget=grid([float(v.min_budget_minor) for v in variants]),
        max_budget=grid(
            [np.inf if v.max_budget_minor is None else float(v.max_budget_minor) for v in variants]
        ),
        max_change_fraction=settings.max_change_fraction,
        floor_share=settings.floor_share,
        max_floor_total=settings.max_floor_total,
        max_gated_share=settings.max_gated_share,
        prior_led=grid([v.prior is not None for v in variants]) > 0,
        prior_tilt=settings.prior_tilt,
    )
    box = feasible_box(inputs)
    t_col = total[:, None].astype(np.float64)
    # A tiny positive target keeps every active variant movable by the water-filling.
    target = np.where(active, shares * t_col + 1e-9 * (t_col + 1.0), 0.0)
    amounts = water_fill(target, box.lower, box.upper, total)
    hard_min = np.where(active, inputs.min_budget, 0.0)
    hard_max = np.where(active, np.minimum(inputs.max_budget, t_col), 0.0)
    budgets = round_to_total(amounts, total, hard_min, hard_max)
    share = np.where(t_col > 0, budgets / np.maximum(t_col, 1.0), shares)

    held = active & (inputs.min_budget > 0) & (budgets <= inputs.min_budget)
    held &= shares * t_col < inputs.min_budget
    ctr_mean, ctr_low, ctr_high = post.ctr_summary(settings.interval)
    if objective is Objective.CTR:
        mean, low, high = ctr_mean, ctr_low, ctr_high
    else:
        mean, (low, high) = post.means(), post.intervals(settings.interval)
    r, c = layout.rows, layout.cols
    columns = [
        x[r, c].tolist()
        for x in (p_best, shares, share, budgets, mean, low, high, ctr_mean, ctr_low, ctr_high)
    ]
    gated = (inputs.gated & active)[r, c].tolist()
    held_cells = held[r, c].tolist()
    rows = [
        VariantAllocation(v.id, v.active, g, *values)
        for v, g, *values in zip(variants, gated, *columns, strict=True)
    ]
    out: list[CampaignAllocation] = []
    start = 0
    for i, campaign in enumerate(campaigns):
        stop = start + len(campaign.variants)
        out.append(
            CampaignAllocation(
                campaign_id=campaign.id,
                objective=objective,
                total_budget_minor=int(total[i]),
                variants=tuple(rows[start:stop]),
                n_draws=settings.n_draws,
                interval=settings.interval,
                cap_relaxed=bool(box.cap_relaxed[i]),
                floor_relaxed=bool(box.floor_relaxed[i]),
                held_at_minimum=tuple(
                    v.id
                    for v, h in zip(campaign.variants, held_cells[start:stop], strict=True)
                    if h
                ),
            )
        )
        start = stop
    return out


def allocate_many(
    campaigns: Sequence[CampaignEvidence],
    total_budgets: Sequence[int],
    settings: AllocationSettings,
    rng: np.random.Generator,
) -> list[CampaignAllocation]:
    """Reallocate every campaign's total across its variants; results in input order.

    Campaigns are grouped by objective (fixed order, so a seed reproduces the result) and each
    group is computed in one vectorised pass.
    """
    paused: list[tuple[str, ...]] = [()] * len(campaigns)
    if settings.pause_tail_below_minimum and len(campaigns) == len(total_budgets):
        campaigns, paused = _pause_tail(campaigns, total_budgets, settings, rng)
    totals = _check_inputs(campaigns, total_budgets)
    results: list[CampaignAllocation | None] = [None] * len(campaigns)
    for objective in Objective:
        idx = [i for i, c in enumerate(campaigns) if c.objective is objective]
        if not idx:
            continue
        group = _allocate_group(
            [campaigns[i] for i in idx], [totals[i] for i in idx], objective, settings, rng
        )
        for i, allocation in zip(idx, group, strict=True):
            results[i] = allocation._replace(paused=paused[i]) if paused[i] else allocation
    return [r for r in results if r is not None]


def _pause_tail(
    campaigns: Sequence[CampaignEvidence],
    totals: Sequence[int],
    settings: AllocationSettings,
    rng: np.random.Generator,
) -> tuple[list[CampaignEvidence], list[tuple[str, ...]]]:
    """Where the active variants' minimum budgets exceed the total, make the variants least
    likely to be best inactive (ties, as among variants that are never best: the lower posterior
    mean of the objective, then the later one) until the others' minimums fit; a variant
    without a minimum frees nothing and is never paused. Other campaigns pass unchanged."""
    out = list(campaigns)
    paused: list[tuple[str, ...]] = [()] * len(campaigns)
    over = [
        i
        for i, (c, t) in enumerate(zip(campaigns, totals, strict=True))
        if isinstance(c, CampaignEvidence)
        and isinstance(t, Integral)
        and sum(v.min_budget_minor for v in c.variants if v.active) > int(t) >= 0
    ]
    for objective in Objective:
        idx = [i for i in over if campaigns[i].objective is objective]
        if not idx:
            continue
        group = [campaigns[i] for i in idx]
        post = pack(Layout.of(group), objective, settings)
        p_best = probability_best(post, settings.n_draws, rng, settings.chunk_elements)
        means = post.means()
        for row, i in enumerate(idx):
            campaign = campaigns[i]
            excess = sum(v.min_budget_minor for v in campaign.variants if v.active) - int(totals[i])
            order = sorted(
                (float(p_best[row, col]), float(means[row, col]), -col)
                for col, v in enumerate(campaign.variants)
                if v.active and v.min_budget_minor > 0
            )
            stop: set[int] = set()
            for _, _, neg_col in order:
                if excess <= 0:
                    break
                stop.add(-neg_col)
                excess -= campaign.variants[-neg_col].min_budget_minor
            out[i] = CampaignEvidence(
                campaign.id,
                tuple(
                    replace(v, active=False) if col in stop else v
                    for col, v in enumerate(campaign.variants)
                ),
                campaign.objective,
            )
            paused[i] = tuple(campaign.variants[col].id for col in sorted(stop))
    return out, paused


def allocate_campaign(
    campaign: CampaignEvidence,
    total_budget_minor: int,
    settings: AllocationSettings,
    rng: np.random.Generator,
) -> CampaignAllocation:
    """Reallocate one campaign (the same code path as ``allocate_many``)."""
    return allocate_many([campaign], [total_budget_minor], settings, rng)[0]


def thompson_select(
    campaign: CampaignEvidence, settings: AllocationSettings, rng: np.random.Generator
) -> str:
    """One Thompson draw: the id of the active variant whose posterior sample is best."""
    if not any(v.active for v in campaign.variants):
        raise ValueError(f"campaign {campaign.id!r}: no active variant to select")
    layout = Layout.of([campaign])
    post = pack(layout, campaign.objective, settings)
    wins = win_counts(post, 1, rng, settings.chunk_elements)[0]
    return campaign.variants[int(np.argmax(wins))].id
