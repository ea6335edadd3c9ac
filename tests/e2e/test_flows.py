"""Schedules against the NYSE calendar, and the scan flow with its artifacts (no server)."""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
from pathlib import Path

import pandas as pd
import pytest
import yaml
from prefect.server.schemas.schedules import CronSchedule

from technic.calendar import should_run

REPO = Path(__file__).resolve().parents[2]
JOB = {"daily-pipeline": "eod", "intraday-refresh": "intraday"}


def _effective_runs(name: str, start: str, end: str) -> list[pd.Timestamp]:
    dep = next(d for d in yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"]
               if d["name"] == name)
    sched = dep["schedules"][0]
    cron = CronSchedule(cron=sched["cron"], timezone=sched["timezone"])
    times = cron.get_dates(start=pd.Timestamp(start, tz="America/New_York"),
                           end=pd.Timestamp(end, tz="America/New_York"))
    if inspect.isawaitable(times):  # Prefect's sync/async dual API
        times = asyncio.run(times)
    return [pd.Timestamp(t) for t in times if should_run(JOB[name], pd.Timestamp(t))]


def test_eod_runs_skip_the_holiday_and_follow_the_half_day():
    runs = _effective_runs("daily-pipeline", "2025-07-02", "2025-07-08")
    days = [t.tz_convert("America/New_York").date() for t in runs]
    assert days == [dt.date(2025, 7, 2), dt.date(2025, 7, 3), dt.date(2025, 7, 7)]
    assert all(t.tz_convert("America/New_York").hour == 16 for t in runs)


def test_intraday_runs_stop_at_the_half_day_close():
    runs = _effective_runs("intraday-refresh", "2025-07-03", "2025-07-05")
    ny = [t.tz_convert("America/New_York") for t in runs]
    assert ny[0].strftime("%H:%M") == "09:30" and ny[-1].strftime("%H:%M") == "13:00"
    assert {t.date() for t in ny} == {dt.date(2025, 7, 3)}  # nothing on July 4
    full = _effective_runs("intraday-refresh", "2025-07-07", "2025-07-08")
    assert len(full) == 78 and full[-1].tz_convert("America/New_York").strftime("%H:%M") \
        == "15:55"


def test_every_deployment_points_at_a_flow():
    import importlib

    for dep in yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"]:
        path, func = dep["entrypoint"].split(":")
        mod = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        assert hasattr(getattr(mod, func), "fn"), dep["name"]


def test_scan_flow_writes_artifacts_and_rejects_bad_parameters(prefect_on_demo):
    from prefect.client.orchestration import get_client

    from flows.jobs import scan

    out = scan(top=5, sectors=["Technology"])
    assert len(out["results"]) == 5 and out["counts"]["dropped_sector"] > 0
    with pytest.raises(ValueError, match="min_price"):
        scan(min_price=-1)
    from prefect.exceptions import ParameterTypeError

    with pytest.raises(ParameterTypeError, match="as_of: Input should be a valid date"):
        scan(as_of="2025-13-01")  # dates are typed: validated before the flow starts
    with pytest.raises(ValueError, match=r"unknown sector\(s\) 'Tech'; known sectors: .*Tech"):
        scan(sectors=["Tech"])
    assert scan(top=1, sectors=["technology"])["results"][0]["sector"] == "Technology"

    async def keys():
        async with get_client() as c:
            return {a.key for a in await c.read_artifacts()}

    assert {"scan-top", "scan-summary"} <= asyncio.run(keys())


def test_scan_flow_takes_a_screen_and_a_preset(prefect_on_demo, demo_target):
    """The flow's ``where``/``preset`` parameters run the same screens as the CLI: the rows
    kept are those the filter keeps, a preset's run is stored under its name, and a bad
    column or an unknown preset is a ValueError with nothing written."""
    from sqlalchemy import text

    from flows.jobs import scan
    from technic.store.db import get_engine

    out = scan(top=500, where="rsi_14 < 45 and ret_12_1 > 0")
    rows = out["results"]
    assert rows and all(r["rsi_14"] < 45 and r["ret_12_1"] > 0 for r in rows)
    assert out["counts"]["dropped_where"] > 0
    out = scan(top=5, preset="momentum-leaders")
    with get_engine(demo_target).connect() as c:
        stored = c.execute(text(f"SELECT preset FROM {demo_target.schema}.scan_runs "
                                "WHERE run_id = :r"), {"r": out["run_id"]}).scalar_one()
        n = c.execute(text(f"SELECT count(*) FROM {demo_target.schema}.scan_runs")).scalar_one()
    assert stored == "momentum-leaders"
    with pytest.raises(ValueError, match="rsi_41"):
        scan(where="rsi_41 < 30")
    with pytest.raises(ValueError, match="no-such-preset"):
        scan(preset="no-such-preset")
    with get_engine(demo_target).connect() as c:
        assert c.execute(text(f"SELECT count(*) FROM {demo_target.schema}.scan_runs")
                         ).scalar_one() == n


