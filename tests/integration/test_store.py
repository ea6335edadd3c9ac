"""Schema, migrations and the bulk ingest path against a real PostgreSQL."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest
import sqlalchemy as sa

from technic.jobs.ingest import ingest_files, ingest_synthetic
from technic.store.db import get_engine, libpq_uri
from technic.store.migrations import migration_sql
from technic.store.schema import init_db
from tests.conftest import BUNDLED, cli_env


def _count(target, sql, **p):
    with get_engine(target).connect() as c:
        return c.execute(sa.text(sql), p).scalar()


def test_reserved_word_schema_works(db_url):
    from tests.conftest import make_target

    t = make_target(db_url, "full")  # a reserved word: identifiers are quoted
    assert ingest_synthetic(t, 3, 10).rows_inserted == 30


def test_init_is_idempotent_and_native_partitioned(fresh_target):
    again = init_db(get_engine(fresh_target), fresh_target.schema)
    if again.variant == "timescaledb":
        pytest.skip("native partitioning; this server has TimescaleDB (tests/test_timescale.py)")
    assert again.applied == [] and again.variant == "native"
    kinds = dict(get_engine(fresh_target).connect().execute(sa.text(
        "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n "
        "ON n.oid = c.relnamespace WHERE n.nspname = :s"), {"s": fresh_target.schema}).all())
    assert kinds["bars_daily"] == "p" and kinds["features_daily"] == "p"  # partitioned
    assert kinds["latest_scan_results"] == "v"
    # "the bars of one date" (the incremental refresh's read) goes through a B-tree on date
    # (migration 10; the BRIN of migration 8 is dropped: the planner never used it)
    idx = dict(get_engine(fresh_target).connect().execute(sa.text(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = :s "
        "AND tablename = 'bars_daily'"), {"s": fresh_target.schema}).all())
    assert "btree (date)" in idx["bars_daily_date_idx"]
    assert not any("brin" in d for d in idx.values())


def test_timescale_sql_is_generated():
    sql = "\n".join(migration_sql("technic", timescale=True))
    # 365-day fallback interval; ensure_partitions creates calendar-year chunks ahead
    assert """create_hypertable('"technic".bars_daily', by_range('date', INTERVAL '365 days')""" \
        in sql
    assert """create_hypertable('"technic".features_daily'""" in sql
    assert "timescaledb.compress_segmentby = 'symbol'" in sql
    assert "timescaledb.compress_orderby = 'date DESC'" in sql
    assert "add_compression_policy" in sql
    assert """create_hypertable('"technic".bars_intraday', by_range('ts', INTERVAL '7 days'), """ \
        """create_default_indexes => FALSE""" in sql and "add_retention_policy" in sql
    # created empty (TimescaleDB refuses WITH DATA inside the migration's transaction)
    assert "WITH (timescaledb.continuous, timescaledb.materialized_only = false)" in sql \
        and "time_bucket(INTERVAL '15 minutes', ts)" in sql and "first(open, ts)" in sql
    assert all(s.endswith("WITH NO DATA") for s in migration_sql("technic", timescale=True)
               if s.startswith("CREATE MATERIALIZED VIEW"))
    assert "PARTITION BY RANGE" not in sql
    # migration 6: roll-up refresh policies, compression and retention of the aggregates
    for view in ("bars_15min", "bars_1h"):
        assert f"""add_continuous_aggregate_policy('"technic".{view}', start_offset""" in sql
        assert f'ALTER MATERIALIZED VIEW "technic".{view} SET (timescaledb.compress = true)' \
            in sql
        assert f"""add_compression_policy('"technic".{view}', compress_after""" in sql
        assert f"""add_retention_policy('"technic".{view}', drop_after""" in sql
    assert "end_offset => INTERVAL '15 minutes', schedule_interval => INTERVAL '5 minutes'" \
        in sql
    assert """add_compression_policy('"technic".features_daily', INTERVAL '730 days'""" in sql
    assert "CREATE TABLE IF NOT EXISTS \"technic\".bar_sources" in sql
    assert "CREATE TABLE IF NOT EXISTS \"technic\".corporate_actions" in sql
    native = "\n".join(migration_sql("technic", timescale=False))
    assert "PARTITION BY RANGE (date)" in native and "create_hypertable" not in native
    assert "add_continuous_aggregate_policy" not in native and "bar_sources" in native


def test_ingest_twice_changes_nothing_then_updates(fresh_target, tmp_path):
    t = fresh_target
    bars, uni = (pd.read_parquet(BUNDLED / "bars_daily.parquet"),
                 pd.read_parquet(BUNDLED / "universe.parquet"))
    small = bars[bars["symbol"].isin(sorted(bars["symbol"].unique())[:20])]
    small.to_parquet(tmp_path / "bars_daily.parquet")
    uni.to_parquet(tmp_path / "universe.parquet")
    first = ingest_files(t, tmp_path)
    assert first[1].rows_inserted == len(small) and first[1].rows_rejected == 0
    n = _count(t, "SELECT count(*) FROM bars_daily")
    second = ingest_files(t, tmp_path)
    assert second[1].rows_unchanged == len(small)
    assert second[1].rows_inserted == second[1].rows_updated == 0
    assert _count(t, "SELECT count(*) FROM bars_daily") == n
    # a corrected value is updated; a file with fewer rows deletes nothing
    one = small.iloc[:1].copy()
    one["close"] = one["low"]
    one.to_parquet(tmp_path / "fix.parquet")
    third = ingest_files(t, tmp_path / "fix.parquet")
    assert third[0].rows_updated == 1 and third[0].rows_inserted == 0
    assert _count(t, "SELECT count(*) FROM bars_daily") == n
    assert _count(t, "SELECT close FROM bars_daily WHERE symbol = :s AND date = :d",
                  s=one["symbol"].iloc[0], d=one["date"].iloc[0]) == one["low"].iloc[0]
    runs = _count(t, "SELECT count(*) FROM ingest_runs WHERE status = 'ok'")
    assert runs == 5
    assert _count(t, "SELECT count(*) FROM trading_dates") == \
        _count(t, "SELECT count(DISTINCT date) FROM bars_daily") == small["date"].nunique()


def test_bad_file_via_cli_stores_good_rows_and_rejects(db_url, fresh_target, tmp_path):
    csv = tmp_path / "bad.csv"
    csv.write_text(
        "symbol,date,open,high,low,close,volume\n"
        "GOOD,2024-01-02,10,11,9,10.5,1000\n"
        "GOOD,2024-01-03,10.5,12,10,11.5,1500\n"
        "GOOD,2024-01-03,10.5,12,10,11.5,1500\n"        # exact duplicate
        "BADH,2024-01-02,10,8,9,8.5,1000\n"             # high < low
        "BADP,2024-01-02,0,11,0,10,1000\n"              # price <= 0
        "BADD,02/30/2024,10,11,9,10,1000\n"             # unparseable date
        "BADV,2024-01-02,10,11,9,10,-1\n"               # negative volume
        "BADO,2024-01-02,12,11,9,10,100\n"              # open outside
        "BADC,2024-01-02,10,11,9,11.5,100\n"            # close outside
        ",2024-01-02,10,11,9,10,100\n"                  # missing symbol
        "BADN,2024-01-02,10,11,9,,100\n"                # missing close
    )
    r = subprocess.run([sys.executable, "-m", "technic.cli", "ingest", "files", str(csv)],
                       env=cli_env(db_url, fresh_target.schema), capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert "rejected" in r.stdout and "high < low" in r.stdout
    t = fresh_target
    assert _count(t, "SELECT count(*) FROM bars_daily") == 2
    with get_engine(t).connect() as c:
        rej = dict(c.execute(sa.text(
            "SELECT row->>'symbol', reason FROM ingest_rejects ORDER BY reason")).all())
    assert rej["BADH"] == "high < low" and rej["BADP"] == "price <= 0"
    assert rej["BADD"] == "unparseable date" and rej["BADV"] == "negative volume"
    assert rej["BADO"] == "open outside [low, high]"
    assert rej["BADC"] == "close outside [low, high]"
    assert rej["BADN"] == "missing value" and rej["GOOD"] == "duplicate (symbol, date)"
    assert _count(t, "SELECT rows_rejected FROM ingest_runs ORDER BY run_id DESC LIMIT 1") == 9
    # symbols without reference data still get a row, so every bar references one
    assert _count(t, "SELECT count(*) FROM symbols WHERE symbol = 'GOOD'") == 1


def test_unusable_file_is_a_clear_error(db_url, fresh_target, tmp_path):
    f = tmp_path / "nope.csv"
    f.write_text("a,b\n1,2\n")
    r = subprocess.run([sys.executable, "-m", "technic.cli", "ingest", "files", str(f)],
                       env=cli_env(db_url, fresh_target.schema), capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2
    assert "neither a bars file" in r.stderr
    # the attempt is logged as a failed run; nothing else is stored
    assert _count(fresh_target, "SELECT count(*) FROM ingest_runs WHERE status = 'failed' "
                                "AND error LIKE '%neither a bars file%'") == 1
    assert _count(fresh_target, "SELECT count(*) FROM ingest_runs") == 1
    assert _count(fresh_target, "SELECT count(*) FROM symbols") == 0


def test_synthetic_ingest(fresh_target):
    r = ingest_synthetic(fresh_target, 30, 60, seed=3)
    assert r.rows_inserted == 30 * 60 and r.rows_rejected == 0
    assert _count(fresh_target, "SELECT count(*) FROM symbols WHERE exchange = 'SYNTH'") == 30


def test_libpq_uri_keeps_socket_host():
    uri = libpq_uri("postgresql+psycopg://postgres:@/technic?host=/tmp/sock")
    assert uri == "postgresql://postgres@/technic?host=/tmp/sock"


def test_unset_url_uses_the_local_server(db_url, monkeypatch):
    from technic.store import db as dbmod

    monkeypatch.setattr(dbmod, "LOCAL_URL", db_url)
    dbmod._resolve.cache_clear()
    try:
        t = dbmod._resolve(None, "technic")
        assert t.origin == "local server" and t.url == db_url
        assert "local server" in t.describe()
    finally:
        dbmod._resolve.cache_clear()


def test_embedded_fallback_is_a_real_postgres(tmp_path):
    """No server answers → the embedded PostgreSQL 18 wheel, on a unix socket."""
    from technic.config import Settings
    from technic.store.db import DatabaseTarget, _embedded_url

    url = _embedded_url(Settings(embedded_pg_dir=tmp_path / "pg"))
    assert "host=" in url  # unix socket, no TCP port
    t = DatabaseTarget(url, "technic", "embedded")
    init_db(get_engine(t), t.schema)
    r = ingest_synthetic(t, 5, 30, seed=1)
    assert r.rows_inserted == 150
    assert _count(t, "SELECT current_setting('server_version_num')::int") >= 180000
    get_engine(t).dispose()


def test_ingest_status_reports_freshness_rejects_and_gaps(fresh_target, tmp_path):
    from technic.store.quality import ingest_status

    bars = pd.read_parquet(BUNDLED / "bars_daily.parquet")
    few = bars[bars["symbol"].isin(["AAPL", "MSFT", "NVDA"])].copy()
    few = few.drop(few.index[few["symbol"].eq("MSFT")][[10, 11, 50]])  # 3 missing sessions
    few.to_parquet(tmp_path / "bars_daily.parquet")
    ingest_files(fresh_target, tmp_path)
    bad = tmp_path / "bad.csv"
    bad.write_text("symbol,date,open,high,low,close,volume\nX,2025-01-02,1,0.5,0.9,1,1\n")
    ingest_files(fresh_target, bad)
    st = ingest_status(fresh_target)
    assert st.sources == [{"source": "files", "last_date": "2025-07-09", "rows": len(few),
                           "symbols": 3, "last_ingest": st.sources[0]["last_ingest"],
                           "split_adjusted": True, "dividend_adjusted": True,
                           "adjusted_as_of": "2025-07-09"}]
    assert st.mixed_basis_symbols == 0
    assert st.rejects == [{"source": "files", "reason": "high < low", "rows": 1}]
    assert st.gaps_total == 3 and st.gaps_top[0]["symbol"] == "MSFT"
