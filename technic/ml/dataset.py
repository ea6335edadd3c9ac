"""Point-in-time training frames for the alpha models: scale-free features and forward labels.

For every stored date *d* of a range, the frame holds the ``features_daily`` row of each symbol
that passes the default universe filter on *d* (:class:`technic.universe.UniverseRules`), turned
into the scale-free model inputs of :data:`MODEL_FEATURES`, plus labels:

* ``fwd_<h>`` — forward return over the symbol's next ``h`` own bars,
  ``close[t+h] / close[t] − 1`` (fraction), by :func:`forward_labels` (which
  :mod:`technic.jobs.evaluate` uses too);
* ``label_end_<h>`` — the date of the bar ``t+h`` whose close the label uses (purging needs it);
* ``target_<h>`` — the training target: ``fwd_<h>`` clipped per date to that date's 1st–99th
  percentile, minus that date's median (fraction; "excess over the typical name"). Removing
  the per-date market move leaves the model a cross-sectional task, and clipping keeps a few
  halts/squeezes from dominating a squared-error fit.

Point-in-time guarantees:

* features at *d* are the stored rows of *d*; every stored feature uses only bars on or before
  *d* (:mod:`technic.features`), and :func:`model_features` is row-wise (a symbol's inputs never
  depend on other rows or other dates);
* labels use closes after *d* and are targets only; with ``end`` given, no bar after ``end`` is
  read, so a label whose window runs past ``end`` is NaN (nothing after ``end`` is used at all).

Known biases: ``symbols`` holds today's reference data (names, security types, sectors); the
``active`` flag is not used (membership on a date = a feature row, i.e. a bar, on that date),
and the bars have survivorship bias (see technic/data/README.md).

No cross-sectional ranks are used as inputs, on purpose: a symbol's prediction then does not
depend on which other rows are in the batch, so the scan can score any subset of a date.
"""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import pandas as pd

from technic.store.db import DatabaseTarget
from technic.store.history import REFERENCE_COLUMNS, read_closes, read_feature_history
from technic.universe import UniverseRules, apply_rules

log = logging.getLogger(__name__)

#: Stored ``features_daily`` columns the model inputs are derived from.
RAW_INPUTS: tuple[str, ...] = (
    "close", "sma_20", "sma_50", "sma_200", "rsi_14", "macd", "macd_hist", "bb_pctb",
    "bb_width", "natr_14", "adx_14", "obv_trend_20", "roc_10", "ret_21d", "ret_63d",
    "ret_126d", "ret_252d", "ret_12_1", "dollar_volume_20", "rel_volume_20",
    "realized_vol_20", "realized_vol_60", "dist_52w_high", "dist_52w_low",
)

#: Model input → definition (unit). Every input is scale-free: no price or volume level.
FEATURE_DEFINITIONS: dict[str, str] = {
    "ret_10d": "fraction, roc_10 / 100: return over 10 bars",
    "ret_21d": "fraction, 21-bar return",
    "ret_63d": "fraction, 63-bar return",
    "ret_126d": "fraction, 126-bar return",
    "ret_252d": "fraction, 252-bar return",
    "ret_12_1": "fraction, return from 252 to 21 bars ago",
    "px_sma20": "fraction, close / sma_20 - 1",
    "px_sma50": "fraction, close / sma_50 - 1",
    "px_sma200": "fraction, close / sma_200 - 1",
    "sma50_sma200": "fraction, sma_50 / sma_200 - 1 (golden/death cross distance)",
    "macd_px": "fraction, macd / close",
    "macd_hist_px": "fraction, macd_hist / close",
    "rsi_14": "0-100, Wilder RSI over 14 bars",
    "adx_14": "0-100, Wilder ADX over 14 bars",
    "natr_14": "percent, 100 * ATR(14) / close",
    "bb_pctb": "fraction, position in the Bollinger band (0 = lower, 1 = upper)",
    "bb_width": "fraction, Bollinger band width / middle band",
    "obv_trend_20": "fraction in [-1, 1], OBV change over 20 bars / their volume",
    "realized_vol_20": "annualized fraction, std of 20 daily log returns * sqrt(252)",
    "realized_vol_60": "annualized fraction, std of 60 daily log returns * sqrt(252)",
    "vol_ratio_20_60": "ratio, realized_vol_20 / realized_vol_60",
    "log_rel_volume": "log ratio, ln(rel_volume_20): last volume vs the 20 bars before",
    "log_dollar_volume": "log10 USD, log10(dollar_volume_20) (liquidity / size proxy)",
    "dist_52w_high": "fraction, close / 52-week high - 1 (<= 0)",
    "dist_52w_low": "fraction, close / 52-week low - 1 (>= 0)",
}

#: The model's input columns, in the order the boosters expect them.
MODEL_FEATURES: tuple[str, ...] = tuple(FEATURE_DEFINITIONS)


def forward_labels(bars: pd.DataFrame, horizons: tuple[int, ...]) -> pd.DataFrame:
    """Forward returns over each symbol's own next ``h`` bars.

    Args:
        bars: ``symbol, date, close`` (any order); every bar known up to the cut-off.

    Returns:
        ``symbol, date, fwd_<h>, label_end_<h>`` per bar and horizon: ``fwd_<h>`` =
        ``close[t+h] / close[t] − 1`` (fraction), ``label_end_<h>`` = date of bar ``t+h``;
        both NaN/NaT where fewer than ``h`` later bars exist.
    """
    b = bars.sort_values(["symbol", "date"], kind="mergesort").reset_index(drop=True)
    g = b.groupby("symbol", sort=False)
    out = b[["symbol", "date"]].copy()
    for h in horizons:
        with np.errstate(divide="ignore", invalid="ignore"):
            out[f"fwd_{h}"] = g["close"].shift(-h) / b["close"] - 1.0
        out[f"label_end_{h}"] = g["date"].shift(-h)
    return out


