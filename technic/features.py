"""The feature set: which indicators describe a symbol on a date, computed from a Panel.

Every feature on date *d* uses only bars on or before *d* (all kernels are causal), and windows
count the symbol's own bars (see :mod:`technic.indicators` for the gap policy). Units of every
column are listed in ``FEATURE_UNITS`` and in docs/tables.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from technic import indicators as ind
from technic.indicators.extra import linreg_r2_rows
from technic.panel import Panel
from technic.store.schema import FEATURE_COLUMNS

#: Unit and meaning of each feature column (docs/tables.md is generated from the same facts).
FEATURE_UNITS: dict[str, str] = {
    "close": "USD per share, last bar",
    "volume": "shares, last bar",
    "sma_20": "USD, simple moving average of close over 20 bars",
    "sma_50": "USD, SMA of close, 50 bars",
    "sma_200": "USD, SMA of close, 200 bars",
    "ema_12": "USD, EMA of close, 12 bars (TA-Lib seeding)",
    "ema_26": "USD, EMA of close, 26 bars",
    "rsi_14": "0-100, Wilder RSI over 14 bars",
    "macd": "USD, EMA12 - EMA26 of close (TA-Lib MACD)",
    "macd_signal": "USD, EMA9 of macd",
    "macd_hist": "USD, macd - macd_signal",
    "bb_upper": "USD, Bollinger upper band (20 bars, 2 population std)",
    "bb_middle": "USD, Bollinger middle band (SMA 20)",
    "bb_lower": "USD, Bollinger lower band",
    "bb_pctb": "fraction, (close - lower) / (upper - lower); 0 = lower band, 1 = upper",
    "bb_width": "fraction, (upper - lower) / middle",
    "atr_14": "USD, Wilder average true range over 14 bars",
    "natr_14": "percent, 100 * atr_14 / close (TA-Lib NATR)",
    "adx_14": "0-100, Wilder ADX over 14 bars",
    "obv_trend_20": "fraction in [-1, 1], change of OBV over 20 bars / volume of those bars",
    "roc_10": "percent, TA-Lib ROC over 10 bars",
    "ret_21d": "fraction, close / close 21 bars ago - 1 (about 1 month)",
    "ret_63d": "fraction, 63-bar return (about 3 months)",
    "ret_126d": "fraction, 126-bar return (about 6 months)",
    "ret_252d": "fraction, 252-bar return (about 12 months)",
    "ret_12_1": "fraction, return from 252 to 21 bars ago (12-1 momentum)",
    "avg_volume_20": "shares, mean volume over 20 bars",
    "dollar_volume_20": "USD, mean of close * volume over 20 bars",
    "rel_volume_20": "ratio, volume / mean volume of the 20 bars before",
    "realized_vol_20": "annualized fraction, std of 20 daily log returns * sqrt(252)",
    "realized_vol_60": "annualized fraction, std of 60 daily log returns * sqrt(252)",
    "high_52w": "USD, highest high of the last 252 bars",
    "low_52w": "USD, lowest low of the last 252 bars",
    "dist_52w_high": "fraction, close / high_52w - 1 (<= 0)",
    "dist_52w_low": "fraction, close / low_52w - 1 (>= 0)",
    "trend_r2_63": "fraction 0-1, R^2 of the least-squares line of the last 63 closes on the "
                   "bar index (NaN when they are all equal)",
}
assert tuple(FEATURE_UNITS) == FEATURE_COLUMNS, "FEATURE_UNITS must follow the stored columns"

#: Bars of history a symbol needs for every feature to be defined (252 + 1 for the 12-month
#: return); fewer bars leave the longer features NaN.
FULL_HISTORY_BARS = 253


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = a / b
    out[~np.isfinite(out)] = np.nan
    return out


#: Where the indicator kernels run: numba on the CPU, or numba.cuda on a GPU.
DEVICES = ("cpu", "gpu")


def _check_device(device: str) -> str:
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    return device


#: Features that are indicator values as they are; the others are derived from them.
_DIRECT = ("close", "volume", "sma_20", "sma_50", "sma_200", "ema_12", "ema_26", "rsi_14",
           "macd", "macd_signal", "macd_hist", "bb_upper", "bb_middle", "bb_lower", "atr_14",
           "adx_14", "roc_10", "avg_volume_20", "dollar_volume_20", "realized_vol_20",
           "realized_vol_60", "high_52w", "low_52w", "trend_r2_63")


def derive_features(g: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The ``FEATURE_COLUMNS`` from indicator values, elementwise.

    One definition for the full panels (:func:`feature_arrays`, ``(T, N)``) and the last-row
    path of the incremental refresh (``(N,)``, :mod:`technic.incremental`), so both give the
    same bits.

    Args:
        g: arrays of one shape named as :data:`technic.indicators.lastrow.LAST_ROW_FIELDS`
            (close, volume, the indicators, ``obv`` and ``obv_lag_20``,
            ``close_lag_{21,63,126,252}``, ``avg_volume_20_lag_1``, ``trend_r2_63``); NaN
            where undefined.

    Returns:
        ``{column: array}`` for every name of ``FEATURE_COLUMNS`` (ratios that are not finite
        become NaN). Units: ``FEATURE_UNITS``.

    Raises:
        KeyError: an input is missing.
    """
    c = g["close"]
    f = {k: g[k] for k in _DIRECT}
    up, mid, low_band = g["bb_upper"], g["bb_middle"], g["bb_lower"]
    f["bb_pctb"] = _ratio(c - low_band, up - low_band)
    f["bb_width"] = _ratio(up - low_band, mid)
    f["natr_14"] = 100.0 * _ratio(g["atr_14"], c)
    f["obv_trend_20"] = _ratio(g["obv"] - g["obv_lag_20"], 20.0 * g["avg_volume_20"])
    for n in (21, 63, 126, 252):
        f[f"ret_{n}d"] = _ratio(c, g[f"close_lag_{n}"]) - 1.0
    f["ret_12_1"] = _ratio(g["close_lag_21"], g["close_lag_252"]) - 1.0
    f["rel_volume_20"] = _ratio(g["volume"], g["avg_volume_20_lag_1"])
    f["dist_52w_high"] = _ratio(c, g["high_52w"]) - 1.0
    f["dist_52w_low"] = _ratio(c, g["low_52w"]) - 1.0
    return {k: f[k] for k in FEATURE_COLUMNS}


