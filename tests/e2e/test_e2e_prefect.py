"""End to end through a real Prefect server: serve the scan deployment, trigger it over the API.

A ``prefect server start`` on a free loopback port (its own PREFECT_HOME and SQLite database in
a temporary directory) and ``python -m flows.serve scan`` (the deployment of ``prefect.yaml``,
served from a subprocess with TECHNIC_* pointed at the demo schema) run for this module. The
tests trigger runs with parameters through the API and compare what they stored with the same
scan from the CLI, read the artifacts back, check that bad parameters fail readably without
writing, that ``python -m flows.bootstrap`` creates the ``database`` concurrency limit, that
``prefect deploy --all`` registers prefect.yaml, and screenshot the UI in headless Chromium:
the artifact page, and the flow-run page (Playwright driving the system Chromium).

The ``daily-pipeline`` deployment is served too, with its schedule: a run that its schedule
creates for a holiday, or for a session when the ingest brings no new bar, ends ``Skipped``
with the reason, a run started by hand with ``force=True`` does its work, and both
deployments' run forms offer the database's sectors and a date picker (screenshot of the form
and of the skipped run).
With ``TECHNIC_UPDATE_DOCS_IMG=1`` the screenshot tests refresh the pictures in docs/img.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import requests
import yaml
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
from sqlalchemy import text

from technic.store.catalog import known_sectors
from technic.store.db import DatabaseTarget, get_engine
from tests.conftest import BUNDLED, REPO, cli_env

BIN = Path(sys.executable).parent
#: The parameters of the API-triggered scan (and the same scan on the CLI).
PARAMS = {"top": 10, "min_price": 10.0, "sectors": ["Technology", "Health Care"]}
CLI_ARGS = ["--top", "10", "--min-price", "10", "--sector", "Technology",
            "--sector", "Health Care"]


@dataclass
class PrefectServer:
    """A running ``prefect server start``."""

    url: str
    api_url: str
    home: Path
    log: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any PREFECT_* setting (no profile, API URL or home
    of the machine leaks into the subprocesses), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(extra)
    return env


def _stop(proc: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM the process group of ``proc`` (it and its children), SIGKILL if it lingers."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def _tail(path: Path, n: int = 3000) -> str:
    return path.read_text(errors="replace")[-n:] if path.exists() else "(no log)"


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory) -> PrefectServer:
    """``prefect server start`` on a free loopback port with SQLite in a temporary directory;
    waits for ``/api/health``."""
    tmp = tmp_path_factory.mktemp("prefect-server")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp / "server.log"
    env = _clean_env(
        PREFECT_HOME=str(tmp / "home"),
        PREFECT_API_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{tmp / 'prefect.db'}",
        # The UI calls this URL from the browser; its default is port 4200.
        PREFECT_UI_API_URL=f"{url}/api",
        PREFECT_SERVER_ANALYTICS_ENABLED="false")
    with log.open("wb") as out:
        proc = subprocess.Popen([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1",
                                 "--port", str(port)], env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"prefect server exited with {proc.returncode}:\n{_tail(log)}")
            try:
                if requests.get(f"{url}/api/health", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"prefect server not healthy after 120 s:\n{_tail(log)}")
            time.sleep(0.5)
        yield PrefectServer(url=url, api_url=f"{url}/api", home=tmp, log=log)
    finally:
        _stop(proc)


def _client_env(server: PrefectServer, target: DatabaseTarget, db_url: str) -> dict[str, str]:
    """Environment of a Prefect client process (runner, CLI) of this server and schema."""
    return _clean_env(**{k: v for k, v in cli_env(db_url, target.schema).items()
                         if k.startswith("TECHNIC_")},
                      PREFECT_API_URL=server.api_url,
                      PREFECT_HOME=str(server.home / "client"),
                      PREFECT_RUNNER_POLL_FREQUENCY="1")


#: The deployments served for this module (``flows.serve`` names).
SERVED = {"scan": "scan/scan", "daily-pipeline": "daily-pipeline/daily-pipeline"}


@pytest.fixture(scope="module")
def served(prefect_server, demo_target, db_url) -> dict[str, str]:
    """``python -m flows.serve scan daily-pipeline --with-schedules`` against the server,
    flow runs writing to the demo schema; yields ``{name: deployment id}`` once the server
    knows both and the runner polls."""
    log = prefect_server.home / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "flows.serve", *SERVED,
                                 "--with-schedules"], cwd=REPO,
                                env=_client_env(prefect_server, demo_target, db_url),
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        with SyncPrefectClient(prefect_server.api_url) as c:
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"flows.serve exited with {proc.returncode}:\n{_tail(log)}")
                try:
                    ids = {k: str(c.read_deployment_by_name(v).id) for k, v in SERVED.items()}
                    if "polling" in log.read_text(errors="replace"):  # the runner is up
                        break
                except Exception:  # noqa: BLE001 - not registered yet
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"deployments not served after 120 s:\n{_tail(log)}")
                time.sleep(0.5)
        yield ids
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def served_scan(served) -> str:
    """The id of the served ``scan`` deployment."""
    return served["scan"]


def _wait(api_url: str, flow_run_id: Any, timeout: float = 180) -> Any:
    """The flow run once it is in a final state."""
    with SyncPrefectClient(api_url) as c:
        fr = c.read_flow_run(flow_run_id)
        deadline = time.monotonic() + timeout
        while not (fr.state and fr.state.is_final()):
            if time.monotonic() > deadline:
                pytest.fail(f"flow run {fr.id} not finished after {timeout} s: {fr.state}")
            time.sleep(0.5)
            fr = c.read_flow_run(fr.id)
        return fr


def _run(api_url: str, deployment_id: str, parameters: dict[str, Any],
         timeout: float = 180) -> Any:
    """Create a flow run of the deployment with these parameters; wait for a final state."""
    with SyncPrefectClient(api_url) as c:
        fr = c.create_flow_run_from_deployment(deployment_id, parameters=parameters)
    return _wait(api_url, fr.id, timeout)


def _task_runs(api_url: str, flow_run_id: Any) -> dict[str, Any]:
    """The task runs of a flow run, by name (without the short key Prefect appends)."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with SyncPrefectClient(api_url) as c:
        runs = c.read_task_runs(flow_run_filter=FlowRunFilter(
            id=FlowRunFilterId(any_=[flow_run_id])))
    return {re.sub(r"-[0-9a-f]{1,3}$", "", r.name): r for r in runs}


