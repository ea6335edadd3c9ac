"""The ``fundamentals`` table (migration 17): ingest counts, rejects and idempotence through
``technic ingest files`` and the Polygon financials client, and the point-in-time factors a
scan stores in ``scan_results`` (migration 18)."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from technic.jobs.ingest import ingest_files, ingest_polygon_financials
from technic.jobs.scan import ScanParams, run_scan
from technic.providers.polygon import PolygonClient
from technic.scoring.fundamentals import FUNDAMENTAL_FACTORS, fundamental_factors, pit_state
from technic.scoring.rank import reference_shares_for
from technic.store.db import get_engine
from technic.store.fundamentals import read_fundamentals
from technic.store.market import market_caps
from technic.store.migrations import FUNDAMENTAL_RESULT_COLUMNS
from tests.conftest import BUNDLED
from tests.unit.test_polygon_financials import KEY, PATH, Q1, Q2, Q3

FILE = BUNDLED / "fundamentals.parquet"


def _q(t, sql, **kw):
    with get_engine(t).connect() as c:
        return c.execute(sa.text(sql), kw).all()


def test_ingest_counts_rejects_idempotence_and_update(fresh_target, tmp_path):
    t = fresh_target
    first = ingest_files(t, FILE)
    assert len(first) == 1
    r = first[0]
    assert (r.rows_read, r.rows_inserted, r.rows_updated, r.rows_unchanged,
            r.rows_rejected) == (11_342, 11_331, 0, 0, 11)
    assert sum(r.rejects_by_reason.values()) == 11
    assert set(r.rejects_by_reason) <= {
        "public date before period end",
        "public date > 365 days after period end (availability unknown)"}
    assert r.changed_from is None  # bar caches and market_daily are not invalidated
    assert _q(t, "SELECT count(*) FROM fundamentals")[0][0] == 11_331
    rej = _q(t, "SELECT row, reason FROM ingest_rejects WHERE run_id = :r", r=r.run_id)
    assert len(rej) == 11 and all(row["symbol"] for row, _ in rej)
    # NULL items stay NULL (never zero)
    nulls = _q(t, "SELECT count(*) FROM fundamentals WHERE revenue IS NULL")[0][0]
    raw = pd.read_parquet(FILE)
    ok = ~raw["available_date_suspect"]
    assert nulls == int(raw.loc[ok, "revenue"].isna().sum())
    assert _q(t, "SELECT count(*) FROM fundamentals WHERE revenue = 0")[0][0] == int(
        (raw.loc[ok, "revenue"] == 0).sum())

    again = ingest_files(t, FILE)[0]
    assert (again.rows_inserted, again.rows_updated, again.rows_unchanged,
            again.rows_rejected) == (0, 0, 11_331, 11)
    assert _q(t, "SELECT count(*) FROM fundamentals")[0][0] == 11_331

    changed = raw.copy()
    i = changed.index[(changed["symbol"] == "AAPL") & ~changed["available_date_suspect"]][0]
    changed.loc[i, "revenue"] += 1.0
    changed.to_parquet(tmp_path / "fundamentals.parquet")
    third = ingest_files(t, tmp_path / "fundamentals.parquet")[0]
    assert (third.rows_inserted, third.rows_updated, third.rows_unchanged) == (0, 1, 11_330)
    status = _q(t, "SELECT status, rows_read, rows_rejected FROM ingest_runs ORDER BY run_id")
    assert status == [("ok", 11_342, 11)] * 3


def test_directory_ingest_includes_fundamentals_and_pit_read(fresh_target, tmp_path):
    uni = pd.read_parquet(BUNDLED / "universe.parquet")
    uni.to_parquet(tmp_path / "universe.parquet")
    f = pd.read_parquet(FILE)
    f[f["symbol"].isin(["AAPL", "MSFT"])].to_csv(tmp_path / "fundamentals.csv", index=False)
    reps = ingest_files(fresh_target, tmp_path)
    assert [p.rsplit("/", 1)[-1] for p in (r.path or "" for r in reps)] == [
        "universe.parquet", "fundamentals.csv"]
    n = int(f["symbol"].isin(["AAPL", "MSFT"]).sum())
    assert reps[1].rows_inserted == n and reps[1].rows_rejected == 0
    q = read_fundamentals(fresh_target, as_of=dt.date(2024, 5, 2))
    assert (q["available_date"] <= pd.Timestamp("2024-05-02")).all()
    assert q.loc[q["symbol"] == "AAPL", "period_end"].max() == pd.Timestamp("2023-12-31")
    assert q.loc[q["symbol"] == "MSFT", "period_end"].max() == pd.Timestamp("2024-03-31")


def test_polygon_financials_land_in_the_same_table(httpserver, fresh_target):
    httpserver.expect_request(PATH, query_string={
        "ticker": "AAPL", "timeframe": "quarterly", "sort": "filing_date", "order": "asc",
        "limit": "100", "filing_date.gte": "2024-01-01"}).respond_with_json(
        {"status": "OK", "request_id": "x", "count": 3, "results": [Q1, Q2, Q3]})
    client = PolygonClient(KEY, base_url=httpserver.url_for("/").rstrip("/"),
                           requests_per_minute=None, sleep=lambda s: None)
    with client:
        first = ingest_polygon_financials(fresh_target, client, ["AAPL"],
                                          start=dt.date(2024, 1, 1))[0]
        again = ingest_polygon_financials(fresh_target, client, ["AAPL"],
                                          start=dt.date(2024, 1, 1))[0]
    assert (first.rows_read, first.rows_inserted, first.rows_rejected) == (3, 2, 1)
    assert first.rejects_by_reason == {"missing value": 1}  # Q3 without a filing date
    assert (again.rows_inserted, again.rows_updated, again.rows_unchanged) == (0, 0, 2)
    rows = _q(fresh_target, "SELECT symbol, period_end, available_date, fiscal_year, "
                            "fiscal_period, revenue, free_cash_flow, source FROM fundamentals "
                            "ORDER BY period_end")
    assert rows == [
        ("AAPL", dt.date(2023, 12, 31), dt.date(2024, 2, 2), 2024, "Q1", 119_575e6, None,
         "polygon"),
        ("AAPL", dt.date(2024, 3, 31), dt.date(2024, 5, 3), 2024, "Q2", 90_753e6, None,
         "polygon")]
    # the shared file's quarter with the same key and other values replaces it (one row)
    rep = ingest_files(fresh_target, FILE)[0]
    assert rep.rows_updated == 2
    assert _q(fresh_target, "SELECT count(*), min(source) FROM fundamentals WHERE "
                            "symbol = 'AAPL' AND period_end IN ('2023-12-31', '2024-03-31')"
              )[0] == (2, "files")


@pytest.fixture(scope="module")
def scanned(demo_target):
    """A scan of the demo data (which ingests the bundled fundamentals) under its own preset."""
    out = run_scan(demo_target, ScanParams(top=5, preset="fundamentals-test"))
    cols = ["symbol", "sector", "close", "market_cap_pit", "market_cap_source",
            "fund_period_end", "fund_available_date", "ics_size", *FUNDAMENTAL_RESULT_COLUMNS]
    rows = _q(demo_target, f"SELECT {', '.join(cols)} FROM scan_results WHERE run_id = :r "
                           "ORDER BY rank", r=out.run_id)
    return out, pd.DataFrame(rows, columns=cols)


def test_scan_stores_point_in_time_factors(demo_target, scanned):
    out, df = scanned
    day = out.as_of
    assert (df["fund_available_date"].dropna() <= day).all()
    assert df["value_score"].notna().mean() > 0.5
    by = df.set_index("symbol")
    for bank in ("JPM", "BAC", "WFC"):
        row = by.loc[bank]
        assert row[list(FUNDAMENTAL_RESULT_COLUMNS)].isna().all(), bank
        assert row["market_cap_source"] == "reference" and row["market_cap_pit"] > 0
    # size is close × diluted shares of the latest quarter public on the scan date
    state = pit_state(read_fundamentals(demo_target, as_of=day), day)
    aapl = by.loc["AAPL"]
    assert aapl["market_cap_source"] == "fundamentals"
    assert aapl["fund_period_end"] == state.loc["AAPL", "period_end"].date()
    assert aapl["market_cap_pit"] == pytest.approx(
        aapl["close"] * state.loc["AAPL", "shares_diluted"], rel=1e-12)
    # the stored factors are the pure functions' values over the stored (passing) rows
    frame = df[["symbol", "sector", "close"]].astype({"close": float})
    want = fundamental_factors(frame, state,
                               reference_shares=reference_shares_for(frame,
                                                                     market_caps(demo_target)))
    for c in (*FUNDAMENTAL_FACTORS, "value_score", "quality_score", "growth_score"):
        np.testing.assert_allclose(df[c].astype(float), want[c], rtol=1e-9, err_msg=c)
    assert (df["market_cap_source"].fillna("-") == want["market_cap_source"].fillna("-")).all()
    # the views show the new columns
    view = _q(demo_target, "SELECT count(*), count(value_score) FROM "
                           "latest_scan_results_by_preset WHERE preset = 'fundamentals-test'")
    assert view[0] == (len(df), int(df["value_score"].notna().sum()))
    doc = out.to_json(5)
    assert "value_score" in doc["results"][0] and json.dumps(doc)


def test_hostile_fundamentals_csv_is_counted_not_fatal(fresh_target, tmp_path):
    p = tmp_path / "fundamentals.csv"
    head = ("symbol,period_end,available_date,revenue,net_income,total_assets,equity,"
            "free_cash_flow,shares_diluted\n")
    p.write_text(head
                 + "AAA,2024-03-31,2024-05-01,10,1,100,50,2,1000000\n"
                 + "AAA,2024-06-30,2024-08-01,ten,1,100,50,2,1000000\n"   # non-numeric
                 + "BBB,2024-03-31,2024-05-01,10,1\n"                      # ragged line
                 + "C\x01C,2024-03-31,2024-05-01,10,1,100,50,2,1000000\n"  # control char
                 + ",2024-03-31,2024-05-01,10,1,100,50,2,1000000\n"        # no symbol
                 + "DDD,2024-03-31,,10,1,100,50,,\n")                      # no public date
    rep = ingest_files(fresh_target, p)[0]
    assert (rep.rows_read, rep.rows_inserted, rep.rows_rejected) == (6, 1, 5)
    assert rep.rejects_by_reason == {"non-numeric value": 1, "ragged CSV line (5 fields, "
                                     "9 expected)": 1, "invalid symbol": 1,
                                     "missing value": 2}
    assert _q(fresh_target, "SELECT symbol, revenue, free_cash_flow FROM fundamentals") == [
        ("AAA", 10.0, 2.0)]
