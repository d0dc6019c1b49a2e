"""Sharded, resumable runs: each shard's result is one JSON file written the moment it finishes.

A finished shard is never run again. A shard being run is claimed by a lock file created with
``O_EXCL`` (atomic on a local file system), so two invocations at once never run the same shard;
a running shard touches its lock every few minutes, so a lock untouched for ``stale_hours``
belongs to a run that died and may be taken over. Results are
written to a temporary file and renamed into place, so a killed run leaves no half-written shard.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.ablation_design import Shard

Runner = Callable[[Shard], dict[str, Any]]
DEFAULT_STALE_HOURS = 2.0
HEARTBEAT_SECONDS = 300.0  # a running shard touches its lock this often


def result_path(folder: Path, shard: Shard) -> Path:
    return folder / "runs" / f"{shard.name}.json"


def lock_path(folder: Path, shard: Shard) -> Path:
    return folder / "runs" / f"{shard.name}.lock"


def claim(folder: Path, shard: Shard, stale_hours: float = DEFAULT_STALE_HOURS) -> bool:
    """Take the shard's lock; False when another live run holds it."""
    path = lock_path(folder, shard)
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            handle = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                age_hours = (time.time() - path.stat().st_mtime) / 3600
            except FileNotFoundError:
                continue  # released meanwhile: try again
            if age_hours < stale_hours:
                return False
            # Stale: take it over. Renaming first means only one of two rivals removes it.
            grave = path.with_suffix(f".stale-{os.getpid()}")
            try:
                path.rename(grave)
            except FileNotFoundError:
                continue
            if (time.time() - grave.stat().st_mtime) / 3600 < stale_hours:
                # A rival's fresh claim, made since we looked: give it back.
                with contextlib.suppress(FileExistsError):
                    os.link(grave, path)
                grave.unlink(missing_ok=True)
                return False
            grave.unlink(missing_ok=True)
            continue
        with os.fdopen(handle, "w") as out:
            owner = {"pid": os.getpid(), "host": socket.gethostname()}
            json.dump({**owner, "claimed_at": datetime.now(UTC).isoformat()}, out)
        return True
    return False


def _heartbeat(path: Path, stop: threading.Event) -> None:
    while not stop.wait(HEARTBEAT_SECONDS):
        with contextlib.suppress(FileNotFoundError):
            os.utime(path)


def release(folder: Path, shard: Shard) -> None:
    lock_path(folder, shard).unlink(missing_ok=True)


def write_atomically(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(document, default=str))
    os.replace(temporary, path)


def run_one(
    folder: Path, shard: Shard, runner: Runner, stale_hours: float = DEFAULT_STALE_HOURS
) -> tuple[str, float]:
    """Run one shard unless it is finished or claimed: ("ran" | "done" | "locked" | "failed: …",
    seconds). The runner's seconds are recorded in the shard's JSON."""
    target = result_path(folder, shard)
    if target.exists():
        return "done", 0.0
    if not claim(folder, shard, stale_hours):
        return "locked", 0.0
    try:
        if target.exists():  # finished by another run between the check and the claim
            return "done", 0.0
        started, cpu_started = time.perf_counter(), time.process_time()
        stop = threading.Event()
        beat = threading.Thread(target=_heartbeat, args=(lock_path(folder, shard), stop))
        beat.start()
        try:
            summary = runner(shard)
        except Exception as error:  # one failing shard must not stop the sitting
            return f"failed: {type(error).__name__}: {error}", time.perf_counter() - started
        finally:
            stop.set()
            beat.join()
        seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - cpu_started
        document = {
            **summary,
            "scenario": shard.scenario,
            "set": shard.loop_set.slug,
            "set_label": shard.loop_set.label,
            "policy": shard.loop_set.policy,
            "seed": shard.seed,
            "quick": shard.quick,
            "seconds": round(seconds, 2),
            # This process's CPU time: on a shared machine, wall seconds also count the others.
            "cpu_seconds": round(cpu_seconds, 2),
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        write_atomically(target, document)
        return "ran", seconds
    finally:
        release(folder, shard)


@dataclass(slots=True)
class Sitting:
    """What one invocation did."""

    ran: list[str] = field(default_factory=list)
    done: list[str] = field(default_factory=list)
    locked: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def note(self, shard: Shard, status: str, seconds: float) -> None:
        self.seconds += seconds
        if status.startswith("failed"):
            self.failed[shard.name] = status
        else:
            getattr(self, status).append(shard.name)


def run_shards(
    folder: Path,
    todo: Iterable[Shard],
    runner: Runner,
    workers: int = 1,
    stale_hours: float = DEFAULT_STALE_HOURS,
    progress: Callable[[Shard, str], None] = lambda shard, status: None,
) -> Sitting:
    """Every shard not finished yet, in ``workers`` processes (1: in this process; the runner
    must then be a module-level function to cross into a process)."""
    sitting = Sitting()
    pending = list(todo)
    if workers <= 1:
        for shard in pending:
            status, seconds = run_one(folder, shard, runner, stale_hours)
            sitting.note(shard, status, seconds)
            progress(shard, status)
        return sitting
    with ProcessPoolExecutor(workers) as pool:
        futures: dict[Future[tuple[str, float]], Shard] = {}
        for shard in pending:
            if result_path(folder, shard).exists():  # no process for a finished shard
                sitting.note(shard, "done", 0.0)
                progress(shard, "done")
                continue
            futures[pool.submit(run_one, folder, shard, runner, stale_hours)] = shard
        waiting = set(futures)
        while waiting:
            finished, waiting = wait(waiting, return_when=FIRST_COMPLETED)
            for future in finished:
                shard = futures[future]
                try:
                    status, seconds = future.result()
                except Exception as error:  # the worker process itself died
                    status, seconds = f"failed: {type(error).__name__}: {error}", 0.0
                sitting.note(shard, status, seconds)
                progress(shard, status)
    return sitting


def load_results(folder: Path) -> list[dict[str, Any]]:
    """Every finished shard in the folder (whatever sitting wrote it)."""
    runs = folder / "runs"
    if not runs.is_dir():
        return []
    return [json.loads(p.read_text()) for p in sorted(runs.glob("*.json"))]