def _artifacts(api_url: str, flow_run_id: Any) -> dict[str, Any]:
    """The keyed artifacts of a flow run, by key."""
    with SyncPrefectClient(api_url) as c:
        arts = c.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    return {a.key: a for a in arts if a.key}


def _results(target: DatabaseTarget, run_id: int) -> pd.DataFrame:
    with get_engine(target).connect() as conn:
        return pd.read_sql(text("SELECT * FROM scan_results WHERE run_id = :r ORDER BY rank"),
                           conn, params={"r": run_id}).drop(columns="run_id")


def _scan_run(target: DatabaseTarget, run_id: int) -> dict:
    with get_engine(target).connect() as conn:
        return dict(conn.execute(text("SELECT status, as_of, params, counts FROM scan_runs "
                                      "WHERE run_id = :r"), {"r": run_id}).mappings().one())


@pytest.fixture(scope="module")
def api_scan(prefect_server, served_scan) -> dict[str, Any]:
    """One scan triggered through the API with ``PARAMS``: its flow run, artifacts, run id."""
    t0 = time.perf_counter()
    fr = _run(prefect_server.api_url, served_scan, PARAMS)
    assert fr.state.is_completed(), f"{fr.state.type}: {fr.state.message}"
    arts = _artifacts(prefect_server.api_url, fr.id)
    m = re.search(r"WHERE run_id = (\d+)", arts["scan-summary"].data)
    assert m, arts["scan-summary"].data
    return {"flow_run": fr, "artifacts": arts, "run_id": int(m.group(1)),
            "seconds": time.perf_counter() - t0}


