"""The seven learning loops: one enum and one registry that every layer reads.

Inside the code a loop has one name, the name of its core (``loops/<name>``), its service
package (``services/<name>``) and its router (``api/routers/<name>.py``). What users already rely
on — the loop numbers in settings and reports, the power table's names, the report's step names
and the HTTP paths — is declared here once, as each loop's public aliases.

The registry's order is the cycle's: after the foundation (catalogue and actuals), validate
past predictions, read new creatives, predict, reallocate, promote, share, remember.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum
from functools import cache


class Loop(IntEnum):
    """A loop by its number (the number users set in ``ADFLYWHEEL_LOOPS`` and see in reports)."""

    MEMORY = 1
    BANDIT = 2
    CROSSLEARN = 3
    DNA = 4
    COMPOUND = 5
    MONITOR = 6
    PROMOTER = 7


@dataclass(frozen=True, slots=True)
class Extra:
    """An optional part of the install (``pip install 'adflywheel[name]'``) and the modules it
    brings: a loop that needs it is off, with the reason, where they are missing."""

    name: str
    modules: tuple[str, ...]


# The video and audio stack (librosa pulls numba and llvmlite): only video analysis needs it.
DNA_EXTRA = Extra("dna", ("av", "cv2", "librosa", "pyloudnorm"))


@dataclass(frozen=True, slots=True)
class LoopInfo:
    loop: Loop
    power_name: str  # its name in the power table (GET /api/ml/power)
    step_name: str  # its step in the cycle's report
    api_prefix: str  # where its own routes live
    what: str
    needs: Extra | None = None


# In the cycle's order.
REGISTRY: tuple[LoopInfo, ...] = (
    LoopInfo(
        Loop.MONITOR,
        "validation",
        "validate_predictions",
        "/api/ml",
        "score past predictions, detect drift, retrain through the gate",
    ),
    LoopInfo(
        Loop.DNA,
        "creative_dna",
        "creative_dna",
        "/api/ml",
        "extract what each creative is made of and why ads win",
        DNA_EXTRA,
    ),
    LoopInfo(
        Loop.COMPOUND,
        "compound",
        "compound",
        "/api/ml/compound",
        "three CTR predictors voting with learned weights; model registry",
    ),
    LoopInfo(
        Loop.BANDIT,
        "thompson",
        "reallocate_budgets",
        "/api/ml",
        "move budget toward what works with Thompson sampling",
    ),
    LoopInfo(
        Loop.PROMOTER,
        "promoter",
        "auto_promote",
        "/api/ml",
        "promote significant winners within guardrails",
    ),
    LoopInfo(
        Loop.CROSSLEARN,
        "cross_account",
        "cross_account",
        "/api/ml/cross-learning",
        "share anonymous, noised gene patterns within a niche (opt-in)",
    ),
    LoopInfo(
        Loop.MEMORY,
        "winner_memory",
        "winner_memory",
        "/api/ml/rag",
        "remember every winner (FAISS) and find similar past winners",
    ),
)
INFO: dict[Loop, LoopInfo] = {info.loop: info for info in REGISTRY}
ALL_LOOPS: frozenset[Loop] = frozenset(Loop)


@cache
def missing_modules(extra: Extra) -> tuple[str, ...]:
    """The extra's modules this installation lacks (looked up once: an install does not change
    under a running process)."""
    return tuple(name for name in extra.modules if not _importable(name))


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a finder that refuses the name
        return False


def unavailable(loop: Loop) -> str | None:
    """Why this installation cannot run the loop (an extra it needs is not installed), or None."""
    extra = INFO[loop].needs
    if extra is None:
        return None
    missing = missing_modules(extra)
    if not missing:
        return None
    return (
        f"not installed: {', '.join(missing)} (the [{extra.name}] extra); "
        f"install adflywheel[{extra.name}] to turn it on"
    )


def available_loops() -> frozenset[Loop]:
    """The loops this installation can run."""
    return frozenset(loop for loop in Loop if unavailable(loop) is None)


def validate_loops(numbers: Iterable[int]) -> frozenset[Loop]:
    """The loops named by these numbers; an unknown number is an error."""
    wanted = set(numbers)
    unknown = sorted(wanted - {int(loop) for loop in Loop})
    if unknown:
        raise ValueError(f"unknown loops {unknown}: loops are numbered 1 to 7")
    return frozenset(Loop(number) for number in wanted)


def parse_loops(spec: str) -> frozenset[Loop]:
    """``"all"``, ``"none"`` or a comma list such as ``"1,2,3"``; anything else is an error."""
    text = spec.strip().lower()
    if text == "all":
        return ALL_LOOPS
    if text in ("", "none"):
        return frozenset()
    try:
        numbers = [int(part) for part in text.split(",")]
    except ValueError as error:
        raise ValueError(
            f"loops must be 'all', 'none' or numbers like '1,2,3', not {spec!r}"
        ) from error
    return validate_loops(numbers)
