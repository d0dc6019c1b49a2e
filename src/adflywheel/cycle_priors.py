"""Loop 5 feeding loop 2 inside the hourly cycle: Thompson priors from the serving models only.

``CompoundPriors`` (the harness's ``thompson+compound``) retrains through the gate when it
refreshes; in the cycle, training belongs to loop 5's step and loop 6's triggers, so the cycle's
provider only reads the champion and the learnt weights that are serving this hour.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from adflywheel.compound_priors import CompoundPriors


@dataclass(slots=True)
class ServingPriors(CompoundPriors):
    def refresh(self, account_id: int, hour: datetime) -> None:
        self.refreshed[account_id] = hour
        self.priors[account_id] = self._compute(account_id, hour)
