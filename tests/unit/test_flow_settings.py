"""The flows' run forms, skip reasons, artifacts' cache summary, the project's Prefect
defaults and the settings' error message (no database)."""

from __future__ import annotations

import copy

import pandas as pd
import pytest

from flows.choices import form_schema
from flows.prefect_defaults import PREFECT_DEFAULTS, apply_prefect_defaults
from technic.calendar import should_run, skip_reason


def _ny(s: str) -> pd.Timestamp:
    return pd.Timestamp(s, tz="America/New_York")


@pytest.mark.parametrize(("job", "when", "why"), [
    ("eod", "2025-07-04 16:30", "2025-07-04 is not an NYSE session (weekend or holiday)"),
    ("eod", "2025-07-05 16:30", "2025-07-05 is not an NYSE session (weekend or holiday)"),
    ("eod", "2025-07-03 12:00", "before the 13:00 close of the 2025-07-03 session"),  # half day
    ("eod", "2025-07-03 13:00", None),
    ("eod", "2025-07-07 16:30", None),
    ("intraday", "2025-07-07 09:00", "outside the 2025-07-07 regular session (09:30-16:00)"),
    ("intraday", "2025-07-03 14:00", "outside the 2025-07-03 regular session (09:30-13:00)"),
    ("intraday", "2025-07-07 10:00", None),
    ("nightly", "2025-07-04 02:00", None),
])
def test_skip_reason_names_the_time_and_the_rule(job, when, why):
    got = skip_reason(job, _ny(when))
    if why is None:
        assert got is None and should_run(job, _ny(when))
    else:
        assert got == f"{when} America/New_York: {why}"
        assert not should_run(job, _ny(when))
    with pytest.raises(ValueError, match="tz-aware"):
        skip_reason(job, pd.Timestamp(when))


SCHEMA = {"title": "Parameters", "type": "object", "properties": {
    "top": {"default": 25, "title": "top", "type": "integer", "position": 0},
    "as_of": {"anyOf": [{"format": "date", "type": "string"}, {"type": "null"}],
              "default": None, "title": "as_of", "position": 1},
    "sectors": {"anyOf": [{"items": {"type": "string"}, "type": "array"}, {"type": "null"}],
                "default": None, "title": "sectors", "position": 2},
    "either": {"anyOf": [{"type": "integer"}, {"type": "string"}], "title": "either"},
}, "required": [], "definitions": {}}


def test_form_schema_gives_date_pickers_and_sector_choices():
    before = copy.deepcopy(SCHEMA)
    out = form_schema(SCHEMA, ["Energy", "Technology"])
    assert before == SCHEMA  # not changed in place
    props = out["properties"]
    assert props["top"] == SCHEMA["properties"]["top"]
    assert props["as_of"] == {"format": "date", "type": "string", "title": "as_of",
                              "position": 1}
    assert props["sectors"] == {"type": "array", "title": "sectors", "position": 2,
                                "uniqueItems": True,
                                "items": {"type": "string", "enum": ["Energy", "Technology"]}}
    assert props["either"] == SCHEMA["properties"]["either"]  # not a nullable: kept
    free = form_schema(SCHEMA, [])["properties"]["sectors"]  # no sectors known: free text
    assert free == {"type": "array", "items": {"type": "string"}, "title": "sectors",
                    "position": 2}
    assert form_schema(out, ["Energy", "Technology"]) == out  # idempotent


def test_the_flows_schemas_have_the_typed_parameters():
    from prefect.utilities.callables import parameter_schema

    from flows.daily_pipeline import daily_pipeline
    from flows.jobs import backfill, scan

    daily = form_schema(parameter_schema(daily_pipeline).model_dump(), ["Energy"])
    props = daily["properties"]
    assert props["as_of"]["format"] == "date" and props["force"]["type"] == "boolean"
    assert props["sectors"]["items"]["enum"] == ["Energy"]
    assert form_schema(parameter_schema(scan).model_dump(), [])["properties"]["as_of"][
        "format"] == "date"
    assert parameter_schema(backfill).model_dump()["properties"]["start"]["format"] == "date"


def test_cache_summary_is_markdown():
    from flows.jobs import cache_markdown

    md = cache_markdown({"features": "l2", "l2_state": "up", "bytes": 3 * 2**20,
                         "l1": {"hits": 0, "misses": 1, "bytes_read": 0, "bytes_written": 5,
                                "errors": 0, "rejected": 0},
                         "l2": {"hits": 1, "misses": 0, "bytes_read": 3 * 2**20,
                                "bytes_written": 0, "errors": 0, "rejected": 0},
                         "l3": {}})
    assert md.startswith("Feature frame served from **L2 (Redis, shared)**, 3.0 MiB; shared "
                         "cache (Redis): up.")
    assert "| L1 | 0 | 1 | 0.0 MiB | 0.0 MiB | 0 | 0 |" in md
    assert "| L2 | 1 | 0 | 3.0 MiB | 0.0 MiB | 0 | 0 |" in md
    assert "| L3 | 0 | 0 |" in md and "{" not in md
    assert cache_markdown({}) == "Cache: no cache information."


def test_prefect_defaults_fill_only_what_is_unset():
    env = {"PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "300"}
    added = apply_prefect_defaults(env)
    assert env["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] == "300"  # the user's wins
    assert env["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
    assert set(added) == set(PREFECT_DEFAULTS) - {"PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_"
                                                  "SECONDS"}
    # they are in force in this process (tests/conftest.py applies them before Prefect loads)
    from prefect.settings import get_current_settings

    s = get_current_settings()
    assert s.server.analytics_enabled is False
    assert s.cloud.enable_orchestration_telemetry is False
    assert s.server.ephemeral.startup_timeout_seconds >= 120


def test_a_bad_dask_workers_setting_is_a_config_error(monkeypatch):
    from technic.config import ConfigError, get_settings

    monkeypatch.setenv("TECHNIC_DASK_WORKERS", "abc")
    get_settings.cache_clear()
    try:
        with pytest.raises(ConfigError, match=r"^invalid setting TECHNIC_DASK_WORKERS='abc': "
                                              r"Input should be a valid integer"):
            get_settings()
        monkeypatch.setenv("TECHNIC_DASK_WORKERS", "2")
        monkeypatch.setenv("TECHNIC_CACHE_L1_MB", "0")
        get_settings.cache_clear()
        with pytest.raises(ConfigError, match="TECHNIC_CACHE_L1_MB='0': Input should be "
                                              "greater than or equal to 1"):
            get_settings()
    finally:
        get_settings.cache_clear()