def test_bootstrap_creates_the_database_concurrency_limit(prefect_server, demo_target, db_url):
    env = _client_env(prefect_server, demo_target, db_url)
    r = subprocess.run([sys.executable, "-m", "flows.bootstrap", "--database-limit", "2"],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out | {"work_pool_created": None} == {
        "work_pool": "technic-pool", "work_pool_created": None, "tag": "database", "limit": 2}
    with SyncPrefectClient(prefect_server.api_url) as c:
        assert c.read_concurrency_limit_by_tag("database").concurrency_limit == 2
        gcl = c.read_global_concurrency_limit_by_name("tag:database")  # how Prefect 3 stores it
        assert gcl.limit == 2 and gcl.active
        assert c.read_work_pool("technic-pool").type == "process"


def test_scan_through_the_api_equals_the_cli(api_scan, demo_target, db_url):
    api_run = api_scan["run_id"]
    r = subprocess.run([str(BIN / "technic"), "scan", *CLI_ARGS, "--json"],
                       env=cli_env(db_url, demo_target.schema), capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    cli_run = json.loads(r.stdout)["run_id"]
    assert cli_run != api_run
    api_rows, cli_rows = _results(demo_target, api_run), _results(demo_target, cli_run)
    assert len(api_rows) > 10 and set(api_rows["sector"]) == {"Technology", "Health Care"}
    pd.testing.assert_frame_equal(api_rows, cli_rows, check_exact=True)
    api_meta, cli_meta = _scan_run(demo_target, api_run), _scan_run(demo_target, cli_run)
    assert api_meta["status"] == cli_meta["status"] == "ok"
    assert api_meta == cli_meta  # same resolved date, parameters and filter counts


def test_artifacts_through_the_api(api_scan, demo_target):
    arts = api_scan["artifacts"]
    assert {"scan-top", "scan-summary"} <= set(arts)
    top = arts["scan-top"]
    assert top.type == "table"
    table = json.loads(top.data) if isinstance(top.data, str) else top.data
    rows = _results(demo_target, api_scan["run_id"]).head(PARAMS["top"])
    assert [t["symbol"] for t in table] == rows["symbol"].tolist()
    assert [t["rank"] for t in table] == list(range(1, PARAMS["top"] + 1))
    assert [t["tech_rating"] for t in table] == pytest.approx(rows["tech_rating"].tolist(),
                                                               abs=0.005)  # 2 decimals
    summary = arts["scan-summary"]
    assert summary.type == "markdown"
    counts = _scan_run(demo_target, api_scan["run_id"])["counts"]
    assert f"{counts['passed']:,} of {counts['input']:,} symbols passed" in summary.data
    assert f"| sector | {counts['dropped_sector']:,} |" in summary.data
    assert "| read_features |" in summary.data and "## Cache" in summary.data
    assert "Feature frame served from **L" in summary.data and "| L1 |" in summary.data
    assert "{'" not in summary.data  # no raw Python dict
    stored = _results(demo_target, api_scan["run_id"]).head(PARAMS["top"])
    for col in ("merit", "ics", "alpha_5d", "alpha_10d", "rsi_14"):  # every score
        assert [t[col] for t in table] == pytest.approx(stored[col].tolist(), abs=0.005), col
    assert {t["regime"] for t in table} == set(stored["regime"])
    assert (f"SELECT * FROM {demo_target.schema}.scan_results WHERE run_id = "
            f"{api_scan['run_id']} ORDER BY rank;") in summary.data


def test_scan_stages_are_task_runs(prefect_server, api_scan):
    from flows.jobs import SCAN_STAGES

    tasks = _task_runs(prefect_server.api_url, api_scan["flow_run"].id)
    assert set(tasks) == set(SCAN_STAGES.values())
    assert all(t.state.is_completed() for t in tasks.values())
    order = sorted(tasks.values(), key=lambda t: t.start_time)
    assert [t.name for t in order] == list(SCAN_STAGES.values())  # in the scan's order
    assert all(a.end_time <= b.start_time for a, b in zip(order, order[1:], strict=False))


def _n_scan_runs(target: DatabaseTarget) -> int:
    with get_engine(target).connect() as conn:
        return conn.execute(text("SELECT count(*) FROM scan_runs")).scalar_one()


def test_invalid_parameters_fail_readably_and_write_nothing(prefect_server, served_scan,
                                                            api_scan, demo_target):
    from prefect.exceptions import PrefectHTTPStatusError

    before = _n_scan_runs(demo_target)
    fr = _run(prefect_server.api_url, served_scan, {"top": -1})
    assert fr.state.is_failed(), fr.state
    assert "ValueError: top must be >= 1, got -1" in fr.state.message
    assert not {"scan-top", "scan-summary"} & set(_artifacts(prefect_server.api_url, fr.id))
    # a sector outside the form's choices is refused by the server: no run at all
    with SyncPrefectClient(prefect_server.api_url) as c, \
            pytest.raises(PrefectHTTPStatusError, match=r"'Astrology' is not one of \["
                                                         r"'Basic Materials'"):
        c.create_flow_run_from_deployment(served_scan, parameters={"sectors": ["Astrology"]})
    assert _n_scan_runs(demo_target) == before


def test_run_forms_offer_sectors_and_date_pickers(prefect_server, served, demo_target):
    """The deployments' parameter schemas: the sectors of the database as an enum, dates as
    dates, ``force`` as a switch (what the UI's run form is drawn from)."""
    sectors = known_sectors(demo_target)
    assert "Technology" in sectors
    with SyncPrefectClient(prefect_server.api_url) as c:
        for name, ref in SERVED.items():
            props = c.read_deployment_by_name(ref).parameter_openapi_schema["properties"]
            assert props["sectors"]["type"] == "array", name
            assert props["sectors"]["items"] == {"type": "string", "enum": sectors}, name
            assert {k: props["as_of"][k] for k in ("type", "format")} == \
                {"type": "string", "format": "date"}, name
            assert "anyOf" not in props["as_of"] and "default" not in props["as_of"]
        daily = c.read_deployment_by_name(SERVED["daily-pipeline"])
        assert daily.parameter_openapi_schema["properties"]["force"]["type"] == "boolean"


#: 16:30 New York on Independence Day 2025: the daily-pipeline cron fires, the NYSE is shut.
HOLIDAY_FIRING = "2025-07-04T20:30:00Z"


def _scheduled_daily_run(server: PrefectServer, deployment_id: str, when: str) -> Any:
    """A daily-pipeline run created by its schedule for ``when`` (the server's
    ``/deployments/{id}/schedule``, as the scheduler service does it), finished."""
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterExpectedStartTime,
    )

    due = pd.Timestamp(when)
    for _ in range(10):  # 503: the server's SQLite was busy (its scheduler service writes too)
        r = requests.post(f"{server.api_url}/deployments/{deployment_id}/schedule", timeout=30,
                          json={"start_time": due.isoformat(),
                                "end_time": (due + pd.Timedelta(minutes=1)).isoformat(),
                                "max_runs": 1})
        if r.status_code != 503:
            break
        time.sleep(2)
    assert r.ok, r.text
    at = due.to_pydatetime()
    with SyncPrefectClient(server.api_url) as c:
        (fr,) = c.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
            flow_run_filter=FlowRunFilter(expected_start_time=FlowRunFilterExpectedStartTime(
                after_=at, before_=at)))
    return _wait(server.api_url, fr.id)


