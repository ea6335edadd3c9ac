"""PolygonClient.option_chain_snapshot against a local HTTP server replaying the documented
shape of ``GET /v3/snapshot/options/{underlyingAsset}``
(https://polygon.io/docs/rest/options/snapshots/option-chain-snapshot): ``status``,
``request_id``, ``results`` (``details``, ``day``, ``greeks``, ``implied_volatility``,
``last_quote``, ``last_trade``, ``open_interest``, ``underlying_asset``) and ``next_url``."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from technic.options.chains import OPTION_SCHEMA, validate_chains
from technic.providers.polygon import PolygonClient, PolygonPayloadError

KEY = "pk_TEST_5ecr3t_Key_0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
PATH = "/v3/snapshot/options/AAPL"


@pytest.fixture
def client(httpserver):
    c = PolygonClient(KEY, base_url=httpserver.url_for("/").rstrip("/"), max_attempts=2,
                      backoff_initial=0.0, backoff_jitter=0.0, requests_per_minute=None,
                      timeout=(2.0, 2.0), sleep=lambda s: None)
    yield c
    c.close()


def _contract(kind: str, strike: float, *, iv: float | None = 0.2335, volume: int = 2317,
              last: float | None = 9.3) -> dict:
    exp = "2026-07-17"
    r = {
        "break_even_price": strike + 9.3,
        "day": {"change": 0.4, "change_percent": 4.5, "close": 9.25, "high": 9.8,
                "last_updated": 1781294400000000000, "low": 8.9, "open": 9.0,
                "previous_close": 8.9, "volume": volume, "vwap": 9.31},
        "details": {"contract_type": kind, "exercise_style": "american",
                    "expiration_date": exp, "shares_per_contract": 100,
                    "strike_price": strike,
                    "ticker": f"O:AAPL260717{kind[0].upper()}{int(strike * 1000):08d}"},
        "greeks": {"delta": 0.55 if kind == "call" else -0.45, "gamma": 0.02,
                   "theta": -0.11, "vega": 0.35},
        "last_quote": {"ask": 9.4, "ask_size": 10, "bid": 9.2, "bid_size": 12,
                       "last_updated": 1781294399000000000, "midpoint": 9.3,
                       "timeframe": "DELAYED"},
        "last_trade": {"conditions": [209], "exchange": 316, "price": last,
                       "sip_timestamp": 1781294390000000000, "size": 1,
                       "timeframe": "DELAYED"},
        "open_interest": 28711,
        "underlying_asset": {"change_to_break_even": 8.17, "last_updated": 1781294400000000000,
                             "price": 291.13, "ticker": "AAPL", "timeframe": "DELAYED"},
    }
    if iv is not None:
        r["implied_volatility"] = iv
    if last is None:
        del r["last_trade"]
    return r


def test_snapshot_follows_next_url_and_maps_fields(httpserver, client):
    page2 = f"https://api.polygon.io{PATH}?cursor=YWZ0ZXI9Mg&apiKey=LEAKED"
    httpserver.expect_oneshot_request(PATH, headers=AUTH, query_string={"limit": "2"}) \
        .respond_with_json({"status": "OK", "request_id": "a1", "next_url": page2,
                            "results": [_contract("call", 290.0), _contract("put", 290.0)]})
    httpserver.expect_oneshot_request(PATH, headers=AUTH, query_string={
        "cursor": "YWZ0ZXI9Mg"}).respond_with_json(
        {"status": "OK", "request_id": "a2",
         "results": [_contract("call", 295.0, iv=None, last=None, volume=0)]})
    df = client.option_chain_snapshot("AAPL", session=dt.date(2026, 6, 12), limit=2)
    httpserver.check_assertions()
    assert df.attrs["pages"] == 2
    assert list(df.columns) == OPTION_SCHEMA.names
    assert df["option_type"].tolist() == ["C", "P", "C"]
    assert df["strike"].tolist() == [290.0, 290.0, 295.0]
    assert (df["date"] == dt.date(2026, 6, 12)).all()
    assert (df["expiration"] == dt.date(2026, 7, 17)).all()
    first = df.iloc[0]
    assert (first["last_price"], first["bid"], first["ask"], first["volume"],
            first["open_interest"], first["implied_vol"], first["delta"], first["vega"],
            first["underlying_price"]) == (9.3, 9.2, 9.4, 2317, 28711, 0.2335, 0.55, 0.35,
                                           291.13)
    # no last trade: the day's close; no IV: NaN for the validator and the metrics
    assert df.iloc[2]["last_price"] == 9.25 and pd.isna(df.iloc[2]["implied_vol"])
    for req, _ in httpserver.log:
        assert "LEAKED" not in req.url and KEY not in req.url
    good, rejects = validate_chains(df, now=pd.Timestamp("2026-07-01", tz="UTC"))
    assert good.num_rows == 3 and rejects.empty


def test_snapshot_session_defaults_to_the_day_bar_date(httpserver, client):
    httpserver.expect_oneshot_request(PATH).respond_with_json(
        {"status": "OK", "request_id": "b", "results": [_contract("call", 290.0)]})
    df = client.option_chain_snapshot("AAPL")
    # day.last_updated 1781294400 s = 2026-06-12 20:00 UTC = 16:00 in New York
    assert df["date"].tolist() == [dt.date(2026, 6, 12)]


def test_snapshot_malformed_results_is_a_payload_error(httpserver, client):
    httpserver.expect_oneshot_request(PATH).respond_with_json(
        {"status": "OK", "request_id": "c", "results": [{"open_interest": 3}]})
    with pytest.raises(PolygonPayloadError, match="details"):
        client.option_chain_snapshot("AAPL")
