"""The ablation's design: scenarios, loop sets and the shards they make (pure; no simulation).

A shard is one (scenario, loop set, seed) run. Its result lives in one JSON file, so that the
design can be run across several sittings and worker processes (``ablation_shards``).

The loop registry (``adflywheel.core.loops``) declares no dependency between loops: a set is any
subset, written the way ``parse_loops`` reads it. What a loop's removal also switches off inside
other loops is written beside each leave-one-out set (``SET_NOTES``), from the cycle's steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from adflywheel.core.loops import ALL_LOOPS, Loop, parse_loops

OUT = Path(__file__).parent / "out" / "ablation"
LEAVE_ONE_OUT = (Loop.MEMORY, Loop.CROSSLEARN, Loop.DNA, Loop.COMPOUND)
BASELINE = "thompson-alone"
ALL_SEVEN = "all-seven"
FULL_SEEDS = (1, 2, 3, 4, 5)
QUICK_SEEDS = (1, 2)


def _without(loop: Loop) -> str:
    kept = sorted(int(k) for k in ALL_LOOPS - {loop})
    return "loops=" + ",".join(str(k) for k in kept)


@dataclass(frozen=True, slots=True)
class LoopSet:
    slug: str  # file-name safe; the shard's file is <slug>-seed<k>.json
    label: str
    policy: str  # what SimulationSpec.policy reads: "loops=..."

    @property
    def loops(self) -> frozenset[Loop]:
        """The service's loops the set runs (a truth prior, ``+truth-prior=...``, is none)."""
        return parse_loops(self.policy.removeprefix("loops=").partition("+")[0])


THOMPSON = LoopSet(BASELINE, "Thompson alone (loops=2)", "loops=2")
ALL = LoopSet(ALL_SEVEN, "all seven (loops=all)", "loops=all")
MINUS = {
    loop: LoopSet(f"all-minus-{int(loop)}", f"all seven − loop {int(loop)}", _without(loop))
    for loop in LEAVE_ONE_OUT
}
NOTE_THREE = LoopSet("note-three", "the note's 3 loops (loops=1,2,3)", "loops=1,2,3")
# Evaluation-only upper bounds (sim.truth_priors): Thompson alone, each young variant's prior
# read from the market's truth at the strongest strength a loop may give. What a perfect
# prediction is worth through the same gate, tilt, caps, edit rules and learning phase.
TRUTH_PRIOR_AD = LoopSet(
    "truth-prior-ad",
    "upper bound, evaluation only: Thompson alone + a perfect prior (loops=2+truth-prior=ad)",
    "loops=2+truth-prior=ad",
)
TRUTH_PRIOR_GENES = LoopSet(
    "truth-prior-genes",
    "upper bound, evaluation only: Thompson alone + the genes' truth as prior "
    "(loops=2+truth-prior=genes)",
    "loops=2+truth-prior=genes",
)
TRUTH_PRIOR_AD_LOOSE = LoopSet(
    "truth-prior-ad-loose",
    "upper bound, evaluation only: a perfect prior without the allocator's prior guards "
    "(loops=2+truth-prior=ad+loose)",
    "loops=2+truth-prior=ad+loose",
)

# What removing a loop also changes in the loops that stay (read from the cycle's steps).
SET_NOTES = {
    "all-minus-1": "loop 3 no longer refreshes the shared winner index (it needs loop 1)",
    "all-minus-3": "no niche prior for new variants; accounts do not opt in",
    "all-minus-4": "loop 5 still runs: it derives a variant's DNA from its features itself",
    "all-minus-5": "no compound prior for new variants, no predictions for loop 6 to score, "
    "no retrains",
    "truth-prior-ad": "not a loop set: reads the market's truth (each young ad's CTR at launch)",
    "truth-prior-genes": "not a loop set: reads the market's truth (the part of each young "
    "ad's CTR its genes, niche and account explain)",
    "truth-prior-ad-loose": "not a loop set: the perfect prior with tilt 1 (0 to 2x a fair "
    "share while gated) and 20,000 impressions of strength; the edit rules still apply",
}

# The design per scenario: the loop sets, in table order (uniform comes from every run's
# reference, so it is no set of its own).
DESIGN: dict[str, tuple[LoopSet, ...]] = {
    "churn": (THOMPSON, ALL, *MINUS.values()),
    "null": (THOMPSON, ALL),
    "strong": (THOMPSON, ALL),
    # Today's experiment before the churn scenario: 2 accounts, 2 late variants per campaign.
    "legacy": (THOMPSON, NOTE_THREE, ALL),
}
# Sets run only when named (``--sets``): not in the design, so its machine time is unchanged.
OPTIONAL: dict[str, tuple[LoopSet, ...]] = {
    name: (TRUTH_PRIOR_AD, TRUTH_PRIOR_GENES, TRUTH_PRIOR_AD_LOOSE)
    for name in ("churn", "null", "strong")
}
QUICK_SETS = (BASELINE, ALL_SEVEN)
SCENARIO_NAMES = tuple(DESIGN)


@dataclass(frozen=True, slots=True)
class Shard:
    scenario: str
    loop_set: LoopSet
    seed: int
    quick: bool = False
    days: int | None = None  # None: the scenario's own length

    @property
    def name(self) -> str:
        return f"{self.loop_set.slug}-seed{self.seed}"


def table_order(scenario: str) -> tuple[LoopSet, ...]:
    """Every set the scenario may run, in table order: its design, then its optional sets."""
    return (*DESIGN.get(scenario, ()), *OPTIONAL.get(scenario, ()))


def sets_for(scenario: str, wanted: str | None = None, quick: bool = False) -> tuple[LoopSet, ...]:
    """The scenario's loop sets, or those named in ``wanted`` (comma-separated slugs; the
    scenario's optional sets may be named too)."""
    design = DESIGN[scenario]
    if wanted is None:
        if not quick:
            return design
        wanted = ",".join(QUICK_SETS)
    by_slug = {s.slug: s for s in table_order(scenario)}
    names = [w.strip() for w in wanted.split(",") if w.strip()]
    unknown = [n for n in names if n not in by_slug]
    if unknown:
        raise ValueError(f"unknown sets {unknown} for {scenario!r}; choose from {list(by_slug)}")
    return tuple(by_slug[n] for n in names)


def parse_seeds(text: str) -> tuple[int, ...]:
    """``"1-5"``, ``"1,3"`` or ``"1-3,7"``: the seeds in order, each once."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        low, _, high = part.partition("-")
        first, last = int(low), int(high or low)
        if last < first:
            raise ValueError(f"seed range {part!r} runs backwards")
        seeds.extend(range(first, last + 1))
    if not seeds:
        raise ValueError(f"no seeds in {text!r}")
    return tuple(dict.fromkeys(seeds))


def shards(
    scenario: str,
    sets: tuple[LoopSet, ...],
    seeds: tuple[int, ...],
    quick: bool = False,
    days: int | None = None,
) -> list[Shard]:
    """Seed-major, so that a sitting cut short leaves whole seeds to pair."""
    return [Shard(scenario, s, seed, quick, days) for seed in seeds for s in sets]


def scenario_folder(
    scenario: str, quick: bool = False, days: int | None = None, root: Path = OUT
) -> Path:
    """Quick runs and other lengths keep their own folder: their shards never pair with the
    full design's."""
    suffix = ("-quick" if quick else "") + (f"-{days}d" if days is not None else "")
    return root / f"{scenario}{suffix}"


def full_design_shards(scenario: str) -> int:
    return len(DESIGN[scenario]) * len(FULL_SEEDS)
