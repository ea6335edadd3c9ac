"""The CLI's handling of Polygon keys end to end: a malformed key is refused before any
request, and a server that echoes a key never puts it into stderr or ``ingest_runs.error``
(real PostgreSQL, a local replay server)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import sqlalchemy as sa
from werkzeug import Request, Response

from technic.store.db import get_engine
from tests.conftest import cli_env
from tests.unit.test_polygon import BAD_KEYS, GROUPED


def _ingest_one_day(db_url: str, schema: str, key: str, httpserver) -> subprocess.CompletedProcess:
    """``technic ingest polygon`` of 2025-07-07 with ``key`` against the replay server."""
    env = cli_env(db_url, schema, TECHNIC_POLYGON_API_KEY=key,
                  TECHNIC_POLYGON_BASE_URL=httpserver.url_for("/").rstrip("/"),
                  TECHNIC_POLYGON_REQUESTS_PER_MINUTE="600")
    return subprocess.run([sys.executable, "-m", "technic.cli", "ingest", "polygon", "--start",
                           "2025-07-07", "--end", "2025-07-07"], env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("bad", [BAD_KEYS[0], BAD_KEYS[5]])
def test_cli_refuses_a_malformed_key_and_stores_nothing(bad, httpserver, db_url, fresh_target):
    r = _ingest_one_day(db_url, fresh_target.schema, bad, httpserver)
    out = r.stdout + r.stderr
    assert r.returncode == 2 and "malformed Polygon API key" in r.stderr, out
    assert "LEFT5ecr3t" not in out and "RIGHT5ecr3t" not in out
    assert "Traceback" not in out and len(r.stderr.strip().splitlines()) <= 3
    assert httpserver.log == []
    with get_engine(fresh_target).connect() as c:
        assert c.execute(sa.text("SELECT count(*) FROM ingest_runs")).scalar() == 0


def test_server_errors_never_put_the_key_in_stderr_or_ingest_runs(httpserver, db_url,
                                                                  fresh_target):
    """A well-formed key, and a server that echoes it in a 401 body: the CLI's message and
    the failed run's stored error show neither the key nor its encodings."""
    key = "pk_live/Ab+c9=="

    def echo(request: Request) -> Response:
        token = request.headers["Authorization"].removeprefix("Bearer ")
        return Response(json.dumps({"status": "NOT_AUTHORIZED",
                                    "message": f"Unknown API Key {token}"}),
                        status=401, content_type="application/json")

    httpserver.expect_request(f"{GROUPED}/2025-07-07").respond_with_handler(echo)
    r = _ingest_one_day(db_url, fresh_target.schema, key, httpserver)
    out = r.stdout + r.stderr
    assert r.returncode == 1 and "API key" in r.stderr, out
    assert "Ab+c9" not in out and "Ab%2Bc9" not in out and "Traceback" not in out
    with get_engine(fresh_target).connect() as c:
        status, error = c.execute(sa.text("SELECT status, error FROM ingest_runs")).one()
    assert status == "failed" and "HTTP 401" in error
    assert "Ab+c9" not in error and "Ab%2Bc9" not in error and "***" in error
