"""Every command, option and argument of the command line says what it is for (issue #20)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import typer
import typer.main

from adflywheel.cli.app import app

# typer's own: they carry their help already; listed so a missing one of ours cannot hide.
BUILT_IN = {"help", "install_completion", "show_completion"}


def _commands(command: Any, path: str) -> Iterator[tuple[str, Any]]:
    yield path, command
    for name, sub in sorted((getattr(command, "commands", None) or {}).items()):
        yield from _commands(sub, f"{path} {name}")


def _undocumented(root: Any) -> list[str]:
    missing = []
    for path, command in _commands(root, "adflywheel"):
        if not (command.help or "").strip():
            missing.append(f"{path}: the command")
        for param in command.params:
            if param.name not in BUILT_IN and not (getattr(param, "help", None) or "").strip():
                missing.append(f"{path}: {param.name}")
    return missing


def test_every_command_option_and_argument_has_help() -> None:
    root = typer.main.get_command(app)
    walked = [path for path, _ in _commands(root, "adflywheel")]
    assert {"adflywheel import-csv", "adflywheel accounts create", "adflywheel demo"} <= set(walked)
    assert _undocumented(root) == []


def test_the_walk_finds_an_option_without_help() -> None:
    probe = typer.Typer(help="A probe.")

    @probe.command()
    def first(documented: int = typer.Option(1, help="Has help."), bare: int = 2) -> None:
        """A command."""

    @probe.command()
    def second() -> None:
        """Another."""

    assert _undocumented(typer.main.get_command(probe)) == ["adflywheel first: bare"]
