"""PolygonClient against a real local HTTP server (pytest-httpserver) replaying Polygon shapes.

Bodies follow the documented response shapes of https://polygon.io/docs/rest/stocks
(``status``, ``request_id``, ``results``, ``resultsCount``/``count``, ``queryCount``,
``adjusted``, ``next_url``). Nothing here reaches the internet, and no test really sleeps:
the client gets a recording ``sleep`` and, for the rate limiter, a fake clock.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import socket
import time

import pandas as pd
import pytest
from werkzeug import Request, Response

from technic.providers.polygon import (
    API_KEY_ENV,
    BAR_COLUMNS,
    INTRADAY_BAR_COLUMNS,
    TICKER_COLUMNS,
    PolygonAuthError,
    PolygonClient,
    PolygonError,
    PolygonPayloadError,
    PolygonRateLimitError,
    _RateLimiter,
    api_key_from_env,
    map_security_type,
)

KEY = "pk_TEST_5ecr3t_Key_0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
GROUPED = "/v2/aggs/grouped/locale/us/market/stocks"


class Sleeps:
    """Recording stand-in for ``time.sleep``."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def client(httpserver, sleeps) -> PolygonClient:
    c = PolygonClient(KEY, base_url=httpserver.url_for("/").rstrip("/"), max_attempts=3,
                      backoff_initial=0.5, backoff_jitter=0.0, max_wait=10.0,
                      requests_per_minute=None, timeout=(2.0, 2.0), sleep=sleeps)
    yield c
    c.close()


def ok(results: list | None, **extra) -> dict:
    body = {"status": "OK", "request_id": "6a7e466379af0a71039d60cc78e72282"}
    if results is not None:
        body["results"] = results
        body["resultsCount"] = len(results)
        body["queryCount"] = len(results)
    body.update(extra)
    return body


# ----------------------------------------------------------------------------- grouped daily


def test_grouped_daily_values_dates_and_adjusted_flag(httpserver, client):
    body = ok([
        # 2020-10-14 16:00 EDT = 20:00 UTC (the documented example shape)
        {"T": "KIMpL", "c": 25.9102, "h": 26.25, "l": 25.91, "n": 74, "o": 26.07,
         "t": 1602705600000, "v": 4369, "vw": 26.0407},
        {"T": "BRK.B", "c": 229.5, "h": 231.0, "l": 228.1, "n": 51234, "o": 230.0,
         "t": 1602705600000, "v": 3_456_789.0, "vw": 229.9},
        # 2020-10-15 00:30 UTC is still 2020-10-14 in New York (20:30 EDT)
        {"T": "TSLA", "c": 461.3, "h": 465.0, "l": 447.3, "o": 449.8,
         "t": 1602721800000, "v": 48_045_417},
    ], adjusted=False)
    httpserver.expect_oneshot_request(f"{GROUPED}/2020-10-14", headers=AUTH,
                                      query_string={"adjusted": "false",
                                                    "include_otc": "false"}
                                      ).respond_with_json(body)
    df = client.grouped_daily(dt.date(2020, 10, 14), adjusted=False)
    assert list(df.columns) == [*BAR_COLUMNS, "adjusted"]
    assert df["symbol"].tolist() == ["KIMpL", "BRK.B", "TSLA"]
    assert (df["date"] == pd.Timestamp("2020-10-14")).all()
    assert df["date"].dtype == "datetime64[ns]"
    row = df.iloc[1]
    assert (row.open, row.high, row.low, row.close, row.volume) == (230.0, 231.0, 228.1,
                                                                    229.5, 3_456_789.0)
    assert df["volume"].dtype == "float64"
    assert not df["adjusted"].any()
    assert df.attrs["adjusted"] is False
    assert df.attrs["request_id"] == "6a7e466379af0a71039d60cc78e72282"
    httpserver.check_assertions()


