"""Without an extra the service still runs and says what to install: without [dna] (the video and
audio stack) loop 4 is off with the reason, never failed; without [dask] a configured cluster is
refused with the extra to install.

The missing stack is simulated by what ``core.loops`` looks up; a subprocess test blocks the
modules themselves to check that nothing else imports them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from adflywheel.core import loops as loops_module
from adflywheel.core.clock import ManualClock
from adflywheel.core.loops import DNA_EXTRA, Extra, Loop, available_loops, unavailable
from tests.factories.helpers import auth, new_account, row, small_catalog


@pytest.fixture
def no_video_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        loops_module, "missing_modules", lambda extra: extra.modules if extra is DNA_EXTRA else ()
    )


def test_missing_modules_are_looked_up_not_imported() -> None:
    extra = Extra("probe", ("json", "adflywheel_no_such_module_here"))
    assert loops_module.missing_modules(extra) == ("adflywheel_no_such_module_here",)
    # This installation (the dev one) has the whole stack: every loop can run.
    assert unavailable(Loop.DNA) is None
    assert available_loops() == frozenset(Loop)


@pytest.mark.usefixtures("no_video_stack")
def test_only_loop_4_needs_the_extra_and_its_reason_names_it() -> None:
    reason = unavailable(Loop.DNA)
    assert reason is not None and "adflywheel[dna]" in reason and "av" in reason
    assert available_loops() == frozenset(Loop) - {Loop.DNA}
    assert all(unavailable(loop) is None for loop in Loop if loop is not Loop.DNA)


@pytest.mark.usefixtures("no_video_stack")
def test_without_the_stack_loop_4_is_off_with_the_reason_and_uploads_are_503(
    client: TestClient, engine: Engine, clock: ManualClock
) -> None:
    _, key = new_account(engine, "shop", clock.now())
    assert client.put("/api/ml/catalog", json=small_catalog(), headers=auth(key)).status_code == 200
    start = clock.now() - timedelta(hours=4)
    rows = [row(ad, (start + timedelta(hours=h)).isoformat()) for h in range(4) for ad in ("a1",)]
    assert client.post("/api/ml/actuals", json={"rows": rows}, headers=auth(key)).status_code == 200

    power = client.get("/api/ml/power", headers=auth(key)).json()
    assert power["power_level"] == 6
    by_loop = {entry["loop"]: entry for entry in power["loops"]}
    assert by_loop[4]["active"] is False and "adflywheel[dna]" in by_loop[4]["off_reason"]
    assert all(by_loop[n]["active"] and by_loop[n]["off_reason"] is None for n in (1, 2, 3, 5))

    report = client.post("/api/ml/self-learning-cycle", json={}, headers=auth(key)).json()
    dna = report["loops"]["creative_dna"]
    assert dna["status"] == "off" and "adflywheel[dna]" in dna["reason"]
    assert 4 not in report["loops_active"] and "creative_dna" not in report["errors"]
    assert report["status"] == "completed", report["errors"]

    # DNA from features needs no video stack; a video upload is refused with the reason.
    got = client.post(
        "/api/ml/creative-dna/extract", json={"features": {}, "text": "50% off"}, headers=auth(key)
    )
    assert got.status_code == 200, got.text
    mp4 = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64
    got = client.post(
        "/api/ml/creative-dna/extract",
        files={"video": ("v.mp4", mp4, "video/mp4")},
        headers=auth(key),
    )
    assert got.status_code == 503, got.text
    assert "adflywheel[dna]" in got.json()["detail"]


# Everything a lean service imports, with the optional stacks made unimportable.
_LEAN_IMPORTS = """
import importlib.abc, sys
BLOCKED = {"av", "cv2", "librosa", "pyloudnorm", "numba", "llvmlite", "dask", "distributed",
           "matplotlib"}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked)")
        return None
sys.meta_path.insert(0, Block())
import adflywheel.api.app, adflywheel.cli.app, adflywheel.cycle.runner, adflywheel.cycle.steps
from adflywheel.services.dna import service
from adflywheel.loops.dna.fingerprint import dna_from_features
assert dna_from_features({"aspect_ratio": 0.5625}, "Don't scroll").genes["aspect_ratio"]
try:
    service.extract_from_video(b"\\x00\\x00\\x00\\x18ftypmp42" + bytes(64))
except service.VideoStackMissingError as error:
    refused = str(error)
print(json.dumps({"loaded": sorted(m for m in BLOCKED if m in sys.modules), "refused": refused}))
"""


@pytest.mark.slow
def test_a_lean_service_imports_nothing_of_the_optional_stacks() -> None:
    code = "import json\n" + _LEAN_IMPORTS
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["loaded"] == []
    assert "adflywheel[dna]" in result["refused"]


def test_a_dask_scheduler_without_dask_says_which_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from adflywheel.core.errors import UnavailableError
    from adflywheel.core.settings import Settings
    from adflywheel.cycle.executor import cycle_executor

    monkeypatch.setitem(sys.modules, "dask.distributed", None)  # an import of it now fails
    with (
        pytest.raises(UnavailableError, match=r"adflywheel\[dask\]"),
        cycle_executor(Settings(dask_scheduler="tcp://127.0.0.1:1")),
    ):
        pass
