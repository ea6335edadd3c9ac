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

REPO = Path(__file__).resolve().parents[1]
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
    with pytest.raises(ValueError, match=r"unknown sector\(s\) 'Tech'; known sectors: .*Tech"):
        scan(sectors=["Tech"])
    assert scan(top=1, sectors=["technology"])["results"][0]["sector"] == "Technology"

    async def keys():
        async with get_client() as c:
            return {a.key for a in await c.read_artifacts()}

    assert {"scan-top", "scan-summary"} <= asyncio.run(keys())


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
