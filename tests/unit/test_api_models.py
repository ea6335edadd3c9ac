"""The HTTP API's request model and event framing, without a server or a database."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from pydantic import ValidationError

from technic.service.app import _sse, plotly_js
from technic.service.models import ScanRequest
from technic.universe import DEFAULT_RULES


def test_defaults_are_the_cli_defaults():
    p = ScanRequest().scan_params()
    assert p.rules == DEFAULT_RULES and p.as_of is None and p.run_preset == "default"


def test_fields_map_to_the_scan_parameters():
    p = ScanRequest(as_of="2025-07-09", min_price=10, sectors=["Technology"],
                    all_tickers=True, keep_leveraged=True, preset="tech").scan_params()
    assert p.as_of == dt.date(2025, 7, 9) and p.preset == "tech"
    assert p.rules.min_price == 10 and p.rules.sectors == ("Technology",)
    assert not p.rules.valid_tickers and not p.rules.exclude_leveraged_etfs
    assert ScanRequest(min_price=10).scan_params().run_preset is None  # a custom scan


@pytest.mark.parametrize("body,field", [
    ({"min_price": -1}, "min_price"), ({"min_price": float("nan")}, "min_price"),
    ({"min_dollar_volume": "x"}, "min_dollar_volume"), ({"as_of": "2025-13-01"}, "as_of"),
    ({"sectors": "Technology"}, "sectors"), ({"top": 5}, "top"),
    ({"keep_leveraged": "maybe"}, "keep_leveraged"),
])
def test_bad_fields_are_named(body, field):
    with pytest.raises(ValidationError) as e:
        ScanRequest(**body)
    assert field in [err["loc"][0] for err in e.value.errors()]


def test_invalid_combinations_say_which_field():
    with pytest.raises(ValueError, match="preset"):
        ScanRequest(preset="default", min_price=10).scan_params()
    with pytest.raises(ValueError, match="preset"):
        ScanRequest(preset="no spaces").scan_params()


def test_sse_frame():
    frame = _sse("results", {"run_id": 3, "rows": [{"symbol": "A\nB"}]}, 7).decode()
    lines = frame.split("\n")
    assert lines[:2] == ["event: results", "id: 7"] and frame.endswith("\n\n")
    assert lines[2].startswith("data: ") and len(lines) == 5  # one data line, then blank
    assert json.loads(lines[2][6:]) == {"run_id": 3, "rows": [{"symbol": "A\nB"}]}


def test_plotly_js_ships_with_the_package():
    js = plotly_js()
    assert js.is_file() and js.stat().st_size > 1_000_000


def test_latest_id_is_one_query_and_served_stale_while_it_refreshes(monkeypatch):
    """The latest run id cache (technic.service.app._Caches) with the store's lookup replaced by
    a counter: concurrent requests share one lookup, a stale id is answered while one
    background lookup refreshes it, and a run finished here forces a fresh lookup."""
    import asyncio
    import time

    from technic.service import app as api_app

    calls: list[str] = []
    answer = {"default": 7}

    def lookup(target, preset):
        calls.append(preset)
        time.sleep(0.05)
        return answer[preset]

    monkeypatch.setattr(api_app, "latest_run_id", lookup)
    monkeypatch.setattr(api_app, "LATEST_TTL_S", 0.2)
    caches = api_app._Caches(target=None)  # type: ignore[arg-type]

    async def scenario() -> None:
        assert await asyncio.gather(*(caches.latest_id("default") for _ in range(50))) \
            == [7] * 50
        assert len(calls) == 1
        answer["default"] = 8
        await asyncio.sleep(0.25)  # stale now
        assert await caches.latest_id("default") == 7  # answered at once, refresh started
        await asyncio.sleep(0.15)
        assert await caches.latest_id("default") == 8 and len(calls) == 2
        answer["default"] = 9
        caches.run_finished(9)
        assert await caches.latest_id("default") == 9 and len(calls) == 3

    asyncio.run(scenario())
