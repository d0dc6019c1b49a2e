"""Per-account mutual exclusion across processes and machines.

With Redis configured, a cycle holds a Redis lock (redis-py's token-checked ``Lock`` with a
timeout, so a crashed holder cannot block for ever). Without Redis the database claim of the
(account, hour) row in ``cycle_runs`` is the lock; both together are used when Redis is there.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import redis


class LockBusyError(RuntimeError):
    pass


@contextmanager
def redis_account_lock(
    client: redis.Redis, account_id: int, *, timeout_seconds: float = 3600.0
) -> Iterator[None]:
    lock = client.lock(f"adflywheel:cycle:{account_id}", timeout=timeout_seconds, blocking=False)
    if not lock.acquire(blocking=False):
        raise LockBusyError(f"account {account_id}: another cycle holds the lock")
    try:
        yield
    finally:
        lock.release()
