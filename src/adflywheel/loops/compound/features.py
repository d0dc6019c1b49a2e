"""Features of the XGBoost CTR model: a creative's DNA plus the context it is shown in.

Pure and deterministic. A row is what was known about one creative at the start of one hour
(its DNA vector, the hour in the account's time zone, its age and how many impressions it had
already served) plus what it then did (impressions, clicks). Nothing here is a model's output and
nothing looks at the row's own outcome, so the same function builds training rows and the rows of
a creative that has never run (cold start: age 0, no impressions yet).

Bump ``FEATURE_SCHEMA.version`` whenever a column's meaning or the order changes; a stored model
is only ever fed the schema it was trained on.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
from numpy.typing import NDArray

from adflywheel.loops.dna.fingerprint import DNA_VERSION, VECTOR_FIELDS, VECTOR_LENGTH

FloatArray = NDArray[np.float64]

# Niche vocabulary (the verticals loop 3 places accounts in); anything else is "other".
NICHE_LEVELS: tuple[str, ...] = (
    "beauty",
    "fitness",
    "finance",
    "ecommerce_fashion",
    "saas",
    "food",
    "other",
)
# Meta placements; rows from an unbroken-down report have no placement ("placement_known" = 0).
PLACEMENT_LEVELS: tuple[str, ...] = ("feed", "stories", "reels", "other")
CONTEXT_FIELDS: tuple[str, ...] = (
    "hour_of_day",
    "day_of_week",
    "age_hours",
    "log1p_cumulative_impressions",
    "placement_known",
    *(f"placement={p}" for p in PLACEMENT_LEVELS),
    *(f"niche={n}" for n in NICHE_LEVELS),
    "account_code",
)


@dataclass(frozen=True, slots=True)
class FeatureSchema:
    """The ordered column names and the version string stored beside every model."""

    version: str
    names: tuple[str, ...]
    dna_version: str

    def as_dict(self) -> dict[str, object]:
        return {"version": self.version, "names": list(self.names), "dna_version": self.dna_version}


# The DNA version is part of the schema version: a new DNA layout makes old models unservable.
FEATURE_SCHEMA = FeatureSchema(
    version=f"ctr-features-1+{DNA_VERSION}",
    names=(*(f"dna:{f}" for f in VECTOR_FIELDS), *CONTEXT_FIELDS),
    dna_version=DNA_VERSION,
)
N_FEATURES = len(FEATURE_SCHEMA.names)


@dataclass(frozen=True, slots=True)
class CreativeContext:
    """What is known about one creative before an hour's outcome: its DNA and its context.

    ``variant_id`` is the creative's key for grouping (None for a creative not yet launched);
    ``hour_start`` is UTC; ``cumulative_impressions`` counts impressions served before this hour.
    """

    variant_id: int | None
    account_id: int
    hour_start: datetime
    dna_vector: tuple[float, ...]
    niche: str | None = None
    timezone: str = "UTC"
    placement: str | None = None
    age_hours: float = 0.0
    cumulative_impressions: int = 0

    def __post_init__(self) -> None:
        if len(self.dna_vector) != VECTOR_LENGTH:
            raise ValueError(
                f"dna_vector has {len(self.dna_vector)} values; {DNA_VERSION} has {VECTOR_LENGTH}"
            )
        if not all(math.isfinite(v) for v in self.dna_vector):
            raise ValueError("dna_vector must be finite")
        if self.hour_start.tzinfo is None:
            raise ValueError("hour_start must be timezone-aware (UTC)")
        if self.age_hours < 0 or not math.isfinite(self.age_hours):
            raise ValueError("age_hours must be a finite number >= 0")
        if self.cumulative_impressions < 0:
            raise ValueError("cumulative_impressions must be >= 0")


@dataclass(frozen=True, slots=True)
class CtrRow:
    """One creative in one hour (or day): its context and what it then did."""

    context: CreativeContext
    impressions: int
    clicks: int

    def __post_init__(self) -> None:
        if self.impressions < 0 or self.clicks < 0:
            raise ValueError("impressions and clicks must be >= 0")
        if self.clicks > self.impressions:
            raise ValueError("clicks cannot exceed impressions")

    @property
    def variant_id(self) -> int | None:
        return self.context.variant_id

    @property
    def hour_start(self) -> datetime:
        return self.context.hour_start


@lru_cache(maxsize=256)
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def account_code(account_id: int) -> float:
    """A stable number in [0, 1) for the account (constant within a per-account model; lets a
    pooled model tell accounts apart without exposing ids)."""
    digest = hashlib.blake2b(f"account:{account_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


@lru_cache(maxsize=65_536)
def _local_hour_and_day(instant: datetime, timezone: str) -> tuple[float, float]:
    """Hour of day and day of week in the account's zone (cached: rows share their hours)."""
    local = instant.astimezone(_zone(timezone))
    return float(local.hour), float(local.weekday())