def test_grouped_daily_feeds_the_validator(httpserver, client):
    from technic.validation import validate_bars

    httpserver.expect_request(f"{GROUPED}/2024-01-02").respond_with_json(ok([
        {"T": "AAPL", "o": 187.15, "h": 188.44, "l": 183.885, "c": 185.64, "v": 82_488_674,
         "t": 1704229200000},
        {"T": "BAD", "o": 5.0, "h": 4.0, "l": 4.5, "c": 4.6, "v": 10, "t": 1704229200000},
    ], adjusted=True))
    df = client.grouped_daily("2024-01-02")
    assert df["adjusted"].all()
    res = validate_bars(df[list(BAR_COLUMNS)])
    assert res.good["symbol"].tolist() == ["AAPL"]
    assert res.good["date"].iloc[0] == pd.Timestamp("2024-01-02")
    assert res.counts_by_reason() == {"high < low": 1}


def test_grouped_daily_holiday_is_empty_not_an_error(httpserver, client):
    httpserver.expect_request(f"{GROUPED}/2024-12-25").respond_with_json(
        {"adjusted": True, "queryCount": 0, "request_id": "r1", "resultsCount": 0,
         "status": "OK"})
    df = client.grouped_daily("2024-12-25")
    assert df.empty
    assert list(df.columns) == [*BAR_COLUMNS, "adjusted"]
    assert df.attrs["adjusted"] is True


# ----------------------------------------------------------------------------- aggregates


def _day_bar(day: int, close: float) -> dict:
    # Polygon day bars start at midnight New York time: 2024-01-02 00:00 EST = 05:00 UTC
    t = 1704171600000 + (day - 2) * 86_400_000
    return {"v": 1000.0 * day, "vw": close, "o": close - 1, "c": close, "h": close + 1,
            "l": close - 2, "t": t, "n": 10}


def test_aggregates_day_bars_follow_next_url_across_three_pages(httpserver, client):
    path = "/v2/aggs/ticker/BRK.B/range/1/day/2024-01-02/2024-01-08"
    base = httpserver.url_for("/").rstrip("/")
    # next_url already carries query params; Polygon's host is rewritten onto base_url, and a
    # stray apiKey in it is dropped (the key travels only in the Authorization header).
    page2 = f"https://api.polygon.io{path}?cursor=bGltaXQ9MiZzb3J0PWFzYw&apiKey=LEAKED"
    page3 = f"{base}{path}?cursor=c2Vjb25k&sort=asc"
    httpserver.expect_oneshot_request(path, headers=AUTH, query_string={
        "adjusted": "true", "sort": "asc", "limit": "2"}).respond_with_json(
        ok([_day_bar(2, 100.0), _day_bar(3, 101.0)], ticker="BRK.B", adjusted=True,
           next_url=page2))
    httpserver.expect_oneshot_request(path, headers=AUTH, query_string={
        "cursor": "bGltaXQ9MiZzb3J0PWFzYw"}).respond_with_json(
        ok([_day_bar(4, 102.0), _day_bar(5, 103.0)], ticker="BRK.B", adjusted=True,
           next_url=page3))
    httpserver.expect_oneshot_request(path, headers=AUTH, query_string={
        "cursor": "c2Vjb25k", "sort": "asc"}).respond_with_json(
        ok([_day_bar(8, 104.0)], ticker="BRK.B", adjusted=True))
    df = client.aggregates("BRK.B", 1, "day", "2024-01-02", dt.date(2024, 1, 8), limit=2)
    httpserver.check_assertions()
    assert list(df.columns) == list(BAR_COLUMNS)
    assert df["date"].dt.strftime("%Y-%m-%d").tolist() == [
        "2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05", "2024-01-08"]
    assert (df["symbol"] == "BRK.B").all()
    assert df["close"].tolist() == [100.0, 101.0, 102.0, 103.0, 104.0]
    assert df.attrs["pages"] == 3
    assert len(httpserver.log) == 3
    for req, _ in httpserver.log:
        assert KEY not in req.url and "LEAKED" not in req.url
        assert req.headers["Authorization"] == f"Bearer {KEY}"


