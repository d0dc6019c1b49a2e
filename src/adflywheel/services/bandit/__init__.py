"""Thompson-sampling budget allocation (loop 2), the service.

- ``budgets``: the budget-policy interface, a campaign's state from the store, and the one safe
  way to apply budget changes (recorded first, idempotent per hour, finished after a crash).
- ``policies``: Thompson sampling and the baselines it is measured against.
- ``baselines``: the policies by name, so one can cross a process boundary as a string.
- ``step``: the cycle's reallocation, with the priors other loops give new variants.
- ``edits``: the edit rules' shell: each ad set's edit history and bounds, for every writer.
- ``holdout``: the holdout report, managed against held-out campaigns from stored actuals.
- ``pause_log``: the ads the service paused, and a person's rollback of a pause.
- ``recommendations``: the budget-change log, recommend mode's recommendations (valid for their
  hour) and a person's dismissal of one.
- ``approvals``: a person's approval of one recommendation, and rollback of an applied change.

Its own helpers: ``arms`` (the units a policy splits: one per ad set with a daily budget) and
``pausing`` (the cycle's pausing of clear losers inside shared budgets).
"""

__all__ = [
    "approvals",
    "baselines",
    "budgets",
    "edits",
    "holdout",
    "pause_log",
    "policies",
    "recommendations",
    "step",
]
