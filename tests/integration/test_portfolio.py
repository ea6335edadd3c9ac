"""Portfolios from stored scan runs and backtests over point-in-time scans, on the bundled
real data: stored weights, the bars-up-to-as-of covariance reproduced with skfolio directly,
and a two-rebalance backtest recomputed by hand from the bars file."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from technic.jobs.ingest import ingest_files
from technic.jobs.portfolio import (
    BacktestParams,
    build_portfolio,
    run_backtest,
    write_backtest_report,
)
from technic.jobs.refresh import backfill_features
from technic.jobs.scan import ScanParams, run_scan
from technic.portfolio.weights import InfeasibleCapsError, PortfolioSpec
from technic.store.db import get_engine
from technic.store.portfolio import read_backtest_equity, read_portfolio_weights
from tests.conftest import BUNDLED

#: Signal dates of the hand-computed backtest: the Fridays 2025-06-06 and 06-13 (executed on
#: Monday 06-09 and 06-16); the signal of Friday 06-20 would execute after the end.
SIGNALS = (dt.date(2025, 6, 6), dt.date(2025, 6, 13))
EXECS = (dt.date(2025, 6, 9), dt.date(2025, 6, 16))
START, END = dt.date(2025, 6, 2), dt.date(2025, 6, 20)


@pytest.fixture(scope="module")
def pf_target(db_url):
    """Bundled real bars with the feature rows of the two signal dates."""
    from tests.conftest import make_target

    t = make_target(db_url, "portfolio")
    ingest_files(t, BUNDLED)
    for d in SIGNALS:
        backfill_features(t, d, d)
    return t


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    b = pd.read_parquet(BUNDLED / "bars_daily.parquet",
                        columns=["symbol", "date", "open", "close"])
    b["date"] = pd.to_datetime(b["date"])
    return b


@pytest.fixture(scope="module")
def scans(pf_target):
    """The scan (the real one, stored) of each signal date."""
    return {d: run_scan(pf_target, ScanParams(as_of=d)) for d in SIGNALS}


def _count(t, table: str) -> int:
    with get_engine(t).connect() as c:
        return int(c.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


def test_portfolio_of_a_run_uses_bars_up_to_its_date(pf_target, scans, bars):
    from skfolio import RiskMeasure
    from skfolio.moments import LedoitWolf
    from skfolio.optimization import MeanRisk
    from skfolio.prior import EmpiricalPrior

    run = scans[SIGNALS[1]]
    o = build_portfolio(pf_target, run.run_id,
                        PortfolioSpec("min-variance", top=10, max_weight=0.25, lookback=60))
    w = o.weights
    assert w["symbol"].tolist() == run.results["symbol"].head(10).tolist()
    assert w["weight"].sum() == pytest.approx(1.0, abs=1e-12) and w["weight"].max() <= 0.25 + 1e-6
    stored = read_portfolio_weights(pf_target, o.portfolio_id)
    assert stored["symbol"].tolist() == w["symbol"].tolist()
    np.testing.assert_allclose(stored["weight"], w["weight"], rtol=1e-12)
    # the same problem from the bars file: the 61 closes up to the run's date, skfolio direct
    c = bars[bars["symbol"].isin(w["symbol"])].pivot(index="date", columns="symbol",
                                                     values="close")
    c = c.loc[:pd.Timestamp(SIGNALS[1])].iloc[-61:][w["symbol"].tolist()]
    x = c.pct_change(fill_method=None).iloc[1:].fillna(0.0).to_numpy()
    ref = MeanRisk(risk_measure=RiskMeasure.VARIANCE, max_weights=0.25,
                   prior_estimator=EmpiricalPrior(covariance_estimator=LedoitWolf())).fit(x)
    np.testing.assert_allclose(w["weight"].to_numpy(), ref.weights_, atol=1e-6)


def test_max_sharpe_takes_the_runs_alphas(pf_target, scans):
    run = scans[SIGNALS[0]]
    if run.results["alpha_5d"].isna().all():
        pytest.skip("no alpha models in TECHNIC_MODEL_DIR: the run has no alphas")
    o = build_portfolio(pf_target, run.run_id, PortfolioSpec("max-sharpe", top=8,
                                                             max_weight=0.3, sector_cap=0.6))
    r = run.results.set_index("symbol").loc[o.weights["symbol"]]
    mu = np.nanmean(np.vstack([r["alpha_5d"] / 5, r["alpha_10d"] / 10]), axis=0)
    np.testing.assert_allclose(o.weights["expected_return_daily"], mu, rtol=1e-12)
    assert o.expected_return_daily == pytest.approx(float(mu @ o.weights["weight"]))
    assert o.weights.groupby(o.weights["sector"].fillna("-"))["weight"].sum().max() <= 0.6 + 1e-6


def test_portfolio_errors_store_nothing(pf_target, scans):
    before = _count(pf_target, "portfolios")
    with pytest.raises(LookupError, match="no scan run 987654"):
        build_portfolio(pf_target, 987654, PortfolioSpec())
    with pytest.raises(InfeasibleCapsError, match="caps are infeasible"):
        build_portfolio(pf_target, scans[SIGNALS[0]].run_id,
                        PortfolioSpec("hrp", top=5, max_weight=0.1))
    assert _count(pf_target, "portfolios") == before


def _hand_book(bars: pd.DataFrame, books: list[tuple[dt.date, list[str]]], end: dt.date,
               cost: float) -> pd.Series:
    """Equal-weight book traded at the open of each execution session, marked at closes."""
    syms = sorted({s for _, names in books for s in names})
    b = bars[bars["symbol"].isin(syms)]
    op = b.pivot(index="date", columns="symbol", values="open")
    cl = b.pivot(index="date", columns="symbol", values="close").ffill()
    days = cl.loc[pd.Timestamp(books[0][0]):pd.Timestamp(end)].index
    shares = pd.Series(0.0, index=syms)
    value = 1.0
    out = {}
    for d in days:
        for ex, names in books:
            if pd.Timestamp(ex) == d:
                px = op.loc[d].fillna(cl.shift(1).loc[d])
                held = shares * px
                value = held.sum() if held.sum() > 0 else 1.0
                target = pd.Series(0.0, index=syms)
                target[names] = value / len(names)
                paid = cost * (target - held).abs().sum()
                shares = target * (value - paid) / value / px
                shares = shares.fillna(0.0)
        out[d] = float((shares * cl.loc[d]).sum())
    return pd.Series(out)


def test_two_rebalance_backtest_by_hand(pf_target, scans, bars, tmp_path):
    o = run_backtest(pf_target, BacktestParams(START, END, PortfolioSpec("equal", top=5),
                                               "weekly", 10.0))
    assert o.rebalances == list(zip(SIGNALS, EXECS, strict=True))
    # each rebalance holds the top 5 of the real scan of its signal date
    tops = [scans[d].results["symbol"].head(5).tolist() for d in SIGNALS]
    for ex, top in zip(EXECS, tops, strict=True):
        assert sorted(o.holdings.loc[o.holdings["exec_date"] == ex, "symbol"]) == sorted(top)
    hand = _hand_book(bars, list(zip(EXECS, tops, strict=True)), END, 0.001)
    got = o.equity.set_index("date")["equity"]
    assert list(got.index) == list(hand.index)  # 9 sessions: Juneteenth (06-19) closed
    assert len(got) == 9
    np.testing.assert_allclose(got.to_numpy(), hand.to_numpy(), rtol=1e-10)
    # the benchmark: every symbol that passed each scan's filter, equal weight
    unis = [scans[d].results["symbol"].tolist() for d in SIGNALS]
    bench = _hand_book(bars, list(zip(EXECS, unis, strict=True)), END, 0.001)
    np.testing.assert_allclose(o.equity["benchmark_equity"], bench.to_numpy(), rtol=1e-9)
    r = hand / hand.shift(1).fillna(1.0) - 1
    assert o.metrics["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * np.sqrt(252),
                                                rel=1e-8)
    assert o.metrics["total_return"] == pytest.approx(hand.iloc[-1] - 1, rel=1e-10)
    assert o.metrics["mean_turnover"] > 0 and o.metrics["rebalances"] == 2
    # stored, and reported as Markdown + PNG
    stored = read_backtest_equity(pf_target, o.backtest_id)
    np.testing.assert_allclose(stored["equity"], got.to_numpy(), rtol=1e-12)
    md, png = write_backtest_report(o, tmp_path / "bt.md")
    assert "equal-weight universe" in md.read_text() and png.stat().st_size > 10_000


def test_backtest_errors_are_one_line(pf_target):
    with pytest.raises(LookupError, match=r"run `technic features backfill --start "
                                          r"2025-05-02 --end 2025-05-30` first"):
        run_backtest(pf_target, BacktestParams(dt.date(2025, 5, 1), END))
    with pytest.raises(ValueError, match="no weekly rebalance between"):
        run_backtest(pf_target, BacktestParams(dt.date(2025, 6, 12), dt.date(2025, 6, 13)))
    with pytest.raises(ValueError, match="start 2025-06-20 is after end 2025-06-02"):
        BacktestParams(END, START)
    with pytest.raises(ValueError, match="cost-bps must be between 0 and 1000"):
        BacktestParams(START, END, cost_bps=-5)
