"""The hashed locks agree with pyproject.toml and keep the lean install lean (issue #20 item 6)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==([^\s;\\]+)")
# What the extras bring and a service that analyses no video must not install.
HEAVY = {"av", "librosa", "numba", "llvmlite", "opencv-python-headless", "matplotlib", "dask"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _lock(name: str) -> dict[str, tuple[str, int]]:
    """Each pinned package: its version and how many hashes it carries."""
    pins: dict[str, tuple[str, int]] = {}
    current = None
    for line in (ROOT / name).read_text().splitlines():
        match = PIN.match(line)
        if match:
            current = _norm(match.group(1))
            pins[current] = (match.group(2), 0)
        elif current and line.strip().startswith("--hash=sha256:"):
            version, hashes = pins[current]
            pins[current] = (version, hashes + 1)
    return pins


def _pins(requirements: list[str]) -> dict[str, str]:
    out = {}
    for requirement in requirements:
        match = PIN.match(requirement)
        assert match, f"not an exact pin: {requirement}"
        out[_norm(match.group(1))] = match.group(2)
    return out


PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
RUNTIME = _pins(PROJECT["dependencies"])
EXTRAS = {extra: _pins(reqs) for extra, reqs in PROJECT["optional-dependencies"].items()}


def test_every_locked_package_has_hashes() -> None:
    for name in ("requirements.lock", "requirements-full.lock", "requirements-dev.lock"):
        lock = _lock(name)
        assert len(lock) > 40, name
        assert all(hashes > 0 for _, hashes in lock.values()), name


def test_the_lean_lock_holds_the_runtime_pins_and_nothing_heavy() -> None:
    lean = _lock("requirements.lock")
    for package, version in RUNTIME.items():
        assert lean[package][0] == version, package
    assert not HEAVY & set(lean), HEAVY & set(lean)


def test_the_full_and_dev_locks_hold_the_extras_at_the_lean_versions() -> None:
    lean = _lock("requirements.lock")
    full, dev = _lock("requirements-full.lock"), _lock("requirements-dev.lock")
    for extra, pins in EXTRAS.items():
        for package, version in pins.items():
            assert dev[package][0] == version, (extra, package)
            if extra != "dev":
                assert full[package][0] == version, (extra, package)
    assert {"numba", "llvmlite"} <= set(full)
    for package, (version, _) in lean.items():
        assert full[package][0] == version and dev[package][0] == version, package
    assert "pytest" not in full and "pytest" in dev
