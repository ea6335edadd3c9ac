"""Resumable Polygon backfill into the store, against a local server (no internet)."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pandas as pd
import pytest
import sqlalchemy as sa

from technic.calendar import last_complete_session, session_close, sessions
from technic.jobs.ingest import ingest_polygon
from technic.providers.polygon import PolygonClient, PolygonError
from technic.store.db import get_engine
from tests.conftest import cli_env

KEY = "test-key-0123456789"
GROUPED = "/v2/aggs/grouped/locale/us/market/stocks"


def _body(day: str, n: int = 3) -> dict:
    t = int(pd.Timestamp(f"{day} 16:00", tz="America/New_York").timestamp() * 1000)
    rows = [{"T": f"SYM{i}", "o": 10.0 + i, "h": 11.0 + i, "l": 9.0 + i, "c": 10.5 + i,
             "v": 1000.0 * (i + 1), "t": t} for i in range(n)]
    rows.append({"T": "BAD", "o": 10.0, "h": 9.0, "l": 9.5, "c": 9.7, "v": 5, "t": t})
    return {"status": "OK", "request_id": "x", "adjusted": True, "results": rows,
            "resultsCount": len(rows), "queryCount": len(rows)}


def _client(httpserver) -> PolygonClient:
    return PolygonClient(KEY, base_url=httpserver.url_for("/").rstrip("/"), max_attempts=2,
                         requests_per_minute=None, sleep=lambda s: None, timeout=(2.0, 2.0))


def test_calendar_skips_holidays_and_half_days_close_early():
    assert sessions(dt.date(2025, 7, 1), dt.date(2025, 7, 7)) == [
        dt.date(2025, 7, 1), dt.date(2025, 7, 2), dt.date(2025, 7, 3), dt.date(2025, 7, 7)]
    assert session_close(dt.date(2025, 7, 3)) == pd.Timestamp("2025-07-03 17:00", tz="UTC")
    # before the 13:00 ET half-day close the last complete session is the day before
    assert last_complete_session(pd.Timestamp("2025-07-03 16:59", tz="UTC")) == \
        dt.date(2025, 7, 2)
    assert last_complete_session(pd.Timestamp("2025-07-05 12:00", tz="UTC")) == \
        dt.date(2025, 7, 3)


def test_interrupted_backfill_resumes_without_loss_or_duplicates(httpserver, fresh_target):
    days = ["2025-07-01", "2025-07-02", "2025-07-03", "2025-07-07"]
    for d in days[:2]:
        httpserver.expect_request(f"{GROUPED}/{d}").respond_with_json(_body(d))
    httpserver.expect_request(f"{GROUPED}/{days[2]}").respond_with_data("oops", status=500)
    with pytest.raises(PolygonError):
        ingest_polygon(fresh_target, _client(httpserver), dt.date(2025, 7, 1),
                       dt.date(2025, 7, 7))

    def q(sql):
        with get_engine(fresh_target).connect() as c:
            return c.execute(sa.text(sql)).all()

    assert q("SELECT count(*) FROM bars_daily")[0][0] == 6  # two sessions × 3 good bars
    assert q("SELECT count(*) FROM ingest_runs WHERE status = 'failed'")[0][0] == 1
    httpserver.clear()
    for d in days[2:]:
        httpserver.expect_request(f"{GROUPED}/{d}").respond_with_json(_body(d))
    reports = ingest_polygon(fresh_target, _client(httpserver), dt.date(2025, 7, 1),
                             dt.date(2025, 7, 7))
    assert [r.path[16:26] for r in reports] == days[2:]  # resumed at the failed session
    requested = [req.path for req, _ in httpserver.log]
    assert all("2025-07-04" not in p for p in requested)  # the holiday is never requested
    assert q("SELECT count(*), count(DISTINCT (symbol, date)) FROM bars_daily")[0] == (12, 12)
    assert q("SELECT count(*) FROM ingest_rejects WHERE reason = 'high < low'")[0][0] == 4
    again = ingest_polygon(fresh_target, _client(httpserver), dt.date(2025, 7, 1),
                           dt.date(2025, 7, 7))
    assert again == []  # everything already stored: nothing requested, nothing changed
    assert q("SELECT count(*) FROM bars_daily")[0][0] == 12


def test_cli_backfill_and_bad_key(httpserver, db_url, fresh_target):
    httpserver.expect_request(f"{GROUPED}/2025-07-07").respond_with_json(_body("2025-07-07"))
    env = cli_env(db_url, fresh_target.schema, TECHNIC_POLYGON_API_KEY=KEY,
                  TECHNIC_POLYGON_BASE_URL=httpserver.url_for("/").rstrip("/"),
                  TECHNIC_POLYGON_REQUESTS_PER_MINUTE="600")
    r = subprocess.run([sys.executable, "-m", "technic.cli", "ingest", "polygon", "--start",
                        "2025-07-05", "--end", "2025-07-07"], env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "1 session(s) ingested" in r.stdout and KEY not in r.stdout + r.stderr
    httpserver.clear()
    httpserver.expect_request(f"{GROUPED}/2025-07-08").respond_with_json(
        {"status": "ERROR", "error": "Unknown API Key"}, status=401)
    r = subprocess.run([sys.executable, "-m", "technic.cli", "ingest", "polygon", "--start",
                        "2025-07-08", "--end", "2025-07-08"], env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 1 and "API key" in r.stderr and KEY not in r.stderr