@lru_cache(maxsize=4096)
def _static_part(placement: str | None, niche: str | None, account_id: int) -> tuple[float, ...]:
    """Placement, niche and account columns (the same for all rows of an ad in a report)."""
    where = (placement or "").lower()
    vertical = (niche or "").lower()
    vertical = vertical if vertical in NICHE_LEVELS else "other"
    out = [1.0 if where else 0.0]
    if where and where not in PLACEMENT_LEVELS:
        where = "other"
    out.extend(1.0 if where == p else 0.0 for p in PLACEMENT_LEVELS)
    out.extend(1.0 if vertical == n else 0.0 for n in NICHE_LEVELS)
    out.append(account_code(account_id))
    return tuple(out)


def feature_matrix(contexts: Sequence[CreativeContext]) -> FloatArray:
    """The (n, ``N_FEATURES``) matrix in ``FEATURE_SCHEMA.names`` order."""
    out = np.zeros((len(contexts), N_FEATURES), dtype=np.float64)
    if not contexts:
        return out
    k = VECTOR_LENGTH
    out[:, :k] = np.array([c.dna_vector for c in contexts], dtype=np.float64)
    out[:, k : k + 2] = [_local_hour_and_day(c.hour_start, c.timezone) for c in contexts]
    out[:, k + 2] = [c.age_hours for c in contexts]
    out[:, k + 3] = np.log1p(np.array([c.cumulative_impressions for c in contexts], dtype=float))
    out[:, k + 4 :] = [_static_part(c.placement, c.niche, c.account_id) for c in contexts]
    return out


@dataclass(frozen=True, slots=True)
class Dataset:
    """Rows as arrays: features, impressions, clicks and the creative key of each row."""

    X: FloatArray
    impressions: FloatArray
    clicks: FloatArray
    groups: NDArray[np.int64]

    @property
    def ctr(self) -> FloatArray:
        out: FloatArray = np.divide(
            self.clicks,
            self.impressions,
            out=np.zeros_like(self.clicks),
            where=self.impressions > 0,
        )
        return out

    def __len__(self) -> int:
        return int(self.X.shape[0])


def dataset(rows: Sequence[CtrRow]) -> Dataset:
    """Arrays for training or scoring; rows with no impressions carry no evidence and are
    dropped."""
    kept = [r for r in rows if r.impressions > 0]
    return Dataset(
        feature_matrix([r.context for r in kept]),
        np.array([r.impressions for r in kept], dtype=np.float64),
        np.array([r.clicks for r in kept], dtype=np.float64),
        np.array([-1 if r.variant_id is None else r.variant_id for r in kept], dtype=np.int64),
    )


@dataclass(frozen=True, slots=True)
class HourCount:
    hour_start: datetime
    impressions: int
    clicks: int


def rows_for_variant(
    variant_id: int,
    account_id: int,
    dna_vector: Sequence[float],
    hours: Iterable[HourCount],
    *,
    niche: str | None = None,
    timezone: str = "UTC",
    placement: str | None = None,
    first_served: datetime | None = None,
    prior_impressions: int = 0,
) -> list[CtrRow]:
    """A variant's hourly counts as rows, oldest first, with age and cumulative impressions
    computed from strictly earlier hours (age counts from its first hour with impressions).

    ``first_served`` and ``prior_impressions`` carry the history before the first given hour,
    so a window of hours gets the same features as the whole history would give it."""
    ordered = sorted(hours, key=lambda h: h.hour_start)
    vector = tuple(float(v) for v in dna_vector)
    first = first_served
    cumulative = prior_impressions
    out: list[CtrRow] = []
    for h in ordered:
        if first is None and h.impressions > 0:
            first = h.hour_start
        age = 0.0 if first is None else (h.hour_start - first).total_seconds() / 3600.0
        context = CreativeContext(
            variant_id,
            account_id,
            h.hour_start,
            vector,
            niche=niche,
            timezone=timezone,
            placement=placement,
            age_hours=age,
            cumulative_impressions=cumulative,
        )
        out.append(CtrRow(context, h.impressions, h.clicks))
        cumulative += h.impressions
    return out


def pre_launch_context(
    account_id: int,
    dna_vector: Sequence[float],
    at: datetime,
    *,
    niche: str | None = None,
    timezone: str = "UTC",
    placement: str | None = None,
) -> CreativeContext:
    """The context of a creative that has never run (cold start): age 0, no impressions."""
    return CreativeContext(
        None,
        account_id,
        at.astimezone(UTC),
        tuple(float(v) for v in dna_vector),
        niche=niche,
        timezone=timezone,
        placement=placement,
    )
