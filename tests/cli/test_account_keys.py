"""``adflywheel accounts list|rotate-key|revoke-key``: keys are rotated and revoked from the
command line, and no listing ever shows a key (issue #17)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from adflywheel.store.accounts import authenticate
from adflywheel.store.engine import make_session_factory
from tests.factories.cli import cli

pytestmark = [pytest.mark.db, pytest.mark.slow]


@pytest.fixture
def data_env(tmp_path: Path) -> dict[str, str]:
    env = {"ADFLYWHEEL_DATA_DIR": str(tmp_path / "data"), "ADFLYWHEEL_DATABASE_URL": ""}
    cli("db", "upgrade", env=env)
    return env


def _works(env: dict[str, str], key: str) -> bool:
    engine = create_engine(f"sqlite:///{Path(env['ADFLYWHEEL_DATA_DIR']) / 'adflywheel.db'}")
    with make_session_factory(engine)() as session:
        found = authenticate(session, key) is not None
    engine.dispose()
    return found


def test_rotate_revoke_and_list(data_env: dict[str, str]) -> None:
    first = cli("accounts", "create", "acme", env=data_env).stdout.strip()
    cli("accounts", "create", "other", env=data_env)
    assert _works(data_env, first)

    rotated = cli("accounts", "rotate-key", "acme", env=data_env)
    second = rotated.stdout.strip()
    assert second.startswith("afw_") and second != first
    assert "1 key(s) revoked" in rotated.stderr
    assert not _works(data_env, first) and _works(data_env, second)

    listing = cli("accounts", "list", env=data_env).stdout
    assert first not in listing and second not in listing  # never a key, only its first chars
    acme = next(json.loads(line) for line in listing.splitlines() if '"acme"' in line)
    assert acme["mode"] == "recommend"
    active = [k for k in acme["keys"] if k["revoked_at"] is None]
    assert [k["prefix"] for k in active] == [second[:12]]

    wrong = cli("accounts", "revoke-key", "acme", "--prefix", "afw_nope1234", env=data_env,
                check=False)  # fmt: skip
    assert wrong.returncode == 2 and _works(data_env, second)
    neither = cli("accounts", "revoke-key", "acme", env=data_env, check=False)
    assert neither.returncode == 2
    cli("accounts", "revoke-key", "acme", "--prefix", second[:12], env=data_env)
    assert not _works(data_env, second)
    assert cli("accounts", "rotate-key", "nobody", env=data_env, check=False).returncode == 2
