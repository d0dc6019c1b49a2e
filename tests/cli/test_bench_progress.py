"""The benchmarks' shared progress (benchmarks/_cli.py): off a terminal, one plain line per
benchmark and a summary of the times on stderr; stdout stays the JSON document's."""

from __future__ import annotations

import time

import pytest
from benchmarks._cli import each_timed


def test_each_benchmark_is_timed_and_summarised_on_stderr(
    capsys: pytest.CaptureFixture[str],
) -> None:
    seconds: dict[str, float] = {}
    ran = []
    for name in each_timed(["first", "second"], seconds):
        time.sleep(0.2 if name == "second" else 0.0)
        ran.append(name)
    captured = capsys.readouterr()
    assert ran == ["first", "second"] and captured.out == ""
    assert seconds["first"] < 0.15 <= seconds["second"]
    lines = captured.err.splitlines()
    assert lines[:2] == ["running first ...", "running second ..."]
    assert lines[-1] == f"done: first {seconds['first']:.1f} s, second {seconds['second']:.1f} s"
