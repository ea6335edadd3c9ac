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
