"""Technical factors of one date's cross-section, from the stored ``features_daily`` columns.

Every factor is a raw value per symbol (unit in :data:`FACTOR_DEFINITIONS`); composites
(:mod:`technic.scoring.ics`, :mod:`technic.scoring.merit`) turn them into percentile ranks
within the filtered universe. Row-wise factors use only that row's stored features (so only bars
on or before the date); the relative-strength factors also use the date's filtered universe
(the ``mask``) and its sectors. Formulas and sources: docs/scoring.md.

Not computed, because their inputs are not stored (never invented):

* turnover needs shares outstanding: approximated only where ``market_cap_pit`` is known
  (``turnover_20 = dollar_volume_20 / market_cap_pit``), NaN elsewhere.

Value, quality and growth come from quarterly fundamentals, point in time:
:mod:`technic.scoring.fundamentals` (which also supplies ``market_cap_pit`` from the diluted
shares of the latest quarter public on the date when fundamentals are stored).

Trend quality is ADX, moving-average alignment and the linear-regression R² of the last 63
closes (``trend_r2``, from the stored ``trend_r2_63`` of migration 9; NaN where it is NULL:
rows stored before that migration, short histories, constant windows).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from technic.scoring.cross_section import group_mean

#: factor → (unit, definition). "Higher is better" is decided by the composites, not here.
FACTOR_DEFINITIONS: dict[str, tuple[str, str]] = {
    "mom_12_1": ("fraction", "ret_12_1: return from 252 to 21 bars ago (Jegadeesh & Titman "
                 "1993)"),
    "mom_6_1": ("fraction", "(1 + ret_126d) / (1 + ret_21d) − 1: return from 126 to 21 bars "
                "ago"),
    "mom_3_1": ("fraction", "(1 + ret_63d) / (1 + ret_21d) − 1: return from 63 to 21 bars ago"),
    "reversal_1m": ("fraction", "−ret_21d: one-month short-term reversal (Jegadeesh 1990)"),
    "realized_vol": ("annualized fraction", "realized_vol_60"),
    "atr_pct": ("fraction", "natr_14 / 100: 14-bar ATR over close"),
    "log_dollar_volume": ("log10 USD", "log10(dollar_volume_20)"),
    "turnover_20": ("fraction per day", "dollar_volume_20 / market_cap_pit (NaN without a "
                    "market cap)"),
    "adx": ("0-100", "adx_14 (trend strength, Wilder 1978)"),
    "ma_alignment": ("-1..1", "mean of sign(close − sma_20), sign(sma_20 − sma_50), "
                     "sign(sma_50 − sma_200) over the defined pairs"),
    "trend_r2": ("fraction 0-1", "trend_r2_63: R² of the least-squares line of the last 63 "
                 "closes on the bar index (how straight the path was, not its direction)"),
    "rs_market_63d": ("fraction", "(1 + ret_63d) / (1 + mean ret_63d of the filtered "
                      "universe) − 1: vs the equal-weighted universe (buy-and-hold over 63 bars)"),
    "rs_sector_63d": ("fraction", "(1 + ret_63d) / (1 + mean ret_63d of the symbol's sector "
                      "in the filtered universe) − 1"),
    "drawdown_52w": ("fraction (≤ 0)", "dist_52w_high: close / 52-week high − 1"),
    "market_cap_pit": ("USD", "close × diluted shares of the latest quarter public on the "
                       "date (technic.scoring.fundamentals.market_cap_pit); without them "
                       "market_cap × close / reference close (point_in_time_market_cap)"),
}


def _f(df: pd.DataFrame, c: str) -> np.ndarray:
    return df[c].to_numpy(dtype=np.float64, na_value=np.nan)


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        r = a / b
    r[~np.isfinite(r)] = np.nan
    return r


def point_in_time_market_cap(market_cap: np.ndarray, close: np.ndarray,
                             ref_close: np.ndarray) -> np.ndarray:
    """Market cap on the scan date from a later snapshot: ``market_cap × close / ref_close``.

    ``symbols.market_cap`` is one snapshot (today's). Using it on a past date would leak the
    price move since then into a size factor; holding the share count fixed
    (``shares = market_cap / ref_close``, ``ref_close`` = the symbol's close on the latest
    stored feature date) and pricing it at the scan date's close removes that part (share
    count changes — buybacks, issuance — remain a small look-ahead).

    Args:
        market_cap: ``(N,)`` USD, NaN when unknown. close: ``(N,)`` USD on the scan date.
        ref_close: ``(N,)`` USD on the snapshot's (latest) date; NaN → the snapshot is used
            unchanged only where ``close`` is the reference itself — otherwise NaN.

    Returns:
        ``(N,) float64`` USD; NaN where unknown or non-positive.
    """
    mc = np.asarray(market_cap, dtype=np.float64)
    out = mc * _div(np.asarray(close, np.float64), np.asarray(ref_close, np.float64))
    out[~(out > 0)] = np.nan
    return out


def compute_factors(df: pd.DataFrame, mask: np.ndarray | None = None,
                    market_cap_pit: np.ndarray | None = None) -> pd.DataFrame:
    """All factors of :data:`FACTOR_DEFINITIONS` for one date's rows.

    Args:
        df: feature rows of one date (``features_daily`` columns plus ``sector``), N rows.
        mask: ``(N,) bool`` filtered universe (the relative-strength baselines are its
            equal-weighted means); ``None`` = all rows.
        market_cap_pit: ``(N,)`` USD point-in-time market cap or None (unknown everywhere).

    Returns:
        Frame indexed like ``df`` with one float64 column per factor. Row-wise factors are
        defined for every row; ``rs_*`` are NaN outside the mask (and ``rs_sector_63d`` for
        rows without a sector).

    Raises:
        KeyError: a required feature column is missing (``trend_r2_63`` is optional: a frame
            without it gets ``trend_r2`` NaN, as rows stored before migration 9 do).
    """
    n = len(df)
    m = np.ones(n, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    close = _f(df, "close")
    r21, r63, r126 = _f(df, "ret_21d"), _f(df, "ret_63d"), _f(df, "ret_126d")
    sma20, sma50, sma200 = _f(df, "sma_20"), _f(df, "sma_50"), _f(df, "sma_200")
    dv = _f(df, "dollar_volume_20")
    with np.errstate(divide="ignore", invalid="ignore"):
        ldv = np.where(dv > 0, np.log10(np.where(dv > 0, dv, 1.0)), np.nan)
    signs = np.vstack([np.sign(close - sma20), np.sign(sma20 - sma50), np.sign(sma50 - sma200)])
    defined = np.isfinite(signs)
    with np.errstate(invalid="ignore"):
        align = np.where(defined.any(axis=0),
                         np.nansum(signs, axis=0) / np.maximum(defined.sum(axis=0), 1), np.nan)
    mkt = np.nanmean(np.where(m & np.isfinite(r63), r63, np.nan)) if (m & np.isfinite(r63)
                                                                      ).any() else np.nan
    sector = df["sector"].to_numpy(dtype=object) if "sector" in df.columns else None
    sec_mean = group_mean(r63, m, sector) if sector is not None else np.full(n, np.nan)
    cap = (np.full(n, np.nan) if market_cap_pit is None
           else np.asarray(market_cap_pit, dtype=np.float64))
    rs_mkt = _div(1.0 + r63, np.full(n, 1.0 + mkt)) - 1.0
    rs_mkt[~m] = np.nan
    out = {
        "mom_12_1": _f(df, "ret_12_1"),
        "mom_6_1": _div(1.0 + r126, 1.0 + r21) - 1.0,
        "mom_3_1": _div(1.0 + r63, 1.0 + r21) - 1.0,
        "reversal_1m": -r21,
        "realized_vol": _f(df, "realized_vol_60"),
        "atr_pct": _f(df, "natr_14") / 100.0,
        "log_dollar_volume": ldv,
        "turnover_20": _div(dv, cap),
        "adx": _f(df, "adx_14"),
        "ma_alignment": align,
        "trend_r2": (_f(df, "trend_r2_63") if "trend_r2_63" in df.columns
                     else np.full(n, np.nan)),
        "rs_market_63d": rs_mkt,
        "rs_sector_63d": _div(1.0 + r63, 1.0 + sec_mean) - 1.0,
        "drawdown_52w": _f(df, "dist_52w_high"),
        "market_cap_pit": cap,
    }
    assert tuple(out) == tuple(FACTOR_DEFINITIONS)
    return pd.DataFrame(out, index=df.index)