def test_aggregates_minute_bars_have_utc_bar_start_ts(httpserver, client):
    start = 1704205800000  # 2024-01-02 09:30 EST = 14:30 UTC
    path = f"/v2/aggs/ticker/AAPL/range/1/minute/{start}/{start + 120_000}"
    bars = [{"v": 5000 + i, "vw": 187.0, "o": 187.0 + i, "c": 187.1 + i, "h": 187.2 + i,
             "l": 186.9 + i, "t": start + 60_000 * i, "n": 42} for i in range(3)]
    httpserver.expect_request(path).respond_with_json(ok(bars, ticker="AAPL", adjusted=True))
    when = pd.Timestamp("2024-01-02 09:30", tz="America/New_York")
    df = client.aggregates("AAPL", 1, "minute", when, start + 120_000)
    assert list(df.columns) == list(INTRADAY_BAR_COLUMNS)
    assert str(df["ts"].dt.tz) == "UTC"
    assert df["ts"].tolist() == [pd.Timestamp("2024-01-02 14:30", tz="UTC"),
                                 pd.Timestamp("2024-01-02 14:31", tz="UTC"),
                                 pd.Timestamp("2024-01-02 14:32", tz="UTC")]
    assert df["volume"].tolist() == [5000.0, 5001.0, 5002.0]


def test_aggregates_no_data_and_bad_arguments(httpserver, client):
    path = "/v2/aggs/ticker/ZZZZ/range/5/minute/2024-01-02/2024-01-02"
    httpserver.expect_request(path).respond_with_json(
        {"ticker": "ZZZZ", "queryCount": 0, "resultsCount": 0, "adjusted": True,
         "status": "OK", "request_id": "r"})
    df = client.aggregates("ZZZZ", 5, "minute", "2024-01-02", "2024-01-02")
    assert df.empty and list(df.columns) == list(INTRADAY_BAR_COLUMNS)
    with pytest.raises(ValueError, match="timespan"):
        client.aggregates("AAPL", 1, "fortnight", "2024-01-02", "2024-01-03")
    with pytest.raises(ValueError, match="multiplier"):
        client.aggregates("AAPL", 0, "day", "2024-01-02", "2024-01-03")
    with pytest.raises(ValueError, match="naive"):
        client.aggregates("AAPL", 1, "minute", dt.datetime(2024, 1, 2, 9, 30), "2024-01-03")


def test_pagination_loop_is_detected(httpserver, client):
    path = "/v3/reference/splits"
    loop = httpserver.url_for(path) + "?cursor=same"
    httpserver.expect_request(path).respond_with_json(
        ok([{"ticker": "X", "execution_date": "2024-01-02", "split_from": 1, "split_to": 2}],
           next_url=loop))
    with pytest.raises(PolygonPayloadError, match="pagination loop"):
        client.splits()


# ----------------------------------------------------------------------------- reference data