@pytest.fixture(scope="module")
def skipped_run(prefect_server, served) -> Any:
    """The daily-pipeline run its schedule created for 2025-07-04 16:30 New York."""
    return _scheduled_daily_run(prefect_server, served["daily-pipeline"], HOLIDAY_FIRING)


def test_a_scheduled_run_on_a_holiday_is_skipped_with_its_reason(prefect_server, skipped_run,
                                                                  demo_target):
    fr = skipped_run
    assert fr.auto_scheduled
    assert fr.state.type.value == "COMPLETED" and fr.state.name == "Skipped"
    assert "2025-07-04 16:30 America/New_York: 2025-07-04 is not an NYSE session" \
        in fr.state.message
    assert "force=true" in fr.state.message
    assert _task_runs(prefect_server.api_url, fr.id) == {}  # no work at all


def test_a_scheduled_run_with_no_new_bars_is_skipped_after_its_ingest(prefect_server, served,
                                                                     api_scan, demo_target):
    """2025-07-09 16:30 New York, a session: the run ingests (the bundled files, already
    stored), finds no new bar while the features and a scan of 2025-07-09 are stored, and
    ends Skipped without refreshing or scanning."""
    before = _n_scan_runs(demo_target)
    fr = _scheduled_daily_run(prefect_server, served["daily-pipeline"], "2025-07-09T20:30:00Z")
    assert fr.state.name == "Skipped", fr.state
    assert fr.state.message.startswith("Skipped (no new data): the ingest inserted or updated "
                                       "no bar; the features of 2025-07-09 and scan run ")
    assert set(_task_runs(prefect_server.api_url, fr.id)) == {"ingest"}
    assert _n_scan_runs(demo_target) == before


