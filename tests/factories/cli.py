"""The command line run as a newcomer runs it: a subprocess of ``python -m adflywheel.cli.app``."""

from __future__ import annotations

import os
import subprocess
import sys


def cli(
    *args: str, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "adflywheel.cli.app", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result