def test_tickers_pagination_and_type_mapping(httpserver, client):
    path = "/v3/reference/tickers"
    common = {"market": "stocks", "locale": "us", "currency_name": "usd",
              "last_updated_utc": "2024-01-02T00:00:00Z"}
    page1 = [
        {"ticker": "A", "name": "Agilent Technologies Inc.", "primary_exchange": "XNYS",
         "type": "CS", "active": True, "cik": "0001090872", **common},
        {"ticker": "BRK.B", "name": "Berkshire Hathaway Inc. Class B",
         "primary_exchange": "XNYS", "type": "CS", "active": True, **common},
        {"ticker": "SPY", "name": "SPDR S&P 500 ETF Trust", "primary_exchange": "ARCX",
         "type": "ETF", "active": True, **common},
        {"ticker": "TSM", "name": "Taiwan Semiconductor Manufacturing Co., Ltd.",
         "primary_exchange": "XNYS", "type": "ADRC", "active": True, **common},
    ]
    page2 = [
        {"ticker": "ACAHW", "name": "Acri Capital Acquisition Corp Warrant",
         "primary_exchange": "XNAS", "type": "WARRANT", "active": True, **common},
        {"ticker": "ABLLL", "name": "Abacus Life 9.875% Fixed Rate Senior Notes",
         "primary_exchange": "XNAS", "type": "BOND", "active": True, **common},
        {"ticker": "AACT.U", "name": "Ares Acquisition Corp II Units",
         "primary_exchange": "XNYS", "type": "UNIT", "active": True, **common},
        {"ticker": "ALL.PRB", "name": "Allstate Corp 5.1% Sub Debs", "type": "PFD",
         "primary_exchange": "XNYS", "active": True, **common},
        {"ticker": "BIOX.RT", "name": "Bioceres Rights", "type": "RIGHT",
         "primary_exchange": "XNAS", "active": False, **common},
        {"ticker": "FNGU", "name": "MicroSectors FANG+ 3X Leveraged ETN", "type": "ETN",
         "primary_exchange": "ARCX", "active": True, **common},
        {"ticker": "NEWX", "name": "Mystery", "type": "XYZ", "primary_exchange": "QQQQ",
         "active": True, **common},
    ]
    nxt = f"https://api.polygon.io{path}?cursor=YWN0aXZlPXRydWUmZGF0ZT0yMDI0"
    httpserver.expect_oneshot_request(path, headers=AUTH, query_string={
        "market": "stocks", "sort": "ticker", "order": "asc", "limit": "1000",
        "active": "true"}).respond_with_json(
        {"results": page1, "status": "OK", "request_id": "r1", "count": 4, "next_url": nxt})
    httpserver.expect_oneshot_request(path, headers=AUTH, query_string={
        "cursor": "YWN0aXZlPXRydWUmZGF0ZT0yMDI0"}).respond_with_json(
        {"results": page2, "status": "OK", "request_id": "r2", "count": 7})
    df = client.tickers()
    httpserver.check_assertions()
    assert list(df.columns) == list(TICKER_COLUMNS)
    got = df.set_index("symbol")
    assert got.loc["A", "exchange"] == "NYSE"
    assert got.loc["SPY", "exchange"] == "NYSE Arca"
    assert got.loc["NEWX", "exchange"] == "QQQQ"
    assert got["security_type"].to_dict() == {
        "A": "common_or_other", "BRK.B": "common_or_other", "SPY": "etf_etn", "TSM": "adr",
        "ACAHW": "warrant", "ABLLL": "note", "AACT.U": "unit", "ALL.PRB": "preferred",
        "BIOX.RT": "right", "FNGU": "etf_etn", "NEWX": "common_or_other"}
    assert got["is_etf"].to_dict() == {s: s in ("SPY", "FNGU") for s in got.index}
    assert df["is_etf"].dtype == bool
    assert got["active"].tolist().count(False) == 1 and not got.loc["BIOX.RT", "active"]
    assert got.loc["TSM", "polygon_type"] == "ADRC"


def test_map_security_type_edges():
    assert map_security_type(None) is None
    assert map_security_type("") is None
    assert map_security_type("etf") == "etf_etn"
    assert map_security_type("ADRP") == "preferred"


def test_ticker_details_sic_and_market_cap(httpserver, client):
    httpserver.expect_request("/v3/reference/tickers/AAPL", headers=AUTH).respond_with_json({
        "request_id": "r", "status": "OK", "results": {
            "ticker": "AAPL", "name": "Apple Inc.", "market": "stocks", "locale": "us",
            "primary_exchange": "XNAS", "type": "CS", "active": True, "currency_name": "usd",
            "market_cap": 2_771_126_040_150, "sic_code": "3571",
            "sic_description": "ELECTRONIC COMPUTERS", "list_date": "1980-12-12",
            "share_class_shares_outstanding": 16_406_400_000}})
    d = client.ticker_details("AAPL")
    assert d["exchange"] == "NASDAQ" and d["security_type"] == "common_or_other"
    assert d["sic_code"] == "3571" and d["sic_description"] == "ELECTRONIC COMPUTERS"
    assert d["market_cap"] == 2_771_126_040_150.0
    httpserver.expect_request("/v3/reference/tickers/NOPE").respond_with_json(
        {"status": "NOT_FOUND", "request_id": "r", "message": "Ticker not found."}, status=404)
    with pytest.raises(PolygonError) as ei:
        client.ticker_details("NOPE")
    assert ei.value.status == 404 and "/v3/reference/tickers/NOPE" in str(ei.value)