def test_a_manual_daily_run_with_force_does_its_work(prefect_server, served, demo_target):
    """Started by hand (as the UI's Run button does) with ``force``: ingest → refresh → scan.
    The ingest is the bundled reference file only, to keep the test short."""
    before = _n_scan_runs(demo_target)
    fr = _run(prefect_server.api_url, served["daily-pipeline"],
              {"force": True, "use_dask": False, "top": 3,
               "data_path": str(BUNDLED / "universe.parquet")}, timeout=300)
    assert fr.state.is_completed() and fr.state.name == "Completed", fr.state
    tasks = _task_runs(prefect_server.api_url, fr.id)
    assert {"ingest", "refresh-features"} <= set(tasks)
    assert all(t.state.is_completed() for t in tasks.values())
    assert _n_scan_runs(demo_target) == before + 1
    with get_engine(demo_target).connect() as conn:
        status, as_of, params = conn.execute(text(
            "SELECT status, as_of, params FROM scan_runs ORDER BY run_id DESC LIMIT 1")).one()
    assert status == "ok" and str(as_of) == "2025-07-09" and params["top"] == 3


def _chromium() -> str | None:
    for name in (os.environ.get("TECHNIC_CHROMIUM"), "chromium", "chromium-browser",
                 "google-chrome"):
        if name and (path := shutil.which(name)):
            return path
    return None


