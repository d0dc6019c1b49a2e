"""The shared command line of the benchmark modules: ``--quick``, progress on standard error
(drawn only on a terminal, so logs and the JSON on stdout stay clean) and an aligned listing."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

ERR = Console(stderr=True)


def progress() -> Progress:
    """A bar with elapsed time on standard error; off where that is not a terminal."""
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=ERR,
        transient=True,
        disable=not ERR.is_terminal,
    )


def each_timed(names: Sequence[str], seconds: dict[str, float]) -> Iterator[str]:
    """Yield each benchmark's name under a progress bar, noting its seconds in ``seconds``; a
    non-terminal gets one plain line per benchmark instead, then a summary of the times."""
    with progress() as bar:
        task = bar.add_task("benchmarks", total=len(names))
        for name in names:
            bar.update(task, description=f"running {name}")
            if not ERR.is_terminal:
                ERR.print(f"running {name} ...")
            started = time.perf_counter()
            yield name
            seconds[name] = round(time.perf_counter() - started, 1)
            bar.advance(task)
    ERR.print("done: " + ", ".join(f"{name} {s:.1f} s" for name, s in seconds.items()))


def print_figures(
    run: Callable[..., dict[str, Any]], description: str | None, quick_help: str
) -> None:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help=quick_help)
    quick = parser.parse_args().quick
    with progress() as bar:
        bar.add_task("measuring", total=None)
        figures = run(quick=quick)
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        print(f"{key:<{width}}  {value}")