def test_splits(httpserver, client):
    path = "/v3/reference/splits"
    nxt = f"https://api.polygon.io{path}?cursor=YXA9Mg"
    httpserver.expect_oneshot_request(path, query_string={
        "sort": "execution_date", "order": "asc", "limit": "1000", "ticker": "AAPL",
        "execution_date.gte": "2000-01-01"}).respond_with_json(
        {"status": "OK", "request_id": "r1", "next_url": nxt, "results": [
            {"execution_date": "2005-02-28", "id": "E1", "split_from": 1, "split_to": 2,
             "ticker": "AAPL"},
            {"execution_date": "2014-06-09", "id": "E2", "split_from": 1, "split_to": 7,
             "ticker": "AAPL"}]})
    httpserver.expect_oneshot_request(path, query_string={"cursor": "YXA9Mg"}).respond_with_json(
        {"status": "OK", "request_id": "r2", "results": [
            {"execution_date": "2020-08-31", "id": "E3", "split_from": 1, "split_to": 4,
             "ticker": "AAPL"}]})
    df = client.splits("AAPL", start="2000-01-01")
    assert list(df.columns) == ["symbol", "execution_date", "split_from", "split_to"]
    assert df["execution_date"].dt.strftime("%Y-%m-%d").tolist() == [
        "2005-02-28", "2014-06-09", "2020-08-31"]
    assert df["split_to"].tolist() == [2.0, 7.0, 4.0]
    assert (df["split_from"] == 1.0).all()


# ----------------------------------------------------------------------------- robustness


def test_429_burst_then_success_honours_retry_after(httpserver, client, sleeps):
    path = f"{GROUPED}/2024-01-02"
    limited = {"status": "ERROR", "request_id": "r",
               "error": "You've exceeded the maximum requests per minute."}
    httpserver.expect_oneshot_request(path).respond_with_json(
        limited, status=429, headers={"Retry-After": "7"})
    httpserver.expect_oneshot_request(path).respond_with_json(
        limited, status=429, headers={"Retry-After": "3"})
    httpserver.expect_oneshot_request(path).respond_with_json(ok([
        {"T": "AAPL", "o": 1.0, "h": 2.0, "l": 0.5, "c": 1.5, "v": 10, "t": 1704229200000}]))
    df = client.grouped_daily("2024-01-02")
    assert len(df) == 1
    assert sleeps.calls == [7.0, 3.0]


def test_retry_after_is_capped_by_max_wait(httpserver, client, sleeps):
    path = f"{GROUPED}/2024-01-02"
    httpserver.expect_oneshot_request(path).respond_with_data(
        "slow down", status=429, headers={"Retry-After": "3600"})
    httpserver.expect_oneshot_request(path).respond_with_json(ok([]))
    client.grouped_daily("2024-01-02")
    assert sleeps.calls == [10.0]


def test_500_then_success_uses_exponential_backoff(httpserver, client, sleeps):
    path = f"{GROUPED}/2024-01-02"
    httpserver.expect_oneshot_request(path).respond_with_data("internal error", status=500)
    httpserver.expect_oneshot_request(path).respond_with_data("bad gateway", status=502)
    httpserver.expect_oneshot_request(path).respond_with_json(ok([]))
    assert client.grouped_daily("2024-01-02").empty
    assert sleeps.calls == [0.5, 1.0]


def test_retries_exhausted_on_429_raises_rate_limit_error(httpserver, client, sleeps, caplog):
    path = f"{GROUPED}/2024-01-02"
    httpserver.expect_request(path).respond_with_json(
        {"status": "ERROR", "error": "You've exceeded the maximum requests per minute."},
        status=429)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(PolygonRateLimitError) as ei:
        client.grouped_daily("2024-01-02")
    err = ei.value
    assert err.status == 429 and len(httpserver.log) == 3 and len(sleeps.calls) == 2
    assert GROUPED in str(err) and "exceeded the maximum" in str(err)
    assert "retrying" in caplog.text


