"""docs/scoring.md by hand: percentile ranks and TechRating on a tiny cross-section."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from technic.scoring.cross_section import percentile_rank
from technic.scoring.techrating import WEIGHTS, tech_rating


def test_percentile_rank_ties_mask_and_nan():
    x = np.array([3.0, 1.0, 3.0, np.nan, 2.0, 10.0])
    m = np.array([True, True, True, True, True, False])
    r = percentile_rank(x, m)
    # finite masked values 3, 1, 3, 2 → ranks 3.5, 1, 3.5, 2 over 4
    np.testing.assert_allclose(r[:5], [3.5 / 4, 1 / 4, 3.5 / 4, np.nan, 2 / 4])
    assert np.isnan(r[5])
    with pytest.raises(ValueError):
        percentile_rank(x, m[:3])


def _frame() -> pd.DataFrame:
    # three symbols; B has no sma_200 (short history), everything else defined
    return pd.DataFrame({
        "close": [110.0, 50.0, 20.0], "sma_50": [100.0, 55.0, 20.0],
        "sma_200": [90.0, np.nan, 25.0], "adx_14": [30.0, 20.0, 10.0],
        "dist_52w_high": [-0.01, -0.20, -0.40], "ret_12_1": [0.30, -0.10, 0.05],
        "ret_126d": [0.20, 0.00, 0.10], "ret_63d": [0.10, -0.05, 0.02],
        "macd_hist": [1.1, -0.5, 0.0], "realized_vol_60": [0.20, 0.40, 0.30],
        "natr_14": [2.0, 4.0, 3.0], "obv_trend_20": [0.3, -0.2, 0.1],
        "rel_volume_20": [1.5, 0.8, 1.0]})


def test_tech_rating_matches_the_documented_formula_by_hand():
    out = tech_rating(_frame())
    # trend inputs (higher is better), percentile rank = rank / n among defined values:
    #   close/sma_50: 1.1, 0.909, 1.0          → A 1, B 1/3, C 2/3
    #   close/sma_200: 1.222, nan, 0.8         → A 1, C 1/2
    #   sma_50/sma_200: 1.111, nan, 0.8        → A 1, C 1/2
    #   adx × sign(close − sma_50): 30, −20, 0 → A 1, B 1/3, C 2/3
    #   dist_52w_high: −0.01, −0.2, −0.4       → A 1, B 2/3, C 1/3
    trend = 100 * np.array([np.mean([1, 1, 1, 1, 1]), np.mean([1 / 3, 1 / 3, 2 / 3]),
                            np.mean([2 / 3, 1 / 2, 1 / 2, 2 / 3, 1 / 3])])
    # momentum: ret_12_1, ret_126d, ret_63d, macd_hist/close → A best in all, B worst in all
    momentum = 100 * np.array([1.0, 1 / 3, 2 / 3])
    # volatility: −rv60 and −natr → A best, B worst
    volatility = 100 * np.array([1.0, 1 / 3, 2 / 3])
    # volume: obv_trend, rel_volume → A best, B worst
    volume = 100 * np.array([1.0, 1 / 3, 2 / 3])
    np.testing.assert_allclose(out["trend_score"], trend)
    np.testing.assert_allclose(out["momentum_score"], momentum)
    np.testing.assert_allclose(out["volatility_score"], volatility)
    np.testing.assert_allclose(out["volume_score"], volume)
    expected = (WEIGHTS["trend"] * trend + WEIGHTS["momentum"] * momentum
                + WEIGHTS["volatility"] * volatility + WEIGHTS["volume"] * volume)
    np.testing.assert_allclose(out["tech_rating"], expected)
    assert sum(WEIGHTS.values()) == pytest.approx(1.0)


def test_mask_excludes_symbols_and_a_component_without_inputs_is_neutral():
    df = _frame()
    out = tech_rating(df, mask=np.array([True, False, True]))
    assert np.isnan(out.loc[1, "tech_rating"])
    df2 = df.assign(obv_trend_20=np.nan, rel_volume_20=np.nan)
    assert (tech_rating(df2)["volume_score"] == 50.0).all()


# --------------------------------------------------------------- cross-sectional operations
from technic.scoring import cross_section as cs  # noqa: E402

X = np.array([1.0, 2.0, 4.0, 8.0, np.nan, 5.0, 3.0, 100.0])
MASK = np.array([True, True, True, True, True, True, True, False])
SECTOR = np.array(["a", "a", "a", "b", "b", "b", None, "a"], dtype=object)


def test_rank_and_percentile_by_group_by_hand():
    # group a (masked, finite): 1, 2, 4 → ranks 1, 2, 3; group b: 8, 5 → 2, 1;
    # row 4 NaN, row 6 no sector, row 7 outside the mask
    r = cs.rank(X, MASK, SECTOR)
    np.testing.assert_array_equal(r[:4], [1, 2, 3, 2])
    assert r[5] == 1 and np.isnan(r[[4, 6, 7]]).all()
    p = cs.percentile_rank(X, MASK, SECTOR)
    np.testing.assert_allclose(p[[0, 1, 2, 3, 5]], [1 / 3, 2 / 3, 1, 1, 1 / 2])
    # no groupby: masked finite values 1, 2, 4, 8, 5, 3 → ranks 1, 2, 4, 6, 5, 3
    np.testing.assert_array_equal(cs.rank(X, MASK)[[0, 1, 2, 3, 5, 6]], [1, 2, 4, 6, 5, 3])
    np.testing.assert_array_equal(cs.rank(X, MASK, ascending=False)[[0, 3]], [6, 1])
    # ties share the average rank, per group
    t = cs.rank(np.array([1.0, 1.0, 1.0, 1.0]), groupby=np.array(["x", "x", "y", "x"]))
    np.testing.assert_array_equal(t, [2, 2, 1, 2])
    # agrees with pandas on a random cross-section
    rng = np.random.default_rng(0)
    v = np.round(rng.normal(size=500), 1)
    g = rng.choice(["p", "q", "r"], 500).astype(object)
    expect = pd.Series(v).groupby(g).rank(pct=True).to_numpy()
    np.testing.assert_allclose(cs.percentile_rank(v, groupby=g), expect)


def test_demean_zscore_group_mean_by_hand():
    d = cs.demean(X, MASK, SECTOR)
    # group a mean 7/3, group b mean 6.5
    np.testing.assert_allclose(d[[0, 1, 2, 3, 5]], [1 - 7 / 3, 2 - 7 / 3, 4 - 7 / 3, 1.5, -1.5])
    assert np.isnan(d[[4, 6, 7]]).all()
    gm = cs.group_mean(X, MASK, SECTOR)
    np.testing.assert_allclose(gm[[0, 3]], [7 / 3, 6.5])
    z = cs.zscore(X, MASK, SECTOR)
    sd_a = np.sqrt(((np.array([1, 2, 4]) - 7 / 3) ** 2).mean())  # population std
    np.testing.assert_allclose(z[[0, 2]], [(1 - 7 / 3) / sd_a, (4 - 7 / 3) / sd_a])
    np.testing.assert_allclose(z[[3, 5]], [1.0, -1.0])  # two values: ±1
    # whole universe, no groups: mean and std of 1, 2, 4, 8, 5, 3
    v = np.array([1, 2, 4, 8, 5, 3.0])
    np.testing.assert_allclose(cs.zscore(X, MASK)[[0, 1, 2, 3, 5, 6]],
                               (v - v.mean()) / v.std())
    # a constant group is neutral, not a division by zero
    np.testing.assert_array_equal(cs.zscore(np.array([2.0, 2.0, 7.0]),
                                            groupby=np.array(["c", "c", "d"])), [0, 0, 0])


def test_winsorize_by_hand():
    v = np.arange(1.0, 12.0)  # 1..11
    w = cs.winsorize(v, 0.1, 0.9)
    # 11 values: 10% quantile at position 1.0 → 2; 90% at 9.0 → 10
    np.testing.assert_array_equal(w, np.clip(v, 2, 10))
    # linear interpolation: 5 values 1..5, 0.1 → position 0.4 → 1.4; 0.9 → 3.6 → 4.6
    np.testing.assert_allclose(cs.winsorize(np.arange(1.0, 6.0), 0.1, 0.9),
                               [1.4, 2, 3, 4, 4.6])
    np.testing.assert_allclose(np.quantile(np.arange(1.0, 6.0), [0.1, 0.9]), [1.4, 4.6])
    # per group, mask and NaN
    g = cs.winsorize(X, 0.0, 0.5, MASK, SECTOR)  # group a: median 2 → clip 1..2; b: 5..6.5
    np.testing.assert_allclose(g[[0, 1, 2, 3, 5]], [1, 2, 2, 6.5, 5])
    assert np.isnan(g[[4, 6, 7]]).all()
    with pytest.raises(ValueError):
        cs.winsorize(v, 0.9, 0.1)
    with pytest.raises(ValueError):
        cs.zscore(v, groupby=np.array(["a"]))


# ------------------------------------------------------------------- factors, ICS, MERIT
from technic.scoring.factors import compute_factors, point_in_time_market_cap  # noqa: E402
from technic.scoring.ics import ICS_WEIGHTS, ics  # noqa: E402
from technic.scoring.merit import MERIT_WEIGHTS, alpha_score, merit  # noqa: E402
from technic.scoring.regime import breadth, classify, index_series, regime_of  # noqa: E402


def _factor_frame() -> pd.DataFrame:
    return _frame().assign(
        sector=["Tech", "Tech", "Energy"], sma_20=[105.0, 52.0, 21.0],
        ret_21d=[0.10, -0.05, 0.00], ret_63d=[0.20, -0.10, 0.05],
        dollar_volume_20=[1e8, 1e6, 1e7], adx_14=[30.0, 20.0, 10.0],
        trend_r2_63=[0.9, 0.5, 0.2])


def test_factors_by_hand():
    df = _factor_frame()
    cap = point_in_time_market_cap(np.array([2e9, np.nan, 1e9]), df["close"].to_numpy(),
                                   np.array([100.0, 50.0, 25.0]))
    np.testing.assert_allclose(cap[[0, 2]], [2e9 * 110 / 100, 1e9 * 20 / 25])
    assert np.isnan(cap[1])
    f = compute_factors(df, None, cap)
    np.testing.assert_allclose(f["mom_6_1"], [1.2 / 1.1 - 1, 1.0 / 0.95 - 1, 1.1 / 1.0 - 1])
    np.testing.assert_allclose(f["mom_3_1"], [1.2 / 1.1 - 1, 0.9 / 0.95 - 1, 1.05 - 1])
    np.testing.assert_allclose(f["reversal_1m"], [-0.10, 0.05, -0.0])
    np.testing.assert_allclose(f["atr_pct"], [0.02, 0.04, 0.03])
    np.testing.assert_allclose(f["log_dollar_volume"], [8, 6, 7])
    # A: close > sma20 > sma50 > sma200 → 1; B: 50<52 (−1), 52<55 (−1), sma_200 NaN → −1;
    # C: 20<21 (−1), 21>20 (+1), 20<25 (−1) → −1/3
    np.testing.assert_allclose(f["ma_alignment"], [1, -1, -1 / 3])
    np.testing.assert_allclose(f["trend_r2"], [0.9, 0.5, 0.2])  # the stored trend_r2_63
    # rows stored before migration 9 (or a frame without the column): NaN, not an error
    assert np.isnan(compute_factors(df.drop(columns="trend_r2_63"))["trend_r2"]).all()
    mkt = np.mean([0.20, -0.10, 0.05])  # equal-weighted universe, 63 bars
    np.testing.assert_allclose(f["rs_market_63d"], (1 + df["ret_63d"]) / (1 + mkt) - 1)
    tech = np.mean([0.20, -0.10])  # A and B share the sector Tech
    np.testing.assert_allclose(f["rs_sector_63d"], [1.2 / (1 + tech) - 1, 0.9 / (1 + tech) - 1,
                                                    0.0])
    np.testing.assert_allclose(f["turnover_20"][[0, 2]], [1e8 / cap[0], 1e7 / cap[2]])
    # a mask changes the baselines and blanks the relative factors outside it
    g = compute_factors(df, np.array([True, False, True]))
    np.testing.assert_allclose(g["rs_market_63d"][[0, 2]],
                               [1.2 / 1.125 - 1, 1.05 / 1.125 - 1])
    assert np.isnan(g["rs_market_63d"][1]) and g["rs_sector_63d"][0] == pytest.approx(0)


def test_ics_by_hand():
    df = _factor_frame()
    cap = np.array([3e9, np.nan, 1e9])
    out = ics(df, compute_factors(df, None, cap))
    # percentile ranks (3 names; higher is better):
    liquidity = np.array([1, 1 / 3, 2 / 3])                  # log dollar volume 8, 6, 7
    size = np.array([1, np.nan, 1 / 2])                       # only A and C have a cap
    # trend stability: ma_alignment 1, −1, −1/3 → 1, 1/3, 2/3;
    #   adx × sign(close − sma_200): 30, NaN (no sma_200), −10 → 1, —, 1/2;
    #   trend_r2 × sign(ret_63d): 0.9, −0.5, 0.2 → 1, 1/3, 2/3
    trend = np.array([1, np.mean([1 / 3, 1 / 3]), np.mean([2 / 3, 1 / 2, 2 / 3])])
    drawdown = np.array([1, 2 / 3, 1 / 3])                    # −0.01, −0.2, −0.4
    vol = np.array([1, 1 / 3, 2 / 3])                         # −rv60 and −atr agree
    np.testing.assert_allclose(out["ics_liquidity"], 100 * liquidity)
    np.testing.assert_allclose(out["ics_size"], 100 * size)
    np.testing.assert_allclose(out["ics_trend_stability"], 100 * trend)
    w = ICS_WEIGHTS
    full = (w["liquidity"] * liquidity + w["size"] * size + w["trend_stability"] * trend
            + w["drawdown"] * drawdown + w["volatility"] * vol)
    no_size = (w["liquidity"] * liquidity + w["trend_stability"] * trend
               + w["drawdown"] * drawdown + w["volatility"] * vol) / (1 - w["size"])
    np.testing.assert_allclose(out["ics"], 100 * np.array([full[0], no_size[1], full[2]]))
    assert sum(w.values()) == pytest.approx(1.0)
    # without trend_r2_63 (rows stored before migration 9) the other two inputs remain
    old = ics(df.drop(columns="trend_r2_63"), compute_factors(df.drop(columns="trend_r2_63")))
    np.testing.assert_allclose(old["ics_trend_stability"],
                               100 * np.array([1, 1 / 3, np.mean([2 / 3, 1 / 2])]))


def test_merit_and_alpha_score_by_hand():
    df = pd.DataFrame({"alpha_5d": [0.01, -0.02, 0.00, np.nan],
                       "alpha_10d": [0.02, 0.01, -0.01, np.nan]})
    a = alpha_score(df)
    # 5d ranks among three: 1, 1/3, 2/3; 10d: 1, 2/3, 1/3
    np.testing.assert_allclose(a[:3], 100 * np.array([1, 0.5, 0.5]))
    assert np.isnan(a[3])
    tech, core = np.array([80.0, 40, 60, 70]), np.array([50.0, 90, 30, 20])
    for label, w in MERIT_WEIGHTS.items():
        assert sum(w.values()) == pytest.approx(1.0)
        m = merit(tech, core, a, label)
        np.testing.assert_allclose(m[:3], w["tech"] * tech[:3] + w["ics"] * core[:3]
                                   + w["alpha"] * a[:3])
        # no alpha: its weight spread over TechRating and ICS pro rata
        assert m[3] == pytest.approx((w["tech"] * 70 + w["ics"] * 20) / (w["tech"] + w["ics"]))
    with pytest.raises(KeyError):
        merit(tech, core, a, "bubble")


def test_regime_by_hand():
    assert classify(1.02, 0.6, 0.5) == "risk_on"
    assert classify(0.98, 0.4, 0.5) == "risk_off"
    assert classify(0.98, 0.6, 0.9) == "risk_off"
    assert classify(0.98, 0.6, 0.5) == "neutral"
    assert classify(1.02, 0.6, 0.85) == "neutral"
    assert classify(float("nan"), 0.6, 0.5) == "neutral"
    df = pd.DataFrame({"close": [10.0, 10, 10, 10], "sma_50": [9.0, 11, np.nan, 9]})
    assert breadth(df) == pytest.approx(2 / 3)
    assert breadth(df, np.array([False, True, True, True])) == pytest.approx(1 / 2)
    # a steady 0.1 % a day for 300 dates, then a shock: index above its 200-date mean,
    # today's 20-date vol the highest of the year → percentile 1
    r = np.full(300, 0.001)
    r[-1] = -0.03
    s = pd.Series(r, index=pd.bdate_range("2024-01-01", periods=300))
    idx = index_series(s)
    level = np.cumprod(1 + r)
    assert idx["trend_ratio"].iloc[-1] == pytest.approx(level[-1] / level[-200:].mean())
    assert idx["index_vol_20"].iloc[-1] == pytest.approx(r[-20:].std(ddof=1) * np.sqrt(252))
    assert idx["vol_percentile"].iloc[-1] == pytest.approx(1.0)
    assert np.isnan(idx["trend_ratio"].iloc[198]) and np.isfinite(idx["trend_ratio"].iloc[199])
    reg = regime_of(s, df)
    assert reg.label == "neutral"  # above trend and broad, but stressed volatility
    assert reg.facts()["vol_percentile"] == pytest.approx(1.0)
    assert regime_of(s.iloc[:100], df).label == "neutral"  # too short: undefined trend
    assert regime_of(s.iloc[:0], df).facts()["trend_ratio"] is None