def test_ui_screenshot_shows_the_results_artifact(prefect_server, api_scan, tmp_path):
    chromium = _chromium()
    if chromium is None:
        pytest.skip("Chromium not installed (Debian: apt-get install chromium; .ci/run does)")
    top = api_scan["artifacts"]["scan-top"]
    page = f"{prefect_server.url}/artifacts/artifact/{top.id}"
    base = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,1000",
            "--virtual-time-budget=15000"]
    # The rendered page (after the UI's API calls) holds the artifact's rows ...
    dom = subprocess.run([*base, "--dump-dom", page], capture_output=True, text=True,
                         timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    table = json.loads(top.data) if isinstance(top.data, str) else top.data
    assert "scan-top" in dom.stdout and f"scan run {api_scan['run_id']}" in dom.stdout
    assert all(f">{row['symbol']}<" in dom.stdout for row in table)
    assert api_scan["flow_run"].name in dom.stdout  # and links its flow run
    # ... and this is its picture.
    png = tmp_path / "prefect-scan-artifact.png"
    shot = subprocess.run([*base, f"--screenshot={png}", page], capture_output=True, text=True,
                          timeout=120)
    assert shot.returncode == 0 and png.exists(), shot.stderr[-2000:]
    head = png.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    assert (int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")) \
        == (1400, 1000)
    assert png.stat().st_size > 20_000  # a rendered page, not a blank one
    if os.environ.get("TECHNIC_UPDATE_DOCS_IMG"):  # refresh the picture in the docs
        (REPO / "docs" / "img").mkdir(exist_ok=True)
        shutil.copy(png, REPO / "docs" / "img" / png.name)
    # The Markdown summary: counts, timings, the cache table (rendered, not a raw dict).
    page = f"{prefect_server.url}/artifacts/artifact/{api_scan['artifacts']['scan-summary'].id}"
    dom = subprocess.run([*base, "--dump-dom", page], capture_output=True, text=True,
                         timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "Feature frame served from" in dom.stdout and "<table" in dom.stdout
    assert "filter rule" in dom.stdout and "{&#39;" not in dom.stdout and "{'" not in dom.stdout
    png = tmp_path / "prefect-scan-summary.png"
    shot = subprocess.run([*base, f"--screenshot={png}", page], capture_output=True, text=True,
                          timeout=120)
    assert shot.returncode == 0 and png.exists(), shot.stderr[-2000:]
    _png_ok(png, 1400)


#: Finds the ``FlowRunGraph`` component from the app's root vnode (production Vue keeps no
#: back-reference on DOM elements) and emits ``update:selected`` with the artifact, which is
#: what the graph emits when its artifact node is clicked: the flow-run page then opens its
#: artifact drawer (``FlowRunGraphArtifactDrawer``, the artifact's data view). The node is
#: drawn on a canvas at a time-dependent position, so a mouse click cannot target it.
_SELECT_ARTIFACT_JS = """(artifactId) => {
  const find = (vnode, depth) => {
    if (!vnode || depth > 500) return null;
    const c = vnode.component;
    if (c) return c.type && c.type.__name === 'FlowRunGraph' ? c : find(c.subTree, depth + 1);
    if (vnode.suspense) return find(vnode.suspense.activeBranch, depth + 1);
    if (Array.isArray(vnode.children)) {
      for (const child of vnode.children) {
        const found = find(child, depth + 1);
        if (found) return found;
      }
    }
    return null;
  };
  const app = document.querySelector('#app');
  const graph = app && find(app._vnode, 0);
  if (!graph) return false;
  graph.emit('update:selected', {kind: 'artifact', id: artifactId});
  return true;
}"""


def test_ui_flow_run_page_shows_the_results_artifact(prefect_server, api_scan, tmp_path):
    """The flow run's own page in the UI, Artifacts tab open, with the results table.

    Playwright drives the system Chromium (no browser download). The page opens on its Logs
    tab: the test clicks Artifacts (its cards: ``scan-top``, ``scan-summary``). That tab lists
    artifacts without their data, so the test also opens the page's artifact drawer on
    ``scan-top`` (what clicking the artifact on the run graph does), which shows the table.
    """
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="playwright not installed: pip install -e '.[dev]'")
    chromium = _chromium()
    if chromium is None:
        pytest.skip("Chromium not installed (Debian: apt-get install chromium; .ci/run does)")
    fr = api_scan["flow_run"]
    top = api_scan["artifacts"]["scan-top"]
    symbols = [row["symbol"] for row in
               (json.loads(top.data) if isinstance(top.data, str) else top.data)]
    png = tmp_path / "prefect-flow-run-artifacts.png"
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True,
                                    args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.set_default_timeout(60_000)
            page.goto(f"{prefect_server.url}/runs/flow-run/{fr.id}", wait_until="networkidle")
            page.get_by_text(fr.name, exact=True).first.wait_for()  # the run, not a 404
            tabs = page.locator("[role=tablist] li.p-tab")
            tabs.filter(has_text=re.compile(r"^\s*Artifacts\s*$")).click()
            page.wait_for_url(re.compile(r"[?&]tab=Artifacts"))
            sync_api.expect(page.locator("li.p-tab.p-tab__active")).to_have_text("Artifacts")
            for key in ("scan-top", "scan-summary"):  # the tab's artifact cards
                page.get_by_text(key, exact=True).first.wait_for()
            assert page.evaluate(_SELECT_ARTIFACT_JS, str(top.id)), \
                "no FlowRunGraph component on the flow-run page (Prefect UI changed?)"
            data = page.locator(".artifact-data-view")
            for symbol in symbols:
                data.get_by_text(symbol, exact=True).first.wait_for()
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(png), full_page=True)
            body = page.inner_text("body")
        finally:
            browser.close()
    assert fr.name in body and "Artifacts" in body
    assert f"scan run {api_scan['run_id']}" in body  # the table's description
    assert all(symbol in body for symbol in symbols[:5])
    head = png.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    assert int.from_bytes(head[16:20], "big") == 1600  # full page: at least the viewport tall
    assert int.from_bytes(head[20:24], "big") >= 1000
    assert png.stat().st_size > 20_000  # a rendered page, not a blank one
    if os.environ.get("TECHNIC_UPDATE_DOCS_IMG"):  # refresh the picture in the docs
        (REPO / "docs" / "img").mkdir(exist_ok=True)
        shutil.copy(png, REPO / "docs" / "img" / png.name)


def _png_ok(png: Path, width: int) -> None:
    head = png.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    assert int.from_bytes(head[16:20], "big") == width
    assert png.stat().st_size > 20_000  # a rendered page, not a blank one
    if os.environ.get("TECHNIC_UPDATE_DOCS_IMG"):  # refresh the picture in the docs
        (REPO / "docs" / "img").mkdir(exist_ok=True)
        shutil.copy(png, REPO / "docs" / "img" / png.name)


def test_ui_run_form_and_skipped_run(prefect_server, served, skipped_run, demo_target,
                                     tmp_path):
    """The scan deployment's run form (sectors picked from the database's, a date picker)
    and the page of the skipped scheduled run (its "Skipped" badge and reason)."""
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="playwright not installed: pip install -e '.[dev]'")
    chromium = _chromium()
    if chromium is None:
        pytest.skip("Chromium not installed (Debian: apt-get install chromium; .ci/run does)")
    form_png, skip_png = tmp_path / "prefect-run-form.png", tmp_path / "prefect-skipped-run.png"
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True,
                                    args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(60_000)
            page.goto(f"{prefect_server.url}/deployments/deployment/{served['scan']}/run",
                      wait_until="networkidle")
            page.get_by_text("Select date").first.wait_for()  # as_of: the date picker
            # the sectors multi-select (industries is a free list: no choices at deploy time)
            sectors_field = page.locator(".schema-form-property-array.p-select")
            select = sectors_field.locator("button.p-select-button__control")
            select.focus()
            page.keyboard.press("Space")  # opens the multi-select (a click does not, headless)
            options = page.locator(".p-select-option")
            options.first.wait_for()
            shown = [t.strip() for t in options.all_inner_texts()]
            for sector in ("Technology", "Health Care"):
                options.filter(has_text=sector).first.click()
            page.screenshot(path=str(form_png))
            page.keyboard.press("Escape")
            chosen = sectors_field.inner_text()

            page.goto(f"{prefect_server.url}/runs/flow-run/{skipped_run.id}",
                      wait_until="networkidle")
            page.get_by_text(skipped_run.name, exact=True).first.wait_for()
            page.get_by_text("is not an NYSE session").first.wait_for()  # the reason, logged
            page.screenshot(path=str(skip_png))
            badges = page.get_by_text("Skipped", exact=True).count()  # the state badge
        finally:
            browser.close()
    sectors = known_sectors(demo_target)
    assert shown[:3] == sectors[:3] and set(shown) <= set(sectors)  # a virtual list: the top
    assert "Technology" in chosen and "Health Care" in chosen
    assert badges >= 1
    _png_ok(form_png, 1400)
    _png_ok(skip_png, 1400)


