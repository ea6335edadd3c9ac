"""Indicators at the LAST bar only, from a symbol-major window of bars, driven by a plan.

An incremental refresh needs each symbol's indicators on one date — the window's last — not
on all ``T`` dates. :func:`last_row_values` walks every symbol's own bars once and runs the
same 1-D TA-Lib-order kernels as the full panels, keeping only the value at the last bar
(or ``lag`` bars before it) of each requested output. The results are therefore
bit-identical to the last row of the full-panel indicators on the same window, while nothing
of size ``(T, N)`` is allocated.

What to compute is a plan (:class:`LastRowPlan`): a table of indicator calls (``OPS`` code,
inputs, parameters) and of the outputs to keep. :func:`technic.features.plans.last_row_plan`
builds it from the feature registry; this module knows nothing of features.

Layout: inputs are ``(N, T) float64`` arrays, **symbol-major** (row = symbol, column = trading
date, C order), so each symbol's bars are contiguous. NaN marks a date without a bar.
Own bars are the dates on which high, low, close and volume are all present (validated bars
always have all of them); windows and lags count own bars, as everywhere in
:mod:`technic.indicators`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit, prange
from numpy.typing import NDArray

from technic.indicators._common import _JIT, TA_EPSILON
from technic.indicators._oned import (
    _adx_1d,
    _atr_1d,
    _bbands_1d,
    _ema_1d,
    _macd_1d,
    _mfi_1d,
    _obv_1d,
    _roc_1d,
    _rsi_1d,
    _rvol_1d,
    _sma_1d,
)
from technic.indicators._oned_extra import _linreg_r2_at, _volume_ratio_1d

#: Opcode of each indicator the last-row driver runs (``bar``: the input itself).
OPS: dict[str, int] = {name: i for i, name in enumerate((
    "bar", "sma", "ema", "rsi", "macd", "bbands", "atr", "adx", "obv", "roc", "rolling_max",
    "rolling_min", "realized_vol", "linreg_r2", "mfi", "cmf"))}
(_BAR, _SMA, _EMA, _RSI, _MACD, _BBANDS, _ATR, _ADX, _OBV, _ROC, _MAX, _MIN, _RVOL, _R2,
 _MFI, _CMF) = range(len(OPS))

#: Input buffers a call can read, by index: the four bar fields and close * volume.
INPUTS: tuple[str, ...] = ("high", "low", "close", "volume", "dollar_volume")


@dataclass(frozen=True)
class LastRowPlan:
    """Indicator calls and the outputs to keep.

    ``calls``: ``(K, 8) int64``, one row per call: opcode (:data:`OPS`), four input indices
    (:data:`INPUTS`, -1 unused), three integer parameters. ``fparams``: ``(K,) float64``
    (e.g. Bollinger's ``k``). ``outputs``: ``(R, 3) int64``, one row per kept value, sorted by
    call: call index, output index of that call, lag in own bars. ``names``: the ``R`` names.
    """

    calls: NDArray[np.int64]
    fparams: NDArray[np.float64]
    outputs: NDArray[np.int64]
    names: tuple[str, ...]


_SQRT_252 = math.sqrt(252.0)


@njit(**_JIT)
def _last(res, m, k):
    # Value k bars before the last (k = 0: the last), NaN when it does not exist.
    i = m - 1 - k
    return res[i] if i >= 0 else np.nan


@njit(**_JIT)
def _window_extreme(src, m, n, want_max):
    # The highest (want_max) / lowest of src[m-n:m], NaN when m < n: the value
    # _rolling_ext_1d gives at bar m - 1 (on a tie the later bar, as its deque keeps it; the
    # same bits, signed zeros included).
    if m < n:
        return np.nan
    e = src[m - n]
    for i in range(m - n + 1, m):
        x = src[i]
        if (x >= e) if want_max else (x <= e):
            e = x
    return e


@njit(**_JIT)
def _run_call(op, b, i0, i1, i2, i3, p0, p1, p2, fp, m, r, aux, dq, ret_of):
    # One indicator call on the first m own bars of the input buffers b; outputs in r[0..2].
    # Rows of r are only meaningful where _keep reads them (the last few bars). aux holds
    # the log returns of input ret_of (-1: none yet); returns what it holds afterwards, so
    # the realized volatilities of one input share one pass of logarithms.
    if op == _BAR:
        r[0, :m] = b[i0, :m]
    elif op == _SMA:
        _sma_1d(b[i0], m, p0, r[0])
    elif op == _EMA:
        _ema_1d(b[i0], m, p0, r[0])
    elif op == _RSI:
        _rsi_1d(b[i0], m, p0, r[0])
    elif op == _MACD:
        _macd_1d(b[i0], m, p0, p1, p2, r[0], r[1], r[2])
    elif op == _BBANDS:
        _bbands_1d(b[i0], m, p0, fp, r[0], r[1], r[2])
    elif op == _ATR:
        _atr_1d(b[i0], b[i1], b[i2], m, p0, r[0])
    elif op == _ADX:
        _adx_1d(b[i0], b[i1], b[i2], m, p0, TA_EPSILON, r[0])
    elif op == _OBV:
        _obv_1d(b[i0], b[i1], m, r[0])
    elif op == _ROC:
        _roc_1d(b[i0], m, p0, r[0])
    elif op in (_MAX, _MIN):
        # At the last bar only (an O(n) window instead of the O(m) deque over every bar).
        r[0, m - 1] = _window_extreme(b[i0], m, p0, op == _MAX)
    elif op == _RVOL:
        # aux gets the log returns only when m > p0
        _rvol_1d(b[i0], m, p0, _SQRT_252, aux, r[0], ret_of != i0)
        ret_of = i0 if m > p0 else ret_of
    elif op == _R2:
        # extra._linreg_r2_1d's value at the last bar only (an O(n) window per value).
        r[0, m - 1] = _linreg_r2_at(b[i0], m - p0, p0) if m >= p0 else np.nan
    elif op == _MFI:
        _mfi_1d(b[i0], b[i1], b[i2], b[i3], m, p0, r[0])
    elif op == _CMF:
        _volume_ratio_1d(b[i0], b[i1], b[i2], b[i3], m, p0, False, r[0])
    return ret_of


@njit(**_JIT)
def _one_symbol(h, lo, c, v, j, col, calls, fparams, outputs, out, n_bars, b, r, aux, dq):
    t_len = h.shape[1]
    m = 0
    for t in range(t_len):
        x0, x1, x2, x3 = h[j, t], lo[j, t], c[j, t], v[j, t]
        if not (np.isnan(x0) or np.isnan(x1) or np.isnan(x2) or np.isnan(x3)):
            b[0, m] = x0
            b[1, m] = x1
            b[2, m] = x2
            b[3, m] = x3
            b[4, m] = x2 * x3
            m += 1
    n_bars[col] = float(m)
    if m == 0:
        for k in range(outputs.shape[0]):
            out[k, col] = np.nan
        return
    k = 0
    ret_of = -1
    for q in range(calls.shape[0]):
        cl = calls[q]
        ret_of = _run_call(cl[0], b, cl[1], cl[2], cl[3], cl[4], cl[5], cl[6], cl[7],
                           fparams[q], m, r, aux, dq, ret_of)
        while k < outputs.shape[0] and outputs[k, 0] == q:
            out[k, col] = _last(r[outputs[k, 1]], m, outputs[k, 2])
            k += 1


@njit(**_JIT, parallel=True)
def _last_rows(h, lo, c, v, rows, calls, fparams, outputs, out, n_bars, n_blocks):
    # Symbols in n_blocks contiguous blocks (a few per thread); scratch allocated per block.
    t_len = h.shape[1]
    n_rows = rows.shape[0]
    per = (n_rows + n_blocks - 1) // n_blocks
    for blk in prange(n_blocks):
        b = np.empty((5, t_len))
        r = np.empty((3, max(t_len, 1)))
        aux = np.empty(t_len)
        dq = np.empty(t_len, np.int64)
        for i in range(blk * per, min(n_rows, (blk + 1) * per)):
            _one_symbol(h, lo, c, v, rows[i], i, calls, fparams, outputs, out, n_bars, b, r,
                        aux, dq)


def last_row_values(high: NDArray[np.float64], low: NDArray[np.float64],
                    close: NDArray[np.float64], volume: NDArray[np.float64],
                    plan: LastRowPlan, rows: NDArray[np.int64] | None = None,
                    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Each symbol's planned indicator outputs at the window's last own bar.

    Args:
        high, low, close: ``(N, T) float64`` prices in quote currency (USD) per share,
            symbol-major, NaN where the symbol has no bar on that date.
        volume: ``(N, T) float64`` shares.
        plan: what to compute (:class:`LastRowPlan`).
        rows: which symbols (row indices) to compute; default all.

    Returns:
        ``(values, n_bars)``: ``values`` is ``(len(plan.names), len(rows)) float64``, row
        ``i`` the output ``plan.names[i]`` at the last own bar (or ``lag`` own bars before
        it), in the unit of its indicator (:mod:`technic.indicators`), NaN where the symbol
        has too few bars; ``n_bars`` ``(len(rows),) float64`` counts own bars. Each value is
        what the full-panel indicator gives at the last row of the same window (same
        arithmetic, bit-identical).

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
    out = np.empty((len(plan.names), len(idx)))
    n_bars = np.empty(len(idx))
    if len(idx):
        _last_rows(*arrs, idx, plan.calls, plan.fparams, plan.outputs, out, n_bars,
                   min(len(idx), 64))
    return out, n_bars
