"""TimescaleDB for real (issue 16): schema, ingest, compression, roll-ups, refresh and scan on
a real TimescaleDB server, each result compared with the native (plain PostgreSQL) variant on
the same server, row for row.

Runs when ``TECHNIC_TEST_TIMESCALE_URL`` points at a PostgreSQL server with ``timescaledb`` in
``shared_preload_libraries`` (e.g. ``postgresql+psycopg://postgres@127.0.0.1:5433/postgres``;
docs/operations.md); a database ``technic_ts_<random>`` is created there and dropped after the
module. Skips otherwise, so CI stays green without one. TimescaleDB's background jobs are not
waited for (they fail on some server builds): the tests compress and refresh explicitly.

``test_not_preloaded_falls_back_to_native`` runs on the ordinary test server instead, when
the extension files are installed there but not preloaded, and skips otherwise.
"""

from __future__ import annotations

import logging
import os
import secrets
import subprocess
import sys

import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from psycopg import sql
from sqlalchemy.engine import make_url

from technic.jobs.ingest import ingest_files
from technic.store.db import DatabaseTarget, dispose_connections, get_engine, libpq_uri
from technic.store.schema import init_db, timescale_schema
from tests.conftest import SHARED, cli_env

TS_URL = os.environ.get("TECHNIC_TEST_TIMESCALE_URL")
DAILY = SHARED / "bars_daily.parquet"
FIVE_MIN = SHARED / "bars_5min.parquet"
UNIVERSE = SHARED / "universe.parquet"
ROLLUP_VIEWS = ("bars_15min", "bars_1h", "bars_intraday_daily")


@pytest.fixture(scope="module")
def ts_url():
    """A fresh database on the TimescaleDB server, dropped after the module."""
    if not TS_URL:
        pytest.skip("TECHNIC_TEST_TIMESCALE_URL is not set (a server with timescaledb in "
                    "shared_preload_libraries, e.g. postgresql+psycopg://postgres@127.0.0.1:"
                    "5433/postgres; docs/operations.md)")
    admin = libpq_uri(TS_URL)
    name = f"technic_ts_{secrets.token_hex(4)}"
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield make_url(TS_URL).set(database=name).render_as_string(hide_password=False)
    dispose_connections()
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _pair(url: str, name: str) -> tuple[DatabaseTarget, DatabaseTarget]:
    """Two migrated schemas on one server: TimescaleDB and native (the reference)."""
    ts, pg = (DatabaseTarget(url, f"{name}_ts", "test"), DatabaseTarget(url, f"{name}_pg", "test"))
    assert init_db(get_engine(ts), ts.schema).variant == "timescaledb"
    assert init_db(get_engine(pg), pg.schema, timescale=False).variant == "native"
    return ts, pg


def _frame(t: DatabaseTarget, query: str) -> pd.DataFrame:
    with get_engine(t).connect() as c:
        return pd.read_sql(sa.text(query), c)


def _assert_same(ts: DatabaseTarget, pg: DatabaseTarget, query: str) -> int:
    a, b = _frame(ts, query), _frame(pg, query)
    pd.testing.assert_frame_equal(a, b, check_dtype=False)
    return len(a)


BARS_Q = ("SELECT symbol, date, open, high, low, close, volume, source FROM bars_daily "
          "ORDER BY symbol, date")


def _compress_before(t: DatabaseTarget, table: str, older_than: str) -> int:
    """Compress every chunk of ``table`` entirely before ``older_than``; returns how many."""
    with get_engine(t).connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        chunks = c.execute(sa.text(f"SELECT show_chunks('{t.schema}.{table}', "
                                   f"older_than => {older_than})")).scalars().all()
        for ch in chunks:
            c.execute(sa.text(f"SELECT compress_chunk('{ch}')"))
    return len(chunks)


def _drop_schema(engine: sa.Engine, schema: str, attempts: int = 10) -> None:
    """``DROP SCHEMA … CASCADE`` of a TimescaleDB schema: pause its policy jobs first, and
    retry while one that had already started still runs (the drop then fails with "tuple
    concurrently deleted"; policy jobs start the moment they are created)."""
    import time

    with engine.begin() as c:
        c.execute(sa.text("SELECT alter_job(job_id, scheduled => false) "
                          "FROM timescaledb_information.jobs WHERE hypertable_schema = :s"),
                  {"s": schema})
    for i in range(attempts):
        try:
            with engine.begin() as c:
                c.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
            return
        except sa.exc.InternalError as e:
            if "concurrently" not in str(e) or i == attempts - 1:
                raise
            time.sleep(0.5 * (i + 1))


