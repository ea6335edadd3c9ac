"""ICS — institutional core score, 0–100 (docs/scoring.md).

How comfortably an institution could hold the name: liquid, large, in a steady trend, not deep
in a drawdown, not too volatile. Five components, each ``mean of the percentile ranks`` of its
inputs within the filtered universe (inputs that are NaN for a symbol are skipped):

================  ======  ===================================================================
component         weight  inputs (higher is better; "−" = negated first)
================  ======  ===================================================================
liquidity         0.25    log_dollar_volume
size              0.20    log10(market_cap_pit) — only where a market cap is known
trend_stability   0.20    ma_alignment, adx_14 × sign(close − sma_200),
                          trend_r2 × sign(ret_63d)
drawdown          0.15    drawdown_52w (close / 52-week high − 1)
volatility        0.20    − realized_vol (60 bars), − atr_pct
================  ======  ===================================================================

``ics = 100 × Σ w_c · p_c / Σ w_c`` over the components defined for the symbol (a symbol
without a known market cap is scored on the other four, weights renormalised); a symbol with
no defined component gets 50 (neutral).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from technic.scoring.cross_section import mean_points, percentile_rank

ICS_WEIGHTS: dict[str, float] = {"liquidity": 0.25, "size": 0.20, "trend_stability": 0.20,
                                 "drawdown": 0.15, "volatility": 0.20}


def ics_inputs(df: pd.DataFrame, factors: pd.DataFrame) -> dict[str, list[np.ndarray]]:
    """The raw inputs of each ICS component (higher = better), ``(N,) float64`` each.

    Args:
        df: feature rows (``close, sma_200, adx_14, ret_63d``). factors:
            :func:`compute_factors`.

    ``trend_r2 × sign(ret_63d)``: the R² of the 63-bar regression line (fraction 0–1) signed
    by the direction of the same quarter (the 63-bar return), so a straight rise ranks
    highest, a straight decline lowest and a choppy path in between.
    """
    close = df["close"].to_numpy(np.float64, na_value=np.nan)
    sma200 = df["sma_200"].to_numpy(np.float64, na_value=np.nan)
    adx = df["adx_14"].to_numpy(np.float64, na_value=np.nan)
    r63 = df["ret_63d"].to_numpy(np.float64, na_value=np.nan)
    cap = factors["market_cap_pit"].to_numpy(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_cap = np.where(cap > 0, np.log10(np.where(cap > 0, cap, 1.0)), np.nan)
    return {
        "liquidity": [factors["log_dollar_volume"].to_numpy(np.float64)],
        "size": [log_cap],
        "trend_stability": [factors["ma_alignment"].to_numpy(np.float64),
                            adx * np.sign(close - sma200),
                            factors["trend_r2"].to_numpy(np.float64) * np.sign(r63)],
        "drawdown": [factors["drawdown_52w"].to_numpy(np.float64)],
        "volatility": [-factors["realized_vol"].to_numpy(np.float64),
                       -factors["atr_pct"].to_numpy(np.float64)],
    }


def ics(df: pd.DataFrame, factors: pd.DataFrame, mask: np.ndarray | None = None
        ) -> pd.DataFrame:
    """ICS and its components for one date's cross-section.

    Args:
        df: feature rows of one date, N rows. factors: :func:`technic.scoring.factors.
            compute_factors` of the same rows. mask: ``(N,) bool`` filtered universe.

    Returns:
        Frame indexed like ``df``: ``ics_<component>`` (0–100 points, NaN where the component
        has no input for the symbol) and ``ics`` (0–100 points); NaN outside the mask.
    """
    n = len(df)
    m = np.ones(n, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    out = pd.DataFrame(index=df.index)
    num, den = np.zeros(n), np.zeros(n)
    for name, inputs in ics_inputs(df, factors).items():
        ranks = np.vstack([percentile_rank(x, m) for x in inputs])
        score = mean_points(ranks)  # all-NaN column → NaN
        score[~m] = np.nan
        out[f"ics_{name}"] = score
        ok = np.isfinite(score)
        num += np.where(ok, ICS_WEIGHTS[name] * score, 0.0)
        den += np.where(ok, ICS_WEIGHTS[name], 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        total = np.where(den > 0, num / den, 50.0)
    out["ics"] = np.where(m, total, np.nan)
    return out
