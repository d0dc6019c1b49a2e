"""Typed settings: read once at the edge (CLI, app factory) and passed in. Never at import time.

Sources, strongest first, as pydantic-settings orders them: values the code passes
(``Settings(data_dir=...)``, a CLI flag), then ``ADFLYWHEEL_*`` environment variables, then an
optional TOML file (``--config`` or ``ADFLYWHEEL_CONFIG``), then the embedded defaults (SQLite and
local folders under ``data_dir``), so a fresh clone needs no services at all.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from adflywheel.core.loops import parse_loops, validate_loops


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ADFLYWHEEL_", extra="forbid", frozen=True)

    data_dir: Path = Field(default=Path("data"), description="Folder for embedded state.")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite file in data_dir."
    )
    artifacts_url: str | None = Field(
        default=None, description="fsspec URL for model and index files; default: data_dir."
    )
    redis_url: str | None = Field(default=None, description="Redis for locks and caches.")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    keep_alive_s: int = Field(
        default=75,
        gt=0,
        le=3600,
        description="Idle keep-alive of served connections: longer than clients' and proxies' "
        "own (httpx 5 s, nginx 60 s), so a client never sends on a connection the server is "
        "closing (the load test saw that race when both were 5 s).",
    )
    max_actuals_batch_rows: int = Field(default=50_000, ge=1)
    max_request_bytes: int = Field(default=20_000_000, ge=1024)
    bandit_seed: int = Field(default=0, description="Seed of the Thompson draws (reproducible).")
    crosslearn_k_min: int = Field(default=5, ge=2, description="Loop 3: minimum accounts.")
    crosslearn_epsilon_per_period: float = Field(
        default=1.0, gt=0, description="Loop 3: ε of one niche publication (docs/cross-account.md)."
    )
    crosslearn_epsilon_budget: float = Field(
        default=12.0, gt=0, description="Loop 3: ε a niche may spend per 90 days."
    )
    meta_graph_url: str = Field(
        default="https://graph.facebook.com", description="Graph API base URL (tests: loopback)."
    )
    meta_api_version: str = Field(default="v26.0", pattern=r"^v\d+\.\d+$")
    meta_access_token: SecretStr | None = Field(
        default=None, description="Meta system-user token; never stored in the database."
    )
    meta_app_secret: SecretStr | None = Field(
        default=None, description="App secret: requests then carry appsecret_proof."
    )
    token_encryption_keys: SecretStr | None = Field(
        default=None,
        description="Fernet keys (comma separated) for per-account Meta tokens at rest: the "
        "first encrypts, all decrypt; without it no per-account token can be stored.",
    )
    meta_token_warn_days: int = Field(
        default=7, ge=1, le=365, description="Warn when a Meta token expires within this many days."
    )
    dask_scheduler: str | None = Field(
        default=None, description="Dask scheduler (tcp://host:8786) for cycles; else a local pool."
    )
    # NoDecode: the environment's text reaches ``_loops_from_text`` as is (JSON or a comma list).
    loops: Annotated[tuple[int, ...], NoDecode] = Field(
        default=(1, 2, 3, 4, 5, 6, 7),
        description="Loops on by default (1 memory … 7 promoter): '1,2,3', 'all', 'none' or "
        "JSON '[1, 2]'; per account in the API.",
    )
    new_account_mode: Literal["recommend", "autopilot"] = Field(
        default="recommend",
        description="Mode of a new account: recommend (nothing written) or autopilot.",
    )
    new_account_ceiling_minor: int | None = Field(
        default=None,
        ge=0,
        lt=2**53,
        description="A new account's daily ceiling over all its ad sets (minor units a day).",
    )
    new_campaign_ceiling_minor: int | None = Field(
        default=None, ge=0, lt=2**53, description="A new account's per-campaign daily ceiling."
    )
    new_approval_over_minor: int | None = Field(
        default=5_000,
        ge=0,
        lt=2**53,
        description="A new account's approval threshold: larger increases wait for a person.",
    )
    cycle_workers: int = Field(
        default=1,
        ge=1,
        description="Accounts whose cycles run at once (a local process pool when above 1).",
    )
    scheduler_enabled: bool = Field(
        default=True, description="`serve` runs the cycle for every account each hour."
    )
    scheduler_minute: int = Field(
        default=5, ge=0, le=59, description="Minute past each hour at which the cycle runs."
    )
    alert_webhook_url: str | None = Field(
        default=None, description="Webhook for alerts; its payload per alert_webhook_format."
    )
    alert_webhook_format: Literal["slack", "json"] = Field(
        default="slack",
        description="slack: POST {'text': ...}; json: the documented generic alert object "
        "(docs/monitoring.md).",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="Operator token for GET /metrics (Authorization: Bearer); unset: /metrics "
        "answers 404.",
    )
    console_secret: SecretStr | None = Field(
        default=None,
        description="Key that signs the console's session cookie; unset: a random one is made "
        "once in data_dir/console_secret and reused (several servers must share one).",
    )
    console_session_hours: float = Field(
        default=12, gt=0, le=24 * 30, description="A console sign-in lasts this long."
    )
    log_format: Literal["text", "json"] = Field(
        default="text", description="`serve` logs: text, or one JSON object per line."
    )
    memory_winner_ctr: float = Field(
        default=0.03, gt=0, lt=1, description="Winner memory: default CTR bar (fraction)."
    )
    memory_min_impressions: int = Field(default=1_000, ge=1, description="Winner evidence.")
    memory_min_probability: float = Field(
        default=0.95, ge=0.5, lt=1, description="Winner: P(CTR > bar) needed to qualify."
    )
    memory_lapse_probability: float = Field(
        default=0.5, gt=0, lt=1, description="A winner lapses when P(CTR > bar) falls below."
    )
    memory_approx_min_size: int = Field(
        default=100_000, ge=1, description="Index size from which search is HNSW, not exact."
    )
    memory_hnsw_ef_search: int = Field(default=128, ge=1, le=4096)
    memory_cache_ttl_s: int = Field(default=3600, ge=1, description="Redis look-up cache TTL.")
    serve_workers: int = Field(
        default=1, ge=1, le=64, description="`serve`'s uvicorn worker processes (docs/serving.md)."
    )
    prediction_cache_ttl_s: int = Field(
        default=900,
        ge=0,
        description="How long a cached predict answer serves (within its hour); 0: no cache.",
    )
    prediction_cache_size: int = Field(
        default=100_000, ge=1, description="Predict answers kept in-process (no Redis)."
    )
    api_key_cache_ttl_s: float = Field(
        default=5.0,
        ge=0,
        le=60,
        description="Seconds an API key's owner is remembered per process: a revoked key stops "
        "working within this delay; 0 looks every key up.",
    )
    model_cache_size: int = Field(
        default=64, ge=1, description="Loaded champion models kept per process (an LRU)."
    )

    @model_validator(mode="after")
    def _autopilot_has_a_ceiling(self) -> Settings:
        if self.new_account_mode == "autopilot" and self.new_account_ceiling_minor is None:
            raise ValueError(
                "new_account_mode=autopilot needs new_account_ceiling_minor (an account-wide "
                "daily ceiling)"
            )
        return self

    @field_validator("loops", mode="before")
    @classmethod
    def _loops_from_text(cls, value: object) -> object:
        """Text (the environment): JSON (``[1, 2]``), ``1,2,3``, ``2``, ``all`` or ``none``."""
        if not isinstance(value, str):
            return value
        text = value.strip()
        if text.startswith("["):
            try:
                return json.loads(text)
            except ValueError as error:
                raise ValueError(f"loops: {text!r} is not a JSON list") from error
        return sorted(int(loop) for loop in parse_loops(text))

    @field_validator("loops")
    @classmethod
    def _known_loops(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(sorted(int(loop) for loop in validate_loops(value)))

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'adflywheel.db').resolve()}"

    @property
    def resolved_artifacts_url(self) -> str:
        return self.artifacts_url or str((self.data_dir / "artifacts").resolve())

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Strongest first: what the code passes, the environment, the TOML file (if any).
        return init_settings, env_settings, _TomlTable(settings_cls, toml_file=_toml_path())


# The ``--config`` file of the ``load_settings`` call under way (None: ADFLYWHEEL_CONFIG).
_CONFIG_FILE: ContextVar[Path | None] = ContextVar("adflywheel_config_file", default=None)


def _toml_path() -> Path | None:
    """The TOML file to read: ``--config``, else ``ADFLYWHEEL_CONFIG``, else none.

    A named file that does not exist is an error: pydantic-settings would silently skip it.
    """
    path = _CONFIG_FILE.get()
    source = "--config"
    if path is None and os.environ.get("ADFLYWHEEL_CONFIG"):
        path, source = Path(os.environ["ADFLYWHEEL_CONFIG"]), "ADFLYWHEEL_CONFIG"
    if path is not None and not path.is_file():
        raise FileNotFoundError(f"settings file {path} (from {source}) does not exist")
    return path


class _TomlTable(TomlConfigSettingsSource):
    """The file's ``[adflywheel]`` table when it has one, else the whole file (both forms are
    documented: a file of its own, or a section of a larger one)."""

    def _read_file(self, file_path: Any) -> dict[str, Any]:
        document = super()._read_file(file_path)
        table = document.get("adflywheel", document)
        if not isinstance(table, dict):
            raise ValueError(f"{file_path}: [adflywheel] must be a table, not {table!r}")
        return table


@contextmanager
def _reading(config_file: Path | None) -> Iterator[None]:
    token = _CONFIG_FILE.set(config_file)
    try:
        yield
    finally:
        _CONFIG_FILE.reset(token)


def load_settings(config_file: Path | None = None, **values: Any) -> Settings:
    """Settings with ``config_file`` (else ``ADFLYWHEEL_CONFIG``) as the TOML source.

    ``values`` are explicit choices of the caller (a CLI flag) and beat the environment and the
    file, as any value passed to ``Settings(...)`` does.
    """
    with _reading(config_file):
        return Settings(**values)
