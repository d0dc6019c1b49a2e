"""``adflywheel accounts set-meta-token|clear-meta-token|rotate-token-key`` on both stores (issue
#17): the token comes from stdin and is checked with Graph before it is stored encrypted; no key,
no storing; key rotation lets the old key go; listings show a fingerprint and the expiry; the
token never appears in any output, log or table."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import Result
from cryptography.fernet import Fernet
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from adflywheel.cli.app import app
from adflywheel.platforms.meta.tokens import fingerprint
from tests.factories.clock import T0
from tests.factories.fake_graph import FakeGraph, FakeTime, synthetic_account
from tests.factories.helpers import new_account

pytestmark = pytest.mark.db

OWN = "agency-own-token-Qm93tR"
BOGUS = "agency-bogus-token-Lx05eN"
EXPIRED = "agency-expired-token-Hr47cW"
K1, K2, K3 = (Fernet.generate_key().decode() for _ in range(3))


@pytest.fixture
def graph() -> Iterator[FakeGraph]:
    with FakeGraph(clock=FakeTime(), token="deployment-token-unused") as fake:
        fake.add(synthetic_account("act_6006", 3, timezone="UTC"))
        fake.allow(OWN, expires_at=int(time.time()) + 6 * 86_400)
        yield fake


class Cli:
    """Runs the command line in process, keeping everything it printed."""

    def __init__(self, database_url: str, graph: FakeGraph) -> None:
        self.runner = CliRunner()
        self.env = {
            "ADFLYWHEEL_DATABASE_URL": database_url,
            "ADFLYWHEEL_META_GRAPH_URL": graph.base_url,
            "ADFLYWHEEL_META_ACCESS_TOKEN": None,
        }
        self.printed: list[str] = []

    def __call__(self, *args: str, keys: str | None = None, stdin: str | None = None) -> Result:
        env: dict[str, Any] = {**self.env, "ADFLYWHEEL_TOKEN_ENCRYPTION_KEYS": keys}
        result = self.runner.invoke(app, list(args), env=env, input=stdin)
        self.printed.append(result.output + (result.stderr or ""))
        return result


def _rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT * FROM meta_connections")).mappings().all()
    return [dict(r) for r in rows]


def _listed(cli: Cli, name: str) -> dict[str, Any]:
    listing = cli("accounts", "list")
    assert listing.exit_code == 0, listing.output
    line = next(json.loads(x) for x in listing.stdout.splitlines() if f'"{name}"' in x)
    assert isinstance(line, dict)
    return line


def test_set_list_rotate_fetch_and_clear_an_accounts_own_token(
    engine: Engine, database_url: str, graph: FakeGraph, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    new_account(engine, "acme", T0)
    cli = Cli(database_url, graph)
    connect = ("accounts", "set-meta-token", "--account", "acme", "--ad-account", "act_6006")

    refused = cli(*connect, stdin=OWN)  # no key: never stored in plain text
    assert refused.exit_code == 2 and "ADFLYWHEEL_TOKEN_ENCRYPTION_KEYS" in refused.output
    assert _rows(engine) == []
    argv = cli("accounts", "set-meta-token", "--account", "acme", "--token", OWN, keys=K1)
    assert argv.exit_code == 2  # there is no way to pass it on the command line
    invalid = cli(*connect, keys=K1, stdin=BOGUS + "\n")  # Graph refuses it
    assert invalid.exit_code == 2 and "code 190" in invalid.output and _rows(engine) == []
    graph.allow(EXPIRED, expires_at=int(time.time()) - 60)
    expired = cli(*connect, keys=K1, stdin=EXPIRED)
    assert expired.exit_code == 2 and "expired" in expired.output and _rows(engine) == []

    stored = cli(*connect, keys=K1, stdin=OWN + "\n")
    assert stored.exit_code == 0, stored.output
    answer = json.loads(stored.stdout)
    assert answer["fingerprint"] == fingerprint(OWN) and answer["ad_account_id"] == "act_6006"
    assert answer["valid"] is True and "in 6.0 days" in answer["warning"]
    assert "warning" in (stored.stderr or stored.output)
    [row] = _rows(engine)
    assert row["token_ciphertext"] and OWN not in json.dumps(row, default=str)
    listed = _listed(cli, "acme")["meta_token"]
    assert listed["source"] == "account" and listed["fingerprint"] == fingerprint(OWN)
    assert listed["expires_at"] and listed["warning"] and listed["valid"] is True

    rotated = cli("accounts", "rotate-token-key", keys=f"{K2},{K1}")
    assert rotated.exit_code == 0 and json.loads(rotated.stdout) == {"rotated": 1, "keys": 2}
    assert _rows(engine)[0]["token_ciphertext"] != row["token_ciphertext"]
    fetched = cli("meta", "fetch", "--account", "acme", keys=K2)  # the old key is gone
    assert fetched.exit_code == 0, fetched.output
    assert json.loads(fetched.stdout)["status"] == "ok"
    old_key = cli("meta", "fetch", "--account", "acme", keys=K1)
    assert old_key.exit_code == 1 and "cannot be decrypted" in old_key.stdout
    before = _rows(engine)[0]["token_ciphertext"]
    lost = cli("accounts", "rotate-token-key", keys=K3)  # no key decrypts: nothing changes
    assert lost.exit_code == 2 and "nothing was re-encrypted" in lost.output
    assert _rows(engine)[0]["token_ciphertext"] == before

    cleared = cli("accounts", "clear-meta-token", "--account", "acme")
    assert cleared.exit_code == 0, cleared.output
    [row] = _rows(engine)
    assert row["token_ciphertext"] is None and row["ad_account_id"] == "act_6006"
    assert _listed(cli, "acme")["meta_token"]["source"] == "deployment"
    assert cli("accounts", "clear-meta-token", "--account", "acme").exit_code == 2

    everything = "\n".join(cli.printed) + caplog.text
    assert OWN not in everything and BOGUS not in everything and EXPIRED not in everything
    assert graph.requests and any(r.path.endswith("/debug_token") for r in graph.requests)


def test_an_unconnected_account_needs_an_ad_account(
    engine: Engine, database_url: str, graph: FakeGraph
) -> None:
    new_account(engine, "solo", T0)
    cli = Cli(database_url, graph)
    result = cli("accounts", "set-meta-token", "--account", "solo", keys=K1, stdin=OWN)
    assert result.exit_code == 2 and "--ad-account" in result.output
    assert _listed(cli, "solo")["meta_token"] is None
    nobody = cli("accounts", "set-meta-token", "--account", "nobody", keys=K1, stdin=OWN)
    assert nobody.exit_code == 2
    bad_key = cli("accounts", "rotate-token-key", keys="not-a-key")
    assert bad_key.exit_code == 2 and "not a Fernet key" in bad_key.output
