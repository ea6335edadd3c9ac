"""``technic ingest files`` on a fundamentals file and ``technic ingest polygon-financials``
against a local replay server, end to end (real PostgreSQL, the CLI in a subprocess)."""

from __future__ import annotations

import subprocess
import sys

import sqlalchemy as sa

from technic.store.db import get_engine
from tests.conftest import BUNDLED, cli_env
from tests.unit.test_polygon_financials import KEY, PATH, Q1, Q2


def _run(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "technic.cli", *args], env=env,
                          capture_output=True, text=True, timeout=300)


def test_cli_ingests_fundamentals_file_then_polygon(httpserver, db_url, fresh_target):
    env = cli_env(db_url, fresh_target.schema, TECHNIC_POLYGON_API_KEY=KEY,
                  TECHNIC_POLYGON_BASE_URL=httpserver.url_for("/").rstrip("/"),
                  TECHNIC_POLYGON_REQUESTS_PER_MINUTE="600")
    r = _run(env, "ingest", "files", str(BUNDLED / "fundamentals.parquet"))
    assert r.returncode == 0, r.stderr[-2000:]
    assert "11,342" in r.stdout and "11,331" in r.stdout
    assert "row(s) rejected" in r.stdout and "public date" in r.stdout
    httpserver.expect_request(PATH).respond_with_json(
        {"status": "OK", "request_id": "x", "count": 2, "results": [Q1, Q2]})
    r = _run(env, "ingest", "polygon-financials", "AAPL", "--filed-from", "2024-01-01")
    assert r.returncode == 0, r.stderr[-2000:]
    assert httpserver.log[0][0].args["filing_date.gte"] == "2024-01-01"
    with get_engine(fresh_target).connect() as c:
        rows = c.execute(sa.text("SELECT source, count(*) FROM fundamentals GROUP BY 1 "
                                 "ORDER BY 1")).all()
    assert rows == [("files", 11_329), ("polygon", 2)]
    r = _run(env, "ingest", "polygon-financials", "AAPL", "--filed-from", "nope")
    assert r.returncode == 2 and "ISO date" in r.stderr
