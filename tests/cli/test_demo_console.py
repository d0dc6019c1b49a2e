"""`make demo`'s last line serves the console on the demo's own data (synthetic): the printed
command, run as printed (on another port), answers, and the printed user signs in and sees the
simulated account; the printed key reads it through the API."""

from __future__ import annotations

import io
import os
import re
import shlex
import socket
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from rich.console import Console
from typer.testing import CliRunner

from adflywheel.cli.app import app
from adflywheel.cli.simulate import _print_console_access
from adflywheel.core.clock import ManualClock, ShiftedClock
from adflywheel.sim.harness import SimulationSpec, run_policy


def test_a_shifted_clock_starts_where_told_and_runs_on() -> None:
    wall = ManualClock(datetime(2026, 12, 6, 15, 30, tzinfo=UTC))
    start = datetime(2025, 1, 13, 0, 5, tzinfo=UTC)
    clock = ShiftedClock(start, base=wall)
    assert clock.now() == start
    wall.advance(timedelta(minutes=90))
    assert clock.now() == start + timedelta(minutes=90)


def test_serve_as_of_refuses_a_running_scheduler(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADFLYWHEEL_SCHEDULER_ENABLED", "true")
    result = CliRunner().invoke(app, ["serve", "--as-of", "2025-01-13T00:05Z"])
    assert result.exit_code == 2
    assert "scheduler off" in result.output
    result = CliRunner().invoke(app, ["serve", "--as-of", "2025-01-13T00:05"])
    assert result.exit_code == 2 and "UTC offset" in result.output


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _demo_folder(tmp_path: Path) -> Path:
    """What `adflywheel demo` leaves in data_dir/demo, from a much shorter run."""
    folder = tmp_path / "data" / "demo"
    spec = SimulationSpec(
        days=1, accounts=2, campaigns_per_account=1, variants_per_campaign=3, policy="thompson"
    )
    run_policy(spec, lambda: None, workdir=folder)
    return folder


def _printed(folder: Path) -> list[str]:
    buffer = io.StringIO()
    _print_console_access(Console(file=buffer, width=80), folder)
    return buffer.getvalue().splitlines()


@pytest.mark.slow
@pytest.mark.db
def test_the_printed_command_serves_the_demo_and_its_user_signs_in(tmp_path: Path) -> None:
    folder = _demo_folder(tmp_path)
    lines = _printed(folder)
    command = lines[-1]
    password = re.search(r"with password (\S+) \(shown this once\)", "\n".join(lines))
    key = re.search(r"\(shown this once\): (afw_\S+)", "\n".join(lines))
    email = re.search(r"sign in as (\S+@\S+) with", "\n".join(lines))
    assert password and key and email, lines
    words = shlex.split(command)
    env = dict(w.split("=", 1) for w in words if re.match(r"^ADFLYWHEEL_[A-Z_]+=", w))
    argv = [w for w in words if not re.match(r"^ADFLYWHEEL_[A-Z_]+=", w)]
    assert argv[1:4] == ["serve", "--host", "127.0.0.1"], command
    # The clock starts just after the run's last simulated hour (the demo's days are "recent").
    as_of = datetime.fromisoformat(argv[argv.index("--as-of") + 1].replace("Z", "+00:00"))
    assert as_of == SimulationSpec().market_config().start + timedelta(days=1, minutes=5)
    assert env["ADFLYWHEEL_SCHEDULER_ENABLED"] == "false"
    assert Path(env["ADFLYWHEEL_DATABASE_URL"].removeprefix("sqlite:///")) == (
        folder.resolve() / "simulation.db"
    )
    port = _free_port()
    argv[argv.index("--port") + 1] = str(port)
    base = f"http://127.0.0.1:{port}"
    # The printed environment alone (no ADFLYWHEEL_* of the test run's) and the printed argv.
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ADFLYWHEEL_")}
    with subprocess.Popen(
        argv, env={**clean, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    ) as server:
        try:
            _wait_for(base, server)
            with httpx.Client(base_url=base, timeout=30) as http:
                form = http.get("/login")
                token = re.search(r'name="csrf_token"\s+value="([^"]+)"', form.text)
                assert token, form.text
                data = {"email": email.group(1), "password": password.group(1)}
                signed = http.post("/login", data={**data, "csrf_token": token.group(1)})
                assert signed.status_code == 303, signed.text
                assert "adflywheel_session" in signed.cookies
                home = http.get("/")  # signed in: to the first simulated account's overview
                assert home.status_code == 303
                assert re.fullmatch(r"/accounts/\d+/overview", home.headers["location"])
                overview = http.get(home.headers["location"])
                assert overview.status_code == 200
                # The clock stands just after the run: its days fill the page, not empty states.
                assert "No delivery yet" not in overview.text
                assert "Nothing in the last 24 hours" not in overview.text
                assert "sim-" in overview.text  # the simulated accounts, in the switcher
                for answer in (form, signed, home, overview):
                    assert password.group(1) not in answer.text
                    assert key.group(1) not in answer.text
                api = http.get(
                    "/api/ml/campaigns", headers={"Authorization": f"Bearer {key.group(1)}"}
                )
                assert api.status_code == 200, api.text
                assert len(api.json()) == 1  # the first simulated account's one campaign
        finally:
            server.terminate()
            server.wait(timeout=20)


def _wait_for(base: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            output = server.stdout.read().decode() if server.stdout else ""
            raise AssertionError(f"the printed command exited: {output[-2000:]}")
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("the printed command did not answer /health within 60 s")
