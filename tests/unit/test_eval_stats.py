"""The evaluation protocol's statistics: Newey-West t equals statsmodels' HAC, the block
bootstrap covers the mean, shuffled returns give |IC| ≈ 0, spreads after costs, the locked
design/test split never overlaps, risk per unit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from technic.scoring.protocol import LOCKED_TEST_MONTHS, locked_split
from technic.scoring.risk import alpha_per_risk, market_beta_residual_vol, per_unit_risk
from technic.scoring.stats import (
    block_bootstrap_ci,
    decile_spreads,
    newey_west_t,
    rank_ic,
)


def _ma_series(n: int = 400, h: int = 10, seed: int = 1) -> np.ndarray:
    """An MA(h-1) series with a small mean: what overlapping h-bar ICs look like."""
    e = np.random.default_rng(seed).normal(0.0, 0.1, n + h)
    return 0.01 + np.convolve(e, np.ones(h) / h, mode="valid")[:n]


@pytest.mark.parametrize("lag", [0, 1, 5, 10])
def test_newey_west_equals_statsmodels_hac(lag: int) -> None:
    sm = pytest.importorskip("statsmodels.api")
    x = _ma_series()
    m, se, t = newey_west_t(x, lag)
    fit = sm.OLS(x, np.ones(len(x))).fit(cov_type="HAC",
                                         cov_kwds={"maxlags": lag, "use_correction": False})
    assert m == pytest.approx(fit.params[0], rel=1e-12)
    assert se == pytest.approx(fit.bse[0], rel=1e-10)
    assert t == pytest.approx(fit.tvalues[0], rel=1e-10)


def test_newey_west_is_below_naive_t_on_overlapping_series() -> None:
    x = _ma_series()
    naive = newey_west_t(x, 0)[2]
    assert newey_west_t(x, 10)[2] < naive / 1.5  # the overlap inflates the naive t
    assert np.isnan(newey_west_t([1.0, 2.0], 3)[2])


def test_block_bootstrap_ci_brackets_the_mean_and_is_reproducible() -> None:
    x = _ma_series()
    lo, hi = block_bootstrap_ci(x, 10, n_boot=500, seed=3)
    assert lo < x.mean() < hi
    assert (lo, hi) == block_bootstrap_ci(x, 10, n_boot=500, seed=3)
    # wider than the i.i.d. interval of the same series (blocks keep the autocorrelation)
    lo1, hi1 = block_bootstrap_ci(x, 1, n_boot=500, seed=3)
    assert hi - lo > hi1 - lo1


def test_shuffled_returns_give_no_rank_ic() -> None:
    rng = np.random.default_rng(0)
    dates = np.repeat(np.arange(300), 200)
    score = rng.normal(size=dates.size)
    fwd = 0.05 * score + rng.normal(size=dates.size)  # a real signal
    ic = rank_ic(dates, score, fwd)
    assert ic.mean() > 0.03
    shuffled = fwd.copy()
    for d in range(300):  # permute returns across symbols within each date
        sl = slice(d * 200, (d + 1) * 200)
        shuffled[sl] = rng.permutation(shuffled[sl])
    ic0 = rank_ic(dates, score, shuffled)
    assert abs(ic0.mean()) < 0.006
    assert abs(newey_west_t(ic0.to_numpy(), 5)[2]) < 3
    # rank IC equals scipy's Spearman on one date
    from scipy.stats import spearmanr
    assert ic.iloc[7] == pytest.approx(spearmanr(score[1400:1600], fwd[1400:1600])[0])


def test_decile_spreads_costs_follow_turnover() -> None:
    dates = np.repeat(np.arange(6), 20)
    symbols = np.tile([f"S{i}" for i in range(20)], 6)
    score = np.tile(np.arange(20.0), 6)  # the same names every date: no turnover after h
    fwd = np.tile(np.arange(20.0) / 100, 6)
    sp = decile_spreads(dates, symbols, score, fwd, horizon=2, cost_bps=10)
    gross_tb = (18.5 - 0.5) / 100
    assert sp["top_bottom"].iloc[0] == pytest.approx(gross_tb)
    assert sp["top_median"].iloc[0] == pytest.approx(0.185 - 0.095)
    # the first h dates are bought from cash (turnover 1 per leg), later ones trade nothing
    assert sp["top_bottom_net"].iloc[0] == pytest.approx(gross_tb - 2 * 0.001 * 2)
    assert sp["top_bottom_net"].iloc[3] == pytest.approx(gross_tb)
    assert sp["top_median_net"].iloc[1] == pytest.approx(0.09 - 0.002)
    assert sp["turnover_top"].iloc[2:].eq(0).all()


def test_locked_split_design_and_test_never_overlap() -> None:
    cal = pd.bdate_range("2022-07-11", "2025-07-09")
    s = locked_split(cal, max_horizon=10)
    assert s.test_end == cal[-1].date() and s.test_start > s.design_end
    assert (pd.Timestamp(s.test_end) - pd.DateOffset(months=LOCKED_TEST_MONTHS)).date() \
        < s.test_start
    labels = s.period(cal)
    i_test = np.flatnonzero(labels == "test")[0]
    i_design = np.flatnonzero(labels == "design")
    # every design date's 10-bar forward window ends before the first test date
    assert i_design.max() + 10 < i_test
    assert set(labels) == {"design", "test", ""}
    assert not ((labels == "design") & (labels == "test")).any()
    # 2014-16: its own split, from its own dates
    s2 = locked_split(pd.bdate_range("2014-01-02", "2016-12-30"), 10)
    assert str(s2.test_start) == "2015-12-31" and s2.design_end.year == 2015
    with pytest.raises(ValueError, match="too few"):
        locked_split(pd.bdate_range("2024-01-01", "2024-06-30"), 10)


def test_residual_vol_and_beta_recover_a_known_model() -> None:
    rng = np.random.default_rng(0)
    m = rng.normal(0, 0.01, 300)
    eps = rng.normal(0, 0.02, (300, 3))
    r = np.column_stack([0.5 * m, 1.0 * m, 2.0 * m]) + eps
    r[:50, 2] = np.nan  # a late listing
    beta, resid = market_beta_residual_vol(r, m, window=250, min_obs=200)
    assert beta[-1] == pytest.approx([0.5, 1.0, 2.0], abs=0.35)
    assert resid[-1] == pytest.approx(0.02 * np.sqrt(252), rel=0.15)
    assert np.isnan(beta[100, 2]) and np.isnan(beta[:249, 0]).all()


def test_per_unit_risk_prefers_the_calmer_of_equal_scores() -> None:
    s = np.array([1.0, 1.0, 0.0, -1.0, np.nan])
    v = np.array([0.2, 0.4, 0.3, 0.3, 0.3])
    out = per_unit_risk(s, v)
    assert out[0] > out[1] > 0 and np.isnan(out[4])
    assert alpha_per_risk(np.array([0.01]), np.array([0.0]), 5)[0] != 0.0  # NaN, not inf
    assert alpha_per_risk(np.array([0.01]), np.array([0.2]), 63)[0] == pytest.approx(0.1)


def test_order_by_ranks_descending_with_nan_last_and_ties_by_symbol() -> None:
    from technic.scoring.rank import DEFAULT_RANK, order_by

    df = pd.DataFrame({"symbol": ["B", "A", "C", "D"], "ics": [50.0, 50.0, np.nan, 70.0],
                       "rank": [1, 2, 3, 4]})
    out = order_by(df, "ics")
    assert out["symbol"].tolist() == ["D", "A", "B", "C"]
    assert out["rank"].tolist() == [1, 2, 3, 4]
    with pytest.raises(KeyError, match="no such column"):
        order_by(df, "nope")
    assert isinstance(DEFAULT_RANK, str)


def test_choose_default_reads_design_rows_only() -> None:
    from technic.jobs.study import choose_default

    rows = []
    for ds in ("a", "b"):
        for s, ic, t, net in (("ics", 0.05, 2.5, 0.001), ("tech_rating", 0.03, 1.0, 0.002),
                              ("alpha_score", 0.06, 3.0, -0.001)):
            for h in (5, 10):
                rows.append({"data_set": ds, "period": "design", "score": s, "horizon": h,
                             "mean_rank_ic": ic, "nw_t": t, "top_median_net": net})
    design = pd.DataFrame(rows)
    assert choose_default(design)[:2] == ("ics", True)
    # locked-test rows, however good for another score, change nothing
    test = design.assign(period="test")
    test.loc[test["score"] == "tech_rating", ["mean_rank_ic", "nw_t", "top_median_net"]] = \
        (0.5, 50.0, 0.1)
    assert choose_default(pd.concat([design, test])) == choose_default(design)
    # nothing clears: the least harm (best worst-design-period long-only net spread)
    weak = design.assign(nw_t=1.0)
    s, cleared, reason = choose_default(weak)
    assert (s, cleared) == ("tech_rating", False) and "least harm" in reason
