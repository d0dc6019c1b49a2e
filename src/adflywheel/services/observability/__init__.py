"""What an operator watches: Prometheus metrics (``metrics``) and structured logs (``logs``).

Both are process-wide and cheap; the cycle, the fetch job, the alert sink and the API record
into them through one call each, so the code that does the work stays free of counters.
"""

__all__ = ["logs", "metrics"]
