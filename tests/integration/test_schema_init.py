"""Schema set-up on plain PostgreSQL: concurrent writers into an empty database, and a failed
migration reported as such (issue 16, item 6 and the `db init` message)."""

from __future__ import annotations

import secrets
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import sqlalchemy as sa

from technic.jobs.ingest import ingest_files
from technic.store.db import DatabaseTarget, get_engine
from technic.store.schema import ensure_partitions, init_db
from tests.conftest import BUNDLED, cli_env, make_target


def test_partition_creation_is_race_free(fresh_target):
    """Writers creating the same partitions at the same moment: each partition is created
    exactly once and nobody fails with DuplicateTable (check-then-create used to race)."""
    t = fresh_target
    years = list(range(1990, 2002))
    n = 4
    start = threading.Barrier(n)

    def create(_: int) -> list[str]:
        start.wait()
        with get_engine(t).begin() as c:
            return ensure_partitions(c, t.schema, "bars_daily", years)

    with ThreadPoolExecutor(n) as ex:
        created = [name for out in ex.map(create, range(n)) for name in out]
    assert len(created) == len(set(created)) == len(years)  # each year once, by one writer
    if init_db(get_engine(t), t.schema).variant == "native":
        assert sorted(created) == [f"bars_daily_y{y}" for y in years]


def test_two_ingests_of_one_file_into_an_empty_database_at_once(db_url):
    """Both succeed (the second waits for the first) and store the same rows as one ingest."""
    path = BUNDLED / "bars_daily.parquet"
    n = len(pd.read_parquet(path))
    both = make_target(db_url, "race_" + secrets.token_hex(3))
    one = make_target(db_url, "single_" + secrets.token_hex(3))
    start = threading.Barrier(2)

    def ingest(_: int):
        start.wait()
        return ingest_files(both, path)[0]

    with ThreadPoolExecutor(2) as ex:
        reports = list(ex.map(ingest, range(2)))
    assert sorted(r.rows_inserted for r in reports) == [0, n]
    assert sorted(r.rows_unchanged for r in reports) == [0, n]
    ingest_files(one, path)
    q = ("SELECT symbol, date, open, high, low, close, volume, source FROM {s}.bars_daily "
         "ORDER BY symbol, date")
    with get_engine(both).connect() as c:
        got = pd.read_sql(sa.text(q.format(s=both.schema)), c)
        ref = pd.read_sql(sa.text(q.format(s=one.schema)), c)
        runs = c.execute(sa.text(f"SELECT status FROM {both.schema}.ingest_runs")).scalars().all()
    assert len(got) == n
    pd.testing.assert_frame_equal(got, ref)
    assert runs == ["ok", "ok"]


def test_a_failed_migration_says_which_and_why(db_url):
    """A server that answers but refuses a migration: the CLI names the migration and the
    server's reason (not "set TECHNIC_DATABASE_URL"), exits 1, and applies nothing."""
    schema = "broken_" + secrets.token_hex(3)
    t = DatabaseTarget(db_url, schema, "test")
    with get_engine(t).begin() as c:
        c.execute(sa.text(f"CREATE SCHEMA {schema}"))
        # scan_results.symbol (text) cannot reference an integer key
        c.execute(sa.text(f"CREATE TABLE {schema}.symbols (symbol integer PRIMARY KEY)"))
    r = subprocess.run([sys.executable, "-m", "technic.cli", "db", "init"],
                       env=cli_env(db_url, schema), capture_output=True, text=True, timeout=120)
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert "migration 1 (" in out and "foreign key" in out, out
    assert "TECHNIC_DATABASE_URL" not in out and "Traceback" not in out, out
    with get_engine(t).connect() as c:
        assert c.execute(sa.text("SELECT to_regclass(:t)"),
                         {"t": f"{schema}.schema_migrations"}).scalar() is None
