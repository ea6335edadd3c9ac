"""The scan stores the risk-adjusted columns of migration 27 (docs/scoring.md "Risk-adjusted
ranking"): beta and residual volatility recomputed here by hand from the stored bars."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from technic.jobs.scan import RISK_MIN_OBS, RISK_WINDOW, ScanParams, run_scan
from technic.scoring.risk import alpha_per_risk, per_unit_risk
from technic.store.db import get_engine


def _df(t, sql, **kw) -> pd.DataFrame:
    with get_engine(t).connect() as c:
        return pd.read_sql(sa.text(sql), c, params=kw)


def _by_hand(t, day, symbol: str) -> tuple[float, float, int]:
    """Beta, annualised residual volatility and the number of returns of ``symbol`` over the
    last RISK_WINDOW trading dates up to ``day``: plain pandas, population moments."""
    dates = _df(t, "SELECT date FROM trading_dates WHERE date <= :d ORDER BY date DESC "
                   "LIMIT :n", d=day, n=RISK_WINDOW + 1)["date"].sort_values().tolist()
    bars = _df(t, "SELECT date, close FROM bars_daily WHERE symbol = :s AND date >= :a "
                  "AND date <= :d", s=symbol, a=dates[0], d=day).set_index("date")["close"]
    close = bars.reindex(dates)
    ret = (close / close.ffill().shift(1) - 1).where(close.notna()).iloc[1:]
    mkt = _df(t, "SELECT date, ew_return FROM market_daily WHERE date >= :a AND date <= :d",
              a=dates[1], d=day).set_index("date")["ew_return"]
    j = pd.concat([ret.rename("r"), mkt.reindex(ret.index).rename("m")], axis=1).dropna()
    if len(j) < RISK_MIN_OBS:
        return np.nan, np.nan, len(j)
    beta = ((j.r - j.r.mean()) * (j.m - j.m.mean())).mean() / j.m.var(ddof=0)
    resid = np.sqrt((j.r.var(ddof=0) - beta ** 2 * j.m.var(ddof=0)) * 252)
    return float(beta), float(resid), len(j)


def test_scan_risk_columns_equal_a_recomputation(demo_target):
    out = run_scan(demo_target, ScanParams(top=5))
    df = _df(demo_target, "SELECT symbol, ics, tech_rating, alpha_10d, beta_60, resid_vol_60, "
                          "ics_per_risk, tech_per_risk, alpha_ir FROM scan_results "
                          "WHERE run_id = :r ORDER BY rank", r=out.run_id)
    assert len(df) == out.counts["passed"] and df["resid_vol_60"].notna().mean() > 0.95
    assert "risk" in out.timings_s
    rows = df.set_index("symbol")
    for sym in ("AAPL", "MSFT", "XOM"):
        beta, resid, n = _by_hand(demo_target, out.as_of, sym)
        assert n >= RISK_MIN_OBS
        assert rows.loc[sym, "beta_60"] == pytest.approx(beta, rel=1e-9)
        assert rows.loc[sym, "resid_vol_60"] == pytest.approx(resid, rel=1e-9)
    # a listing younger than RISK_MIN_OBS returns: every risk column NULL
    short = df[df["resid_vol_60"].isna()]
    assert len(short) >= 1
    for sym in short["symbol"]:
        assert _by_hand(demo_target, out.as_of, sym)[2] < RISK_MIN_OBS
        assert short.set_index("symbol").loc[sym, ["beta_60", "ics_per_risk", "tech_per_risk",
                                                   "alpha_ir"]].isna().all()
    # the scores per unit of risk are risk.py's functions of the stored columns
    rv = df["resid_vol_60"].to_numpy(np.float64)
    for col, score in (("ics_per_risk", "ics"), ("tech_per_risk", "tech_rating")):
        np.testing.assert_allclose(df[col], per_unit_risk(df[score].to_numpy(np.float64), rv),
                                   rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(df["alpha_ir"],
                               alpha_per_risk(df["alpha_10d"].to_numpy(np.float64), rv, 10),
                               rtol=1e-12, equal_nan=True)
    # the views show the new columns; screens sort and filter by them
    view = _df(demo_target, "SELECT ics_per_risk FROM latest_scan_results LIMIT 1")
    assert list(view.columns) == ["ics_per_risk"]
    sel = run_scan(demo_target, ScanParams(top=5, where="ics_per_risk > 1",
                                           sort="ics_per_risk"), save=False).results
    assert len(sel) and (sel["ics_per_risk"] > 1).all()
    assert sel["ics_per_risk"].is_monotonic_decreasing
