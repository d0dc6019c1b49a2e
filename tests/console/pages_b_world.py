"""The creatives, learning and cycle-runs pages' world (synthetic data): the console's two
accounts and users (``signin``), the first with 12 ads and 48 hours of actuals, DNA from their
features, one ad's DNA from a rendered video (with its frame), a winner kept by hand, scored
accuracy windows, retrains, a drift alarm, a refused challenger and two cycle reports."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from typing import TYPE_CHECKING

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from adflywheel.api.app import create_app
from adflywheel.console.views import creatives
from adflywheel.core.clock import ManualClock
from adflywheel.core.settings import Settings
from adflywheel.services.dna import service as dna_service
from adflywheel.services.memory.service import index_winner
from adflywheel.sim.market.render import plan_clip, render_clip
from adflywheel.store.catalog import variant_by_external
from adflywheel.store.engine import make_session_factory, transaction
from adflywheel.store.models import CycleRun, ModelVersion
from adflywheel.store.monitoring import AccuracySnapshot, Alert, RetrainTrigger
from adflywheel.store.registry import ModelEvent
from tests.console.signin import Console, seed_users
from tests.factories.clock import T0
from tests.factories.ctr_world import populate

if TYPE_CHECKING:
    from tests.conftest import Snapshots

HOURS = 48
START = T0 - timedelta(hours=HOURS)


@lru_cache(maxsize=1)
def rendered_clip() -> bytes:
    """A 6 s rendered 9:16 clip (synthetic): a face, captions and music."""
    genes = {"duration_s": 6.0, "cuts_per_10s": 3, "time_to_first_cut_s": 1.0, "early_face": 1,
             "face_share": 1, "text_share": 1, "has_music": 1}  # fmt: skip
    return render_clip(plan_clip(genes, caption="Still struggling?", seed=4)).data


@dataclass
class World:
    console: Console
    settings: Settings
    video_ad: str  # the ad whose DNA came from a video (it has a frame)


def seed_creatives(engine: Engine, settings: Settings, account_id: int, clip: bytes) -> None:
    factory = make_session_factory(engine)
    populate(engine, account_id, START, HOURS, n_creatives=12, seed=1)
    with transaction(factory) as session:
        dna_service.ensure_dna(session, account_id, T0)
    extracted = dna_service.extract_video(clip, "Still struggling with dry skin?")
    with transaction(factory) as session:
        variant = variant_by_external(session, account_id, "a0")
        assert variant is not None
        dna_service.store_dna(
            session, account_id, variant, extracted.dna, "video", T0,
            thumbnail=extracted.thumbnail, artifacts_url=settings.resolved_artifacts_url,
        )  # fmt: skip
    index_winner(factory, settings, account_id, "a0", T0, actor="test")


def seed_learning(engine: Engine, account_id: int) -> None:
    with transaction(make_session_factory(engine)) as session:
        for h in range(24):
            end = T0 - timedelta(hours=24 - h)
            for model, accuracy in (("ensemble", 0.8 + h / 200), ("xgboost", 0.7)):
                session.add(
                    AccuracySnapshot(
                        account_id=account_id, window_end=end, group_key=f"model:{model}",
                        scope="model", model_name=model, model_version_id=None, segment=None,
                        n_predictions=12, impressions=4800, clicks=90, expected_clicks=88.0,
                        accuracy=accuracy, calibration=1.02, calibration_lower=0.95,
                        calibration_upper=1.1, log_loss=0.09, normalized_entropy=0.97,
                        auc=None, background_ctr=0.019, coverage=0.9, created_at=end,
                    )
                )  # fmt: skip
        session.add(
            RetrainTrigger(
                account_id=account_id, hour=T0 - timedelta(hours=6), reason="drift",
                status="refused", evidence={}, result={}, created_at=T0,
            )
        )  # fmt: skip
        session.add(
            Alert(
                account_id=account_id, kind="drift", message="drift on ensemble/loss",
                payload={}, delivery="logged", created_at=T0 - timedelta(hours=7),
            )
        )  # fmt: skip
        version = ModelVersion(
            account_id=account_id, name="ctr_xgb", version=1, created_at=T0,
            artifact_uri=None, artifact_sha256=None, feature_schema={"version": "x"},
            dna_version="dna-2", params={}, trained_reason="drift",
            metrics={"holdout": {"log_loss": 0.091, "ne": 0.98}},
        )  # fmt: skip
        session.add(version)
        session.flush()
        session.add(
            ModelEvent(
                account_id=account_id, name="ctr_xgb", alias="champion", action="refuse",
                from_version_id=None, to_version_id=None, candidate_version_id=version.id,
                actor="cycle", reason="drift: the challenger did not beat the base rate",
                evidence={}, created_at=T0,
            )
        )  # fmt: skip


def seed_cycles(engine: Engine, account_id: int) -> None:
    steps = {
        "sync_catalog": {"loop": None, "status": "ok", "seconds": 0.2, "error": None},
        "creative_dna": {"loop": 4, "status": "off", "seconds": 0.0, "error": None,
                         "reason": "install adflywheel[dna]"},
        "compound": {"loop": 5, "status": "failed", "seconds": 1.5,
                     "error": "RuntimeError: boom"},
    }  # fmt: skip
    with transaction(make_session_factory(engine)) as session:
        for h, status in ((2, "completed"), (1, "partial")):
            hour = T0 - timedelta(hours=h)
            loops = steps if status == "partial" else {"sync_catalog": steps["sync_catalog"]}
            report = {"hour_start": hour.isoformat(), "status": status, "dry_run": False,
                      "loops": loops}  # fmt: skip
            session.add(
                CycleRun(
                    account_id=account_id, hour_start=hour, status=status, started_at=hour,
                    finished_at=hour + timedelta(seconds=42), report=report, lease_until=None,
                )
            )  # fmt: skip


def seed_world(engine: Engine, settings: Settings) -> tuple[int, int]:
    """Everything above on an empty migrated database: the two accounts' ids."""
    account_id, other_id = seed_users(engine)
    seed_creatives(engine, settings, account_id, rendered_clip())
    seed_learning(engine, account_id)
    seed_cycles(engine, account_id)
    return account_id, other_id


@contextmanager
def open_world(
    snapshots: Snapshots, engine: Engine, settings: Settings, clock: ManualClock
) -> Iterator[World]:
    """A copy of the seeded world (seeded once a session per backend) in ``engine``'s database
    and ``settings.data_dir``, and a test client of the app on it (each test's ``world``)."""
    creatives.clear_cache()  # every copy (and another test's database) has the same fingerprint
    account_id, other_id = snapshots.restore("pages_b_world", engine, settings, seed_world)
    app = create_app(settings, clock=clock)
    with TestClient(app) as client:
        yield World(Console(client, engine, clock, account_id, other_id), settings, "a0")