def feature_arrays(p: Panel, device: str = "cpu",
                   rows: Sequence[int] | None = None) -> dict[str, np.ndarray]:
    """Compute every feature as a ``(T, N) float64`` array over the whole panel.

    Args:
        p: the bars (``(T, N) float64`` time-major, USD per share and shares, NaN = no bar);
            history before the first output date must be included in it.
        device: ``"cpu"`` (numba kernels of :mod:`technic.indicators`) or ``"gpu"`` (their
            numba.cuda twins in :mod:`technic.indicators.gpu`, results copied back to the
            host; equal to the CPU path to ≤ 1e-9 relative, bit-identical except the log
            returns of realized volatility).
        rows: on the CPU, compute ``trend_r2_63`` (an ``O(n)`` window per value) only at
            these panel rows, NaN elsewhere; default every row.

    Returns:
        ``{column: (T, N) float64}`` for ``FEATURE_COLUMNS`` plus ``n_bars`` (bars seen so
        far, counted in the panel window).

    Raises:
        ValueError: an unknown ``device``.
        technic.indicators.gpu.GPUUnavailableError: ``device="gpu"`` without a CUDA device.
    """
    if _check_device(device) == "gpu":
        from technic.indicators import gpu

        return gpu.feature_arrays(p)
    c, h, lo, v = p.close, p.high, p.low, p.volume
    g: dict[str, np.ndarray] = {"close": c, "volume": v}
    g["sma_20"], g["sma_50"], g["sma_200"] = ind.sma(c, 20), ind.sma(c, 50), ind.sma(c, 200)
    g["ema_12"], g["ema_26"] = ind.ema(c, 12), ind.ema(c, 26)
    g["rsi_14"] = ind.rsi(c, 14)
    g["macd"], g["macd_signal"], g["macd_hist"] = ind.macd(c, 12, 26, 9)
    g["bb_upper"], g["bb_middle"], g["bb_lower"] = ind.bbands(c, 20, 2.0)
    g["atr_14"] = ind.atr(h, lo, c, 14)
    g["adx_14"] = ind.adx(h, lo, c, 14)
    g["obv"] = ind.obv(c, v)
    g["obv_lag_20"] = ind.lag(g["obv"], 20)
    g["roc_10"] = ind.roc(c, 10)
    for n in (21, 63, 126, 252):
        g[f"close_lag_{n}"] = ind.lag(c, n)
    g["avg_volume_20"] = ind.sma(v, 20)
    g["avg_volume_20_lag_1"] = ind.lag(g["avg_volume_20"], 1)
    g["dollar_volume_20"] = ind.sma(c * v, 20)
    g["realized_vol_20"] = ind.realized_vol(c, 20)
    g["realized_vol_60"] = ind.realized_vol(c, 60)
    g["high_52w"] = ind.rolling_max(h, 252)
    g["low_52w"] = ind.rolling_min(lo, 252)
    # O(n) per value: with ``rows`` only those rows (a refresh keeps one date's row).
    g["trend_r2_63"] = (ind.linreg_r2(c, 63) if rows is None
                        else linreg_r2_rows(c, rows, 63))
    f = derive_features(g)
    f["n_bars"] = np.cumsum(np.isfinite(c), axis=0).astype(np.float64)
    return f


