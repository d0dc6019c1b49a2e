"""Ground truth of the simulated market (synthetic data), for evaluation code only.

The oracle policy, regret reports, gene-recovery checks and tests read the hidden truth here.
No loop of the flywheel may receive this object: they see the market only through
``SimulatedPlatform``, exactly as they would see Meta.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np

from adflywheel.core.domain import Objective
from adflywheel.sim.market.delivery import (
    CTR_MAX,
    CTR_MIN,
    EXITED,
    BoolArray,
    expected_cpm,
    expected_value,
    learning_factor,
    true_ctr,
)
from adflywheel.sim.market.effects import GeneEffects
from adflywheel.sim.market.genes import FloatArray, IntArray
from adflywheel.sim.market.learning import LearningStatus
from adflywheel.sim.market.world import sigmoid

if TYPE_CHECKING:
    from adflywheel.sim.market.market import SimulatedMarket
    from adflywheel.sim.market.records import (
        AdPause,
        BudgetWrite,
        CampaignBudgetWrite,
        StatusWrite,
    )


class MarketTruth:
    """Read-only truth at the market's current hour (the hour the next ``step`` delivers).

    Arrays are in the market's flat variant order (``market.ad_ids``); the dict forms are keyed
    by ad id (or campaign id) and can be limited to one account.
    """

    def __init__(self, market: SimulatedMarket) -> None:
        self._market = market

    def _sync(self) -> None:
        self._market._apply_due_collapses()

    def _objective(self, objective: Objective | str | None) -> Objective:
        return self._market.config.objective if objective is None else Objective(objective)

    def _keyed(self, values: FloatArray, account_id: str | None) -> dict[str, float]:
        w = self._market._world
        sl = slice(None) if account_id is None else w.account_slice(w.account_ids.index(account_id))
        return dict(zip(w.ad_ids[sl], values[sl].tolist(), strict=True))

    # -- per variant ---------------------------------------------------------------------------

    def true_ctr_array(self, learning: bool = False) -> FloatArray:
        """True CTR (all clicks) per variant now: niche, account, genes, noise, time of day,
        fatigue, drift and collapses included: the creative's own CTR. With ``learning`` the
        learning phase's penalty of its ad set is included too: what the next hour delivers."""
        self._sync()
        return true_ctr(self._market._world, self._market._state, learning)

    def live_ads_array(self) -> BoolArray:
        """Whether each ad can deliver now by its statuses (it and its ad set active; an ad set
        not launched yet is off), budget aside."""
        state, w = self._market._state, self._market._world
        out: BoolArray = state.ad_active & state.ad_set_active[w.ad_set_of]
        return out

    def true_ctr(self, account_id: str | None = None, learning: bool = False) -> dict[str, float]:
        return self._keyed(self.true_ctr_array(learning), account_id)

    def launch_ctr_array(self, genes_only: bool = False, learning: bool = False) -> FloatArray:
        """Each ad's own CTR as a creative, at launch: niche, account, genes and its
        idiosyncratic factor (``World.base_logit``), the gene shift once it is due; no time of
        day, fatigue, drift or collapse. ``genes_only`` drops the ad's idiosyncratic factor:
        the part its genes (with its niche and account) explain. ``learning`` applies its ad
        set's learning-phase penalty now, as ``true_ctr_array``: what the ad delivers."""
        w = self._market._world
        logit = w.base_logit - w.variant_logit if genes_only else w.base_logit
        shift = self._market.config.gene_shift
        if shift is not None and self._market.hour_index >= shift.at_hour:
            logit = logit + w.gene_shift_logit
        out: FloatArray = np.clip(sigmoid(logit), CTR_MIN, CTR_MAX)
        if learning:
            out = np.clip(out * self.learning_factor_array(), CTR_MIN, CTR_MAX)
        return out

    def launch_ctr(
        self, account_id: str | None = None, genes_only: bool = False, learning: bool = False
    ) -> dict[str, float]:
        return self._keyed(self.launch_ctr_array(genes_only, learning), account_id)

    def expected_cpm_array(self) -> FloatArray:
        """Expected cost (minor) per 1000 impressions now: spend / expected impressions."""
        return expected_cpm(self._market._world, self._market.hour_index)

    def expected_cpm_minor(self, account_id: str | None = None) -> dict[str, float]:
        return self._keyed(self.expected_cpm_array(), account_id)

    def expected_value_array(
        self, objective: Objective | str | None = None, learning: bool = False
    ) -> FloatArray:
        """Expected objective per variant now (CTR, or clicks / conversions / revenue in major
        units per major unit spent); ``None`` means the campaigns' configured objective.
        ``learning`` as in ``true_ctr_array``."""
        self._sync()
        m = self._market
        return expected_value(m._world, m._state, self._objective(objective), learning)

    def conversion_rate_array(self) -> FloatArray:
        """Conversions per link click per variant (static)."""
        return self._market._world.cvr.copy()

    # -- the learning phase (per ad set, in flat ad set order: ``market.ad_set_ids``) ----------

    def learning_array(self) -> BoolArray:
        """Whether each ad set is in the learning phase now (learning or learning limited):
        the ones the next hour delivers at a penalty, if the penalty is not 0. All False when
        the market models no learning phase."""
        out: BoolArray = self._market._state.learning != EXITED
        return out

    def learning_factor_array(self) -> FloatArray:
        """Multiplier of each ad's CTR from its ad set's learning phase now (1 out of it), in
        flat ad order."""
        m = self._market
        factor = learning_factor(m._world, m._state)
        return np.ones(m.config.n_variants) if factor is None else factor

    def learning(self, ad_set_id: str) -> LearningStatus:
        """One ad set's learning status now."""
        m = self._market
        if m.config.learning_phase is None:
            return LearningStatus.OFF
        i = m._ad_set_lookup().get(ad_set_id)
        if i is None:
            raise KeyError(ad_set_id)
        return LearningStatus.of(int(m._state.learning[i]))

    def learning_statuses(self, account_id: str | None = None) -> dict[str, LearningStatus]:
        """Ad set id -> learning status now, over the market or one account."""
        m, w = self._market, self._market._world
        sl = slice(None) if account_id is None else w.account_slice(w.account_ids.index(account_id))
        if m.config.learning_phase is None:
            return dict.fromkeys(w.ad_set_ids[sl], LearningStatus.OFF)
        codes = m._state.learning[sl].tolist()
        return {a: LearningStatus.of(c) for a, c in zip(w.ad_set_ids[sl], codes, strict=True)}

    def hours_in_learning_array(self) -> IntArray:
        """Per ad set, the hours it delivered (spent money) so far while in the learning phase,
        learning or learning limited (a copy)."""
        return self._market._state.hours_in_learning.copy()

    def significant_edits_array(self) -> IntArray:
        """Per ad set, how many significant edits (budget or long pause) reset its learning."""
        return self._market._state.significant_edits.copy()

    # -- writes (what the service, or the harness, changed) ------------------------------------

    def budget_writes(self, source: str | None = "platform") -> list[BudgetWrite]:
        """Every budget write so far, in order (hour, ad set index, old, new): through the
        platform (``"platform"``, the default: every call, changed or not), the harness's bulk
        lever (``"bulk"``: changed budgets only), or both (``None``)."""
        writes = self._market._budget_writes
        return [w for w in writes if source is None or w.source == source]

    def budget_edits(self, source: str | None = "platform") -> list[BudgetWrite]:
        """The budget writes that changed a budget (``new != old``)."""
        return [w for w in self.budget_writes(source) if w.new_minor != w.old_minor]

    def status_writes(self, kind: str | None = "ad") -> list[StatusWrite]:
        """Every status write so far: ``"ad"`` (through the platform, the default), ``"ad_set"``
        (the harness's launch schedule), or both (``None``)."""
        return [w for w in self._market._status_writes if kind is None or w.kind == kind]

    def platform_writes(self) -> int:
        """How many writes reached the market through the platform (budgets and statuses)."""
        statuses = [w for w in self.status_writes("ad") if w.source is None]
        return (
            len(self.budget_writes("platform"))
            + len(statuses)
            + len(self.campaign_budget_writes("platform"))
        )

    def reactivated_advertiser_pauses(self) -> list[StatusWrite]:
        """Platform writes that turned an ad back on while the advertiser had it paused (the
        service must never do that; an ad in a paused ad set cannot be turned on by the
        service anyway, the platform having no ad set status write)."""
        paused: set[int] = set()
        out: list[StatusWrite] = []
        for w in self._market._status_writes:
            if w.kind != "ad":
                continue
            if w.source == "advertiser":
                (paused.discard if w.active else paused.add)(w.index)
            elif w.active and w.index in paused:
                out.append(w)
        return out

    # -- per campaign --------------------------------------------------------------------------

    def best_index_per_campaign(
        self,
        objective: Objective | str | None = None,
        only_active: bool = False,
        learning: bool = False,
    ) -> IntArray:
        """Flat index of each campaign's truly best variant now (by expected objective).
        With ``only_active``, paused ads and ad sets are not candidates (unless all are); with
        ``learning``, the learning phase's penalty counts (the best to deliver the next hour)."""
        value = self.expected_value_array(objective, learning)
        if only_active:
            state, w = self._market._state, self._market._world
            value = np.where(state.ad_active & state.ad_set_active[w.ad_set_of], value, -1.0)
        v = self._market.config.variants_per_campaign
        offsets = np.arange(self._market.config.n_campaigns, dtype=np.int64) * v
        out: IntArray = value.reshape(-1, v).argmax(axis=1).astype(np.int64) + offsets
        return out

    def best_ad_per_campaign(
        self, objective: Objective | str | None = None, account_id: str | None = None
    ) -> dict[str, str]:
        """Campaign id -> the ad id with the highest expected objective right now."""
        w = self._market._world
        best = self.best_index_per_campaign(objective).tolist()
        pairs = {w.campaign_ids[c]: w.ad_ids[i] for c, i in enumerate(best)}
        if account_id is None:
            return pairs
        return {c: a for c, a in pairs.items() if c.startswith(account_id + "_")}

    def oracle_budgets(
        self, objective: Objective | str | None = None, totals: IntArray | None = None
    ) -> IntArray:
        """Flat ad set budgets that put each campaign's whole current total on the ad set of
        its best ad now: best by what it delivers now, the learning phase's penalty included,
        so the oracle moves only to an ad set that beats the current one even while learning.
        A campaign budget (CBO) has no ad set budgets to move: its ad sets stay at 0 and its
        budget where it is (the oracle is no upper reference for those campaigns; nor, with
        several ads per ad set, does it choose how Meta splits the ad set's budget). ``totals``:
        each campaign's total to place (by default its budgets' total now)."""
        m, w = self._market, self._market._world
        out = np.zeros(w.n_ad_sets, dtype=np.int64)
        best = self.best_index_per_campaign(objective, only_active=True, learning=True)
        abo = ~w.campaign_budgeted
        place = m.campaign_budget_totals() if totals is None else totals
        out[w.ad_set_of[best[abo]]] = place[abo]
        return out

    def marginal_oracle_budgets(self, totals: IntArray | None = None) -> IntArray:
        """Flat ad set budgets that split each campaign's total (``totals``, by default its
        budgets' total now) over its live ads by water-filling on true marginal clicks per
        dollar, fatigue included (``waterfill``): the reference that knows what the greedy
        oracle ignores. With a learning phase, no ad set moves by a significant edit (it knows
        the reset's cost). Without fatigue it is the greedy oracle's split exactly. For campaigns
        of one ad per ad set; a campaign budget (CBO) is left where it is, as the greedy
        oracle leaves it."""
        from adflywheel.sim.market.waterfill import marginal_split

        m, w = self._market, self._market._world
        if m.config.fatigue_strength == 0.0:
            return self.oracle_budgets(Objective.CLICKS_PER_DOLLAR, totals)
        self._sync()
        state = m._state
        place = (m.campaign_budget_totals() if totals is None else totals).copy()
        place[w.campaign_budgeted] = 0
        live = state.ad_active & state.ad_set_active[w.ad_set_of]
        ctr = true_ctr(w, state, learning=False)
        phase = m.config.learning_phase
        step = phase.significant_edit_fraction if phase is not None and phase.penalised else None
        current = state.budgets[w.ad_set_of]
        if step is not None:  # only an ad set out of learning loses by a reset
            exited = (state.learning == EXITED)[w.ad_set_of]
            current = np.where(exited, current, -1)
        factor = learning_factor(w, state)
        per_ad = marginal_split(w, state, ctr, live, place, current, step, factor)
        out: IntArray = np.bincount(w.ad_set_of, weights=per_ad, minlength=w.n_ad_sets).astype(
            np.int64
        )
        return out

    # -- budget structures: shared budgets, pauses, campaign totals ---------------------------

    def structures(self, account_id: str | None = None) -> dict[str, str]:
        """Campaign id -> its budget structure (``ad_set_budgets``, ``ad_set_budgets_multi_ad``
        or ``campaign_budget``)."""
        m = self._market
        return {
            cid: m.config.structure_of(c)
            for c, cid in enumerate(m.campaign_ids)
            if account_id is None or cid.startswith(account_id + "_")
        }

    def value_at(self, hour_index: int) -> FloatArray | None:
        """Each ad's true expected objective per dollar (the campaigns' objective; the
        creative's own, without the learning penalty) at the start of ``hour_index``, as
        recorded with ``MarketConfig.record_truth`` (None when not recorded or not retained).
        Siblings in one ad set share their learning state, so it compares them fairly."""
        values = self._market._truth_history.get(hour_index)
        return None if values is None else values.copy()

    def delivery_shares_array(self, objective: Objective | str | None = None) -> FloatArray:
        """Each ad's share of its budget holder's spend the next hour by the market's split rule
        (structures.py): its ad set's, or its campaign's for CBO; 1 for a lone active ad."""
        from adflywheel.sim.market.structures import delivery_shares

        m = self._market
        value = self.expected_value_array(objective or m.config.objective)
        return delivery_shares(m._world, m._state, value)

    def ad_pauses(self) -> list[AdPause]:
        """Every pause of an active ad through the platform (the service's), with the truth of
        that hour: the paused ad's value and its best active sibling's (``AdPause.is_false``)."""
        return list(self._market._ad_pauses)

    def false_pauses(self, tolerance: float = 0.0) -> list[AdPause]:
        """The pauses of ads that were truly not worse than their best active sibling."""
        return [p for p in self._market._ad_pauses if p.is_false(tolerance)]

    def campaign_budget_writes(self, source: str | None = "platform") -> list[CampaignBudgetWrite]:
        """Every campaign budget (CBO) write so far: through the platform, the market's
        ``set_campaign_budget`` (``"bulk"``), or both (``None``)."""
        writes = self._market._campaign_budget_writes
        return [w for w in writes if source is None or w.source == source]

    def intended_campaign_totals(self) -> IntArray:
        """Each campaign's daily budget at the start (its ad set budgets summed, paused ad sets
        included, or its campaign budget): what the advertiser meant it to spend."""
        return self._market._start_campaign_totals.copy()

    def campaign_spend_array(self, hour_index: int) -> IntArray | None:
        """What each campaign spent (minor) in ``hour_index`` (None when not retained)."""
        record = self._market.history(hour_index)
        if record is None:
            return None
        v = self._market.config.variants_per_campaign
        out: IntArray = record.spend_minor.reshape(-1, v).sum(axis=1)
        return out

    def ad_set_spend_array(self, hour_index: int) -> IntArray | None:
        """What each ad set spent (minor) in ``hour_index`` (None when not retained)."""
        record = self._market.history(hour_index)
        if record is None:
            return None
        out: IntArray = np.add.reduceat(record.spend_minor, self._market._world.ad_set_start)
        return out

    # -- genes and structure -------------------------------------------------------------------

    def gene_effects(self, niche: str | None = None) -> GeneEffects:
        """True gene effects on logit CTR: global, or global plus ``niche``'s shared deviation."""
        return self._market._world.effects.report(niche)

    def genes(self, ad_id: str) -> dict[str, float | str]:
        """An ad's true genes (e.g. for rendering a video that carries them)."""
        w = self._market._world
        return w.genes.as_dict(w.ad_ids.index(ad_id))

    def niche(self, account_id: str) -> str:
        w = self._market._world
        return self._market.config.niches[int(w.account_niche[w.account_ids.index(account_id)])]

    def collapsed_ads(self) -> dict[str, datetime]:
        """Ads hit by a scheduled collapse, with the hour it took effect."""
        self._sync()
        m = self._market
        return {m._world.ad_ids[i]: m.hour_start(h) for i, h in m._state.collapsed.items()}
