"""Portfolio weights and backtest arithmetic, without a database: weights sum to 1, meet the
caps, equal skfolio called directly on a real fixture; caps, schedules, the simulated book
and its metrics checked against hand-computed values."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from technic.portfolio.backtest import (
    daily_returns,
    drawdown,
    metrics,
    signal_dates,
    simulate,
)
from technic.portfolio.weights import (
    METHODS,
    InfeasibleCapsError,
    PortfolioSpec,
    apply_caps,
    check_caps,
    expected_returns_from_alphas,
    investable_capacity,
    optimize,
)
from tests.conftest import BUNDLED

AS_OF = pd.Timestamp("2025-07-09")


@pytest.fixture(scope="module")
def fixture_returns() -> tuple[pd.DataFrame, list[str]]:
    """Daily returns of 12 real S&P 500 names over the 126 sessions to 2025-07-09 (bundled
    bars) and their sectors: the fixture every method is checked on."""
    syms = ["AAPL", "MSFT", "NVDA", "JPM", "BAC", "XOM", "CVX", "JNJ", "PFE", "KO", "PG",
            "AMZN"]
    b = pd.read_parquet(BUNDLED / "bars_daily.parquet", columns=["symbol", "date", "close"],
                        filters=[("symbol", "in", syms)])
    b["date"] = pd.to_datetime(b["date"])
    c = b.pivot(index="date", columns="symbol", values="close").sort_index()
    c = c.loc[:AS_OF].iloc[-127:][syms]
    u = pd.read_parquet(BUNDLED / "universe.parquet", columns=["symbol", "sector"])
    sectors = u.set_index("symbol").loc[syms, "sector"].tolist()
    return c.pct_change(fill_method=None).iloc[1:], sectors


def _mu(n: int) -> np.ndarray:
    return np.linspace(-0.001, 0.002, n)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("caps", [(None, None), (0.15, 0.3)])
def test_weights_sum_to_one_and_meet_the_caps(fixture_returns, method, caps):
    rets, sectors = fixture_returns
    pw = optimize(rets, sectors, method, *caps, expected_daily=_mu(rets.shape[1]))
    w = pw.weights
    assert list(w.index) == list(rets.columns)
    assert w.sum() == pytest.approx(1.0, abs=1e-12) and (w >= 0).all()
    if caps[0] is not None:
        assert w.max() <= caps[0] + 1e-6
        assert w.groupby(np.array(sectors, dtype=object)).sum().max() <= caps[1] + 1e-6
    assert 0 <= pw.shrinkage <= 1 and 0 < pw.volatility_annual < 1


def _library(method, rets, mu=None, **kw):
    """skfolio called directly, as its documentation shows (the reference result)."""
    from skfolio import RiskMeasure
    from skfolio.moments import BaseMu, LedoitWolf
    from skfolio.optimization import (
        EqualWeighted,
        HierarchicalRiskParity,
        MeanRisk,
        ObjectiveFunction,
        RiskBudgeting,
    )
    from skfolio.prior import EmpiricalPrior

    class Given(BaseMu):
        def __init__(self, mu=None):
            self.mu = mu

        def fit(self, X, y=None):  # noqa: N803
            self.mu_ = np.asarray(self.mu)
            return self

    prior = EmpiricalPrior(covariance_estimator=LedoitWolf(),
                           **({"mu_estimator": Given(mu)} if mu is not None else {}))
    est = {"hrp": lambda: HierarchicalRiskParity(risk_measure=RiskMeasure.VARIANCE,
                                                 prior_estimator=prior, **kw),
           "min-variance": lambda: MeanRisk(risk_measure=RiskMeasure.VARIANCE,
                                            prior_estimator=prior, **kw),
           "max-sharpe": lambda: MeanRisk(objective_function=ObjectiveFunction.MAXIMIZE_RATIO,
                                          risk_measure=RiskMeasure.VARIANCE,
                                          prior_estimator=prior, **kw),
           "risk-parity": lambda: RiskBudgeting(risk_measure=RiskMeasure.VARIANCE,
                                                prior_estimator=prior, **kw),
           "equal": lambda: EqualWeighted()}[method]()
    return est.fit(rets.fillna(0.0).to_numpy()).weights_


@pytest.mark.parametrize("method", METHODS)
def test_weights_reproduce_the_library_on_the_fixture(fixture_returns, method):
    rets, sectors = fixture_returns
    mu = _mu(rets.shape[1]) if method == "max-sharpe" else None
    pw = optimize(rets, sectors, method, expected_daily=mu)
    np.testing.assert_allclose(pw.weights.to_numpy(), _library(method, rets, mu), atol=1e-6)
    # the covariance is scikit-learn's Ledoit-Wolf estimate of the same returns
    from sklearn.covariance import ledoit_wolf

    cov, shrink = ledoit_wolf(rets.to_numpy())
    np.testing.assert_allclose(pw.covariance.to_numpy(), cov, rtol=1e-10)
    assert pw.shrinkage == pytest.approx(shrink)


def test_convex_caps_are_constraints_of_the_library_problem(fixture_returns):
    rets, sectors = fixture_returns
    g = np.array(sectors, dtype=object)
    labels = np.unique(g)
    a = (g[None, :] == labels[:, None]).astype(float)
    ref = _library("min-variance", rets, max_weights=0.15, left_inequality=a,
                   right_inequality=np.full(len(labels), 0.3))
    pw = optimize(rets, sectors, "min-variance", 0.15, 0.3)
    np.testing.assert_allclose(pw.weights.to_numpy(), ref, atol=1e-6)
    assert not pw.capped_after


def test_caps_by_hand():
    # name cap 0.4 on A1, sector A (0.4 + 0.3) scaled to 0.6, the freed 0.2 to B and C
    w = apply_caps(np.array([0.5, 0.3, 0.1, 0.1]), ["A", "A", "B", "C"], 0.4, 0.6)
    np.testing.assert_allclose(w, [0.4 * 0.6 / 0.7, 0.3 * 0.6 / 0.7, 0.2, 0.2], atol=1e-12)
    # missing sectors are one group
    w = apply_caps(np.array([0.4, 0.4, 0.2]), [None, np.nan, "X"], None, 0.5)
    np.testing.assert_allclose(w, [0.25, 0.25, 0.5], atol=1e-12)
    assert investable_capacity(["A"] * 10, 0.1, None) == pytest.approx(1.0)
    check_caps(["A"] * 10, 0.1, None)  # exactly feasible


def test_infeasible_caps_are_one_clear_error(fixture_returns):
    rets, sectors = fixture_returns
    with pytest.raises(InfeasibleCapsError, match=r"caps are infeasible: with 12 names .* at "
                                                  r"most 60.0% of the book"):
        optimize(rets, sectors, "hrp", max_weight=0.05)
    with pytest.raises(InfeasibleCapsError, match="raise --max-weight or --sector-cap"):
        apply_caps(np.ones(4), ["A", "A", "B", "B"], None, 0.4)


@pytest.mark.parametrize("kw, msg", [
    ({"method": "markowitz"}, "unknown method 'markowitz'; use one of hrp, min-variance"),
    ({"top": 1}, "top must be >= 2"),
    ({"max_weight": 0.0}, r"max-weight must be a fraction in \(0, 1\], got 0.0"),
    ({"sector_cap": 1.5}, r"sector-cap must be a fraction in \(0, 1\], got 1.5"),
    ({"lookback": 5}, "lookback must be between 21 and 2520"),
])
def test_bad_parameters_are_one_line_errors(kw, msg):
    with pytest.raises(ValueError, match=msg) as e:
        PortfolioSpec(**kw)
    assert "\n" not in str(e.value)


def test_max_sharpe_needs_positive_alphas(fixture_returns):
    rets, sectors = fixture_returns
    with pytest.raises(ValueError, match="needs expected returns: the run has no alphas"):
        optimize(rets, sectors, "max-sharpe", expected_daily=np.full(12, np.nan))
    with pytest.raises(ValueError, match="at least one positive expected return"):
        optimize(rets, sectors, "max-sharpe", expected_daily=np.full(12, -0.001))
    with pytest.raises(ValueError, match="fewer than 20 daily returns"):
        optimize(rets.iloc[-10:], sectors, "hrp")


def test_expected_returns_from_alphas_by_hand():
    mu = expected_returns_from_alphas(np.array([0.01, np.nan, 0.02, np.nan]),
                                      np.array([0.03, 0.04, np.nan, np.nan]))
    np.testing.assert_allclose(mu[:3], [(0.002 + 0.003) / 2, 0.004, 0.004])
    assert np.isnan(mu[3])


def test_signal_dates_follow_the_calendar():
    # June 2025: Juneteenth (Thu 19) closed, so that week's signal is Friday 20; Good Friday
    # 2025-04-18 closed, so that week's signal is Thursday 17
    days = pd.bdate_range("2025-04-14", "2025-06-30")
    days = [d.date() for d in days if d.date() not in (dt.date(2025, 4, 18),
                                                        dt.date(2025, 5, 26),
                                                        dt.date(2025, 6, 19))]
    weekly = signal_dates(days, "weekly")
    assert weekly[0] == dt.date(2025, 4, 17) and dt.date(2025, 6, 20) in weekly
    assert dt.date(2025, 6, 18) not in weekly and weekly[-1] == dt.date(2025, 6, 30)
    assert signal_dates(days, "monthly") == [dt.date(2025, 4, 30), dt.date(2025, 5, 30),
                                             dt.date(2025, 6, 30)]
    with pytest.raises(ValueError, match="unknown rebalance frequency 'daily'"):
        signal_dates(days, "daily")


def test_simulated_book_by_hand():
    idx = pd.to_datetime(["2025-01-02", "2025-01-03", "2025-01-06", "2025-01-07"])
    opens = pd.DataFrame({"A": [10, 11, 12, 13.0], "B": [20, np.nan, 18, 19.0]}, index=idx)
    closes = pd.DataFrame({"A": [10.5, 11.5, 12.5, 13.5], "B": [21, 19.5, 18.5, 20.0]},
                          index=idx)
    t1, t2 = idx[1], idx[3]
    sim = simulate(opens, closes, {t1: pd.Series({"A": 0.5, "B": 0.5}),
                                   t2: pd.Series({"A": 1.0})}, cost_bps=10)
    c = 0.001
    # day 1: buy from cash at the open; B has no bar, so it trades at its last close (21)
    post = 1 - c * 1.0
    sa, sb = 0.5 * post / 11, 0.5 * post / 21
    assert sim.equity.iloc[0] == 1.0
    assert sim.equity.iloc[1] == pytest.approx(sa * 11.5 + sb * 19.5, rel=1e-12)
    assert sim.equity.iloc[2] == pytest.approx(sa * 12.5 + sb * 18.5, rel=1e-12)
    # day 3: sell B, put everything in A at the open
    v = sa * 13 + sb * 19
    traded = abs(v - sa * 13) + abs(0 - sb * 19)
    a2 = (v - c * traded) / 13
    assert sim.equity.iloc[3] == pytest.approx(a2 * 13.5, rel=1e-12)
    assert sim.turnover[t1] == pytest.approx(1.0) and \
        sim.turnover[t2] == pytest.approx(traded / v)
    assert sim.cost.sum() == pytest.approx(c * (1.0 + traded))


def test_metrics_by_hand():
    eq = pd.Series([1.01, 0.99, 1.02, 1.00, 1.03],
                   index=pd.bdate_range("2025-01-06", periods=5))
    r = np.array([0.01, 0.99 / 1.01 - 1, 1.02 / 0.99 - 1, 1.00 / 1.02 - 1, 1.03 / 1.00 - 1])
    np.testing.assert_allclose(daily_returns(eq).to_numpy(), r, rtol=1e-12)
    m = metrics(eq, pd.Series([1.0, 0.5]), pd.Series([0.001, 0.0005]))
    assert m["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * np.sqrt(252), rel=1e-9)
    assert m["total_return"] == pytest.approx(0.03)
    assert m["annual_return"] == pytest.approx(1.03 ** (252 / 5) - 1, rel=1e-9)
    assert m["max_drawdown"] == pytest.approx(0.99 / 1.01 - 1) == drawdown(eq).min()
    assert m["mean_turnover"] == 0.75 and m["total_cost"] == pytest.approx(0.0015)
