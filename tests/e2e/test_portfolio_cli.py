"""``technic portfolio`` / ``technic backtest`` end to end (CLI in a subprocess, the
portfolio flows in-process): JSON output, stored weights, one-line errors with exit code 2,
and the flows' artifacts."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest

from technic.jobs.scan import ScanParams, run_scan
from tests.conftest import cli_env


def _cli(db_url: str, schema: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "technic.cli", *args],
                          env=cli_env(db_url, schema), capture_output=True, text=True,
                          timeout=300)


@pytest.fixture()
def in_process_cli(db_url, demo_target, monkeypatch):
    """The CLI app invoked in this process (typer's runner) against the demo schema: the
    error paths without a subprocess's start-up."""
    from typer.testing import CliRunner

    from technic.cli import app
    from technic.config import get_settings
    from technic.store import db as dbmod

    monkeypatch.setenv("TECHNIC_DATABASE_URL", db_url)
    monkeypatch.setenv("TECHNIC_DB_SCHEMA", demo_target.schema)
    monkeypatch.setenv("COLUMNS", "200")
    get_settings.cache_clear()
    dbmod._resolve.cache_clear()
    try:
        yield lambda *args: CliRunner().invoke(app, list(args))
    finally:
        get_settings.cache_clear()
        dbmod._resolve.cache_clear()


@pytest.fixture(scope="module")
def demo_run(demo_target) -> int:
    return run_scan(demo_target, ScanParams(top=5)).run_id


def test_portfolio_cli_prints_json_and_stores_the_weights(db_url, demo_target, demo_run):
    r = _cli(db_url, demo_target.schema, "portfolio", "--run-id", str(demo_run), "--top", "12",
             "--method", "risk-parity", "--max-weight", "0.15", "--sector-cap", "0.5", "--json")
    assert r.returncode == 0, r.stderr
    o = json.loads(r.stdout)
    w = [row["weight"] for row in o["weights"]]
    assert o["run_id"] == demo_run and len(w) == 12 and o["method"] == "risk-parity"
    assert sum(w) == pytest.approx(1.0, abs=1e-9) and max(w) <= 0.15 + 1e-6


@pytest.mark.parametrize("args, msg", [
    (("portfolio", "--run-id", "{run}", "--method", "markowitz"), "unknown method 'markowitz'"),
    (("portfolio", "--run-id", "{run}", "--top", "5", "--max-weight", "0.1"),
     "caps are infeasible: with 5 names"),
    (("backtest", "--start", "2025-06-02", "--end", "2025-06-20", "--rebalance", "daily"),
     "unknown rebalance frequency 'daily'"),
    (("backtest", "--start", "2025-06-02", "--end", "2025-06-20"),
     "run `technic features backfill --start 2025-06-06 --end 2025-06-13` first"),
])
def test_bad_parameters_are_one_line_errors(in_process_cli, demo_run, args, msg):
    r = in_process_cli(*(a.format(run=demo_run) for a in args))
    assert r.exit_code == 2, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and msg in lines[0], r.stderr
    assert "Traceback" not in r.output


def test_portfolio_flow_writes_artifacts_and_rejects_bad_parameters(prefect_on_demo, demo_run):
    from prefect.client.orchestration import get_client

    from flows.portfolio import backtest, portfolio

    out = portfolio(run_id=demo_run, top=10, method="hrp", max_weight=0.2)
    assert len(out["weights"]) == 10
    assert sum(r["weight"] for r in out["weights"]) == pytest.approx(1.0, abs=1e-9)
    with pytest.raises(ValueError, match="sector-cap must be a fraction"):
        portfolio(run_id=demo_run, sector_cap=2.0)
    from prefect.exceptions import ParameterTypeError

    with pytest.raises(ParameterTypeError, match="start: Input should be a valid date"):
        backtest(start="2025-06-xx", end="2025-06-20")  # dates are typed, as in flows.jobs

    async def keys():
        async with get_client() as c:
            return {a.key for a in await c.read_artifacts()}

    assert {"portfolio-weights", "portfolio-summary"} <= asyncio.run(keys())
