"""Actuals and validation (loop 6), the service: fetch what each ad did, score every past
prediction whose window has closed, watch drift and data health, retrain when needed.

- ``attribution``: the account's attribution window and which days' conversions are final.
- ``fetch``: the actuals fetch job (hours that may still change, freshness per account).
- ``service``: validation, drift, the circuit breaker, the retrain decision.
- ``scoring``: stored predictions against the actuals of their closed window.
- ``step``: the cycle's validation (and retrain through loop 5's gate).
- ``token_check``: the platform token's expiry, asked at most daily after a fetch, and its warning.
"""

__all__ = ["attribution", "fetch", "scoring", "service", "step", "token_check"]
