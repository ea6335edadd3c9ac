"""The web page of ``technic serve`` in headless Chromium (playwright driving the system
browser): the scan table and a symbol page render their data, charts draw, no console errors,
and a scan started from the page shows its progress. Screenshots (PNG) go to the test's
temporary folder, or to docs/img with ``TECHNIC_WRITE_SCREENSHOTS=1`` (how the committed
ones were made)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx
import pytest

from tests.e2e.http.conftest import API_KEY, REPO

CHROMIUM = os.environ.get("TECHNIC_CHROMIUM") or shutil.which("chromium") \
    or shutil.which("chromium-browser")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine "
                                                         "(/usr/bin/chromium)")


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture()
def page(browser):
    """A page that records console errors and uncaught exceptions in ``page.errors``."""
    p = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    p.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    p.on("pageerror", lambda e: errors.append(str(e)))
    p.errors = errors
    yield p
    p.close()


def reloaded(page, action) -> None:
    """Do ``action`` and wait until the table has been fetched and drawn again."""
    n = int(page.get_attribute("body", "data-loads") or 0)
    action()
    page.wait_for_function(f"Number(document.body.dataset.loads || 0) > {n}")


def shot_dir(tmp_path: Path) -> Path:
    return REPO / "docs" / "img" if os.environ.get("TECHNIC_WRITE_SCREENSHOTS") else tmp_path


def test_table_page(api_server, page, tmp_path):
    s = api_server
    latest = httpx.get(f"{s.url}/v1/scans/latest", params={"limit": 100}).json()
    page.goto(f"{s.url}/")
    page.wait_for_function("document.body.dataset.loads >= 1")
    rows = page.locator("#results tbody tr")
    assert rows.count() == 100
    first = rows.nth(0).locator("td")
    assert first.nth(0).inner_text() == "1"
    assert first.nth(1).inner_text() == latest["results"][0]["symbol"]
    headers = page.locator("#results thead th").all_inner_texts()
    assert headers[:6] == ["#", "Symbol", "Sector", "Close", "ICS (rank)", "TechRating"]
    assert f"passed {latest['run']['counts']['passed']}" in page.inner_text("#run-counts")
    assert "filter_score_rank" in page.inner_text("#run-timings")
    assert f"of {latest['total']}" in page.inner_text("#shown")
    out = shot_dir(tmp_path) / "web-table.png"
    page.screenshot(path=str(out))
    assert out.stat().st_size > 10_000

    # sort by close (high to low) on the server
    reloaded(page, lambda: page.click("#results thead th[data-col=close]"))
    assert page.locator("#results thead th.sorted.desc[data-col=close]").count() == 1
    closes = [float(t.replace(",", "")) for t in
              page.locator("#results tbody tr td:nth-child(4)").all_inner_texts()]
    assert closes == sorted(closes, reverse=True) and len(closes) == 100
    # filter by sector and price
    sector = latest["sectors"][-1]
    page.select_option("#f-sector", sector)
    page.fill("#f-min-price", "20")
    reloaded(page, lambda: page.click("#filters button[type=submit]"))
    sectors = set(page.locator("#results tbody tr td:nth-child(3)").all_inner_texts())
    prices = [float(t.replace(",", "")) for t in
              page.locator("#results tbody tr td:nth-child(4)").all_inner_texts()]
    assert sectors == {sector} and min(prices) >= 20
    assert page.errors == []
    # a where filter (the screen language), on top of sector and price
    page.fill("#f-where", "rsi_14 < 50")
    reloaded(page, lambda: page.click("#filters button[type=submit]"))
    rsi = [float(t) for t in page.locator("#results tbody tr td:nth-child(14)").all_inner_texts()]
    exp = httpx.get(f"{s.url}/v1/scans/latest", params={
        "where": "rsi_14 < 50", "sector": sector, "min_price": 20, "limit": 1000}).json()
    assert len(rsi) == min(100, exp["total"]) and max(rsi, default=0) <= 50  # shown rounded
    assert "where=rsi_14" in page.url and page.errors == []
    page.fill("#f-where", "rsi_14 < 50; drop table symbols")
    reloaded(page, lambda: page.click("#filters button[type=submit]"))
    assert page.inner_text("#f-error").startswith("where: unexpected character ';'")


def test_symbol_page(api_server, page, tmp_path):
    s = api_server
    top = httpx.get(f"{s.url}/v1/scans/latest", params={"limit": 1}).json()["results"][0]
    page.goto(f"{s.url}/symbol/{top['symbol']}")
    page.wait_for_selector("#chart svg.main-svg")
    page.wait_for_selector("#history svg.main-svg")
    assert top["symbol"] in page.inner_text("#title")
    assert "rank 1 of" in page.inner_text("#facts")
    # candlesticks; SMA 20, SMA 50, the two bands and RSI (lines); volume (bars)
    assert page.locator("#chart .trace.boxes").count() >= 1  # plotly's candlestick layer
    assert page.locator("#chart .scatterlayer .trace").count() == 5
    assert page.locator("#chart .barlayer .trace").count() == 1
    legend = page.locator("#chart .legendtext").all_text_contents()
    assert {"SMA 20", "SMA 50", "BB upper", "BB lower", "RSI 14", "Volume"} <= set(legend)
    assert page.locator("#features tbody tr").count() >= 10
    out = shot_dir(tmp_path) / "web-symbol.png"
    page.screenshot(path=str(out), full_page=True)
    assert out.stat().st_size > 10_000
    assert page.errors == []


def test_scan_started_from_the_page_shows_progress(api_server, page):
    s = api_server
    page.goto(f"{s.url}/")
    page.wait_for_selector("#results tbody tr")
    page.fill("#s-key", API_KEY)
    page.fill("#s-min-price", "50")
    page.click("#s-run")
    page.wait_for_selector("#s-progress:not([hidden])")
    page.wait_for_function("document.querySelector('#s-status').textContent.includes('done')",
                           timeout=120_000)
    status = page.inner_text("#s-status")
    run_id = int(status.split()[1])
    page.wait_for_function(f"document.querySelector('#title').textContent"
                           f".startsWith('run {run_id} ')")
    prices = [float(t.replace(",", "")) for t in
              page.locator("#results tbody tr td:nth-child(4)").all_inner_texts()]
    assert prices and min(prices) >= 50
    # a wrong key is refused on the page, in one line
    page.fill("#s-key", "wrong")
    page.click("#s-run")
    page.wait_for_selector("#s-status.error")
    assert "X-API-Key" in page.inner_text("#s-status")
    # the browser's console shows the refused request (401) and nothing else
    assert all("401" in e for e in page.errors), page.errors


def test_openapi_docs_render_offline(api_server, page):
    """Swagger UI at /docs draws every endpoint with assets from this server only."""
    s = api_server
    foreign: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(s.url) or r.url.startswith("data:")
            else foreign.append(r.url))
    page.goto(f"{s.url}/docs")
    page.wait_for_selector(".opblock-summary-path")
    paths = set(page.locator(".opblock-summary-path").all_text_contents())
    assert {"/v1/health", "/v1/scans", "/v1/scans/latest", "/v1/scans/{run_id}",
            "/v1/scans/{run_id}/events", "/v1/symbols/{symbol}"} <= {p.strip() for p in paths}
    assert foreign == [] and page.errors == []