def test_served_deployments_match_prefect_yaml():
    from flows.serve import deployment_specs, runner_deployments

    specs = deployment_specs()
    deps = runner_deployments(list(specs), with_schedules=True)
    for dep in deps:
        spec = specs[dep.name]
        assert dep.entrypoint == spec["entrypoint"] and dep.tags == spec["tags"]
        assert dep.parameters == spec.get("parameters", {})
        assert [(s.schedule.cron, s.schedule.timezone) for s in dep.schedules] == \
            [(s["cron"], s["timezone"]) for s in spec.get("schedules", [])]
    assert runner_deployments(["scan"])[0].schedules == []
    with pytest.raises(ValueError, match="not in prefect.yaml: nope"):
        runner_deployments(["nope"])


def test_database_limit_comes_from_the_environment(monkeypatch):
    from flows.bootstrap import database_limit

    monkeypatch.delenv("TECHNIC_DB_TASK_CONCURRENCY", raising=False)
    assert database_limit() == 2
    monkeypatch.setenv("TECHNIC_DB_TASK_CONCURRENCY", "4")
    assert database_limit() == 4
    for bad in ("0", "two"):
        monkeypatch.setenv("TECHNIC_DB_TASK_CONCURRENCY", bad)
        with pytest.raises(ValueError, match="TECHNIC_DB_TASK_CONCURRENCY"):
            database_limit()


LIQUID = ["AAPL", "JPM", "KO", "MSFT", "XOM"]
SESSION = pd.Timestamp("2026-06-22")


@pytest.fixture(scope="module")
def intraday_files(tmp_path_factory):
    """The 2026 daily history before 2026-06-22 and that session's 5-minute bars of five
    liquid names, under the real file names (their source tag and price basis)."""
    import pyarrow.parquet as pq

    from tests.conftest import SHARED

    daily_path, five_path = SHARED / "bars_daily_2026.parquet", SHARED / "bars_5min.parquet"
    if not (daily_path.exists() and five_path.exists()):
        pytest.skip(f"real data not found in {SHARED} (set TECHNIC_SHARED_DATA)")
    daily = pq.read_table(daily_path, filters=[("symbol", "in", LIQUID)]).to_pandas(
        date_as_object=False)
    five = pq.read_table(five_path, filters=[("symbol", "in", LIQUID)]).to_pandas()
    five = five[five["ts"].dt.tz_convert("America/New_York").dt.normalize()
                .dt.tz_localize(None) == SESSION]
    root = tmp_path_factory.mktemp("intraday-flow")
    (root / "hist").mkdir()
    daily[daily["date"] < SESSION].to_parquet(root / "hist" / "bars_daily_2026.parquet")
    five.to_parquet(root / "bars_5min.parquet")
    return root, five


@pytest.fixture()
def prefect_on_fresh(db_url, fresh_target, monkeypatch, tmp_path):
    """Settings pointed at an empty schema, a temporary Prefect API, and task results stored
    under ``tmp_path`` (so no cached result outlives the test); yields the target."""
    from prefect.settings import PREFECT_LOCAL_STORAGE_PATH, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    from technic.config import get_settings
    from technic.store import db as dbmod

    monkeypatch.setenv("TECHNIC_DATABASE_URL", db_url)
    monkeypatch.setenv("TECHNIC_DB_SCHEMA", fresh_target.schema)
    monkeypatch.delenv("TECHNIC_REDIS_URL", raising=False)
    get_settings.cache_clear()
    dbmod._resolve.cache_clear()
    try:
        with prefect_test_harness(server_startup_timeout=120), \
                temporary_settings({PREFECT_LOCAL_STORAGE_PATH: tmp_path / "results"}):
            yield fresh_target
    finally:
        get_settings.cache_clear()
        dbmod._resolve.cache_clear()


def _scalar(target, query: str, **params):
    import sqlalchemy as sa

    from technic.store.db import get_engine

    with get_engine(target).connect() as c:
        return c.execute(sa.text(query), params).scalar()


