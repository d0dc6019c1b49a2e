"""Per-account mutual exclusion across processes and machines.

With Redis configured, a cycle holds a Redis lock (redis-py's token-checked ``Lock`` with a
timeout, so a crashed holder cannot block for ever). Without Redis the database claim of the
(account, hour) row in ``cycle_runs`` is the lock; both together are used when Redis is there.

The database claim is the source of truth: the Redis lock only keeps a second run from getting as
far as the claim. So losing the Redis lock (its timeout passed while the cycle ran, or Redis was
flushed) is logged as a warning, never turned into a failure of a run that did its work.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import redis
from redis.exceptions import LockError
from redis.lock import Lock

from adflywheel.core.errors import BusyError

log = logging.getLogger(__name__)


class LockBusyError(BusyError):
    """Another process holds the account's lock."""


@contextmanager
def redis_account_lock(
    client: redis.Redis, account_id: int, *, timeout_seconds: float = 3600.0
) -> Iterator[Lock]:
    """Hold the account's Redis lock; raises ``LockBusyError`` when another holder has it.
    Yields the lock, so that a long run can extend it (``renew_redis_lock``)."""
    lock = client.lock(f"adflywheel:cycle:{account_id}", timeout=timeout_seconds, blocking=False)
    if not lock.acquire(blocking=False):
        raise LockBusyError(f"account {account_id}: another cycle holds the lock")
    try:
        yield lock
    finally:
        try:
            lock.release()
        except LockError as error:  # LockNotOwnedError: the timeout passed while we worked
            log.warning(
                "account %s: the Redis cycle lock was no longer held at release (%s); "
                "the database claim decides the run's outcome",
                account_id,
                error,
            )


def renew_redis_lock(lock: Lock, account_id: int) -> bool:
    """Reset the lock's timeout; False (and a warning) when it is no longer ours."""
    try:
        lock.reacquire()
    except LockError as error:
        log.warning("account %s: could not extend the Redis cycle lock: %s", account_id, error)
        return False
    return True
