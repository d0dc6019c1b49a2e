"""Accounts split into balanced partitions of work: pure, deterministic, no I/O.

Why weights: an account's cycle costs roughly in proportion to its variants (the allocator's
draws, the promoter's tests, the DNA and memory steps all go per variant), and accounts range
from a handful of variants to hundreds. Splitting by count alone would leave one worker with the
big accounts while the others idle at the end of the hour.

The rule is longest-processing-time first: accounts by weight, heaviest first (ties by id), each
to the partition with the least load so far (ties by partition number). It is within 4/3 of the
best possible makespan and, with many small accounts, within a hair of perfect balance. The same
ids and weights always give the same partitions, so two schedulers (or a restarted one) agree on
who runs what, and a partition's accounts are returned in id order.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Partition:
    """One share of the hour's accounts: ids in ascending order and their summed weight."""

    index: int
    account_ids: tuple[int, ...]
    load: float

    def __len__(self) -> int:
        return len(self.account_ids)


def partition(weights: Mapping[int, float], parts: int) -> list[Partition]:
    """Split ``weights`` (account id -> cost, e.g. its variant count) into ``parts`` partitions of
    near-equal load. Weights must be positive and finite; fewer accounts than ``parts`` leaves
    some partitions empty (they are still returned, so indices stay stable)."""
    if parts < 1:
        raise ValueError(f"parts must be at least 1, not {parts}")
    for account_id, weight in weights.items():
        if not (math.isfinite(weight) and weight > 0):
            raise ValueError(f"account {account_id}: weight {weight!r} is not a positive number")
    heap = [(0.0, index) for index in range(parts)]
    members: list[list[int]] = [[] for _ in range(parts)]
    loads = [0.0] * parts
    for account_id, weight in sorted(weights.items(), key=lambda item: (-item[1], item[0])):
        load, index = heapq.heappop(heap)
        members[index].append(account_id)
        loads[index] = load + weight
        heapq.heappush(heap, (loads[index], index))
    return [Partition(i, tuple(sorted(members[i])), loads[i]) for i in range(parts)]


def batches(
    weights: Mapping[int, float], batch_size: int, *, min_batches: int = 1
) -> list[Partition]:
    """Balanced batches of about ``batch_size`` accounts each (at least ``min_batches``): the
    unit submitted to a worker, so one task's overhead is paid per batch, not per account."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    count = max(min_batches, math.ceil(len(weights) / batch_size), 1)
    return [p for p in partition(weights, count) if p.account_ids]


def balance(partitions: Sequence[Partition]) -> float:
    """Max over mean partition load (1.0 is perfect); 1.0 for no load at all."""
    loads = [p.load for p in partitions]
    mean = sum(loads) / len(loads) if loads else 0.0
    return max(loads) / mean if mean > 0 else 1.0


def uniform(account_ids: Iterable[int]) -> dict[int, float]:
    """Weight 1 for every account, when their sizes are not known."""
    return dict.fromkeys(account_ids, 1.0)


def rotated(partitions: Sequence[Partition], scheduler: int, schedulers: int) -> list[Partition]:
    """The order in which scheduler ``scheduler`` of ``schedulers`` walks the partitions: each
    starts a different share along, so two schedulers racing for one hour meet late (few lost
    claims) instead of contending for every account from the first."""
    if not partitions:
        return []
    if schedulers < 1 or not 0 <= scheduler < schedulers:
        raise ValueError(f"scheduler {scheduler} of {schedulers}")
    start = (scheduler * len(partitions)) // schedulers
    return [*partitions[start:], *partitions[:start]]
