"""The CLI on Dask: the dashboard link of a full refresh, and a bad Dask setting's error."""

from __future__ import annotations

import subprocess
import sys

import pyarrow.parquet as pq

from technic.jobs.ingest import ingest_files
from tests.conftest import BUNDLED, cli_env

SYMBOLS = ["AAPL", "JPM", "KO", "MSFT", "XOM"]


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "technic.cli", *args], env=env,
                          capture_output=True, text=True, timeout=300)


def test_a_full_refresh_on_dask_prints_the_dashboard_link(db_url, fresh_target, tmp_path):
    for name in ("bars_daily.parquet", "universe.parquet"):  # five symbols of the bundled data
        table = pq.read_table(BUNDLED / name, filters=[("symbol", "in", SYMBOLS)])
        pq.write_table(table, tmp_path / name)
    ingest_files(fresh_target, tmp_path)
    env = cli_env(db_url, fresh_target.schema, TECHNIC_DASK_WORKERS="1")
    r = _cli(env, "features", "refresh", "--full")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Dask dashboard: http://127.0.0.1:" in r.stderr and "/status" in r.stderr
    assert "features for 2025-07-09: 5 symbols" in r.stdout
    # (that the link answers 200: tests/e2e/test_pipeline.py::test_dask_path_equals_single_process)


def test_a_bad_dask_workers_setting_is_a_config_error_not_a_database_one(db_url):
    r = _cli(cli_env(db_url, "unused", TECHNIC_DASK_WORKERS="abc"), "db", "info")
    assert r.returncode == 2  # a bad setting is a usage error, like a bad option
    assert r.stderr.strip() == ("error: invalid setting TECHNIC_DASK_WORKERS='abc': Input "
                                "should be a valid integer, unable to parse string as an "
                                "integer (fix or unset it)")