def test_ingest_intraday_builds_the_partial_bar_that_the_intraday_scan_sees(
        prefect_on_fresh, intraday_files):
    from flows.jobs import ingest_daily, ingest_intraday, intraday_refresh

    t = prefect_on_fresh
    root, five = intraday_files
    ingest_daily(str(root / "hist" / "bars_daily_2026.parquet"), force=True)
    path = str(root / "bars_5min.parquet")
    for at, msg in (("2026-06-19T18:00:00Z", "2026-06-19 is not an NYSE session"),
                    ("2026-06-22T13:00:00Z", "not after the open"),
                    ("noon", "not an ISO 8601 time")):
        with pytest.raises(ValueError, match=msg):
            ingest_intraday(path, at=at, force=True)
    assert _scalar(t, "SELECT count(*) FROM bars_intraday") == 0  # nothing written

    out = ingest_intraday(path, at="2026-06-22T14:00:00-04:00", force=True)
    assert out["ingest"][0]["rows_inserted"] == len(five)
    assert out["partial"]["rows_inserted"] == len(LIQUID)
    assert out["partial"]["changed_to"] == "2026-06-22"
    assert _scalar(t, "SELECT count(*) FROM bars_1h") > 0  # roll-ups refreshed
    so_far = five[five["ts"] < pd.Timestamp("2026-06-22 18:00", tz="UTC")]
    assert _scalar(t, "SELECT close FROM bars_daily WHERE symbol = 'MSFT' AND date = :d",
                   d=SESSION.date()) == so_far[so_far["symbol"] == "MSFT"] \
        .sort_values("ts")["close"].iloc[-1]

    # the intraday job: same file (nothing new), the partial bar over every stored bar, scan
    res = intraday_refresh(path, top=len(LIQUID), force=True)
    assert res["as_of"] == "2026-06-22" and len(res["results"]) == len(LIQUID)
    last = five.sort_values("ts").groupby("symbol")["close"].last()
    got = {r["symbol"]: r["close"] for r in res["results"]}
    assert got == pytest.approx(last.to_dict())
    assert _scalar(t, "SELECT count(DISTINCT source) FROM bars_daily WHERE date = :d",
                   d=SESSION.date()) == 1  # all intraday-partial


def test_incremental_refresh_task_runs_on_the_worker_that_holds_the_window(
        prefect_on_fresh, intraday_files, monkeypatch):
    """With TECHNIC_DASK_ADDRESS the flows' incremental refresh runs on one long-lived worker,
    which keeps the bar window between runs (no Redis here: the window comes from its L1)."""
    from distributed import LocalCluster
    from prefect import flow

    from flows.jobs import ingest_daily, ingest_intraday, refresh_task
    from technic.config import get_settings

    @flow
    def refresh_once() -> dict:
        return refresh_task(None, False, incremental=True)

    root, _ = intraday_files
    ingest_daily(str(root / "hist" / "bars_daily_2026.parquet"), force=True)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:
        monkeypatch.setenv("TECHNIC_DASK_ADDRESS", cluster.scheduler_address)
        get_settings.cache_clear()
        first = refresh_once()
        assert first["mode"] == "rebuild" and first["ran_on"] in cluster.scheduler_info["workers"]
        ingest_intraday(str(root / "bars_5min.parquet"), force=True)  # a new session's bars
        second = refresh_once()
    assert second["as_of"] == "2026-06-22" and second["mode"] == "append"
    assert second["window_layer"] == "l1" and second["ran_on"] == first["ran_on"]


def test_feature_refresh_is_cached_until_the_bars_change(prefect_on_fresh, intraday_files):
    from prefect import flow

    from flows.jobs import ingest_daily, ingest_intraday, refresh_features_flow, refresh_task

    @flow
    def refresh_once(as_of: str | None = None) -> tuple[str, dict]:
        state = refresh_task(as_of, False, use_dask=False, return_state=True)
        return state.name, state.result()

    t = prefect_on_fresh
    root, _ = intraday_files
    ingest_daily(str(root / "hist" / "bars_daily_2026.parquet"), force=True)

    def computed_at():
        return _scalar(t, "SELECT max(computed_at) FROM features_daily")

    name, first = refresh_once()
    assert name == "Completed" and first["as_of"] == "2026-06-18"  # 06-19: Juneteenth
    assert first["symbols"] == len(LIQUID)
    stamp = computed_at()
    name, again = refresh_once()  # a re-run over the same bars: the stored result, no work
    assert name == "Cached" and again == first and computed_at() == stamp
    assert refresh_once(first["as_of"])[0] == "Completed"  # other parameters, other key
    assert refresh_once(first["as_of"])[0] == "Cached"
    stamp = computed_at()
    refresh_features_flow(use_dask=False, recompute=True)  # forced past the cache
    assert computed_at() > stamp

    ingest_intraday(str(root / "bars_5min.parquet"), force=True)  # new bars: new version
    name, after = refresh_once()
    assert name == "Completed" and after["as_of"] == "2026-06-22"
    assert refresh_once(first["as_of"])[0] == "Completed"
    assert refresh_once()[0] == "Cached"