def test_retries_exhausted_on_503_raises_polygon_error(httpserver, client):
    httpserver.expect_request(f"{GROUPED}/2024-01-02").respond_with_data("unavailable",
                                                                         status=503)
    with pytest.raises(PolygonError, match="HTTP 503 after 3 attempt") as ei:
        client.grouped_daily("2024-01-02")
    assert not isinstance(ei.value, PolygonRateLimitError)


@pytest.mark.parametrize("status", [401, 403])
def test_auth_error_is_not_retried(httpserver, client, sleeps, status):
    httpserver.expect_request(f"{GROUPED}/2024-01-02").respond_with_json(
        {"status": "ERROR", "request_id": "r",
         "error": "Unknown API Key"}, status=status)
    with pytest.raises(PolygonAuthError, match=f"HTTP {status}") as ei:
        client.grouped_daily("2024-01-02")
    assert "Unknown API Key" in str(ei.value)
    assert len(httpserver.log) == 1 and sleeps.calls == []


def test_other_4xx_is_not_retried(httpserver, client, sleeps):
    with pytest.raises(ValueError):  # bad date caught before any request
        client.grouped_daily("2024-13-01")
    httpserver.expect_request(f"{GROUPED}/2024-01-02").respond_with_json(
        {"status": "ERROR", "error": "bad param"}, status=400)
    with pytest.raises(PolygonError, match="HTTP 400"):
        client.grouped_daily("2024-01-02")
    assert len(httpserver.log) == 1 and sleeps.calls == []


