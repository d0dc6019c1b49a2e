"""Thompson-sampling budget allocation (loop 2), the service.

- ``budgets``: the budget-policy interface, a campaign's state from the store, and the one safe
  way to apply budget changes (recorded first, idempotent per hour, finished after a crash).
- ``policies``: Thompson sampling and the baselines it is measured against.
- ``baselines``: the policies by name, so one can cross a process boundary as a string.
- ``step``: the cycle's reallocation, with the priors other loops give new variants.
- ``edits``: the edit rules' shell: each ad set's edit history and bounds, for every writer.
- ``holdout``: the holdout report, managed against held-out campaigns from stored actuals.
"""

__all__ = ["baselines", "budgets", "edits", "holdout", "policies", "step"]
