"""The feature set's indicators at the LAST bar only, from a symbol-major window of bars.

An incremental refresh needs each symbol's indicators on one date — the window's last — not
on all ``T`` dates. :func:`last_row_indicators` walks every symbol's own bars once and runs
the same 1-D TA-Lib-order kernels as the full panels (:mod:`technic.indicators.cpu`), keeping
only the last value of each. The results are therefore bit-identical to the last row of
:func:`technic.features.feature_arrays` on the same window, while nothing of size ``(T, N)``
is allocated and no output row but the last is kept.

Layout: inputs are ``(N, T) float64`` arrays, **symbol-major** (row = symbol, column = trading
date, C order), so each symbol's bars are contiguous. NaN marks a date without a bar.
Own bars are the dates on which high, low, close and volume are all present (validated bars
always have all of them); windows and lags count own bars, as everywhere in
:mod:`technic.indicators`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange
from numpy.typing import NDArray

from technic.indicators._common import TA_EPSILON
from technic.indicators.cpu import (
    _adx_1d,
    _atr_1d,
    _bbands_1d,
    _ema_1d,
    _macd_1d,
    _obv_1d,
    _roc_1d,
    _rolling_ext_1d,
    _rolling_var,
    _rsi_1d,
    _sma_1d,
)
from technic.indicators.extra import _linreg_r2_at

#: Row names of the matrix returned by :func:`last_row_indicators`, in order.
LAST_ROW_FIELDS: tuple[str, ...] = (
    "close", "volume", "n_bars",
    "sma_20", "sma_50", "sma_200", "ema_12", "ema_26", "rsi_14",
    "macd", "macd_signal", "macd_hist", "bb_upper", "bb_middle", "bb_lower",
    "atr_14", "adx_14", "obv", "obv_lag_20", "roc_10",
    "close_lag_21", "close_lag_63", "close_lag_126", "close_lag_252",
    "avg_volume_20", "avg_volume_20_lag_1", "dollar_volume_20",
    "realized_vol_20", "realized_vol_60", "high_52w", "low_52w", "trend_r2_63",
)
_F = {name: i for i, name in enumerate(LAST_ROW_FIELDS)}
_SQRT_252 = math.sqrt(252.0)


@njit(cache=True, nogil=True)
def _last(res, m, k):
    # Value k bars before the last (k = 0: the last), NaN when it does not exist.
    i = m - 1 - k
    return res[i] if i >= 0 else np.nan


@njit(cache=True, nogil=True)
def _rvol_last(ret, m, n, var):
    # The last value of _rvol_1d(src, m, n, √252, ret, res) given ret[1:m] = log returns.
    if m <= n:
        return np.nan
    _rolling_var(ret, 1, m, n, var)
    return math.sqrt(var[m - 1] * (float(n) / float(n - 1))) * _SQRT_252


@njit(cache=True, nogil=True, parallel=True)
def _last_rows(h, lo, c, v, rows, out, n_blocks):
    # Symbols in n_blocks contiguous blocks (a few per thread); scratch allocated per block.
    t_len = h.shape[1]
    n_rows = rows.shape[0]
    per = (n_rows + n_blocks - 1) // n_blocks
    for b in prange(n_blocks):
        bh = np.empty(t_len)
        bl = np.empty(t_len)
        bc = np.empty(t_len)
        bv = np.empty(t_len)
        r1 = np.empty(t_len)
        r2 = np.empty(t_len)
        r3 = np.empty(t_len)
        aux = np.empty(t_len)
        dq = np.empty(t_len, np.int64)
        for r in range(b * per, min(n_rows, (b + 1) * per)):
            _one_row(h, lo, c, v, rows[r], r, out, bh, bl, bc, bv, r1, r2, r3, aux, dq)


@njit(cache=True, nogil=True)
def _one_row(h, lo, c, v, j, r, out, bh, bl, bc, bv, r1, r2, r3, aux, dq):
    t_len = h.shape[1]
    m = 0
    for t in range(t_len):
        a, b, x, y = h[j, t], lo[j, t], c[j, t], v[j, t]
        if not (np.isnan(a) or np.isnan(b) or np.isnan(x) or np.isnan(y)):
            bh[m] = a
            bl[m] = b
            bc[m] = x
            bv[m] = y
            m += 1
    out[0, r] = bc[m - 1] if m > 0 else np.nan
    out[1, r] = bv[m - 1] if m > 0 else np.nan
    out[2, r] = float(m)
    if m == 0:
        for f in range(3, out.shape[0]):
            out[f, r] = np.nan
        return
    _sma_1d(bc, m, 20, r1)
    out[3, r] = _last(r1, m, 0)
    _sma_1d(bc, m, 50, r1)
    out[4, r] = _last(r1, m, 0)
    _sma_1d(bc, m, 200, r1)
    out[5, r] = _last(r1, m, 0)
    _ema_1d(bc, m, 12, r1)
    out[6, r] = _last(r1, m, 0)
    _ema_1d(bc, m, 26, r1)
    out[7, r] = _last(r1, m, 0)
    _rsi_1d(bc, m, 14, r1)
    out[8, r] = _last(r1, m, 0)
    _macd_1d(bc, m, 12, 26, 9, r1, r2, r3)
    out[9, r] = _last(r1, m, 0)
    out[10, r] = _last(r2, m, 0)
    out[11, r] = _last(r3, m, 0)
    _bbands_1d(bc, m, 20, 2.0, r1, r2, r3)
    out[12, r] = _last(r1, m, 0)
    out[13, r] = _last(r2, m, 0)
    out[14, r] = _last(r3, m, 0)
    _atr_1d(bh, bl, bc, m, 14, r1)
    out[15, r] = _last(r1, m, 0)
    _adx_1d(bh, bl, bc, m, 14, TA_EPSILON, r1)
    out[16, r] = _last(r1, m, 0)
    _obv_1d(bc, bv, m, r1)
    out[17, r] = _last(r1, m, 0)
    out[18, r] = _last(r1, m, 20)
    _roc_1d(bc, m, 10, r1)
    out[19, r] = _last(r1, m, 0)
    out[20, r] = _last(bc, m, 21)
    out[21, r] = _last(bc, m, 63)
    out[22, r] = _last(bc, m, 126)
    out[23, r] = _last(bc, m, 252)
    _sma_1d(bv, m, 20, r1)
    out[24, r] = _last(r1, m, 0)
    out[25, r] = _last(r1, m, 1)
    for i in range(m):
        aux[i] = bc[i] * bv[i]
    _sma_1d(aux, m, 20, r1)
    out[26, r] = _last(r1, m, 0)
    # _rvol_1d for n = 20 and 60, with the log returns taken once (same arithmetic).
    for i in range(1, m):
        aux[i] = np.log(bc[i] / bc[i - 1])
    out[27, r] = _rvol_last(aux, m, 20, r1)
    out[28, r] = _rvol_last(aux, m, 60, r1)
    _rolling_ext_1d(bh, m, 252, True, dq, r1)
    out[29, r] = _last(r1, m, 0)
    _rolling_ext_1d(bl, m, 252, False, dq, r1)
    out[30, r] = _last(r1, m, 0)
    # extra._linreg_r2_1d's value at the last bar: the same window function on the last 63.
    out[31, r] = _linreg_r2_at(bc, m - 63, 63) if m >= 63 else np.nan


def last_row_indicators(high: NDArray[np.float64], low: NDArray[np.float64],
                        close: NDArray[np.float64], volume: NDArray[np.float64],
                        rows: NDArray[np.int64] | None = None) -> NDArray[np.float64]:
    """Each symbol's indicators at the window's last own bar.

    Args:
        high, low, close: ``(N, T) float64`` prices in quote currency (USD) per share,
            symbol-major, NaN where the symbol has no bar on that date.
        volume: ``(N, T) float64`` shares.
        rows: which symbols (row indices) to compute; default all.

    Returns:
        ``(len(LAST_ROW_FIELDS), len(rows)) float64``: row ``i`` is ``LAST_ROW_FIELDS[i]``.
        SMA 20/50/200, EMA 12/26, RSI 14 (Wilder), MACD 12/26/9, Bollinger 20/2, ATR 14, ADX
        14, OBV and ROC 10 follow TA-Lib 0.8.1 (see :mod:`technic.indicators.cpu` for sources
        and conventions); ``*_lag_k`` is the value ``k`` own bars before the last;
        realized vol is the annualized (√252) sample std of log returns; 52-week high/low
        are the extremes of the last 252 highs/lows; ``trend_r2_63`` is the R² (fraction
        0–1) of the least-squares line of the last 63 closes on the bar index
        (:func:`technic.indicators.linreg_r2`); ``n_bars`` counts own bars. NaN
        where the symbol has too few bars. The value at the last bar is what the full
        kernels give at the last row of the same window (same arithmetic, bit-identical).

    Raises:
        ValueError: the four inputs differ in shape or are not 2-D.
    """
    # Row-contiguous views (e.g. a ring buffer's [:, start:end]) are used as they are.
    arrs = [np.asarray(x, dtype=np.float64) for x in (high, low, close, volume)]
    arrs = [a if a.ndim == 2 and a.strides[1] == 8 else np.ascontiguousarray(a)
            for a in arrs]
    if arrs[0].ndim != 2 or any(a.shape != arrs[0].shape for a in arrs):
        raise ValueError("high, low, close and volume must be (N, T) arrays of one shape")
    idx = (np.arange(arrs[0].shape[0], dtype=np.int64) if rows is None
           else np.ascontiguousarray(rows, dtype=np.int64))
    out = np.empty((len(LAST_ROW_FIELDS), len(idx)))
    if len(idx):
        _last_rows(*arrs, idx, out, min(len(idx), 64))
    return out
