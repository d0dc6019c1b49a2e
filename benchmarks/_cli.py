"""The shared command line of the benchmark modules: ``--quick`` and an aligned listing."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any


def print_figures(
    run: Callable[..., dict[str, Any]], description: str | None, quick_help: str
) -> None:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help=quick_help)
    figures = run(quick=parser.parse_args().quick)
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        print(f"{key:<{width}}  {value}")
