"""The scan stores ICS, MERIT, the factors and the regime (migration 7), as docs/scoring.md says."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from technic.jobs.scan import ScanParams, run_scan
from technic.scoring.merit import MERIT_WEIGHTS
from technic.store.db import get_engine
from technic.store.market import market_returns, update_market_daily
from tests.conftest import BUNDLED


def _q(t, sql, **kw):
    with get_engine(t).connect() as c:
        return c.execute(sa.text(sql), kw).all()


def test_scan_stores_ics_merit_and_regime(demo_target):
    out = run_scan(demo_target, ScanParams(top=5))
    label, facts = _q(demo_target, "SELECT regime, regime_facts FROM scan_runs "
                                   "WHERE run_id = :r", r=out.run_id)[0]
    assert label in MERIT_WEIGHTS and set(facts) >= {"trend_ratio", "breadth",
                                                      "vol_percentile", "index_vol_20"}
    assert 0 <= facts["breadth"] <= 1 and facts["index_dates"] >= 271
    df = pd.DataFrame(_q(demo_target, "SELECT tech_rating, ics, merit, alpha_score, regime, "
                                      "ics_size, rs_sector_63d FROM scan_results "
                                      "WHERE run_id = :r", r=out.run_id),
                      columns=["tech", "ics", "merit", "alpha", "regime", "size", "rs"])
    assert len(df) == out.counts["passed"] and (df["regime"] == label).all()
    for c in ("ics", "merit", "alpha"):
        assert df[c].between(0, 100).all(), c
    w = MERIT_WEIGHTS[label]
    np.testing.assert_allclose(df["merit"], w["tech"] * df["tech"] + w["ics"] * df["ics"]
                               + w["alpha"] * df["alpha"], rtol=1e-12)
    assert df["size"].notna().mean() > 0.5  # market caps are known for most of the subset
    assert "regime" in out.timings_s
    view = _q(demo_target, "SELECT count(*), count(merit) FROM latest_scan_results")[0]
    assert view[0] == view[1] == len(df)


def test_market_index_return_by_hand(demo_target):
    update_market_daily(demo_target, dt.date(2025, 7, 9))
    s = market_returns(demo_target, dt.date(2025, 7, 9), last_n=None, update=False)
    bars = pd.read_parquet(BUNDLED / "bars_daily.parquet")
    uni = pd.read_parquet(BUNDLED / "universe.parquet")
    bars = bars[~bars["symbol"].isin(uni.loc[uni["is_etf"] == True, "symbol"])]  # noqa: E712
    bars = bars.sort_values(["symbol", "date"])
    bars["prev"] = bars.groupby("symbol")["close"].shift(1)
    day = bars[(bars["date"].astype(str) == "2025-06-02") & (bars["prev"] >= 5)]
    expect = (day["close"] / day["prev"] - 1).clip(-0.5, 1.0).mean()
    assert s.loc[pd.Timestamp("2025-06-02")] == pytest.approx(expect, rel=1e-9)
    # idempotent: nothing new to compute
    assert update_market_daily(demo_target, dt.date(2025, 7, 9)) == 0
    assert s.index.is_monotonic_increasing and len(s) > 400


def test_scan_regime_equals_the_full_history_definition(demo_target):
    """The scan reads only the last 300 index dates; the evaluation uses the whole history.
    Both must give the same trend ratio, volatility percentile and label."""
    from technic.scoring.regime import breadth, classify, index_series
    from technic.store.features import read_features
    from technic.universe import UniverseRules, apply_rules

    day = dt.date(2025, 7, 9)  # the demo store has features of its last date only
    out = run_scan(demo_target, ScanParams(as_of=day))
    facts = _q(demo_target, "SELECT regime_facts FROM scan_runs WHERE run_id = :r",
               r=out.run_id)[0][0]
    full = index_series(market_returns(demo_target, day, last_n=None)).iloc[-1]
    assert facts["trend_ratio"] == pytest.approx(full["trend_ratio"], rel=1e-9)
    assert facts["vol_percentile"] == pytest.approx(full["vol_percentile"], rel=1e-12)
    feats = read_features(demo_target, day)
    keep, _ = apply_rules(feats, UniverseRules())
    b = breadth(feats, keep)
    assert facts["breadth"] == pytest.approx(b)
    assert facts["label"] == classify(full["trend_ratio"], b, full["vol_percentile"])
