"""TechRating 0–100: a documented blend of cross-sectional percentiles (docs/scoring.md).

Four components, each 100 × the mean of its inputs' percentile ranks (over the filtered
universe of the scan date; NaN inputs are skipped; a component with no defined input is 50,
neutral):

=============  ======  ======================================================================
component      weight  inputs (percentile rank; "−" = lower is better)
=============  ======  ======================================================================
trend          0.30    close/sma_50, close/sma_200, sma_50/sma_200, adx_14 × sign(close −
                       sma_50), dist_52w_high
momentum       0.35    ret_12_1, ret_126d, ret_63d, macd_hist / close
volatility     0.15    − realized_vol_60, − natr_14
volume         0.20    obv_trend_20, rel_volume_20
=============  ======  ======================================================================

``tech_rating = 0.30 trend + 0.35 momentum + 0.15 volatility + 0.20 volume`` ∈ [0, 100].
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from technic.scoring.cross_section import mean_points, percentile_rank

WEIGHTS: dict[str, float] = {"trend": 0.30, "momentum": 0.35, "volatility": 0.15,
                             "volume": 0.20}


def _ratio(a: pd.Series, b: pd.Series) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        r = a.to_numpy(dtype=float) / b.to_numpy(dtype=float)
    r[~np.isfinite(r)] = np.nan
    return r


def component_inputs(df: pd.DataFrame) -> dict[str, list[np.ndarray]]:
    """The raw inputs of each component (higher = better), ``(N,) float64`` each."""
    close = df["close"]
    above50 = np.sign(close.to_numpy(float) - df["sma_50"].to_numpy(float))
    return {
        "trend": [_ratio(close, df["sma_50"]), _ratio(close, df["sma_200"]),
                  _ratio(df["sma_50"], df["sma_200"]),
                  df["adx_14"].to_numpy(float) * above50, df["dist_52w_high"].to_numpy(float)],
        "momentum": [df["ret_12_1"].to_numpy(float), df["ret_126d"].to_numpy(float),
                     df["ret_63d"].to_numpy(float), _ratio(df["macd_hist"], close)],
        "volatility": [-df["realized_vol_60"].to_numpy(float), -df["natr_14"].to_numpy(float)],
        "volume": [df["obv_trend_20"].to_numpy(float), df["rel_volume_20"].to_numpy(float)],
    }


def tech_rating(df: pd.DataFrame, mask: np.ndarray | None = None) -> pd.DataFrame:
    """Compute TechRating and its components for one date's cross-section.

    Args:
        df: feature rows of one date (columns of ``features_daily``), ``N`` rows.
        mask: ``(N,) bool`` filtered universe; percentiles are taken within it.

    Returns:
        Frame indexed like ``df`` with ``trend_score, momentum_score, volatility_score,
        volume_score, tech_rating`` (each 0–100; NaN outside the mask).
    """
    n = len(df)
    m = np.ones(n, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    out = pd.DataFrame(index=df.index)
    total = np.zeros(n)
    for name, inputs in component_inputs(df).items():
        ranks = np.vstack([percentile_rank(x, m) for x in inputs])
        score = mean_points(ranks)  # all-NaN column → NaN → 50
        score = np.where(np.isnan(score), 50.0, score)
        score[~m] = np.nan
        out[f"{name}_score"] = score
        total += WEIGHTS[name] * score
    out["tech_rating"] = np.where(m, total, np.nan)
    return out
