"""What became of each campaign in an hour: the cycle report's ``campaigns`` (issue #16).

Steps that act on campaigns (the reallocation, the promoter) note each campaign's outcome in the
run's ``CampaignLedger``; the runner lists every active campaign of the account, so a campaign no
step noted is still reported, held with its reason, and nothing is skipped silently.

Outcomes, strongest first: *failed* (an error stopped this campaign), *acted* (a change was
written to the platform), *recommended* (changes recorded for a person, in recommend mode),
*held* (nothing written, deliberately: the reason says why). When two steps note the same
campaign, the stronger outcome wins and the changes of both are kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from adflywheel.core.domain import BudgetStructure


class Outcome(StrEnum):
    FAILED = "failed"
    ACTED = "acted"
    RECOMMENDED = "recommended"
    HELD = "held"


_STRENGTH = {Outcome.HELD: 0, Outcome.RECOMMENDED: 1, Outcome.ACTED: 2, Outcome.FAILED: 3}


class HoldCode(StrEnum):
    """Why a campaign was held: every code a report can carry (docs/safety.md lists them)."""

    KILL_SWITCH = "kill_switch"
    FREEZE = "freeze"
    EXCLUDED = "excluded"
    HOLDOUT = "holdout"
    STRUCTURE = "structure"  # the budget structure gives the service nothing it may move
    NO_BUDGET = "no_budget"  # no active ad with a budget
    UNDECIDABLE = "undecidable"  # the split cannot be decided from the data and the bounds
    NO_CHANGE = "no_change"  # the split equals today's budgets (or is inside the dead band)
    EDIT_RULES = "edit_rules"  # the change waits for the edit rules (interval, cooldown, step)
    DRY_RUN = "dry_run"
    NO_PLATFORM = "no_platform"
    AWAITING_APPROVAL = "awaiting_approval"
    LOOP_OFF = "loop_off"  # no loop that moves budgets is on for the account
    ERROR = "error"  # with outcome failed


@dataclass(frozen=True, slots=True)
class Change:
    """One object changed (or proposed to be): an ad set's budget or an ad's status."""

    object_id: str
    kind: str  # "budget" | "status"
    old: int | str | None
    new: int | str


@dataclass(slots=True)
class CampaignOutcome:
    campaign_id: str
    outcome: Outcome
    code: HoldCode | None = None
    message: str | None = None
    changes: list[Change] = field(default_factory=list)

    def absorb(self, other: CampaignOutcome) -> None:
        """Another step's outcome for the same campaign: the stronger one decides; between two
        holds, the one with changes (say, a promotion awaiting approval) says why."""
        stronger = _STRENGTH[other.outcome] > _STRENGTH[self.outcome]
        same = other.outcome is self.outcome
        if stronger or (same and other.changes and not self.changes):
            self.outcome, self.code, self.message = other.outcome, other.code, other.message
        self.changes.extend(other.changes)


@dataclass(slots=True)
class CampaignLedger:
    """The run's per-campaign outcomes, keyed by the campaign's platform id."""

    noted: dict[str, CampaignOutcome] = field(default_factory=dict)

    def note(
        self,
        campaign_id: str,
        outcome: Outcome,
        code: HoldCode | None = None,
        message: str | None = None,
        changes: list[Change] | None = None,
    ) -> None:
        new = CampaignOutcome(campaign_id, outcome, code, message, list(changes or []))
        earlier = self.noted.get(campaign_id)
        if earlier is None:
            self.noted[campaign_id] = new
        else:
            earlier.absorb(new)

    def note_written(
        self,
        campaign_id: str,
        write_mode: str,
        changes: list[Change],
        *,
        connected: bool,
        what: str = "the changes are",
    ) -> None:
        """Changes decided for a campaign, by how they were carried out: written (``applied``:
        acted), recorded for a person (``recommended``), or recorded only (a dry run, or no
        connected platform: held, saying which)."""
        if write_mode == "applied":
            self.note(campaign_id, Outcome.ACTED, changes=changes)
        elif write_mode == "recommended":
            self.note(campaign_id, Outcome.RECOMMENDED, changes=changes)
        elif not connected:
            message = f"no connected platform: {what} recorded, not written"
            self.note(campaign_id, Outcome.HELD, HoldCode.NO_PLATFORM, message, changes)
        else:
            message = f"a dry run: {what} recorded, not written"
            self.note(campaign_id, Outcome.HELD, HoldCode.DRY_RUN, message, changes)

    def report(self, structures: dict[str, BudgetStructure]) -> list[dict[str, Any]]:
        """Every active campaign (``structures``' keys, in order), as the contract writes it."""
        out = []
        for campaign_id, structure in structures.items():
            noted = self.noted.get(campaign_id) or CampaignOutcome(
                campaign_id,
                Outcome.HELD,
                HoldCode.LOOP_OFF,
                "no loop that moves budgets acted on this campaign this hour",
            )
            reason = (
                None
                if noted.code is None
                else {"code": noted.code.value, "message": noted.message or noted.code.value}
            )
            out.append(
                {
                    "campaign_id": campaign_id,
                    "structure": structure.value,
                    "outcome": noted.outcome.value,
                    "reason": reason,
                    "changes": [
                        {"object_id": c.object_id, "kind": c.kind, "old": c.old, "new": c.new}
                        for c in noted.changes
                    ],
                }
            )
        return out

    def any_failed(self) -> bool:
        return any(o.outcome is Outcome.FAILED for o in self.noted.values())
