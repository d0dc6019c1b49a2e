"""Serving ``predict`` from what the hour already computed (issue #19).

The cycle's compound step computes every active variant's answer each hour; it publishes each
one here (``publish``) as well as recording its ``Prediction`` rows. A request for an ad then:

1. reads the cache: Redis when ``settings.redis_url`` is set (shared by every worker and the
   cycle's processes), else a bounded in-process LRU;
2. on a miss, rebuilds the answer from the rows the cycle stored for this hour (one indexed
   query, plus the weights row) and caches it: the cycle may have run in another process;
3. only for an ad the cycle has not predicted this hour (a new creative, an ad never predicted,
   the cycle not yet run) computes it, as before, and caches that.

Every answer says ``source`` (``cycle`` or ``computed``), ``computed_at`` and ``age_s``, and its
model version (``xgboost_version_id``). Invalidation: entries are keyed by the hour (a new hour
never reads the last one's), checked against the serving champion's id on every read (a promotion
or rollback, in any process, is seen at once) and expire after ``prediction_cache_ttl_s`` (what
bounds how long a mid-hour change, e.g. late actuals, waits to be reflected).
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from scipy.special import logit
from sqlalchemy import Connection, Engine, and_, select
from sqlalchemy.orm import Session

from adflywheel.core.settings import Settings
from adflywheel.loops.compound.ensemble import Z90, BasePrediction
from adflywheel.loops.compound.features import FEATURE_SCHEMA
from adflywheel.services.compound import service as cs
from adflywheel.services.compound.registry import (
    CHAMPION,
    MODEL_NAME,
    MODELS,
    serving_version_id,
)
from adflywheel.store.models import Account, ModelVersion, Prediction, Variant
from adflywheel.store.registry import ModelAlias

log = logging.getLogger(__name__)

Key = tuple[int, int, datetime]  # (account, variant, hour)


class Missing:
    """The type of ``MISSING``: an argument not given (None is a value: no champion)."""


MISSING = Missing()


@dataclass(frozen=True, slots=True)
class Entry:
    """One variant's answer for one hour, as served; ``version``: the champion it used."""

    answer: dict[str, Any]
    version: int | None
    computed_at: datetime
    source: str

    def to_json(self) -> str:
        return json.dumps(
            {
                "answer": self.answer,
                "version": self.version,
                "computed_at": self.computed_at.isoformat(),
                "source": self.source,
            }
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Entry:
        d = json.loads(text)
        at = datetime.fromisoformat(d["computed_at"])
        return cls(d["answer"], d["version"], at, d["source"])

    def served(self, now: datetime) -> dict[str, Any]:
        """The answer with where it comes from and how old it is."""
        age = max(0.0, (now - self.computed_at).total_seconds())
        return {
            **self.answer,
            "source": self.source,
            "computed_at": self.computed_at.isoformat(),
            "age_s": round(age, 3),
        }


class Answers(Protocol):
    def get(self, key: Key) -> Entry | None: ...
    def put_many(self, entries: Mapping[Key, Entry]) -> None: ...


class LocalAnswers:
    """The in-process cache: an LRU of at most ``size`` entries, each kept ``ttl_s`` seconds."""

    def __init__(self, size: int, ttl_s: float) -> None:
        self.size, self.ttl_s = size, ttl_s
        self._entries: OrderedDict[Key, tuple[float, Entry]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Key) -> Entry | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return None
            if found[0] <= time.monotonic():
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return found[1]

    def put_many(self, entries: Mapping[Key, Entry]) -> None:
        expires = time.monotonic() + self.ttl_s
        with self._lock:
            for key, entry in entries.items():
                self._entries[key] = (expires, entry)
                self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


class RedisAnswers:
    """The shared cache: one Redis string per (account, variant, hour), expiring after
    ``ttl_s``. Redis failing is a miss (the answer is rebuilt or computed), never an error."""

    def __init__(self, url: str, ttl_s: int, namespace: str) -> None:
        import redis

        self.client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self.ttl_s, self.namespace = ttl_s, namespace

    def _key(self, key: Key) -> str:
        account, variant, hour = key
        return f"adflywheel:predict:{self.namespace}:{account}:{variant}:{hour:%Y%m%dT%H}"

    def get(self, key: Key) -> Entry | None:
        try:
            found = self.client.get(self._key(key))
        except Exception as error:  # a cache outage must not fail predict
            log.warning("prediction cache read failed: %s", error)
            return None
        return None if found is None else Entry.from_json(found)

    def put_many(self, entries: Mapping[Key, Entry]) -> None:
        try:
            pipe = self.client.pipeline(transaction=False)
            for key, entry in entries.items():
                pipe.set(self._key(key), entry.to_json(), ex=self.ttl_s)
            pipe.execute()
        except Exception as error:
            log.warning("prediction cache write failed: %s", error)


_CACHES: weakref.WeakKeyDictionary[Engine, Answers] = weakref.WeakKeyDictionary()
_CACHES_LOCK = threading.Lock()


def keep_models(settings: Settings) -> None:
    """Keep up to ``model_cache_size`` loaded champion models in this process (an LRU)."""
    MODELS.resize(settings.model_cache_size)


def answers_for(settings: Settings, engine: Engine) -> Answers | None:
    """This process's cache for a database (None when ``prediction_cache_ttl_s`` is 0). Kept per
    engine: answers of one database are never served from another's."""
    if settings.prediction_cache_ttl_s <= 0:
        return None
    with _CACHES_LOCK:
        found = _CACHES.get(engine)
        if found is None:
            if settings.redis_url:
                namespace = f"{engine.url.host or ''}:{engine.url.database or ''}"
                found = RedisAnswers(settings.redis_url, settings.prediction_cache_ttl_s, namespace)
            else:
                found = LocalAnswers(
                    settings.prediction_cache_size, settings.prediction_cache_ttl_s
                )
            _CACHES[engine] = found
        return found


def publish(
    answers: Answers | None,
    account_id: int,
    hour: datetime,
    computed: Mapping[int, dict[str, Any]],
    version: int | None,
    now: datetime,
) -> None:
    """The cycle's answers of the hour, cached for requests (``source: cycle``)."""
    if answers is None or not computed:
        return
    answers.put_many(
        {(account_id, v, hour): Entry(a, version, now, "cycle") for v, a in computed.items()}
    )


# -- rebuilding from the stored rows ------------------------------------------------------------


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-12)


