"""``technic serve`` end to end: every endpoint against a running server (uvicorn subprocess,
real PostgreSQL, the demo schema): reads, paging/sorting/filters, 422 with the field and
nothing stored, API-key writes, Server-Sent Events in order, a client that disconnects."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest

from technic.jobs.scan import SUMMARY_COLUMNS
from technic.store.catalog import table_counts
from tests.conftest import cli_env
from tests.e2e.http.conftest import API_KEY, REPO

KEY = {"X-API-Key": API_KEY}


def sse(url: str, params: dict | None = None, stop_after=None,
        timeout: float = 120) -> list[tuple[str, dict]]:
    """The events of a stream as ``(event, data)``; ``stop_after(event, data)``: disconnect
    after the first event it is true for."""
    out: list[tuple[str, dict]] = []
    with httpx.stream("GET", url, params=params, timeout=timeout) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        event, data = None, []
        for line in r.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
            elif line == "" and event is not None:
                out.append((event, json.loads("".join(data))))
                event, data = None, []
                if stop_after is not None and stop_after(*out[-1]):
                    break  # closing the response disconnects mid-stream
    return out


def counts(target) -> dict[str, int]:
    return table_counts(target, ("scan_runs", "scan_results"))


def wait_finished(url: str, run_id: int, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = httpx.get(f"{url}/v1/scans/{run_id}", params={"limit": 1}).json()["run"]
        if run["status"] != "running":
            return run
        time.sleep(0.3)
    pytest.fail(f"run {run_id} still running after {timeout} s")


def all_rows(url: str, run_id: int, page: int = 400) -> list[dict]:
    rows: list[dict] = []
    while True:
        r = httpx.get(f"{url}/v1/scans/{run_id}", params={"limit": page, "offset": len(rows)})
        assert r.status_code == 200
        batch = r.json()["results"]
        rows += batch
        if len(batch) < page:
            return rows


def test_health_history_docs(api_server):
    s = api_server
    h = httpx.get(f"{s.url}/v1/health").json()
    assert h["status"] == "ok" and h["writes"] is True and h["latest_run_id"] >= s.run_id
    hist = httpx.get(f"{s.url}/v1/scans", params={"limit": 2}).json()
    assert hist["total"] >= 1 and 1 <= len(hist["runs"]) <= 2
    ids = [r["run_id"] for r in hist["runs"]]
    assert ids == sorted(ids, reverse=True)
    one = httpx.get(f"{s.url}/v1/scans", params={"status": "ok", "preset": "default"}).json()
    assert s.run_id in [r["run_id"] for r in one["runs"]]
    run = next(r for r in one["runs"] if r["run_id"] == s.run_id)
    assert run["counts"]["passed"] > 0 and "filter_score_rank" in run["timings"]
    assert httpx.get(f"{s.url}/v1/scans", params={"status": "nope"}).status_code == 422
    assert httpx.get(f"{s.url}/docs").status_code == 200
    # bound to 127.0.0.1 only (no --host): another address of this host is refused
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.2", httpx.URL(s.url).port), timeout=3).close()
    paths = httpx.get(f"{s.url}/openapi.json").json()["paths"]
    assert {"/v1/health", "/v1/scans", "/v1/scans/latest", "/v1/scans/{run_id}",
            "/v1/scans/{run_id}/events", "/v1/symbols/{symbol}"} <= set(paths)


def test_latest_and_run_pages_sort_filter_columns(api_server):
    s = api_server
    latest = httpx.get(f"{s.url}/v1/scans/latest", params={"limit": 100}).json()
    run_id = latest["run"]["run_id"]
    assert run_id >= s.run_id and latest["run"]["status"] == "ok"
    assert latest["columns"] == list(SUMMARY_COLUMNS)
    assert [r["rank"] for r in latest["results"]] == list(range(1, 101))
    assert latest["total"] == latest["run"]["counts"]["passed"]
    # the same page again (cached) is the same answer
    again = httpx.get(f"{s.url}/v1/scans/latest", params={"limit": 100})
    assert again.json() == latest
    page2 = httpx.get(f"{s.url}/v1/scans/{run_id}", params={"limit": 50, "offset": 50}).json()
    assert page2["results"] == latest["results"][50:100]

    by_close = httpx.get(f"{s.url}/v1/scans/{run_id}", params={
        "sort": "close", "order": "desc", "columns": "rank,symbol,close", "limit": 30}).json()
    closes = [r["close"] for r in by_close["results"]]
    assert closes == sorted(closes, reverse=True) and set(by_close["results"][0]) == {
        "rank", "symbol", "close"}
    sector = latest["sectors"][0]
    tech = httpx.get(f"{s.url}/v1/scans/{run_id}", params={
        "sector": sector.upper(), "min_price": 20, "limit": 1000}).json()
    assert tech["total"] == len(tech["results"]) > 0
    assert all(r["sector"] == sector and r["close"] >= 20 for r in tech["results"])
    ranks = [r["rank"] for r in tech["results"]]
    assert ranks == sorted(ranks)
    everything = all_rows(s.url, run_id)
    assert tech["total"] == sum(1 for r in everything
                                if r["sector"] == sector and r["close"] >= 20)

    for params, field in (({"columns": "rank,nope"}, "columns"), ({"sort": "drop"}, "sort"),
                          ({"limit": 0}, "limit"), ({"limit": 5000}, "limit"),
                          ({"offset": -1}, "offset"), ({"min_price": -3}, "min_price"),
                          ({"order": "up"}, "order")):
        r = httpx.get(f"{s.url}/v1/scans/{run_id}", params=params)
        assert r.status_code == 422, params
        assert r.json()["detail"][0]["loc"] == ["query", field], r.json()
    assert httpx.get(f"{s.url}/v1/scans/999999").status_code == 404
    assert httpx.get(f"{s.url}/v1/scans/latest", params={"preset": "never-run"}
                     ).status_code == 404


def test_symbol_bars_features_and_ranks(api_server):
    s = api_server
    top = httpx.get(f"{s.url}/v1/scans/latest", params={"limit": 1}).json()["results"][0]
    d = httpx.get(f"{s.url}/v1/symbols/{top['symbol'].lower()}", params={"days": 120}).json()
    assert d["symbol"] == top["symbol"] and d["reference"]["sector"] == top["sector"]
    n = len(d["bars"]["date"])
    assert n == 120 and all(len(v) == n for v in [*d["bars"].values(), *d["overlays"].values()])
    assert d["bars"]["date"] == sorted(d["bars"]["date"])
    assert d["bars"]["close"][-1] == pytest.approx(top["close"])
    assert d["features"]["date"] == d["bars"]["date"][-1]
    assert d["overlays"]["sma_20"][-1] == pytest.approx(d["features"]["sma_20"], rel=1e-9)
    assert all(0 <= x <= 100 for x in d["overlays"]["rsi_14"] if x is not None)
    last = d["ranks"][-1]
    assert last["rank"] == 1 and last["tech_rating"] == pytest.approx(top["tech_rating"])
    assert httpx.get(f"{s.url}/v1/symbols/NOSUCH").status_code == 404
    assert httpx.get(f"{s.url}/v1/symbols/bad$sym").status_code == 422
    assert httpx.get(f"{s.url}/v1/symbols/AAPL", params={"days": 0}).status_code == 422


@pytest.mark.parametrize("body,field", [
    ({"min_price": -1}, "min_price"),
    ({"min_dollar_volume": "lots"}, "min_dollar_volume"),
    ({"as_of": "yesterday"}, "as_of"),
    ({"sectors": ["Not A Sector"]}, "sectors"),
    ({"preset": "default", "min_price": 10}, "preset"),
    ({"top": 5}, "top"),
])
def test_bad_scan_parameters_are_422_naming_the_field_and_store_nothing(api_server, body,
                                                                         field):
    s = api_server
    before = counts(s.target)
    r = httpx.post(f"{s.url}/v1/scans", json=body, headers=KEY)
    assert r.status_code == 422, r.text
    assert field in [e["loc"][-1] for e in r.json()["detail"]], r.json()
    assert counts(s.target) == before


def test_writes_need_the_key(api_server):
    s = api_server
    before = counts(s.target)
    assert httpx.post(f"{s.url}/v1/scans", json={}).status_code == 401
    assert httpx.post(f"{s.url}/v1/scans", json={}, headers={"X-API-Key": "wrong"}
                      ).status_code == 401
    assert counts(s.target) == before


def test_no_configured_key_means_read_only(demo_target):
    """Without TECHNIC_API_KEY the server refuses every write (403), before validation (the
    app called in-process through httpx's ASGI transport)."""
    import asyncio

    from technic.service.app import create_app

    async def calls() -> None:
        transport = httpx.ASGITransport(app=create_app(demo_target, api_key=None))
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as c:
            assert (await c.get("/v1/health")).json()["writes"] is False
            for headers in ({}, {"X-API-Key": ""}, {"X-API-Key": "anything"}):
                r = await c.post("/v1/scans", json={"min_price": -1}, headers=headers)
                assert r.status_code == 403 and "TECHNIC_API_KEY" in r.json()["detail"]

    before = counts(demo_target)
    asyncio.run(calls())
    assert counts(demo_target) == before


def _check_stream(events: list[tuple[str, dict]], run_id: int) -> list[dict]:
    names = [e for e, _ in events]
    assert names[0] == "run" and names[-1] == "done", names
    first_result = names.index("results")
    progress = [d for e, d in events if e == "progress"]
    assert all(names[i] == "progress" for i in range(1, first_result))
    assert [p["stage"] for p in progress if p["stage"] != "queued"] == [
        "read_features", "filter_score_rank", "regime", "alpha", "write_results"]
    assert set(names[first_result:-1]) == {"results"}
    rows = [r for e, d in events if e == "results" for r in d["rows"]]
    done = events[-1][1]
    assert all(d["run_id"] == run_id for _, d in events)
    assert done["status"] == "ok" and done["results"] == len(rows) == done["counts"]["passed"]
    assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
    offsets = [d["offset"] for e, d in events if e == "results"]
    assert offsets == list(range(0, len(rows), 300))
    return rows


def test_post_scan_streams_progress_then_every_result_in_order(api_server, db_url):
    s = api_server
    r = httpx.post(f"{s.url}/v1/scans", json={}, headers=KEY)
    assert r.status_code == 202, r.text
    run_id = r.json()["run_id"]
    events = sse(f"{s.url}/v1/scans/{run_id}/events", {"chunk": 300})
    rows = _check_stream(events, run_id)
    # a default scan finished by the server is the latest at once (its caches forgot the old)
    latest = httpx.get(f"{s.url}/v1/scans/latest", params={"limit": 5}).json()
    assert latest["run"]["run_id"] == run_id and latest["results"] == rows[:5]
    # the stored run holds the same rows (HTTP pages and the store)
    assert all_rows(s.url, run_id) == rows
    # a stream of a run that is over (served from the store) says the same
    assert _check_stream(sse(f"{s.url}/v1/scans/{run_id}/events", {"chunk": 300}),
                         run_id) == rows
    # ... and so does `technic scan --json`, the CLI, on the same data
    cli = subprocess.run([sys.executable, "-m", "technic.cli", "scan", "--json", "--top",
                          "100000"], env=cli_env(db_url, s.target.schema), cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert cli.returncode == 0, cli.stderr[-2000:]
    assert json.loads(cli.stdout)["results"] == rows


def test_stream_of_a_run_made_elsewhere(api_server):
    """The fixture's scan ran in the test process: the server streams it from the store."""
    s = api_server
    rows = _check_stream(sse(f"{s.url}/v1/scans/{s.run_id}/events", {"chunk": 300}),
                         s.run_id)
    assert rows == all_rows(s.url, s.run_id)
    assert httpx.get(f"{s.url}/v1/scans/999999/events").status_code == 404


def test_stream_follows_a_run_that_another_process_is_running(api_server):
    """A run still ``running`` in the store (scanned here, in the test process, a moment
    after the stream opened): the server polls the store and streams it once it is over."""
    from technic.jobs.scan import ScanParams, run_scan, start_scan

    s = api_server
    params = ScanParams()
    run_id = start_scan(s.target, params)

    def later() -> None:
        time.sleep(1.0)
        run_scan(s.target, params, run_id=run_id)

    worker = threading.Thread(target=later)
    worker.start()
    try:
        events = sse(f"{s.url}/v1/scans/{run_id}/events", {"chunk": 300})
    finally:
        worker.join()
    assert events[0] == ("run", {"run_id": run_id, "status": "running"})
    assert _check_stream(events, run_id) == all_rows(s.url, run_id)


def test_a_client_that_disconnects_does_not_break_the_run(api_server):
    s = api_server
    ids = [httpx.post(f"{s.url}/v1/scans", json={"min_price": 10}, headers=KEY).json()["run_id"]
           for _ in range(2)]
    # gone once the scan is under way (a stage after "queued" has started)
    first = sse(f"{s.url}/v1/scans/{ids[0]}/events",
                stop_after=lambda e, d: e == "progress" and d["stage"] != "queued")
    assert first[-1][0] == "progress" and "results" not in [e for e, _ in first]
    for run_id in ids:
        run = wait_finished(s.url, run_id)
        assert run["status"] == "ok", run
        page = httpx.get(f"{s.url}/v1/scans/{run_id}", params={"limit": 1}).json()
        assert page["total"] == run["counts"]["passed"] > 0
        assert run["preset"] is None and run["params"]["rules"]["min_price"] == 10
    assert httpx.get(f"{s.url}/v1/health").json()["status"] == "ok"
    # a custom scan does not become "latest"
    assert httpx.get(f"{s.url}/v1/scans/latest", params={"limit": 1}
                     ).json()["run"]["preset"] == "default"


def test_result_pages_take_a_where_filter(api_server):
    """``where=`` filters a stored run in SQL (bound parameters): the rows equal the run's
    rows filtered by hand; fundamental factors and scores are filterable."""
    s = api_server
    everything = all_rows(s.url, s.run_id)
    text = "value_score > 70 and rsi_14 < 40"
    exp = [r for r in everything if r["value_score"] is not None and r["value_score"] > 70
           and r["rsi_14"] is not None and r["rsi_14"] < 40]
    assert len(exp) >= 3
    got = httpx.get(f"{s.url}/v1/scans/{s.run_id}", params={"where": text, "limit": 1000})
    assert got.status_code == 200, got.text
    doc = got.json()
    assert doc["total"] == len(exp) and doc["results"] == exp
    assert doc["where"] == "value_score > 70 and rsi_14 < 40"
    # with sort, columns, sector and paging; /latest takes it too
    sec = exp[0]["sector"]
    page = httpx.get(f"{s.url}/v1/scans/latest", params={
        "where": "market_cap_source = 'fundamentals' and quality_score >= 60",
        "sort": "quality_score", "order": "desc", "columns": "rank,symbol,quality_score",
        "sector": sec, "limit": 3, "offset": 1}).json()
    latest_rows = all_rows(s.url, page["run"]["run_id"])
    want = sorted((r for r in latest_rows if r["market_cap_source"] == "fundamentals"
                   and r["quality_score"] is not None and r["quality_score"] >= 60
                   and r["sector"] == sec), key=lambda r: (-r["quality_score"], r["rank"]))
    assert page["total"] == len(want) and [r["symbol"] for r in page["results"]] == [
        r["symbol"] for r in want[1:4]]
    # a quote inside a string is part of the value (bound), never SQL
    r = httpx.get(f"{s.url}/v1/scans/{s.run_id}", params={
        "where": "symbol = 'X'' OR ''1''=''1' or sector = 'a'';drop table scan_results;--'"})
    assert r.status_code == 200 and r.json()["total"] == 0


@pytest.mark.parametrize("where", [
    "close > 5; DROP TABLE scan_results",
    "rank > 0) UNION SELECT * FROM symbols --",
    "1 = 1",
    "rsi14 < 30",
    "sma_200 > 10",  # a feature the scan reads but scan_results does not store
    "sector < 'A'",
    "close > ",
])
def test_bad_or_hostile_where_is_422_naming_where(api_server, where):
    s = api_server
    before = counts(s.target)
    for url in (f"{s.url}/v1/scans/{s.run_id}", f"{s.url}/v1/scans/latest"):
        r = httpx.get(url, params={"where": where})
        assert r.status_code == 422, (where, r.text)
        detail = r.json()["detail"]
        assert detail[0]["loc"] == ["query", "where"] and "\n" not in detail[0]["msg"], detail
    r = httpx.post(f"{s.url}/v1/scans", json={"where": where}, headers=KEY)
    if where == "sma_200 > 10":  # a scan reads every feature: a valid scan filter
        assert r.status_code == 202, r.text
        wait_finished(s.url, r.json()["run_id"])
        return
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "where"], r.text
    assert counts(s.target) == before
    assert httpx.get(f"{s.url}/v1/health").status_code == 200


def test_post_scan_with_screen_fields_and_a_stored_preset(api_server):
    import technic as tc

    s = api_server
    body = {"where": "rsi_14 < 60 and value_score >= 40", "industries": [],
            "min_market_cap": 5e9, "sectors": ["Technology"]}
    r = httpx.post(f"{s.url}/v1/scans", json=body, headers=KEY)
    assert r.status_code == 202, r.text
    run = wait_finished(s.url, r.json()["run_id"])
    assert run["status"] == "ok" and run["preset"] is None  # a custom scan
    assert run["params"]["where"] == body["where"] and run["counts"]["dropped_where"] > 0
    exp = tc.scan(body["where"], sectors=["Technology"], min_market_cap=5e9,
                  target=s.target)
    rows = all_rows(s.url, run["run_id"])
    assert [x["symbol"] for x in rows] == exp.symbol.tolist() and len(rows) >= 3
    assert [x["rank"] for x in rows] == list(range(1, len(rows) + 1))

    r = httpx.post(f"{s.url}/v1/scans", json={"preset": "momentum-leaders"}, headers=KEY)
    assert r.status_code == 202, r.text
    run = wait_finished(s.url, r.json()["run_id"])
    assert run["status"] == "ok" and run["preset"] == "momentum-leaders"
    assert run["params"]["where"].startswith("ret_12_1 > 0.2")
    exp = tc.scan(preset="momentum-leaders", target=s.target).sort_values("rank")
    assert [x["symbol"] for x in all_rows(s.url, run["run_id"])] == exp.symbol.tolist()

    before = counts(s.target)
    for bad, field in (({"preset": "momentum-leaders", "min_price": 50}, "preset"),
                       ({"preset": "momentum-leaders", "where": "close > 1"}, "preset"),
                       ({"industries": ["Semiconductor"]}, "industries"),
                       ({"min_market_cap": -1}, "min_market_cap"),
                       ({"where": "x" * 2001}, "where")):
        r = httpx.post(f"{s.url}/v1/scans", json=bad, headers=KEY)
        assert r.status_code == 422, (bad, r.text)
        assert r.json()["detail"][0]["loc"][-1] == field, r.text
    assert counts(s.target) == before
