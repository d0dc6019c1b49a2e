"""Which ad platform an account's writes go to.

The API gets a resolver from whoever builds the app: the harness and tests resolve accounts to
the simulated market; a deployment resolves them to their Meta connection once that client
exists. Until an account has one, writes fail with a clear ``PlatformError`` (dry runs still work).
"""

from __future__ import annotations

from collections.abc import Callable

from adflywheel.platforms.base import AdPlatform, PlatformError

PlatformResolver = Callable[[int], AdPlatform]


def no_platform(account_id: int) -> AdPlatform:
    raise PlatformError(
        f"account {account_id} has no connected ad platform that can write budgets; "
        "use dry_run=true to see the proposal"
    )
