"""After ``adflywheel demo``: the one command that serves the console on the demo's own data.

The demo's run leaves a SQLite database and its artifacts (models, thumbnails) in
``data_dir/demo``. This gives its first simulated account an API key and creates a console user
with a generated password, admin on every simulated account (the account switcher shows them
all), then prints the ``serve`` command on that folder with the clock started just after the
run's last simulated hour (``--as-of``), so the pages' "last 24 hours" and "this month" are the
demo's days, and with the scheduler off: an hourly cycle on the wall clock's hours would only
add empty runs.
The key and the password are printed once, here, and kept nowhere else in clear.
"""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from adflywheel.store.accounts import issue_key
from adflywheel.store.engine import make_engine, make_session_factory, transaction
from adflywheel.store.models import Account, CycleRun
from adflywheel.store.users import Role, create_user, generate_password, grant

DEMO_EMAIL = "demo@adflywheel.example"


@dataclass(frozen=True, slots=True)
class DemoAccess:
    """What a newcomer needs to open the demo in a browser (secrets shown once)."""

    command: str
    url: str
    account_name: str
    api_key: str
    email: str
    password: str


def executable() -> str:
    """The ``adflywheel`` beside the running interpreter (the venv's), relative to the working
    folder when it is inside it (``.venv/bin/adflywheel``), else as found on the PATH."""
    candidate = Path(sys.executable).parent / "adflywheel"
    if not candidate.exists():
        return "adflywheel"
    try:
        return (
            os.path.relpath(candidate) if candidate.is_relative_to(Path.cwd()) else str(candidate)
        )
    except ValueError:
        return str(candidate)


def serve_command(
    folder: Path, as_of: datetime, *, host: str = "127.0.0.1", port: int = 8000
) -> str:
    """``serve`` on the demo's folder: its database, its artifacts, no scheduler, the clock
    starting at ``as_of``."""
    folder = folder.resolve()
    env = {
        "ADFLYWHEEL_DATA_DIR": str(folder),
        "ADFLYWHEEL_DATABASE_URL": f"sqlite:///{folder / 'simulation.db'}",
        "ADFLYWHEEL_ARTIFACTS_URL": str(folder / "artifacts"),
        "ADFLYWHEEL_SCHEDULER_ENABLED": "false",
    }
    words = [f"{k}={shlex.quote(v)}" for k, v in env.items()]
    words += [shlex.quote(executable()), "serve", "--host", host, "--port", str(port)]
    words += ["--as-of", as_of.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")]
    return " ".join(words)


def grant_demo_access(folder: Path, *, now: datetime | None = None) -> DemoAccess:
    """A key for the demo's first account and a console user on all of them (see the module)."""
    now = now or datetime.now(UTC)
    engine = make_engine(f"sqlite:///{folder.resolve() / 'simulation.db'}")
    try:
        with transaction(make_session_factory(engine)) as session:
            accounts = session.scalars(select(Account).order_by(Account.id)).all()
            if not accounts:
                raise ValueError(f"the demo's database in {folder} holds no account")
            key = issue_key(session, accounts[0], now)
            password = generate_password()
            create_user(session, DEMO_EMAIL, password, now)
            for account in accounts:
                grant(session, DEMO_EMAIL, account.id, Role.ADMIN, now)
            first = accounts[0].name
            last_hour = session.scalar(select(func.max(CycleRun.hour_start)))
    finally:
        engine.dispose()
    return DemoAccess(
        # A few minutes into the hour after the last cycle's: that hour's decisions are recent.
        command=serve_command(folder, (last_hour or now) + timedelta(minutes=5)),
        url="http://127.0.0.1:8000/",
        account_name=first,
        api_key=key.key,
        email=DEMO_EMAIL,
        password=password,
    )
