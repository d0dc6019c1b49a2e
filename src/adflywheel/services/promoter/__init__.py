"""The auto-promoter (loop 7), the service: find winners with always-valid tests, raise their
budgets through the guardrails, record every action with its evidence, approve or undo it.

- ``service``: one promotion run (decide, carry out, record).
- ``actions``: history, approval, one-call rollback, and the floors promotions hold.
- ``settings``: the account's statistics, guardrails, mode and window.
- ``funding``: how far a winner may rise this hour and which ad sets pay for it; which
  campaigns are left alone (excluded, frozen, held out).
- ``step``: the cycle's promotion, after the reallocation.

Private: ``reversal`` (growth given back when its winner stops winning), ``data`` (what the
promoter reads), ``report`` (what a run reports).
"""

__all__ = ["actions", "funding", "service", "settings", "step"]
