"""``technic options snapshot`` and ``technic options metrics`` end to end: a Polygon chain
from a local replay server into ``option_chains`` (Polygon's greeks kept, missing ones
computed) and ``option_metrics`` (real PostgreSQL)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import sqlalchemy as sa

from technic.options.bs import bsm_greeks
from technic.store.db import get_engine
from tests.conftest import cli_env
from tests.unit.test_polygon_options import KEY, PATH, _contract


def _cli(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "technic.cli", *args], env=env,
                          capture_output=True, text=True, timeout=120)


def test_snapshot_then_metrics(httpserver, db_url, fresh_target):
    chain = [_contract(kind, k) for k in (285.0, 290.0, 295.0) for kind in ("call", "put")]
    bare = _contract("call", 300.0)
    del bare["greeks"]  # Polygon leaves greeks out for some contracts: computed at ingest
    chain.append(bare)
    httpserver.expect_request(PATH).respond_with_json(
        {"status": "OK", "request_id": "e2e", "results": chain})
    env = cli_env(db_url, fresh_target.schema, TECHNIC_POLYGON_API_KEY=KEY,
                  TECHNIC_POLYGON_BASE_URL=httpserver.url_for("/").rstrip("/"))
    r = _cli(["options", "snapshot", "aapl", "--session", "2026-06-12"], env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "option chain snapshots" in r.stdout
    with get_engine(fresh_target).connect() as c:
        assert c.execute(sa.text("SELECT count(*), min(source) FROM option_chains")).one() \
            == (7, "polygon")
        greeks = c.execute(sa.text("SELECT strike, delta, gamma, theta, vega FROM "
                                   "option_chains ORDER BY strike, option_type")).all()
        m = c.execute(sa.text("SELECT date::text, underlying, n_contracts, atm_iv_30d "
                              "FROM option_metrics")).one()
    assert m[:3] == ("2026-06-12", "AAPL", 7)
    assert {g[2:] for g in greeks[:6]} == {(0.02, -0.11, 0.35)}  # Polygon's, kept
    want = bsm_greeks(*(np.array([v]) for v in (291.13, 300.0, 35 / 365, 0.2335)),
                      np.array([False]))
    assert greeks[6] == (300.0, *(pytest.approx(want[g][0], abs=1e-12) for g in
                                  ("delta", "gamma", "theta", "vega")))
    assert abs(m[3] - 0.2335) < 1e-9  # every contract quotes IV 0.2335 (flat extrapolation)
    r = _cli(["options", "metrics"], env)
    assert r.returncode == 0 and "1 (session, underlying) row(s) written" in r.stdout, r.stderr


def test_snapshot_without_a_key_is_one_line_exit_2(db_url, fresh_target):
    env = cli_env(db_url, fresh_target.schema, TECHNIC_POLYGON_API_KEY="")
    r = _cli(["options", "snapshot", "AAPL"], env)
    assert r.returncode == 2 and "no Polygon API key" in r.stderr, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
