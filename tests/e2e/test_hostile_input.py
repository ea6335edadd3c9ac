"""Hostile input (issue 16, data integrity 1–5 and 7): every bad row is a reject with a
reason, every unreadable file a one-line error and a failed run, killed runs are marked
orphaned, and only default-filter scans feed ``latest_scan_results`` — with the rest of the
store unchanged each time (rows compared before and after)."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import psycopg
import pytest
import sqlalchemy as sa

from technic.jobs.ingest import ingest_files
from technic.store.db import get_engine, libpq_uri
from technic.validation import validate_bars
from tests.conftest import cli_env

SESSIONS = ["2024-03-04", "2024-03-05", "2024-03-06"]


def _bars(dates, symbols=("AAA", "BBB"), **over) -> pd.DataFrame:
    rows = [{"symbol": s, "date": d, "open": 10.0, "high": 11.0, "low": 9.0, "close": 10.5,
             "volume": 1000.0, **over} for d in dates for s in symbols]
    return pd.DataFrame(rows)


def _rows(t, sql: str) -> list[tuple]:
    with get_engine(t).connect() as c:
        return [tuple(r) for r in c.execute(sa.text(sql))]


def _one(t, sql: str):
    with get_engine(t).connect() as c:
        return c.execute(sa.text(sql)).scalar()


BARS_SQL = "SELECT symbol, date, open, high, low, close, volume FROM bars_daily ORDER BY 1, 2"


def _cli(db_url, t, *args, timeout=180, **env):
    return subprocess.run([sys.executable, "-m", "technic.cli", *args],
                          env=cli_env(db_url, t.schema, **env), capture_output=True,
                          text=True, timeout=timeout)


def _base(t, tmp_path) -> list[tuple]:
    """Store three good sessions of two symbols; return the stored bars."""
    f = tmp_path / "base.parquet"
    _bars(pd.to_datetime(SESSIONS)).to_parquet(f)
    ingest_files(t, f)
    return _rows(t, BARS_SQL)


# ----------------------------------------------------------------------------- item 1
def test_dates_must_be_past_nyse_sessions(fresh_target, tmp_path):
    t = fresh_target
    before = _base(t, tmp_path)
    bad = {"2099-01-01": "date after today (New York)",
           "2024-03-09": "weekend (not an NYSE session)",          # a Saturday
           "2024-03-29": "holiday (not an NYSE session)",          # Good Friday
           "2025-01-09": "holiday (not an NYSE session)",          # national day of mourning
           "1900-01-01": "date before 1970-01-01"}
    df = pd.concat([_bars(pd.to_datetime(["2024-03-07"])),
                    _bars(pd.to_datetime(list(bad)), symbols=("AAA",))], ignore_index=True)
    f = tmp_path / "dates.parquet"
    df.to_parquet(f)
    rep = ingest_files(t, f)[0]
    assert (rep.rows_read, rep.rows_inserted, rep.rows_rejected) == (7, 2, 5)
    assert rep.rejects_by_reason == {"date after today (New York)": 1,
                                     "weekend (not an NYSE session)": 1,
                                     "holiday (not an NYSE session)": 2,
                                     "date before 1970-01-01": 1}
    after = _rows(t, BARS_SQL)
    assert set(before) <= set(after)
    assert sorted((s, d.isoformat()) for s, d, *_ in set(after) - set(before)) == [
        ("AAA", "2024-03-07"), ("BBB", "2024-03-07")]
    assert _one(t, "SELECT count(*) FROM trading_dates") == 4
    assert _one(t, "SELECT max(date) FROM trading_dates").isoformat() == "2024-03-07"
    got = dict(_rows(t, "SELECT row->>'date', reason FROM ingest_rejects"))
    assert {k[:10]: v for k, v in got.items()} == bad
    # the same file as CSV text: the same verdicts, nothing changes
    g = tmp_path / "dates.csv"
    df.assign(date=df["date"].dt.strftime("%Y-%m-%d")).to_csv(g, index=False)
    again = ingest_files(t, g)[0]
    assert (again.rows_inserted, again.rows_unchanged, again.rows_rejected) == (0, 2, 5)
    assert again.rejects_by_reason == rep.rejects_by_reason
    assert _rows(t, BARS_SQL) == after


def test_future_date_is_judged_in_new_york_time():
    # 2024-03-05 02:00 UTC is still 2024-03-04 in New York: the 5th is in the future there
    now = pd.Timestamp("2024-03-05 02:00", tz="UTC")
    v = validate_bars(_bars(pd.to_datetime(["2024-03-04", "2024-03-05"]), symbols=("A",)),
                      now=now)
    assert list(v.good["date"].astype(str)) == ["2024-03-04"]
    assert list(v.rejects["reason"]) == ["date after today (New York)"]


def test_intraday_bars_on_sessions_and_not_in_the_future(fresh_target, tmp_path):
    t = fresh_target
    ts = ["2024-03-04T14:30:00Z",            # a session (09:30 New York)
          "2024-03-04T09:35:00-05:00",       # the same day, another zone spelling
          "2024-03-09T15:00:00Z",            # Saturday
          "2024-03-29T15:00:00Z",            # Good Friday
          "2099-03-04T15:00:00Z"]            # future
    df = pd.DataFrame({"symbol": "AAA", "ts": ts, "open": 10, "high": 11, "low": 9,
                       "close": 10, "volume": 5})
    f = tmp_path / "intraday.csv"
    df.to_csv(f, index=False)
    rep = ingest_files(t, f)[0]
    assert (rep.rows_inserted, rep.rows_rejected) == (2, 3)
    assert rep.rejects_by_reason == {"weekend (not an NYSE session)": 1,
                                     "holiday (not an NYSE session)": 1,
                                     "timestamp in the future": 1}
    assert [r[0].isoformat() for r in _rows(t, "SELECT ts AT TIME ZONE 'UTC' FROM "
                                               "bars_intraday ORDER BY 1")] == \
        ["2024-03-04T14:30:00", "2024-03-04T14:35:00"]


# ----------------------------------------------------------------------------- item 2
def test_universe_flags_are_parsed_strictly(fresh_target, tmp_path):
    t = fresh_target
    f = tmp_path / "universe.csv"
    f.write_text(
        "symbol,name,exchange,sector,is_etf,active,market_cap\n"
        "AAA,A Inc,NYSE,Technology,false,TRUE,1000\n"
        "BBB,B Inc,NYSE,Technology,no,yes,abc\n"
        "CCC,C Inc,NYSE,Finance,0,1,\n"
        "DDD,D Inc,NYSE,Finance,N,y,inf\n"
        "EEE,E Inc,NYSE,Finance, F ,t,-5\n"
        "FFF,F Inc,NYSE,Finance,maybe,true,10\n"
        "GGG,G Inc,NYSE,Finance,false,2,10\n"
        "HHH,H Inc,NYSE,Finance,,,\n"
        "III,I Inc,NYSE\n"
        "AAA,A again,NYSE,Technology,true,true,5\n")
    rep = ingest_files(t, f)[0]
    assert (rep.rows_read, rep.rows_rejected, rep.symbols_upserted) == (10, 4, 6)
    assert rep.rejects_by_reason == {
        "unparseable is_etf (expected true/false, yes/no, y/n, 1/0)": 1,
        "unparseable active (expected true/false, yes/no, y/n, 1/0)": 1,
        "ragged CSV line (3 fields, 7 expected)": 1, "duplicate symbol": 1}
    assert _rows(t, "SELECT symbol, is_etf, active, market_cap FROM symbols ORDER BY 1") == [
        ("AAA", False, True, 1000.0), ("BBB", False, True, None), ("CCC", False, True, None),
        ("DDD", False, True, None), ("EEE", False, True, None), ("HHH", None, None, None)]
    assert _one(t, "SELECT count(*) FROM symbols WHERE market_cap = 'NaN'") == 0
    # a later file with a bad flag for AAA leaves AAA's stored row as it was
    before = _rows(t, "SELECT * FROM symbols ORDER BY symbol")
    g = tmp_path / "universe2.csv"
    g.write_text("symbol,name,exchange,sector,is_etf,active,market_cap\n"
                 "AAA,Renamed,NYSE,Technology,perhaps,true,5\n")
    rep2 = ingest_files(t, g)[0]
    assert (rep2.rows_rejected, rep2.symbols_upserted) == (1, 0)
    assert _rows(t, "SELECT * FROM symbols ORDER BY symbol") == before


def test_typed_universe_flags(fresh_target, tmp_path):
    t = fresh_target
    f = tmp_path / "universe.parquet"
    pd.DataFrame({"symbol": ["AAA", "BBB"], "sector": ["Finance", "Energy"],
                  "is_etf": [True, False], "active": [False, None],
                  "market_cap": [float("nan"), 5e9]}).to_parquet(f)
    ingest_files(t, f)
    assert _rows(t, "SELECT symbol, is_etf, active, market_cap FROM symbols ORDER BY 1") == [
        ("AAA", True, False, None), ("BBB", False, None, 5e9)]


# ----------------------------------------------------------------------------- item 3
def test_one_bad_row_is_a_reject_not_a_failed_file(db_url, fresh_target, tmp_path):
    t = fresh_target
    before = _base(t, tmp_path)
    long_symbol = "X" * 20_000
    f = tmp_path / "hostile.csv"
    f.write_bytes(
        b"symbol,date,open,high,low,close,volume\n"
        b"AAA,2024-03-07,10,11,9,10.5,1000\n"
        b"A\x00A,2024-03-07,10,11,9,10.5,1000\n"                         # NUL byte
        + long_symbol.encode() + b",2024-03-07,10,11,9,10.5,1000\n"       # 20,000 chars
        b"CCC,2024-03-07,10,11\n"                                        # ragged: too few
        b"DDD,2024-03-07,10,11,9,10.5,1000,extra\n"                      # ragged: too many
        b"EEE,2024-03-07T00:00:00+05:00,10,11,9,10.5,1000\n"             # offsets mixed ...
        b"FFF,2024-03-07T09:30:00-05:00,10,11,9,10.5,1000\n"             # ... in one column
        b"G\xff\xfeG,2024-03-07,10,11,9,10.5,1000\n"                     # not UTF-8
        b"BBB,2024-03-07,10,11,9,10.5,1000\n")
    r = _cli(db_url, t, "ingest", "files", str(f))
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    after = _rows(t, BARS_SQL)
    new = sorted(set(after) - set(before))
    assert set(before) <= set(after)
    assert [(s, d.isoformat()) for s, d, *_ in new] == [
        ("AAA", "2024-03-07"), ("BBB", "2024-03-07"), ("EEE", "2024-03-07"),
        ("FFF", "2024-03-07")]
    run = _rows(t, "SELECT status, rows_read, rows_inserted, rows_rejected, rejects_by_reason "
                   "FROM ingest_runs ORDER BY run_id DESC LIMIT 1")[0]
    assert run[:4] == ("ok", 9, 4, 5)
    assert run[4] == {"invalid symbol": 3, "ragged CSV line (4 fields, 7 expected)": 1,
                      "ragged CSV line (8 fields, 7 expected)": 1}
    rows = [r[0] for r in _rows(t, "SELECT row::text FROM ingest_rejects "
                                   "WHERE reason = 'invalid symbol'")]
    assert any("A\u2400A" in x for x in rows)
    assert any("(20,000 characters)" in x and len(x) < 2000 for x in rows)
    assert _one(t, "SELECT count(*) FROM symbols WHERE length(symbol) > 32") == 0


def test_mixed_time_zones_in_ts_column(fresh_target, tmp_path):
    t = fresh_target
    f = tmp_path / "mixed_ts.csv"
    f.write_text("symbol,ts,open,high,low,close,volume\n"
                 "AAA,2024-03-04 14:30:00,10,11,9,10,5\n"            # naive: UTC
                 "AAA,2024-03-04T09:35:00-05:00,10,11,9,10,5\n"
                 "AAA,2024-03-04T15:40:00+01:00,10,11,9,10,5\n"
                 "AAA,2024-03-04T14:45:00Z,10,11,9,10,5\n"
                 "AAA,not a time,10,11,9,10,5\n")
    rep = ingest_files(t, f)[0]
    assert (rep.rows_inserted, rep.rows_rejected) == (4, 1)
    assert rep.rejects_by_reason == {"unparseable timestamp": 1}
    assert [r[0].strftime("%H:%M") for r in _rows(
        t, "SELECT ts AT TIME ZONE 'UTC' FROM bars_intraday ORDER BY 1")] == \
        ["14:30", "14:35", "14:40", "14:45"]


# ----------------------------------------------------------------------------- item 4
def _unreadable(tmp_path) -> dict[str, object]:
    good = tmp_path / "good.parquet"
    _bars(pd.to_datetime(["2024-03-07"])).to_parquet(good)
    raw = good.read_bytes()
    files = {
        "empty.csv": b"",
        "empty.parquet": b"",
        "junk.csv": os.urandom(4096),
        "junk.parquet": os.urandom(4096),
        "truncated.parquet": raw[: len(raw) // 2],
        "corrupt.csv.gz": gzip.compress(b"symbol,date,open,high,low,close,volume\n"
                                        b"AAA,2024-03-07,10,11,9,10.5,1000\n" * 50)[:60],
    }
    out = {}
    for name, data in files.items():
        p = tmp_path / name
        p.write_bytes(data)
        out[name] = p
    out["missing.parquet"] = tmp_path / "missing.parquet"
    return out


def test_unreadable_files_are_one_line_errors_and_failed_runs(db_url, fresh_target, tmp_path):
    t = fresh_target
    before = _base(t, tmp_path)
    runs_before = _one(t, "SELECT count(*) FROM ingest_runs")
    files = _unreadable(tmp_path)
    for name, p in files.items():
        r = _cli(db_url, t, "ingest", "files", str(p))
        assert r.returncode != 0, (name, r.stdout)
        assert "Traceback" not in r.stderr + r.stdout, (name, r.stderr)
        err = " ".join(r.stderr.split())
        assert err.startswith("error:") and name in err, (name, r.stderr)
        last = _rows(t, "SELECT status, path, error FROM ingest_runs "
                        "ORDER BY run_id DESC LIMIT 1")[0]
        assert last[0] == "failed" and name in last[1] and name in last[2], (name, last)
    assert _one(t, "SELECT count(*) FROM ingest_runs") == runs_before + len(files)
    assert _rows(t, BARS_SQL) == before
    assert _one(t, "SELECT count(*) FROM ingest_rejects") == 0


def test_dead_database_is_a_one_line_error(db_url, fresh_target):
    r = _cli(db_url, fresh_target, "scan", timeout=120,
             TECHNIC_DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1:1/technic")
    assert r.returncode != 0
    assert "Traceback" not in r.stderr + r.stdout
    assert r.stderr.strip().startswith("error:")


@pytest.fixture()
def scan_target(fresh_target, tmp_path):
    """A small store with features: 30 synthetic symbols (renamed to ticker shape, so the
    default filter keeps them), 300 sessions."""
    from technic.jobs.refresh import refresh_features
    from technic.providers.synthetic import generate_bars

    bars, uni = generate_bars(30, 300, seed=11)
    names = {s: f"S{chr(65 + i // 26)}{chr(65 + i % 26)}"
             for i, s in enumerate(uni["symbol"])}
    d = tmp_path / "synthetic"
    d.mkdir()
    bars.assign(symbol=bars["symbol"].map(names)).to_parquet(d / "bars_daily.parquet")
    uni.assign(symbol=uni["symbol"].map(names)).to_parquet(d / "universe.parquet")
    ingest_files(fresh_target, d)
    refresh_features(fresh_target, lookback_bars=300, chunk_size=100)
    return fresh_target


def _backend_waiting_on(db_url: str, relation: str, timeout: float = 60) -> int:
    """pid of the backend of the test database waiting for a lock on ``relation``."""
    deadline = time.time() + timeout
    with psycopg.connect(libpq_uri(db_url), autocommit=True) as c:
        while time.time() < deadline:
            row = c.execute(
                "SELECT l.pid FROM pg_locks l JOIN pg_class r ON r.oid = l.relation "
                "WHERE NOT l.granted AND r.relname = %s LIMIT 1", (relation,)).fetchone()
            if row:
                return row[0]
            time.sleep(0.2)
    raise AssertionError(f"no backend waited on {relation}")


def test_connection_lost_mid_scan_is_a_one_line_error(db_url, scan_target):
    """The scan's backend is terminated (pg_terminate_backend) while it waits for a lock:
    one line, exit 1, the run marked failed, no results stored."""
    t = scan_target
    results_before = _one(t, "SELECT count(*) FROM scan_results")
    locker = psycopg.connect(libpq_uri(db_url))
    try:
        locker.execute(f'LOCK TABLE "{t.schema}".features_daily IN ACCESS EXCLUSIVE MODE')
        proc = subprocess.Popen([sys.executable, "-m", "technic.cli", "scan"],
                                env=cli_env(db_url, t.schema), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        pid = _backend_waiting_on(db_url, "features_daily")
        with psycopg.connect(libpq_uri(db_url), autocommit=True) as c:
            assert c.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]
    finally:
        locker.rollback()
        locker.close()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, (out, err)
    assert "Traceback" not in out + err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines[-2].startswith("error: database connection failed or was lost"), err
    assert "terminating connection" in lines[-2]
    assert _rows(t, "SELECT status FROM scan_runs ORDER BY run_id DESC LIMIT 1") == [("failed",)]
    assert _one(t, "SELECT count(*) FROM scan_results") == results_before


# ----------------------------------------------------------------------------- item 5
def test_killed_ingest_is_marked_orphaned(db_url, fresh_target, tmp_path):
    """A real `technic ingest files` is SIGKILLed while its run is open: the row is marked
    failed ('orphaned') by the next `ingest status`, which shows it; nothing was stored."""
    t = fresh_target
    before = _base(t, tmp_path)
    f = tmp_path / "next.parquet"
    _bars(pd.to_datetime(["2024-03-07"])).to_parquet(f)
    locker = psycopg.connect(libpq_uri(db_url))
    try:
        locker.execute(f'LOCK TABLE "{t.schema}".symbols IN ACCESS EXCLUSIVE MODE')
        proc = subprocess.Popen([sys.executable, "-m", "technic.cli", "ingest", "files",
                                 str(f)], env=cli_env(db_url, t.schema),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _backend_waiting_on(db_url, "symbols")
        running = _rows(t, "SELECT run_id FROM ingest_runs WHERE status = 'running'")
        assert len(running) == 1
        run_id = running[0][0]
        # alive: a sweep leaves it alone
        from technic.store.runs import mark_orphans
        assert mark_orphans(t) == []
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        locker.rollback()
        locker.close()
    deadline = time.time() + 30
    while True:  # the server ends the dead client's sessions (and frees the run lock)
        r = _cli(db_url, t, "ingest", "status", "--json")
        assert r.returncode == 0, r.stderr
        import json
        st = json.loads(r.stdout)
        if any(x["run_id"] == run_id for x in st["failed_runs"]) or time.time() > deadline:
            break
        time.sleep(0.5)
    failed = {x["run_id"]: x["error"] for x in st["failed_runs"]}
    assert failed.get(run_id, "").startswith("orphaned: process died")
    assert st["running_runs"] == []
    assert _rows(t, f"SELECT status FROM ingest_runs WHERE run_id = {run_id}") == [("failed",)]
    assert _rows(t, BARS_SQL) == before
    text = _cli(db_url, t, "ingest", "status")
    assert f"failed run {run_id}" in text.stdout and "orphaned" in text.stdout


def test_killed_scan_run_is_marked_orphaned(db_url, fresh_target):
    t = fresh_target
    code = ("import sys, time\n"
            "from technic.store.db import DatabaseTarget\n"
            "from technic.store.results import start_scan_run\n"
            f"t = DatabaseTarget(url={db_url!r}, schema={t.schema!r}, origin='test')\n"
            "print(start_scan_run(t, {}), flush=True)\n"
            "time.sleep(300)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    run_id = int(proc.stdout.readline())
    from technic.store.runs import mark_orphans
    assert mark_orphans(t, "scan_runs") == []
    assert _rows(t, "SELECT status FROM scan_runs") == [("running",)]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    deadline = time.time() + 30
    while not mark_orphans(t, "scan_runs") and time.time() < deadline:
        time.sleep(0.3)
    assert _rows(t, f"SELECT status, error LIKE 'orphaned:%' FROM scan_runs "
                    f"WHERE run_id = {run_id}") == [("failed", True)]


# ----------------------------------------------------------------------------- item 7
def test_only_default_scans_feed_latest_scan_results(db_url, scan_target):
    t = scan_target
    r = _cli(db_url, t, "scan", "--json", "--min-price", "0", "--min-dollar-volume", "0",
             "--preset", "all")
    assert r.returncode == 0, r.stderr
    r = _cli(db_url, t, "scan", "--json")
    assert r.returncode == 0, r.stderr
    import json
    default_run = json.loads(r.stdout)["run_id"]
    latest = _rows(t, "SELECT symbol, rank FROM latest_scan_results ORDER BY rank")
    assert len(latest) > 5
    sector = _one(t, "SELECT sector FROM symbols WHERE sector IS NOT NULL ORDER BY 1 LIMIT 1")
    # a sector scan is stored but does not replace what analysts read
    r = _cli(db_url, t, "scan", "--json", "--sector", sector)
    assert r.returncode == 0, r.stderr
    custom = json.loads(r.stdout)["run_id"]
    assert _rows(t, f"SELECT preset FROM scan_runs WHERE run_id = {custom}") == [(None,)]
    assert _rows(t, "SELECT symbol, rank FROM latest_scan_results ORDER BY rank") == latest
    assert _one(t, "SELECT DISTINCT run_id FROM latest_scan_results") == default_run
    by = dict(_rows(t, "SELECT DISTINCT preset, run_id FROM latest_scan_results_by_preset"))
    assert by["default"] == default_run and set(by) == {"default", "all"}
    # a misspelt sector: one line listing the valid ones, exit 2, nothing stored
    runs = _one(t, "SELECT count(*) FROM scan_runs")
    r = _cli(db_url, t, "scan", "--sector", "Tecnology")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "unknown sector(s) 'Tecnology'" in r.stderr and sector in r.stderr
    # 'default' is reserved for the default filters
    r = _cli(db_url, t, "scan", "--preset", "default", "--min-price", "1")
    assert r.returncode == 2 and "is the default filter only" in " ".join(r.stderr.split())
    assert _one(t, "SELECT count(*) FROM scan_runs") == runs


def test_unexpected_error_is_one_line_unless_debug(db_url, fresh_target, tmp_path):
    """An error no command handles (here: a directory given as the splits file) is one line
    and exit 1; --debug or TECHNIC_DEBUG=1 shows the traceback."""
    t = fresh_target
    d = tmp_path / "splits.csv"
    d.mkdir()
    r = _cli(db_url, t, "ingest", "splits", str(d))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith("error: IsADirectoryError") and "--debug" in r.stderr
    for args, env in ((("--debug",), {}), ((), {"TECHNIC_DEBUG": "1"})):
        r = _cli(db_url, t, *args, "ingest", "splits", str(d), **env)
        assert r.returncode == 1 and "Traceback" in r.stderr and "IsADirectoryError" in r.stderr
    assert _one(t, "SELECT count(*) FROM ingest_runs") == 0
