"""Test fixtures: a real PostgreSQL database of its own for each test run.

The tests sit in ``unit/`` (no database), ``integration/`` (library calls against PostgreSQL)
and ``e2e/`` (the CLI in a subprocess, Prefect); each folder marks its tests with its name
(``pytest -m unit``), and a test under ``unit/`` that asks for the database is an error
(docs/architecture.md).

The server is ``TECHNIC_TEST_ADMIN_URL`` if set, else the local server at 127.0.0.1:5432, else
an embedded PostgreSQL started for the run. A database ``technic_test_<random>`` is created
and dropped at the end, so runs never share state.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

from flows.prefect_defaults import apply_prefect_defaults
from technic.config import Settings
from technic.store.db import DatabaseTarget, _answers, get_engine, libpq_uri
from technic.store.schema import init_db

# The project's Prefect settings (no analytics, a start-up timeout for busy machines), set
# before any test imports Prefect, as the flows package does for every other entry point.
apply_prefect_defaults()

# The shared Redis cache (L2) runs only with an HMAC secret (technic/cache.py). One secret for
# the whole run, inherited by CLI subprocesses and Dask workers, so the Redis tests exercise L2.
os.environ.setdefault("TECHNIC_CACHE_SECRET", "technic-tests-" + secrets.token_hex(16))

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TECHNIC_SHARED_DATA", REPO.parent / "shared" / "data"))
BUNDLED = REPO / "technic" / "data"


#: Test folders, each also the marker of its tests.
KINDS = ("unit", "integration", "e2e")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    bad = []
    for item in items:
        parts = item.path.resolve().relative_to(REPO / "tests").parts
        kind = parts[0] if len(parts) > 1 and parts[0] in KINDS else None
        if kind is None:
            continue
        item.add_marker(getattr(pytest.mark, kind))
        if kind == "unit" and "db_url" in getattr(item, "fixturenames", ()):
            bad.append(item.nodeid)
    if bad:
        raise pytest.UsageError("unit tests must not use the database (move them to "
                                "tests/integration/): " + ", ".join(bad))


def _admin_url(tmp_factory) -> str:
    url = os.environ.get("TECHNIC_TEST_ADMIN_URL")
    if url:
        return url
    local = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    if _answers(local):
        return local
    from technic.store.db import _embedded_url

    s = Settings(embedded_pg_dir=tmp_factory.mktemp("pg") / "data")
    return make_url(_embedded_url(s)).set(database="postgres").render_as_string(False)


@pytest.fixture(scope="session")
def db_url(tmp_path_factory) -> str:
    """SQLAlchemy URL of a fresh database, dropped after the session."""
    admin = _admin_url(tmp_path_factory)
    name = f"technic_test_{secrets.token_hex(4)}"
    with psycopg.connect(libpq_uri(admin), autocommit=True) as c:
        c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_url(admin).set(database=name).render_as_string(hide_password=False)
    yield url
    import gc

    from technic.store.db import dispose_connections

    gc.collect()  # connections leaked by finished tests go back to their pools while it is up
    dispose_connections()
    with psycopg.connect(libpq_uri(admin), autocommit=True) as c:
        c.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def make_target(db_url: str, schema: str) -> DatabaseTarget:
    """A target in its own schema of the session database, schema created."""
    t = DatabaseTarget(url=db_url, schema=schema, origin="test")
    init_db(get_engine(t), schema)
    return t


@pytest.fixture()
def fresh_target(db_url, request) -> DatabaseTarget:
    """An empty, migrated schema private to one test."""
    name = "t_" + "".join(ch if ch.isalnum() else "_" for ch in request.node.name.lower())[:40]
    return make_target(db_url, name + "_" + secrets.token_hex(2))


@pytest.fixture(scope="session")
def demo_target(db_url) -> DatabaseTarget:
    """A schema with the bundled real data ingested and features refreshed (in-process)."""
    from technic.jobs.ingest import ingest_files
    from technic.jobs.refresh import refresh_features

    t = make_target(db_url, "demo")
    ingest_files(t, BUNDLED)
    refresh_features(t, lookback_bars=300, chunk_size=400)
    return t


def cli_env(db_url: str, schema: str, **extra: str) -> dict[str, str]:
    """Environment for running the ``technic`` CLI against a test schema."""
    env = {**os.environ, "TECHNIC_DATABASE_URL": db_url, "TECHNIC_DB_SCHEMA": schema,
           "TECHNIC_DASK_WORKERS": "2", "COLUMNS": "200"}
    env.update(extra)
    return env


@pytest.fixture()
def prefect_on_demo(db_url, demo_target, monkeypatch):
    """Settings pointed at the demo schema and a temporary Prefect API for in-process flows;
    yields the demo target."""
    from prefect.testing.utilities import prefect_test_harness

    from technic.config import get_settings
    from technic.store import db as dbmod

    monkeypatch.setenv("TECHNIC_DATABASE_URL", db_url)
    monkeypatch.setenv("TECHNIC_DB_SCHEMA", demo_target.schema)
    get_settings.cache_clear()
    dbmod._resolve.cache_clear()
    try:
        with prefect_test_harness(server_startup_timeout=120):
            yield demo_target
    finally:
        get_settings.cache_clear()
        dbmod._resolve.cache_clear()