def compute_features(p: Panel, dates: Sequence[np.datetime64] | None = None,
                     device: str = "cpu") -> pd.DataFrame:
    """Feature rows for the given dates (default: the panel's last date).

    Args:
        p: bars with enough history before the first requested date (≥ ``FULL_HISTORY_BARS``
            for every feature to be defined).
        dates: dates to output, each present in ``p.dates``.
        device: ``"cpu"`` or ``"gpu"`` (see :func:`feature_arrays`; on the GPU only the
            requested rows are copied back).

    Returns:
        Long frame ``symbol, date, <FEATURE_COLUMNS>, n_bars``: one row per symbol with a bar
        on that date; undefined features are NaN. Sorted by date, symbol.

    Raises:
        KeyError: a requested date is not in the panel.
        ValueError: an unknown ``device``.
        technic.indicators.gpu.GPUUnavailableError: ``device="gpu"`` without a CUDA device.
    """
    _check_device(device)
    t_count = len(p.dates)
    if t_count == 0:
        return pd.DataFrame(columns=["symbol", "date", *FEATURE_COLUMNS, "n_bars"])
    if dates is None:
        rows = [t_count - 1]
    else:
        idx = {d: i for i, d in enumerate(p.dates.astype("datetime64[D]"))}
        try:
            rows = [idx[np.datetime64(d, "D")] for d in dates]
        except KeyError as e:
            raise KeyError(f"date {e.args[0]} not in the panel") from None
    if device == "gpu":
        from technic.indicators import gpu

        picked = gpu.feature_rows(p, rows)  # row k of each array is panel row rows[k]
        at = list(range(len(rows)))
    else:
        picked = feature_arrays(p, rows=rows)
        at = rows
    frames = []
    for r, k in zip(rows, at, strict=True):
        has_bar = np.isfinite(p.close[r])
        data = {"symbol": p.symbols[has_bar],
                "date": np.repeat(p.dates[r], int(has_bar.sum()))}
        for name in (*FEATURE_COLUMNS, "n_bars"):
            data[name] = picked[name][k, has_bar]
        frames.append(pd.DataFrame(data))
    out = pd.concat(frames, ignore_index=True)
    out["n_bars"] = out["n_bars"].astype(np.int32)
    return out