def from_rows(
    session: Session, account_id: int, variant_id: int, hour: datetime, version: int | None
) -> Entry | None:
    """The answer the cycle recorded for this variant and hour, rebuilt from its ``Prediction``
    rows (each member's value and interval, the ensemble's) and the weights then in force; None
    when there are none, when they were made with another champion than ``version``, or when
    the rebuilt ensemble does not reproduce the stored one (then it is computed afresh)."""
    end = hour + cs.DEFAULT.horizon_hours * cs.HOUR
    rows = session.execute(
        select(
            Prediction.model_name,
            Prediction.value,
            Prediction.lower,
            Prediction.upper,
            Prediction.model_version_id,
        ).where(
            Prediction.account_id == account_id,
            Prediction.window_end == end,
            Prediction.window_start == hour,
            Prediction.variant_id == variant_id,
            Prediction.metric == "ctr",
        )
    ).all()
    stored = {r.model_name: r for r in rows}
    ensemble = stored.pop("ensemble", None)
    if ensemble is None or ensemble.lower is None or ensemble.upper is None:
        return None
    xgb = stored.get("xgboost")
    if (xgb.model_version_id if xgb is not None else None) != version:
        return None
    members: dict[str, BasePrediction] = {}
    for name, r in stored.items():
        if r.lower is None or r.upper is None or not 0 < r.lower <= r.value <= r.upper < 1:
            return None
        sd = (float(logit(r.upper)) - float(logit(r.lower))) / (2 * Z90)
        members[name] = BasePrediction(float(r.value), sd)
    learnt, weights_row = cs.current_weights(session, account_id, hour)
    for unseen in (False, True):
        result = cs.ensemble_of(members, learnt, unseen=unseen)
        if result is None or not (
            _close(result.prediction, ensemble.value)
            and _close(result.lower, ensemble.lower)
            and _close(result.upper, ensemble.upper)
        ):
            continue
        answer = {
            **result.as_dict(),
            "prediction": float(ensemble.value),
            "interval": [float(ensemble.lower), float(ensemble.upper)],
            "predictions": {
                m: {"prediction": float(r.value), "interval": [float(r.lower), float(r.upper)]}
                for m, r in stored.items()
            },
            "reason": learnt.reason,
            "xgboost_version_id": version,
            "weights_as_of": weights_row.as_of.isoformat() if weights_row else None,
        }
        return Entry(answer, version, hour, "cycle")
    return None


