"""Option chains through ``ingest files`` into PostgreSQL: counts, rejects with reasons,
idempotent re-run, an update, greeks filled at ingest, the metrics job after the ingest, and
``scan --with-options``.

Real data: AAPL, KLAC (its 10:1 split on 2026-06-12) and SLF (chains without an underlying
price on some sessions) for the sessions 2026-06-09 → 06-12 of
``../shared/data/options.parquet``, with a few broken rows added; their daily bars from
``bars_daily_2026.parquet`` (realized volatility). The whole file is timed in
``benchmarks/options.py``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from technic.jobs.ingest import ingest_files
from technic.options.bs import bsm_greeks
from technic.store.db import get_engine
from technic.store.migrations import OPTION_RESULT_COLUMNS

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
UNDERLYINGS = ["AAPL", "KLAC", "SLF"]
DAYS = (dt.date(2026, 6, 9), dt.date(2026, 6, 12))


def _q(target, sql: str, **params):
    with get_engine(target).connect() as c:
        return c.execute(sa.text(sql.replace("{s}", f'"{target.schema}"')), params).all()


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict:
    if not (DATA / "options.parquet").exists():
        pytest.skip("../shared/data/options.parquet not present")
    d = tmp_path_factory.mktemp("options")
    t = pq.read_table(DATA / "options.parquet", filters=[
        ("underlying", "in", UNDERLYINGS), ("date", ">=", DAYS[0]), ("date", "<=", DAYS[1])])
    df = t.to_pandas()
    bad = df.iloc[:5].copy()
    bad["strike"] = [-1.0, 10.0, 10.0, 10.0, 10.0]
    bad["expiration"] = [bad["expiration"].iloc[0], dt.date(2026, 6, 1)] + \
        [bad["expiration"].iloc[0]] * 3
    bad["volume"] = [0, 0, -4, 0, 0]
    bad["open_interest"] = [0, 0, 0, -2, 0]
    bad["option_type"] = ["C", "C", "C", "C", "X"]
    raw = pd.concat([df, bad, df.iloc[[7]]], ignore_index=True)  # + an exact repeat
    path = d / "chains.parquet"
    raw.to_parquet(path, index=False)
    expected = {"implied vol outside (0, 5]": int((df["implied_vol"] > 5).sum()),
                "strike <= 0": 1, "expiration before date": 1, "negative volume": 1,
                "negative open interest": 1, "unknown option type": 1}
    if df.iloc[7]["implied_vol"] > 5:  # the repeat is rejected for its IV first
        expected["implied vol outside (0, 5]"] += 1
    else:
        expected["duplicate contract"] = 1
    bars = pq.read_table(DATA / "bars_daily_2026.parquet",
                         filters=[("symbol", "in", ["AAPL", "KLAC"])])
    bars_path = d / "bars_daily_2026.parquet"  # the name tells its price basis
    pq.write_table(bars, bars_path)
    return {"chains": path, "bars": bars_path, "raw": raw, "expected": expected,
            "good": len(raw) - sum(expected.values()),
            "chains_per_day": df.groupby(["date", "underlying"]).ngroups}


def test_ingest_counts_rejects_rerun_update_and_metrics(fresh_target, files):
    t = fresh_target
    ingest_files(t, files["bars"])
    rep = ingest_files(t, files["chains"])[-1]
    n = len(files["raw"])
    assert rep.rows_read == n
    assert rep.rejects_by_reason == files["expected"]
    assert rep.rows_rejected == sum(files["expected"].values())
    assert rep.rows_inserted == files["good"] and rep.rows_updated == 0
    assert _q(t, "SELECT count(*) FROM {s}.option_chains")[0][0] == files["good"]
    stored = dict(_q(t, "SELECT reason, count(*) FROM {s}.ingest_rejects WHERE run_id = :r "
                        "GROUP BY reason", r=rep.run_id))
    assert stored == files["expected"]
    run = _q(t, "SELECT status, rows_read, rows_rejected, rejects_by_reason FROM "
                "{s}.ingest_runs WHERE run_id = :r", r=rep.run_id)[0]
    assert run[:3] == ("ok", n, rep.rows_rejected) and run[3] == files["expected"]
    # a contract as stored (AAPL 2026-07-17 290 call on 2026-06-12, read off the file)
    row = _q(t, "SELECT last_price, volume, open_interest, implied_vol, delta, "
                "underlying_price, source FROM {s}.option_chains WHERE date = '2026-06-12' "
                "AND underlying = 'AAPL' AND expiration = '2026-07-17' AND option_type = 'C' "
                "AND strike = 290")[0]
    assert row == (9.3, 2317, row[2], pytest.approx(0.2335), 0.55, 291.13, "files")
    # its greeks, filled at ingest (the file has none): Black-Scholes, r 4 %, q 0
    got = _q(t, "SELECT gamma, theta, vega FROM {s}.option_chains WHERE date = '2026-06-12' "
                "AND underlying = 'AAPL' AND expiration = '2026-07-17' AND option_type = 'C' "
                "AND strike = 290")[0]
    want = bsm_greeks(*(np.array([v]) for v in (291.13, 290.0, 35 / 365, 0.2335)),
                      np.array([False]))
    assert got == tuple(pytest.approx(want[g][0], abs=1e-12) for g in ("gamma", "theta", "vega"))
    # every contract with a source IV, an underlying price and a day to run has all four
    assert _q(t, "SELECT count(*) FILTER (WHERE gamma IS NULL OR theta IS NULL OR vega IS NULL "
                 "OR delta IS NULL), count(*) FROM {s}.option_chains WHERE implied_vol IS NOT "
                 "NULL AND underlying_price IS NOT NULL AND expiration > date")[0][0] == 0

    # the metrics job ran after the ingest: one row per (session, underlying)
    m = pd.DataFrame(_q(t, "SELECT underlying, date, atm_iv_30d, realized_vol_20, iv_rv_20, "
                           "iv_rank_252, reasons FROM {s}.option_metrics ORDER BY 1, 2"),
                     columns=["u", "d", "iv", "rv", "ivrv", "rank", "reasons"])
    assert len(m) == files["chains_per_day"]
    aapl = m[m["u"] == "AAPL"]
    assert aapl["rv"].notna().all()
    assert (aapl["ivrv"] - aapl["iv"] / aapl["rv"]).abs().max() < 1e-12
    assert m["rank"].isna().all()
    assert m["reasons"].iloc[-1]["iv_rank_252"].endswith("252 needed")
    slf = m[m["u"] == "SLF"]
    assert slf["rv"].isna().all()
    assert slf["reasons"].iloc[0]["realized_vol_20"] == "no daily bars for the underlying"

    # idempotent re-run: nothing inserted or updated, the same rejects counted again
    again = ingest_files(t, files["chains"])[-1]
    assert (again.rows_inserted, again.rows_updated, again.rows_unchanged) == \
        (0, 0, files["good"])
    assert again.rejects_by_reason == files["expected"]
    assert _q(t, "SELECT count(*) FROM {s}.option_chains")[0][0] == files["good"]
    assert _q(t, "SELECT count(*) FROM {s}.option_metrics")[0][0] == files["chains_per_day"]

    # one changed value: one row updated, the rest unchanged
    changed = files["raw"].copy()
    i = changed.index[(changed["underlying"] == "AAPL") & (changed["implied_vol"] < 5)][0]
    changed.loc[i, "volume"] = changed.loc[i, "volume"] + 1000
    path = Path(files["chains"]).with_name("chains_changed.parquet")
    changed.to_parquet(path, index=False)
    third = ingest_files(t, path)[-1]
    assert (third.rows_inserted, third.rows_updated) == (0, 1)
    assert third.rows_unchanged == files["good"] - 1


def test_unreadable_option_file_is_a_failed_run(fresh_target, tmp_path):
    from technic.providers.files import InputFileError

    p = tmp_path / "chains.csv"
    p.write_text("date,underlying,expiration,strike\n2026-06-12,AAPL,2026-07-17,290\n")
    with pytest.raises(InputFileError, match="neither a bars file"):
        ingest_files(fresh_target, p)
    status = _q(fresh_target, "SELECT status, error FROM {s}.ingest_runs")
    assert status and status[-1][0] == "failed"


def test_scan_with_options_adds_the_columns_for_symbols_with_a_chain(demo_target):
    from technic.jobs.scan import ScanParams, run_scan
    from technic.store.features import latest_feature_date
    from technic.store.options import write_option_metrics

    day = latest_feature_date(demo_target, None)
    plain = run_scan(demo_target, ScanParams(preset="options-plain"))
    sym = plain.results["symbol"].iloc[0]
    write_option_metrics(demo_target, pd.DataFrame([{
        "date": day, "underlying": sym, "n_contracts": 10, "atm_iv_30d": 0.31,
        "realized_vol_20": 0.25, "iv_rv_20": 0.31 / 0.25, "skew_25d": 0.02,
        "reasons": {"iv_rank_252": "1 session(s) of IV history, 252 needed"}}]))
    out = run_scan(demo_target, ScanParams(preset="options-test", with_options=True))
    assert out.counts["with_options"] == 1
    rows = _q(demo_target, "SELECT symbol, opt_atm_iv_30d, opt_iv_rv_20, opt_iv_rank_252 "
                           "FROM {s}.scan_results WHERE run_id = :r AND "
                           "opt_atm_iv_30d IS NOT NULL", r=out.run_id)
    assert rows == [(sym, 0.31, pytest.approx(1.24), None)]
    assert _q(demo_target, "SELECT count(opt_atm_iv_30d) FROM {s}.scan_results WHERE "
                           "run_id = :r", r=plain.run_id)[0][0] == 0
    top = out.to_json(3)["results"][0]
    assert (top["symbol"], top["opt_atm_iv_30d"]) == (sym, 0.31)
    cols = {c for (c,) in _q(demo_target, "SELECT column_name FROM information_schema.columns "
                                          "WHERE table_schema = :s AND table_name = "
                                          "'latest_scan_results'", s=demo_target.schema)}
    assert set(OPTION_RESULT_COLUMNS) <= cols  # the views were recreated with them


def test_csv_chain_file_is_parsed_as_text_and_gets_metrics(fresh_target, files, tmp_path):
    """A CSV (every value text) loads the same rows; a malformed number is a counted reject;
    the metrics of its session are computed after the ingest."""
    raw = files["raw"]
    day = raw[(raw["underlying"] == "AAPL") & (raw["date"] == dt.date(2026, 6, 12))]
    day = day[day["implied_vol"].isna() | (day["implied_vol"] <= 5)]
    text = day.astype(str).replace({"nan": "", "None": ""})
    text.iloc[3, text.columns.get_loc("strike")] = "2x0"
    p = tmp_path / "aapl_2026-06-12.csv"
    text.to_csv(p, index=False)
    rep = ingest_files(fresh_target, p)[-1]
    assert rep.rows_read == len(day)
    assert rep.rejects_by_reason == {"non-numeric value": 1}
    assert rep.rows_inserted == len(day) - 1
    m = _q(fresh_target, "SELECT date, underlying, atm_iv_30d FROM {s}.option_metrics")
    assert len(m) == 1 and m[0][:2] == (dt.date(2026, 6, 12), "AAPL")
    assert m[0][2] == pytest.approx(0.22744, abs=1e-5)  # the hand-computed value (unit test)