def test_prefect_yaml_deploys_to_the_server(prefect_server, demo_target, db_url):
    """``prefect deploy --all`` registers every deployment of prefect.yaml with its schedules.

    Last in this module: it re-registers ``scan/scan`` on the work pool, after the served runs.
    """
    env = _client_env(prefect_server, demo_target, db_url)
    boot = subprocess.run([sys.executable, "-m", "flows.bootstrap"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)  # the pool deploy needs
    assert boot.returncode == 0, boot.stderr
    r = subprocess.run([str(BIN / "prefect"), "--no-prompt", "deploy", "--all"], cwd=REPO,
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    specs = {d["name"]: d for d in yaml.safe_load((REPO / "prefect.yaml").read_text())
             ["deployments"]}
    with SyncPrefectClient(prefect_server.api_url) as c:
        deps = {d.name: d for d in c.read_deployments() if d.work_pool_name == "technic-pool"}
    assert set(deps) == set(specs)
    for name, spec in specs.items():
        dep = deps[name]
        assert dep.entrypoint == spec["entrypoint"]
        crons = [(s.schedule.cron, s.schedule.timezone) for s in dep.schedules]
        assert crons == [(s["cron"], s["timezone"]) for s in spec.get("schedules", [])], name
        if spec.get("concurrency_limit"):
            assert dep.global_concurrency_limit.limit == spec["concurrency_limit"], name