@dataclass(frozen=True, slots=True)
class Subject:
    """What a predict request needs from the database before the cache: the ad's variant id
    (None: unknown to this account), whether the account is simulated, the serving champion."""

    variant_id: int | None
    synthetic: bool
    version: int | None


def look_up(session: Session | Connection, account_id: int, external_id: str) -> Subject | None:
    """``Subject`` in one query (the account, its ad by platform id, its champion: outer joins)
    instead of three round trips; None when the account does not exist."""
    row = session.execute(
        select(Account.platform, Variant.id, ModelVersion.id, ModelVersion.feature_schema)
        .select_from(Account)
        .outerjoin(
            Variant, and_(Variant.account_id == Account.id, Variant.external_id == external_id)
        )
        .outerjoin(
            ModelAlias,
            and_(
                ModelAlias.account_id == Account.id,
                ModelAlias.name == MODEL_NAME,
                ModelAlias.alias == CHAMPION,
            ),
        )
        .outerjoin(ModelVersion, ModelVersion.id == ModelAlias.version_id)
        .where(Account.id == account_id)
    ).first()
    if row is None:
        return None
    platform, variant_id, version_id, schema = row
    serving = version_id is not None and (schema or {}).get("version") == FEATURE_SCHEMA.version
    return Subject(variant_id, platform == "simulated", int(version_id) if serving else None)


def cached(
    answers: Answers | None,
    account_id: int,
    variant_id: int,
    at: datetime,
    version: int | None,
    now: datetime,
) -> dict[str, Any] | None:
    """The cached answer for the hour ``at`` if it was made with the serving champion
    (``version``), else None: the request path's cheap first look, without a session."""
    entry = answers.get((account_id, variant_id, at)) if answers is not None else None
    if entry is None or entry.version != version:
        return None
    return entry.served(now)


def serve_variant(
    session: Session,
    answers: Answers | None,
    account_id: int,
    variant_id: int,
    at: datetime,
    now: datetime,
    *,
    version: int | Missing | None = MISSING,
) -> dict[str, Any]:
    """A variant's answer for the hour ``at``: cached, else rebuilt from the cycle's rows,
    else computed; raises ``NoModelError`` like ``predict_variant``. ``version``: the serving
    champion's id when the caller has read it already (``look_up``)."""
    if isinstance(version, Missing):
        version = serving_version_id(session, account_id)
    key = (account_id, variant_id, at)
    entry = answers.get(key) if answers is not None else None
    if entry is not None and entry.version == version:
        return entry.served(now)
    entry = from_rows(session, account_id, variant_id, at, version)
    if entry is None:
        answer = cs.predict_variant(session, account_id, variant_id, at)
        entry = Entry(answer, answer.get("xgboost_version_id"), now, "computed")
    if answers is not None:
        answers.put_many({key: entry})
    return entry.served(now)
