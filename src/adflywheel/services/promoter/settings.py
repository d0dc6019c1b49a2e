"""The auto-promoter's settings per account: the statistics (``DecisionSettings``), the
guardrails (``Guardrails``) and the data window, stored as one flat JSON document."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from adflywheel.core.domain import AccountMode
from adflywheel.core.settings import Settings
from adflywheel.loops.promoter import Correction, DecisionSettings, Guardrails
from adflywheel.store.guardrails import load_guardrails, save_guardrails


@dataclass(frozen=True, slots=True)
class PromoterSettings:
    """Everything configurable per account: the statistics, the guardrails, and how far back
    the test looks (hours of data; a window that slides is a documented approximation)."""

    test: DecisionSettings = field(default_factory=DecisionSettings)
    guardrails: Guardrails = field(default_factory=Guardrails)
    history_hours: int = 24 * 28

    def __post_init__(self) -> None:
        if not 1 <= self.history_hours <= 24 * 365:
            raise ValueError("history_hours must be in [1, 8760]")

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self.test),
            **self.guardrails.to_dict(),
            "history_hours": self.history_hours,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PromoterSettings:
        """Build from a flat document; unknown keys and bad values raise ``ValueError``."""
        test_keys = {f.name for f in fields(DecisionSettings)}
        guard_keys = {f.name for f in fields(Guardrails)}
        unknown = set(data) - test_keys - guard_keys - {"history_hours"}
        if unknown:
            raise ValueError(f"unknown settings: {sorted(unknown)}")
        test = {k: v for k, v in data.items() if k in test_keys}
        if "correction" in test:
            test["correction"] = Correction(test["correction"])
        try:
            guardrails = Guardrails(**{k: v for k, v in data.items() if k in guard_keys})
        except (KeyError, TypeError) as error:  # a malformed freeze window, a wrong type
            raise ValueError(f"invalid guardrails: {error}") from error
        return cls(DecisionSettings(**test), guardrails, int(data.get("history_hours", 24 * 28)))


def new_account_settings(settings: Settings) -> PromoterSettings:
    """A new account's guardrails from the deployment's defaults (``ADFLYWHEEL_NEW_*``)."""
    return PromoterSettings(
        guardrails=Guardrails(
            mode=AccountMode(settings.new_account_mode),
            max_account_budget_minor=settings.new_account_ceiling_minor,
            max_campaign_budget_minor=settings.new_campaign_ceiling_minor,
            approval_threshold_minor=settings.new_approval_over_minor,
        )
    )


def load_settings(session: Session, account_id: int) -> PromoterSettings:
    stored = load_guardrails(session, account_id)
    return PromoterSettings.from_dict(stored) if stored else PromoterSettings()


def store_settings(
    session: Session, account_id: int, settings: PromoterSettings, *, now: datetime, actor: str
) -> None:
    save_guardrails(session, account_id, settings.to_dict(), now=now, actor=actor)