def test_db_init_twice_and_what_it_creates(ts_url, tmp_path):
    a = DatabaseTarget(ts_url, "technic", "test")
    first = init_db(get_engine(a), a.schema)
    again = init_db(get_engine(a), a.schema)
    assert first.variant == again.variant == "timescaledb"
    assert first.applied and again.applied == []
    with get_engine(a).connect() as c:
        assert timescale_schema(c) == "public"  # never inside a technic schema
        hyper = dict(c.execute(sa.text(
            "SELECT hypertable_name, compression_enabled FROM timescaledb_information.hypertables "
            "WHERE hypertable_schema = 'technic'")).all())
        caggs = dict(c.execute(sa.text(
            "SELECT view_name, materialized_only FROM "
            "timescaledb_information.continuous_aggregates WHERE view_schema = 'technic'")).all())
        jobs = sorted(c.execute(sa.text(
            "SELECT proc_name, hypertable_name FROM timescaledb_information.jobs "
            "WHERE hypertable_schema = 'technic'")).all())
        intraday_idx = c.execute(sa.text(
            "SELECT indexname FROM pg_indexes WHERE schemaname = 'technic' "
            "AND tablename = 'bars_intraday'")).scalars().all()
        daily_view = c.execute(sa.text(
            "SELECT relkind FROM pg_class WHERE oid = 'technic.bars_intraday_daily'::regclass"
        )).scalar()
    assert hyper == {"bars_daily": True, "features_daily": True, "bars_intraday": True,
                     "option_chains": True}
    assert caggs == {"bars_15min": False, "bars_1h": False}  # real-time aggregation on
    assert daily_view == "m"
    assert jobs == sorted(
        [("policy_compression", t) for t in ("bars_daily", "features_daily", "bars_intraday",
                                             "bars_15min", "bars_1h", "option_chains")]
        + [("policy_retention", t) for t in ("bars_intraday", "bars_15min", "bars_1h")]
        + [("policy_refresh_continuous_aggregate", t) for t in ("bars_15min", "bars_1h")])
    assert intraday_idx == ["bars_intraday_pkey"]  # no default ts index (COPY cost)

    # a second schema (docs/operations.md: one per year) finds the extension's functions, and
    # dropping the first one leaves the extension in place
    b = DatabaseTarget(ts_url, "technic_2026", "test")
    assert init_db(get_engine(b), b.schema).variant == "timescaledb"
    _drop_schema(get_engine(a), "technic")
    with get_engine(b).connect() as c:
        assert timescale_schema(c) == "public"
    pd.DataFrame({"symbol": ["AAA", "AAA", "BBB"],
                  "date": pd.to_datetime(["2025-12-31", "2026-01-02", "2026-01-02"]),
                  "open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5, "volume": 10.0}
                 ).to_parquet(tmp_path / "bars_daily.parquet")
    assert ingest_files(b, tmp_path / "bars_daily.parquet")[0].rows_inserted == 3
    with get_engine(b).connect() as c:
        assert c.execute(sa.text(
            "SELECT array_agg(range_start::date::text ORDER BY range_start) FROM "
            "timescaledb_information.chunks WHERE hypertable_schema = 'technic_2026' "
            "AND hypertable_name = 'bars_daily'")).scalar() == ["2025-01-01", "2026-01-01"]

    # the CLI, twice, on a third schema
    for expect in ("applied migration(s)", "already current"):
        r = subprocess.run([sys.executable, "-m", "technic.cli", "db", "init"],
                           env=cli_env(ts_url, "technic_cli"), capture_output=True, text=True,
                           timeout=180)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "timescaledb storage" in r.stdout and expect in r.stdout, r.stdout


@pytest.fixture(scope="module")
def daily(ts_url, tmp_path_factory):
    """A realistic cut of the real daily file (every 25th symbol, all 3 years, ~200k bars)
    and the real universe, ingested into both variants; 2022-2024 chunks then compressed.
    Before compression, five bars of one day are made ``intraday-partial`` (halved volume)."""
    if not (DAILY.exists() and UNIVERSE.exists()):
        pytest.skip(f"real data not found in {SHARED} (set TECHNIC_SHARED_DATA)")
    symbols = sorted(set(pq.read_table(DAILY, columns=["symbol"])["symbol"].to_pylist()))[::25]
    bars = pq.read_table(DAILY, filters=[("symbol", "in", symbols)])
    root = tmp_path_factory.mktemp("ts_daily")
    (root / "all").mkdir()
    pq.write_table(bars, root / "all" / "bars_daily.parquet")
    pq.write_table(pq.read_table(UNIVERSE), root / "all" / "universe.parquet")
    ts, pg = _pair(ts_url, "daily")
    for t in (ts, pg):
        rep = ingest_files(t, root / "all")[-1]  # universe first, then the bars
        assert rep.rows_inserted == bars.num_rows and rep.rows_rejected == 0
        with get_engine(t).begin() as c:
            c.execute(sa.text(
                "UPDATE bars_daily SET source = 'intraday-partial', volume = volume / 2 "
                "WHERE date = '2023-03-02' AND symbol IN (SELECT symbol FROM bars_daily "
                "WHERE date = '2023-03-02' ORDER BY symbol LIMIT 5)"))
    assert _compress_before(ts, "bars_daily", "DATE '2025-01-01'") == 3
    return ts, pg, bars, root


def _day_file(bars: pa.Table, root, day: str, name: str, change=None):
    d = bars.filter(pc.equal(bars["date"], pa.scalar(pd.Timestamp(day).date()))).to_pandas()
    if change is not None:
        d = change(d)
    (root / name).mkdir(exist_ok=True)
    d.to_parquet(root / name / "bars_daily.parquet")
    return root / name / "bars_daily.parquet", len(d)


def test_daily_history_in_calendar_year_chunks_equals_plain(daily):
    ts, pg, bars, _ = daily
    with get_engine(ts).connect() as c:
        chunks = c.execute(sa.text(
            "SELECT range_start::date::text, range_end::date::text, is_compressed "
            "FROM timescaledb_information.chunks WHERE hypertable_schema = :s "
            "AND hypertable_name = 'bars_daily' ORDER BY range_start"), {"s": ts.schema}).all()
        stats = c.execute(sa.text(
            "SELECT before_compression_total_bytes, after_compression_total_bytes "
            f"FROM hypertable_compression_stats('{ts.schema}.bars_daily')")).one()
    assert chunks == [(f"{y}-01-01", f"{y + 1}-01-01", y < 2025) for y in range(2022, 2026)]
    assert stats[0] > 2 * stats[1]  # compressed to less than half
    assert _assert_same(ts, pg, BARS_Q) == bars.num_rows


def test_reingest_into_compressed_chunks(daily):
    """Unchanged day, changed day, partial → complete bar, whole file again: all succeed on
    compressed chunks (no tuple decompression limit) and leave both variants identical."""
    ts, pg, bars, root = daily
    unchanged, n_day = _day_file(bars, root, "2023-06-01", "same")

    def bump(d: pd.DataFrame) -> pd.DataFrame:
        d = d.sort_values("symbol").reset_index(drop=True)
        d.loc[:2, "volume"] *= 2
        return d

    changed, _ = _day_file(bars, root, "2023-06-02", "changed", bump)
    complete, _ = _day_file(bars, root, "2023-03-02", "complete")
    for t in (ts, pg):
        r = ingest_files(t, unchanged)[0]
        assert (r.rows_inserted, r.rows_updated, r.rows_unchanged) == (0, 0, n_day)
        r = ingest_files(t, changed)[0]
        assert (r.rows_inserted, r.rows_updated) == (0, 3)
        assert r.changed_from == r.changed_to == pd.Timestamp("2023-06-02").date()
        r = ingest_files(t, complete)[0]
        assert (r.rows_inserted, r.rows_updated) == (0, 5)  # the partial bars replaced
        r = ingest_files(t, root / "all" / "bars_daily.parquet")[0]
        assert (r.rows_inserted, r.rows_updated) == (0, 3)  # the bumped volumes restored
    with get_engine(ts).connect() as c:
        assert c.execute(sa.text("SELECT count(*) FROM bars_daily WHERE source = "
                                 "'intraday-partial'")).scalar() == 0
    assert _assert_same(ts, pg, BARS_Q) == bars.num_rows


def test_refresh_and_scan_equal_plain(daily):
    """Features and a scan over history that lies in compressed chunks: the same rows."""
    from technic.jobs.refresh import refresh_features
    from technic.jobs.scan import ScanParams, run_scan

    ts, pg, _, _ = daily
    outs = []
    for t in (ts, pg):
        for day in (pd.Timestamp("2024-12-31").date(), None):  # a compressed year, the latest
            refresh_features(t, as_of=day, lookback_bars=300, chunk_size=400)
        outs.append(run_scan(t, ScanParams(top=20)))
    q = "SELECT * FROM features_daily ORDER BY symbol, date"
    a, b = _frame(ts, q).drop(columns="computed_at"), _frame(pg, q).drop(columns="computed_at")
    assert len(a) > 0
    pd.testing.assert_frame_equal(a, b)
    cols = ["rank", "symbol", "tech_rating", "close", "ics", "merit"]
    assert outs[0].as_of == outs[1].as_of and len(outs[0].results) > 20
    pd.testing.assert_frame_equal(outs[0].results[cols], outs[1].results[cols])


def test_intraday_rollups_equal_plain_after_each_ingest(ts_url, tmp_path_factory):
    """The 5-minute file (a cut of 120 symbols) in three ingests; after each, the 15-minute and
    hourly continuous aggregates and the daily roll-up equal plain PostgreSQL's row for row.
    Before the last one the older chunks are compressed; a re-ingest of an unchanged and of
    a changed bar then succeed too."""
    if not FIVE_MIN.exists():
        pytest.skip(f"real data not found: {FIVE_MIN} (set TECHNIC_SHARED_DATA)")
    symbols = sorted(set(pq.read_table(FIVE_MIN, columns=["symbol"])["symbol"]
                         .to_pylist()))[::70]
    five = pq.read_table(FIVE_MIN, filters=[("symbol", "in", symbols)])
    ts_col = five["ts"]
    cuts = [pa.scalar(pd.Timestamp(d, tz="UTC"), ts_col.type) for d in ("2026-06-10",
                                                                         "2026-06-22")]
    parts = [five.filter(pc.less(ts_col, cuts[0])),
             five.filter(pc.and_(pc.greater_equal(ts_col, cuts[0]), pc.less(ts_col, cuts[1]))),
             five.filter(pc.greater_equal(ts_col, cuts[1]))]
    assert sum(p.num_rows for p in parts) == five.num_rows and all(p.num_rows for p in parts)
    root = tmp_path_factory.mktemp("ts_five")
    ts, pg = _pair(ts_url, "five")

    def ingest(table: pa.Table, name: str) -> list:
        (root / name).mkdir(exist_ok=True)
        pq.write_table(table, root / name / "bars_5min.parquet")
        reps = [ingest_files(t, root / name / "bars_5min.parquet")[0] for t in (ts, pg)]
        for view in ROLLUP_VIEWS:
            n = _assert_same(ts, pg, f"SELECT * FROM {view} ORDER BY 1, 2")
            assert n > 0
        return reps

    # compare materialized rows only (real-time aggregation off): what each ingest's refresh
    # wrote, not what the raw bars give at query time
    with get_engine(ts).begin() as c:
        for view in ("bars_15min", "bars_1h"):
            c.execute(sa.text(f"ALTER MATERIALIZED VIEW {view} SET "
                              "(timescaledb.materialized_only = true)"))
    for i, part in enumerate(parts[:2]):
        reps = ingest(part, f"p{i}")
        assert [r.rows_inserted for r in reps] == [part.num_rows] * 2
    assert _compress_before(ts, "bars_intraday", "TIMESTAMPTZ '2026-06-19'") >= 1
    reps = ingest(parts[2], "p2")  # the next ingest into a month with (compressed) bars
    assert [r.rows_inserted for r in reps] == [parts[2].num_rows] * 2
    day = parts[0].filter(pc.less(parts[0]["ts"], pa.scalar(pd.Timestamp(
        "2026-06-05", tz="UTC"), ts_col.type)))
    reps = ingest(day, "same")  # unchanged bars in a compressed chunk
    assert [(r.rows_inserted, r.rows_updated, r.rows_unchanged) for r in reps] == \
        [(0, 0, day.num_rows)] * 2
    vol = day["volume"].to_numpy().copy()
    vol[:4] *= 2
    reps = ingest(day.set_column(day.schema.get_field_index("volume"), "volume",
                                 pa.array(vol)), "changed")
    assert [(r.rows_inserted, r.rows_updated) for r in reps] == [(0, 4)] * 2
    n = _assert_same(ts, pg, "SELECT symbol, ts, open, high, low, close, volume, source "
                             "FROM bars_intraday ORDER BY symbol, ts")
    assert n == five.num_rows


OPTIONS = SHARED / "options.parquet"
DAILY_2026 = SHARED / "bars_daily_2026.parquet"
FUNDAMENTALS = SHARED / "fundamentals.parquet"
#: A real cut of the option file: KLAC (its 10:1 split on 2026-06-12), SLF (chains without an
#: underlying price, no bars) and six small chains; all 19 sessions (~5 weekly chunks).
OPTION_UNDERLYINGS = ["GME", "KLAC", "MNST", "ORLY", "PFE", "SLF", "TRV", "ZTS"]
CHAINS_Q = ("SELECT date, underlying, expiration, option_type, strike, last_price, bid, ask, "
            "volume, open_interest, implied_vol, delta, gamma, theta, vega, underlying_price, "
            "source FROM option_chains ORDER BY date, underlying, expiration, option_type, "
            "strike")
METRICS_Q = "SELECT * FROM option_metrics ORDER BY date, underlying"


def _set_decompression_limit(t: DatabaseTarget, n: int | None) -> None:
    """``timescaledb.max_tuples_decompressed_per_dml_transaction`` of ``t``'s database for
    new sessions (None: the server default); pooled connections are closed."""
    with get_engine(t).connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        db = c.execute(sa.text("SELECT current_database()")).scalar()
        c.execute(sa.text(f'ALTER DATABASE "{db}" ' + (
            "RESET timescaledb.max_tuples_decompressed_per_dml_transaction" if n is None else
            f"SET timescaledb.max_tuples_decompressed_per_dml_transaction = {int(n)}")))
    dispose_connections()


@pytest.fixture(scope="module")
def options(ts_url, tmp_path_factory):
    """The option cut and its underlyings' 2026 daily bars (plus every 40th symbol, for a
    scan with more than the optioned names) and the real universe, ingested into both
    variants (chains, then the metrics job)."""
    if not all(p.exists() for p in (OPTIONS, DAILY_2026, UNIVERSE)):
        pytest.skip(f"real data not found in {SHARED} (set TECHNIC_SHARED_DATA)")
    chains = pq.read_table(OPTIONS, filters=[("underlying", "in", OPTION_UNDERLYINGS)])
    names = sorted(set(pq.read_table(DAILY_2026, columns=["symbol"])["symbol"].to_pylist()))
    bars = pq.read_table(DAILY_2026, filters=[("symbol", "in", sorted(
        set(names[::40]) | set(OPTION_UNDERLYINGS)))])
    root = tmp_path_factory.mktemp("ts_options")
    (root / "bars").mkdir()
    pq.write_table(bars, root / "bars" / "bars_daily_2026.parquet")
    pq.write_table(pq.read_table(UNIVERSE), root / "bars" / "universe.parquet")
    pq.write_table(chains, root / "chains.parquet")
    ts, pg = _pair(ts_url, "opt")
    reports = []
    for t in (ts, pg):
        ingest_files(t, root / "bars" / "universe.parquet")
        r = ingest_files(t, root / "bars" / "bars_daily_2026.parquet")[-1]
        assert r.rows_inserted == bars.num_rows
        reports.append(ingest_files(t, root / "chains.parquet")[-1])
    return ts, pg, chains, root, reports


def test_option_chains_hypertable_compressed_reingest_equals_plain(options):
    """option_chains is a compressed hypertable (7-day chunks, segments by underlying); after
    the older chunks are compressed, re-ingests of unchanged rows, changed rows and a new
    contract on those chunks succeed with the native variant's counts, and both variants
    store the same contracts and metrics."""
    ts, pg, chains, root, reports = options
    assert [(r.rows_inserted, r.rows_updated) for r in reports] == \
        [(reports[1].rows_inserted, 0)] * 2
    n = reports[0].rows_inserted
    assert n == chains.num_rows - reports[0].rows_rejected and n > 20_000
    with get_engine(ts).connect() as c:
        dims = c.execute(sa.text(
            "SELECT column_name, time_interval FROM timescaledb_information.dimensions "
            "WHERE hypertable_schema = :s AND hypertable_name = 'option_chains'"),
            {"s": ts.schema}).all()
        settings = dict(c.execute(sa.text(
            "SELECT segmentby, orderby FROM timescaledb_information.hypertable_compression_"
            "settings WHERE hypertable = CAST(:h AS regclass)"),
            {"h": f"{ts.schema}.option_chains"}).one()._mapping)
    assert dims == [("date", pd.Timedelta(days=7).to_pytimedelta())]
    assert settings["segmentby"] == "underlying"
    assert settings["orderby"].replace(" ", "").startswith("dateDESC,expiration")
    assert _compress_before(ts, "option_chains", "DATE '2026-06-15'") >= 3
    with get_engine(ts).connect() as c:
        compressed = c.execute(sa.text(
            "SELECT count(*) FILTER (WHERE is_compressed), count(*) FROM "
            "timescaledb_information.chunks WHERE hypertable_schema = :s AND "
            "hypertable_name = 'option_chains'"), {"s": ts.schema}).one()
    assert 3 <= compressed[0] < compressed[1]

    # A decompression limit far below the compressed sessions' batches (a real week is
    # ~1.5 M contracts, past the default 100k): an unchanged re-ingest decompresses nothing,
    # a correction lifts the limit for its own transaction.
    _set_decompression_limit(ts, 100)
    try:
        _reingest_unchanged_and_changed(ts, pg, chains, root, n)
    finally:
        _set_decompression_limit(ts, None)
    assert _assert_same(ts, pg, CHAINS_Q) == n + 1
    with get_engine(ts).connect() as c:
        assert c.execute(sa.text("SELECT count(*) FROM option_chains WHERE gamma IS NOT NULL")
                         ).scalar() > n // 2
    q = METRICS_Q
    a, b = _frame(ts, q).drop(columns="computed_at"), _frame(pg, q).drop(columns="computed_at")
    assert len(a) == len(b) > 100
    pd.testing.assert_frame_equal(a, b, check_dtype=False)


def _reingest_unchanged_and_changed(ts: DatabaseTarget, pg: DatabaseTarget, chains: pa.Table,
                                    root, n: int) -> None:
    """The whole cut again (nothing changes), then one compressed session with 3 changed
    contracts and a new one; the same counts in both variants."""
    for t in (ts, pg):
        r = ingest_files(t, root / "chains.parquet")[-1]
        assert (r.rows_inserted, r.rows_updated, r.rows_unchanged) == (0, 0, n)
    day = chains.filter(pc.equal(chains["date"], pa.scalar(pd.Timestamp("2026-05-27").date())))
    d = day.to_pandas()
    d = d[d["implied_vol"].isna() | (d["implied_vol"] <= 5)].reset_index(drop=True)
    d.loc[d.index[d["underlying"] == "KLAC"][:3], "volume"] += 1000
    new = d.iloc[[3]].copy()
    new["strike"] += 0.01
    d = pd.concat([d, new], ignore_index=True)
    (root / "changed").mkdir()
    d.to_parquet(root / "changed" / "chains.parquet", index=False)
    for t in (ts, pg):
        r = ingest_files(t, root / "changed" / "chains.parquet")[-1]
        assert (r.rows_inserted, r.rows_updated, r.rows_unchanged) == (1, 3, len(d) - 4)


def test_scan_with_options_and_fundamentals_equal_plain(options, tmp_path):
    """Fundamentals ingest, features and ``scan --with-options`` on the options cut: the same
    fundamentals, option columns and fundamental factors in both variants."""
    from technic.jobs.refresh import refresh_features
    from technic.jobs.scan import ScanParams, run_scan
    from technic.store.migrations import FUNDAMENTAL_RESULT_COLUMNS, OPTION_RESULT_COLUMNS

    if not FUNDAMENTALS.exists():
        pytest.skip(f"real data not found: {FUNDAMENTALS}")
    ts, pg, _, root, _ = options
    with get_engine(pg).connect() as c:
        symbols = c.execute(sa.text("SELECT DISTINCT symbol FROM bars_daily")).scalars().all()
    pq.write_table(pq.read_table(FUNDAMENTALS, filters=[("symbol", "in", symbols)]),
                   tmp_path / "fundamentals.parquet")
    outs = []
    for t in (ts, pg):
        r = ingest_files(t, tmp_path / "fundamentals.parquet")[0]
        assert r.rows_inserted > 100 and r.rows_updated == 0
        refresh_features(t, lookback_bars=300, chunk_size=400)
        outs.append(run_scan(t, ScanParams(top=10, with_options=True)))
    f = _frame(pg, "SELECT * FROM fundamentals LIMIT 0").columns.drop("ingested_at")
    assert _assert_same(ts, pg, f"SELECT {', '.join(f)} FROM fundamentals "
                                "ORDER BY symbol, period_end") > 100
    assert outs[0].as_of == outs[1].as_of == pd.Timestamp("2026-06-22").date()
    assert outs[0].counts["with_options"] == outs[1].counts["with_options"] >= 5
    cols = ["rank", "symbol", "tech_rating", *OPTION_RESULT_COLUMNS,
            *FUNDAMENTAL_RESULT_COLUMNS]
    a, b = (o.results.reindex(columns=cols) for o in outs)
    assert a["opt_atm_iv_30d"].notna().sum() >= 5 and a["value_score"].notna().sum() > 0
    pd.testing.assert_frame_equal(a, b, check_dtype=False)
    q = ("SELECT symbol, rank, tech_rating, {} FROM scan_results WHERE run_id = (SELECT "
         "max(run_id) FROM scan_runs) ORDER BY rank").format(
        ", ".join([*OPTION_RESULT_COLUMNS, *FUNDAMENTAL_RESULT_COLUMNS]))
    assert _assert_same(ts, pg, q) == len(a)


def test_not_preloaded_falls_back_to_native(db_url, caplog):
    """Extension files installed but ``timescaledb`` not in shared_preload_libraries (CREATE
    EXTENSION is FATAL there): native partitions and one warning, on the ordinary test
    server when it is in that state."""
    admin = libpq_uri(db_url)
    with psycopg.connect(admin) as c:
        available = c.execute("SELECT 1 FROM pg_available_extensions "
                              "WHERE name = 'timescaledb'").fetchone()
        preload = c.execute("SELECT current_setting('shared_preload_libraries')").fetchone()[0]
        installed = c.execute("SELECT 1 FROM pg_extension "
                              "WHERE extname = 'timescaledb'").fetchone()
    if not available or "timescaledb" in preload or installed:
        pytest.skip("needs a test server with the timescaledb files installed but not "
                    "preloaded (TECHNIC_TEST_ADMIN_URL)")
    t = DatabaseTarget(db_url, "nopreload_" + secrets.token_hex(3), "test")
    with caplog.at_level(logging.WARNING):
        first = init_db(get_engine(t), t.schema)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "preloaded" in warnings[0].getMessage()
    assert "native" in warnings[0].getMessage()
    assert first.variant == "native" and first.applied
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert init_db(get_engine(t), t.schema).applied == []
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    with get_engine(t).connect() as c:
        kind = c.execute(sa.text(f"SELECT relkind FROM pg_class WHERE oid = "
                                 f"'{t.schema}.bars_daily'::regclass")).scalar()
    assert kind == "p"
    r = subprocess.run([sys.executable, "-m", "technic.cli", "db", "init"],
                       env=cli_env(db_url, "nopreload_cli_" + secrets.token_hex(3)),
                       capture_output=True, text=True, timeout=180)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "native storage" in out and out.count("cannot be enabled") == 1, out
    assert "Traceback" not in out and "PendingRollback" not in out
