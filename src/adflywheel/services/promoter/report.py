"""What a promoter run reports: the decisions as JSON-safe evidence, the changes made or
proposed, what was held back and why."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from adflywheel.loops.promoter import Decision

SUMMARY_KEYS = ("action_id", "variant", "unit", "old_budget_minor", "new_budget_minor", "mode")
# Decided, then not carried out when it came to writing (the plan is re-checked under a lock).
_HELD_AT_WRITE = frozenset({"platform_error", "budget_moved", "no_platform"})


@dataclass(slots=True)
class PromotionReport:
    cycle_hour: datetime
    dry_run: bool
    kill_switch: bool
    campaigns: list[str] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    promoted: list[dict[str, Any]] = field(default_factory=list)
    held_back: list[dict[str, Any]] = field(default_factory=list)
    reconciled: list[dict[str, Any]] = field(default_factory=list)
    recommend: bool = False  # recommend mode: the dry runs are the account's recommendations

    @property
    def winners(self) -> list[Decision]:
        return [d for d in self.decisions if d.winner]

    def summary(self) -> dict[str, Any]:
        """What the cycle's report keeps: counts, money and reasons, not every variant."""
        full = self.as_dict()
        reasons: dict[str, int] = {}
        for held in self.held_back:
            reasons[held["reason"]] = reasons.get(held["reason"], 0) + 1
        return {
            "mode": "recommend" if self.recommend else ("dry_run" if self.dry_run else "autopilot"),
            "promotions": self.counts(),
            "winners_found": full["winners_found"],
            "losers_found": len(full["losers"]),
            "promoted": [{k: p[k] for k in SUMMARY_KEYS} for p in self.promoted],
            "total_budget_allocated": full["total_budget_allocated"],
            "held_back": reasons,
            "reconciled": self.reconciled,
        }

    def counts(self) -> dict[str, int]:
        """What became of this run's decided promotions (the cycle report's ``promotions``)."""
        out = {"decided": 0, "applied": 0, "dry_run": 0, "awaiting_approval": 0, "recommended": 0}
        held_at_write = [h for h in self.held_back if h["reason"] in _HELD_AT_WRITE]
        out["decided"] = len(self.promoted) + len(held_at_write)
        for p in self.promoted:
            if p["mode"] == "applied":
                out["applied"] += 1
            elif p["mode"] == "pending_approval":
                out["awaiting_approval"] += 1
            elif p["mode"] == "dry_run":
                out["recommended" if self.recommend else "dry_run"] += 1
        return out

    def as_dict(self) -> dict[str, Any]:
        allocated = [p for p in self.promoted if p["mode"] in ("applied", "dry_run")]
        return {
            "cycle_hour": self.cycle_hour.isoformat(),
            "dry_run": self.dry_run,
            "kill_switch": self.kill_switch,
            "campaigns": self.campaigns,
            "winners_found": len(self.winners),
            "winners": [decision_out(d) for d in self.winners],
            "losers": [decision_out(d) for d in self.decisions if d.loser],
            "promoted": self.promoted,
            "total_budget_allocated": sum(p["new_budget_minor"] for p in allocated),
            "budget_added_minor": sum(
                p["new_budget_minor"] - p["old_budget_minor"] for p in allocated
            ),
            "held_back": self.held_back,
            "reconciled": self.reconciled,
            "variants": [decision_out(d) for d in self.decisions],
        }


def decision_out(d: Decision) -> dict[str, Any]:
    """A decision as JSON-safe evidence (also stored with every action)."""
    return {
        "id": d.variant_id,
        "campaign_id": d.experiment,
        "control": d.control,
        "winner": d.winner,
        "loser": d.loser,
        "reason": d.reason.value,
        "detail": d.detail,
        "lift": d.lift,
        "interval": list(d.interval),
        "confidence": d.confidence,
        "p_value": d.p_value,
        "adjusted_p_value": d.adjusted_p_value,
        "e_value": d.e_value,
        "impressions": d.impressions,
        "clicks": d.clicks,
        "control_impressions": d.control_impressions,
        "control_clicks": d.control_clicks,
        "variant_rate": d.variant_rate,
        "control_rate": d.control_rate,
        "srm": {
            "checked": d.srm.checked,
            "mismatch": d.srm.mismatch,
            "observed_share": d.srm.observed_share,
            "expected_share": d.srm.expected_share,
            "p_value": d.srm.p_value,
            "chi2_p_value": d.srm.chi2_p_value,
        },
    }
