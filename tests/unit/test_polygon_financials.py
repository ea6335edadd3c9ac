"""PolygonClient.financials against a local HTTP server (pytest-httpserver) replaying the
documented shape of ``GET /vX/reference/financials`` (https://polygon.io/docs/rest/stocks/
fundamentals/financials): ``status``, ``request_id``, ``count``, ``next_url``, ``results`` of
filings with ``cik``, ``company_name``, ``start_date``, ``end_date``, ``filing_date``,
``fiscal_period``, ``fiscal_year``, ``timeframe``, ``tickers`` and ``financials`` →
``balance_sheet`` / ``income_statement`` / ``cash_flow_statement`` / ``comprehensive_income``
→ ``{label, order, unit, value}``. Values are Apple's 10-Qs of fiscal 2024 (SEC filings).
Nothing reaches the internet; nothing really sleeps.
"""

from __future__ import annotations

import pandas as pd
import pytest

from technic.providers.polygon import FINANCIALS_COLUMNS, PolygonClient, PolygonPayloadError
from technic.validation import validate_fundamentals

KEY = "pk_TEST_5ecr3t_Key_0123456789"
PATH = "/vX/reference/financials"


def item(label: str, value: float, unit: str = "USD", order: int = 100) -> dict:
    return {"label": label, "order": order, "unit": unit, "value": value}


def filing(end: str, start: str, filed: str | None, period: str, year: str, *, revenue: float,
           net_income: float, assets: float, equity: float, shares: float,
           ocf: float) -> dict:
    r = {
        "cik": "0000320193", "company_name": "Apple Inc.", "start_date": start,
        "end_date": end, "fiscal_period": period, "fiscal_year": year,
        "timeframe": "quarterly", "tickers": ["AAPL"], "sic": "3571",
        "source_filing_url": "https://api.polygon.io/v1/reference/sec/filings/0000320193-24-000069",
        "source_filing_file_url": "https://api.polygon.io/v1/reference/sec/filings/"
                                  "0000320193-24-000069/files/aapl-20240330_htm.xml",
        "financials": {
            "balance_sheet": {
                "assets": item("Assets", assets),
                "equity": item("Equity", equity, order=1400),
                "equity_attributable_to_parent": item("Equity Attributable To Parent", equity),
                "liabilities": item("Liabilities", assets - equity, order=200),
            },
            "income_statement": {
                "revenues": item("Revenues", revenue, order=100),
                "net_income_loss": item("Net Income/Loss", net_income, order=3200),
                "net_income_loss_attributable_to_parent": item(
                    "Net Income/Loss Attributable To Parent", net_income, order=3500),
                "diluted_average_shares": item("Diluted Average Shares", shares, "shares",
                                               4500),
                "diluted_earnings_per_share": item("Diluted Earnings Per Share",
                                                   round(net_income / shares, 2), "USD / shares"),
            },
            "cash_flow_statement": {
                "net_cash_flow_from_operating_activities": item(
                    "Net Cash Flow From Operating Activities", ocf, order=100),
                "net_cash_flow": item("Net Cash Flow", 1.0e9, order=1100),
            },
            "comprehensive_income": {
                "comprehensive_income_loss": item("Comprehensive Income/Loss", net_income),
            },
        },
    }
    if filed is not None:
        r["filing_date"] = filed
    return r


Q1 = filing("2023-12-30", "2023-10-01", "2024-02-02", "Q1", "2024", revenue=119_575e6,
            net_income=33_916e6, assets=353_514e6, equity=74_100e6, shares=15_576_641_000,
            ocf=39_895e6)
Q2 = filing("2024-03-30", "2023-12-31", "2024-05-03", "Q2", "2024", revenue=90_753e6,
            net_income=23_636e6, assets=337_411e6, equity=74_194e6, shares=15_464_709_000,
            ocf=22_690e6)
Q3 = filing("2024-06-29", "2024-03-31", None, "Q3", "2024", revenue=85_777e6,
            net_income=21_448e6, assets=331_612e6, equity=66_708e6, shares=15_348_175_000,
            ocf=28_858e6)


@pytest.fixture
def client(httpserver):
    c = PolygonClient(KEY, base_url=httpserver.url_for("/").rstrip("/"), max_attempts=3,
                      backoff_initial=0.0, backoff_jitter=0.0, requests_per_minute=None,
                      timeout=(2.0, 2.0), sleep=lambda s: None)
    yield c
    c.close()


def test_financials_pages_mapping_and_validation(httpserver, client):
    nxt = httpserver.url_for(PATH) + "?cursor=YWN0aXZlPXRydWUmZGF0ZT0yMDI0&apiKey=LEAKED"
    httpserver.expect_ordered_request(
        PATH, headers={"Authorization": f"Bearer {KEY}"},
        query_string={"ticker": "AAPL", "timeframe": "quarterly", "sort": "filing_date",
                      "order": "asc", "limit": "2", "filing_date.gte": "2024-01-01"},
    ).respond_with_json({"status": "OK", "request_id": "a1b2", "count": 2, "next_url": nxt,
                         "results": [Q1, Q2]})
    httpserver.expect_ordered_request(
        PATH, query_string={"cursor": "YWN0aXZlPXRydWUmZGF0ZT0yMDI0"},
    ).respond_with_json({"status": "OK", "request_id": "c3d4", "count": 1, "results": [Q3]})
    df = client.financials("AAPL", filed_from="2024-01-01", limit=2)
    httpserver.check_assertions()
    assert list(df.columns) == list(FINANCIALS_COLUMNS)
    assert df["symbol"].tolist() == ["AAPL"] * 3
    # 52/53-week quarter ends as month ends, as in the shared file
    assert df["period_end"].tolist() == [pd.Timestamp("2023-12-31"), pd.Timestamp("2024-03-31"),
                                         pd.Timestamp("2024-06-30")]
    assert df["available_date"].iloc[1] == pd.Timestamp("2024-05-03")
    assert pd.isna(df["available_date"].iloc[2])  # no filing_date: kept for the validator
    row = df.iloc[1]
    assert (row.revenue, row.net_income, row.total_assets, row.equity, row.shares_diluted) == (
        90_753e6, 23_636e6, 337_411e6, 74_194e6, 15_464_709_000)
    assert row.fiscal_year == 2024 and row.fiscal_period == "Q2"
    assert df["free_cash_flow"].isna().all()  # no capex line: never OCF passed off as FCF
    good, rej = validate_fundamentals(df, now=pd.Timestamp("2026-01-01", tz="UTC"))
    assert len(good) == 2 and rej["reason"].tolist() == ["missing value"]
    assert good["fiscal_period"].tolist() == ["Q1", "Q2"]


def test_financials_empty_and_payload_errors(httpserver, client):
    httpserver.expect_oneshot_request(PATH).respond_with_json(
        {"status": "OK", "request_id": "e1", "count": 0, "results": []})
    df = client.financials("ZZZZ")
    assert df.empty and list(df.columns) == list(FINANCIALS_COLUMNS)
    httpserver.expect_oneshot_request(PATH).respond_with_json(
        {"status": "OK", "request_id": "e2", "count": 1, "results": [{"cik": "1"}]})
    with pytest.raises(PolygonPayloadError, match="end_date"):
        client.financials("ZZZZ")


def test_financials_retries_503_then_succeeds(httpserver, client):
    httpserver.expect_ordered_request(PATH).respond_with_data("busy", status=503)
    httpserver.expect_ordered_request(PATH).respond_with_json(
        {"status": "OK", "request_id": "r", "count": 1, "results": [Q2]})
    df = client.financials("AAPL")
    assert df["revenue"].tolist() == [90_753e6]