def test_truncated_json_is_a_payload_error(httpserver, client):
    full = json.dumps(ok([{"T": "AAPL", "o": 1, "h": 2, "l": 0.5, "c": 1.5, "v": 10,
                           "t": 1704229200000}]))
    httpserver.expect_request(f"{GROUPED}/2024-01-02").respond_with_data(
        full[: len(full) // 2], content_type="application/json")
    with pytest.raises(PolygonPayloadError, match="not valid JSON") as ei:
        client.grouped_daily("2024-01-02")
    assert ei.value.status == 200 and GROUPED in ei.value.path


@pytest.mark.parametrize("body, match", [
    ({"status": "OK", "resultsCount": 2, "request_id": "r"}, "truncated"),
    ({"status": "OK", "results": {"T": "AAPL"}}, "not a list"),
    ({"status": "OK", "results": [{"T": "AAPL", "t": 1704229200000, "o": 1, "h": 2,
                                   "l": 0.5, "v": 3}]}, "required field.*\\bc\\b"),
    ([1, 2, 3], "JSON object"),
])
def test_payload_missing_fields(httpserver, client, body, match):
    httpserver.expect_request(f"{GROUPED}/2024-01-02").respond_with_json(body)
    with pytest.raises(PolygonPayloadError, match=match):
        client.grouped_daily("2024-01-02")


def test_row_missing_a_value_is_kept_for_the_validator(httpserver, client):
    httpserver.expect_request(f"{GROUPED}/2024-01-02").respond_with_json(ok([
        {"T": "AAPL", "o": 1, "h": 2, "l": 0.5, "c": 1.5, "v": 10, "t": 1704229200000},
        {"T": "MSFT", "o": 1, "h": 2, "l": 0.5, "v": 10, "t": 1704229200000}]))
    df = client.grouped_daily("2024-01-02")
    assert len(df) == 2 and pd.isna(df.loc[1, "close"])


def test_connection_error_is_retried_then_raised(sleeps):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    c = PolygonClient(KEY, base_url=f"http://127.0.0.1:{port}", max_attempts=2,
                      backoff_initial=0.25, backoff_jitter=0.0, requests_per_minute=None,
                      timeout=1.0, sleep=sleeps)
    with pytest.raises(PolygonError, match="ConnectionError after 2 attempt") as ei:
        c.grouped_daily("2024-01-02")
    assert sleeps.calls == [0.25]
    assert ei.value.status is None and KEY not in str(ei.value)
    assert ei.value.__cause__ is None and ei.value.__suppress_context__


def test_read_timeout_is_retried(httpserver, client):
    def slow(_request: Request) -> Response:
        time.sleep(0.4)
        return Response("{}", content_type="application/json")

    path = f"{GROUPED}/2024-01-02"
    httpserver.expect_oneshot_request(path).respond_with_handler(slow)
    httpserver.expect_oneshot_request(path).respond_with_json(ok([]))
    waited: list[float] = []

    def sleep(seconds: float) -> None:  # really wait for the (single-threaded) server
        waited.append(seconds)
        time.sleep(0.4)

    c = PolygonClient(KEY, base_url=client.base_url, max_attempts=3, backoff_initial=0.5,
                      backoff_jitter=0.0, requests_per_minute=None, timeout=(1.0, 0.1),
                      sleep=sleep)
    assert c.grouped_daily("2024-01-02").empty
    assert waited == [0.5]


def test_api_key_never_in_messages_logs_or_repr(httpserver, caplog, sleeps):
    c = PolygonClient(KEY, base_url=httpserver.url_for("/").rstrip("/"), max_attempts=2,
                      backoff_initial=0.0, backoff_jitter=0.0, requests_per_minute=None,
                      sleep=sleeps)
    caplog.set_level(logging.DEBUG)  # includes urllib3's request lines
    # a server that echoes the key (and an apiKey= query) back in its error body
    httpserver.expect_request(f"{GROUPED}/2024-01-02").respond_with_data(
        f"denied for key {KEY} at /x?apiKey={KEY}&a=1", status=401)
    httpserver.expect_request(f"{GROUPED}/2024-01-03").respond_with_data(
        f"busy {KEY}", status=429)
    httpserver.expect_request(f"{GROUPED}/2024-01-04").respond_with_data(
        f'{{"status": "OK", "results": [{KEY}', status=200)
    errors = []
    for day, exc_type in (("2024-01-02", PolygonAuthError),
                          ("2024-01-03", PolygonRateLimitError),
                          ("2024-01-04", PolygonPayloadError)):
        with pytest.raises(exc_type) as ei:
            c.grouped_daily(day)
        errors.append(ei.value)
    for e in errors:
        assert KEY not in str(e) and KEY not in repr(e) and KEY not in e.excerpt
        assert KEY not in e.path
    assert "apiKey=***" in str(errors[0])
    assert KEY not in repr(c) and "***" in repr(c)
    assert caplog.records and KEY not in caplog.text
    for rec in caplog.records:
        assert KEY not in rec.getMessage()


#: Keys as they arrive from a pasted value, a file or a shell mistake; the halves must never be
#: shown (``pk_LEFT5ecr3t`` / ``RIGHT5ecr3t_9``).
BAD_KEYS = ["pk_LEFT5ecr3t\nRIGHT5ecr3t_9", "pk_LEFT5ecr3t\r\nRIGHT5ecr3t_9",
            "pk_LEFT5ecr3t RIGHT5ecr3t_9", "pk_LEFT5ecr3t\tRIGHT5ecr3t_9",
            "pk_LEFT5ecr3t\x00RIGHT5ecr3t_9", "pk_LEFT5ecr3t\x1b[0mRIGHT5ecr3t_9",
            "pk_LEFT5ecr3t\u00a0RIGHT5ecr3t_9", "pk_LEFT5ecr3t'RIGHT5ecr3t_9"]


@pytest.mark.parametrize("bad", BAD_KEYS)
def test_malformed_key_is_refused_before_any_request_without_echo(httpserver, bad):
    base = httpserver.url_for("/").rstrip("/")
    for make in (lambda: PolygonClient(bad, base_url=base),
                 lambda: api_key_from_env({API_KEY_ENV: bad})):
        with pytest.raises(PolygonAuthError, match="malformed Polygon API key") as ei:
            make()
        text = str(ei.value) + repr(ei.value)
        assert "LEFT5ecr3t" not in text and "RIGHT5ecr3t" not in text
    assert httpserver.log == []  # nothing was sent
    # surrounding whitespace (a trailing newline from a file) is still just stripped
    assert api_key_from_env({API_KEY_ENV: f"\n {KEY}\n"}) == KEY


def test_well_formed_keys_are_accepted():
    for key in (KEY, "AbC123xyz", "a.b-c_d~e+f/g==", "0" * 64):
        c = PolygonClient(key, base_url="http://127.0.0.1:9")
        assert key not in repr(c)


def test_key_echoed_in_any_spelling_is_scrubbed(httpserver, sleeps):
    """A server that reflects the Authorization header back, as is, percent-encoded and
    JSON-escaped: no error message, path or excerpt carries the key."""
    key = "pk_live/Ab+c9=="

    def echo(request: Request) -> Response:
        token = request.headers["Authorization"].removeprefix("Bearer ")
        from urllib.parse import quote

        body = json.dumps({"status": "ERROR", "error": f"bad {token} {quote(token, safe='')}",
                           "next_url": f"/x?apiKey={token}"})
        return Response(body, status=400, content_type="application/json")

    httpserver.expect_request(f"{GROUPED}/2024-01-02").respond_with_handler(echo)
    c = PolygonClient(key, base_url=httpserver.url_for("/").rstrip("/"), max_attempts=1,
                      requests_per_minute=None, sleep=sleeps)
    with pytest.raises(PolygonError) as ei:
        c.grouped_daily("2024-01-02")
    e = ei.value
    for text in (str(e), repr(e), e.excerpt, e.path):
        assert key not in text and "Ab+c9" not in text and "Ab%2Bc9" not in text, text
    assert "***" in str(e)


def test_api_key_from_env(monkeypatch):
    assert api_key_from_env({API_KEY_ENV: f"  {KEY} "}) == KEY
    with pytest.raises(PolygonAuthError, match=API_KEY_ENV):
        api_key_from_env({})
    from technic.config import get_settings

    monkeypatch.delenv(API_KEY_ENV, raising=False)
    get_settings.cache_clear()
    try:
        with pytest.raises(PolygonAuthError):
            PolygonClient()
        monkeypatch.setenv(API_KEY_ENV, KEY)  # read through technic's Settings
        get_settings.cache_clear()
        c = PolygonClient(base_url="http://127.0.0.1:9")
        assert KEY not in repr(c) and KEY not in repr(get_settings())
    finally:
        get_settings.cache_clear()


# ----------------------------------------------------------------------------- rate limiting


class FakeClock:
    """A clock that only moves when the injected sleep is called."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_rate_limiter_spacing_with_injected_clock():
    clock = FakeClock()
    rl = _RateLimiter(per_minute=5, burst=1, clock=clock, sleep=clock.sleep)
    starts = []
    for _ in range(4):
        rl.acquire()
        starts.append(clock.now)
    assert starts == [1000.0, 1012.0, 1024.0, 1036.0]
    clock.now += 100.0  # idle: the bucket refills only up to the burst size
    rl.acquire()
    rl.acquire()
    assert clock.sleeps[-1] == pytest.approx(12.0)


def test_rate_limiter_burst_then_spacing():
    clock = FakeClock()
    rl = _RateLimiter(per_minute=60, burst=3, clock=clock, sleep=clock.sleep)
    for _ in range(5):
        rl.acquire()
    assert clock.sleeps == [pytest.approx(1.0), pytest.approx(1.0)]


def test_client_requests_are_spaced_by_the_rate_limit(httpserver):
    clock = FakeClock()
    c = PolygonClient(KEY, base_url=httpserver.url_for("/").rstrip("/"),
                      requests_per_minute=120, sleep=clock.sleep, clock=clock)
    httpserver.expect_request(f"{GROUPED}/2024-01-02").respond_with_json(ok([]))
    for _ in range(3):
        c.grouped_daily("2024-01-02")
    assert clock.sleeps == [pytest.approx(0.5), pytest.approx(0.5)]
    assert len(httpserver.log) == 3
    with pytest.raises(ValueError):
        PolygonClient(KEY, requests_per_minute=0)