def _ratio(a: pd.Series, b: pd.Series) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = a.to_numpy(dtype=np.float64) / b.to_numpy(dtype=np.float64)
    out[~np.isfinite(out)] = np.nan
    return out


def _log(x: pd.Series, fn) -> np.ndarray:
    v = x.to_numpy(dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = fn(np.where(v > 0, v, np.nan))
    out[~np.isfinite(out)] = np.nan
    return out


def model_features(df: pd.DataFrame) -> pd.DataFrame:
    """The scale-free model inputs of stored feature rows (row-wise, any number of dates).

    Args:
        df: rows with the :data:`RAW_INPUTS` columns of ``features_daily`` (extra columns are
            ignored; NULLs as NaN).

    Returns:
        ``(len(df), len(MODEL_FEATURES))`` float32 frame, same index as ``df``; undefined
        values (short history, zero denominators) are NaN, which XGBoost routes natively.

    Raises:
        KeyError: a raw input column is missing.
    """
    missing = [c for c in RAW_INPUTS if c not in df.columns]
    if missing:
        raise KeyError(f"feature rows lack column(s): {', '.join(missing)}")
    f = {c: df[c].to_numpy(dtype=np.float64) for c in RAW_INPUTS}
    s = {c: df[c] for c in RAW_INPUTS}
    out = {
        "ret_10d": f["roc_10"] / 100.0,
        "ret_21d": f["ret_21d"], "ret_63d": f["ret_63d"], "ret_126d": f["ret_126d"],
        "ret_252d": f["ret_252d"], "ret_12_1": f["ret_12_1"],
        "px_sma20": _ratio(s["close"], s["sma_20"]) - 1.0,
        "px_sma50": _ratio(s["close"], s["sma_50"]) - 1.0,
        "px_sma200": _ratio(s["close"], s["sma_200"]) - 1.0,
        "sma50_sma200": _ratio(s["sma_50"], s["sma_200"]) - 1.0,
        "macd_px": _ratio(s["macd"], s["close"]),
        "macd_hist_px": _ratio(s["macd_hist"], s["close"]),
        "rsi_14": f["rsi_14"], "adx_14": f["adx_14"], "natr_14": f["natr_14"],
        "bb_pctb": f["bb_pctb"], "bb_width": f["bb_width"], "obv_trend_20": f["obv_trend_20"],
        "realized_vol_20": f["realized_vol_20"], "realized_vol_60": f["realized_vol_60"],
        "vol_ratio_20_60": _ratio(s["realized_vol_20"], s["realized_vol_60"]),
        "log_rel_volume": _log(s["rel_volume_20"], np.log),
        "log_dollar_volume": _log(s["dollar_volume_20"], np.log10),
        "dist_52w_high": f["dist_52w_high"], "dist_52w_low": f["dist_52w_low"],
    }
    assert tuple(out) == MODEL_FEATURES
    frame = pd.DataFrame(out, index=df.index).astype(np.float32)
    return frame.where(np.isfinite(frame))


def _targets(df: pd.DataFrame, h: int) -> pd.Series:
    col = df[f"fwd_{h}"]
    g = col.groupby(df["date"])
    lo, hi = g.transform(lambda x: x.quantile(0.01)), g.transform(lambda x: x.quantile(0.99))
    clipped = col.clip(lo, hi)
    return clipped - clipped.groupby(df["date"]).transform("median")


def build_dataset(target: DatabaseTarget, start: dt.date, end: dt.date,
                  horizons: tuple[int, ...] = (5, 10),
                  rules: UniverseRules | None = None) -> pd.DataFrame:
    """The point-in-time training frame of ``[start, end]`` (see the module docstring).

    Args:
        target: the store (read only: ``features_daily``, ``bars_daily``, ``symbols``).
        start, end: feature dates, inclusive. No bar after ``end`` is read.
        horizons: label horizons in own bars.
        rules: universe filter (default rules when ``None``).

    Returns:
        One row per (date, passing symbol), sorted by date, symbol: ``date`` (datetime64),
        ``symbol``, the :data:`MODEL_FEATURES` (float32), and per horizon ``fwd_<h>``,
        ``target_<h>`` (float64 fractions) and ``label_end_<h>`` (datetime64; NaT when the
        window runs past ``end``).

    Raises:
        LookupError: no stored features in the range (run ``technic features backfill``).
    """
    rules = rules or UniverseRules()
    raw = read_feature_history(target, start, end, RAW_INPUTS, REFERENCE_COLUMNS)
    if raw.empty:
        raise LookupError(f"no stored features between {start} and {end}; run "
                          "`technic features backfill` first")
    # every rule is row-wise: same as per date; point in time: membership from the rows
    # (bars) that existed on each date, not today's ``active`` flag
    keep, counts = apply_rules(raw, rules, point_in_time=True)
    raw = raw[keep].reset_index(drop=True)
    log.info("dataset %s … %s: %d of %d feature rows pass the universe filter", start, end,
             counts["passed"], counts["input"])
    bars = read_closes(target, start, end)
    labels = forward_labels(bars, horizons)
    feats = model_features(raw)
    df = pd.concat([raw[["date", "symbol"]], feats], axis=1)
    df = df.merge(labels, on=["symbol", "date"], how="left")
    df["date"] = pd.to_datetime(df["date"])
    for h in horizons:
        df[f"label_end_{h}"] = pd.to_datetime(df[f"label_end_{h}"])
        df[f"target_{h}"] = _targets(df, h)
    return df.sort_values(["date", "symbol"], kind="mergesort").reset_index(drop=True)
