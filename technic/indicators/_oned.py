"""The 1-D indicator kernels of :mod:`technic.indicators.cpu` (one symbol's own bars).

Each ``_<name>_1d(src, m, ..., res)`` computes an indicator over the first ``m`` values of a
gap-free series (a column's own bars, gathered by ``_gather*``) into ``res``; the ones
with a per-bar step in :mod:`._steps` are generated from their :mod:`._drivers` spec (rings
``(n, 1)`` allocated inside). They serve the last-row path
(:mod:`.lastrow`), the indicators without a time-major kernel (``_panel1``, ``_panel_hlc``:
gather a column, run the kernel, scatter back with NaN on gap rows) and
:mod:`.extra`. TA-Lib conventions and sources: :mod:`technic.indicators.cpu`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import njit

from technic.indicators import _drivers
from technic.indicators._common import _JIT
from technic.indicators._steps import CPU as _S

# ---------------------------------------------------------------------------------------------
# Gather / scatter: a column's own bars into contiguous scratch and back.
# ---------------------------------------------------------------------------------------------


@njit(**_JIT)
def _gather_bars(xs, j, b, idx):
    # Column j's bars (rows where every input of the tuple xs is present) into b[:, :m] and
    # their rows into idx[:m]; returns m. Compiled once per input count.
    n_in = len(xs)
    m = 0
    for t in range(xs[0].shape[0]):
        ok = True
        for q in range(n_in):
            if np.isnan(xs[q][t, j]):
                ok = False
                break
        if ok:
            for q in range(n_in):
                b[q, m] = xs[q][t, j]
            idx[m] = t
            m += 1
    return m


@njit(**_JIT)
def _scatter_bars(res, idx, m, outs, j):
    # Inverse of _gather_bars for every output: res[q, k] to row idx[k] of outs[q, :, j],
    # NaN on the column's other rows.
    t_len = outs.shape[1]
    for q in range(outs.shape[0]):
        k = 0
        for t in range(t_len):
            if k < m and idx[k] == t:
                outs[q, t, j] = res[q, k]
                k += 1
            else:
                outs[q, t, j] = np.nan


# ---------------------------------------------------------------------------------------------
# 1-D kernels on a gap-free series src[:m]; they write res[:m] (NaN during the warm-up).
# ---------------------------------------------------------------------------------------------


@njit(**_JIT)
def _fill_nan(res, lo, hi):
    for i in range(lo, hi):
        res[i] = np.nan


@njit(**_JIT)
def _nan_head(res, m, n):
    # NaN on the first min(n, m) bars, before a kernel's first output at bar n; returns
    # whether any bar is left to compute (m > n).
    _fill_nan(res, 0, min(n, m))
    return m > n


def _gen(name: str) -> Any:
    # The 1-D driver of a step of ._steps, generated from its ._drivers spec.
    return _drivers.driver(name, "oned", njit(**_JIT), _S)


_sma_1d = _gen("sma")  # TA_SMA (output from bar n - 1)
_ema_1d = _gen("ema")  # TA_EMA (from bar n - 1; n = 1 is the series itself)
_rsi_1d = _gen("rsi")  # TA_RSI, Wilder (from bar n)
_macd_1d = _gen("macd")  # TA_MACD (from bar slow + signal - 2)
_roc_1d = _gen("roc")  # TA_ROC (from bar n)
_atr_1d = _gen("atr")  # TA_ATR (from bar n)
_adx_1d = _gen("adx")  # TA_ADX (from bar 2n - 1)
_obv_1d = _gen("obv")  # TA_OBV
_bbands_1d = _gen("bbands")  # TA_BBANDS, SMA path (from bar n - 1)
_stoch_1d = _gen("stoch")  # TA_STOCH, SMA smoothing (from bar fk + sk + sd - 3)
_willr_1d = _gen("willr")  # TA_WILLR (from bar n - 1)
_mfi_1d = _gen("mfi")  # TA_MFI 0.8.1 (from bar n)


@njit(**_JIT)
def _add_devs(src, a, b, shift, t1, t2):
    # The shifted sums S1 += sum(x - K), S2 += sum((x - K)^2) over src[a:b], in order.
    for j in range(a, b):
        d = src[j] - shift
        t1 += d
        d *= d
        t2 += d
    return t1, t2


@njit(**_JIT)
def _shifted_var(t1, t2, inv):
    # The population variance S2/n - (S1/n)^2 of the shifted sums (inv = 1 / n).
    mean1 = t1 * inv
    return t2 * inv - mean1 * mean1


@njit(**_JIT)
def _rolling_var(src, off, m, n, var):
    # Population variance of each window src[i-n+1 : i+1], i in [off+n-1, m), written to
    # var[i]: TA-Lib 0.8.1's cancellation-free VAR (issues #118, #243). Running sums of
    # deviations from a shift K (first window value, later re-anchored at the window mean):
    # var = S2/n - (S1/n)^2, S1 = sum(x - K), S2 = sum((x - K)^2). The sums are rebuilt with
    # a fresh two-pass when var < 1e-6 * S2/n (cancellation), when the departing squared
    # deviation exceeds 1e6 * S2 (an outlier left the window), or every 32 n bars; a rebuilt
    # var below 1e-12 * S2/n is 0 (so a constant window gives exactly 0).
    inv = 1.0 / float(n)
    lb = n - 1
    shift = src[off]
    t1, t2 = _add_devs(src, off, off + lb, shift, 0.0, 0.0)
    bars_left = 32 * n
    for i in range(off + lb, m):
        d = src[i] - shift
        t1 += d
        d *= d
        t2 += d
        v = _shifted_var(t1, t2, inv)
        d = src[i - lb] - shift
        t1 -= d
        d *= d
        t2 -= d
        bars_left -= 1
        if v < 0.000001 * (t2 * inv) or d > 1000000.0 * t2 or bars_left <= 0:
            bars_left = 32 * n
            shift, t1, t2, v = _var_rebuild(src, i - lb, i, inv)
        var[i] = v


@njit(**_JIT)
def _var_rebuild(src, ws, we, inv):
    # _rolling_var's fresh two-pass over the window src[ws..we] (inv = 1 / its length):
    # shift K = the window mean, the variance (0 below 1e-12 S2/n), and S1, S2 with the
    # departing value src[ws] already taken out. Returns (K, S1, S2, var).
    s = 0.0
    for j in range(ws, we + 1):
        s += src[j]
    shift = s * inv
    t1, t2 = _add_devs(src, ws, we + 1, shift, 0.0, 0.0)
    v = _shifted_var(t1, t2, inv)
    if v < 0.000000000001 * (t2 * inv):
        v = 0.0
    d = src[ws] - shift
    t1 -= d
    d *= d
    t2 -= d
    return shift, t1, t2, v


@njit(**_JIT)
def _dm_move(diff_p, diff_m, plus):
    # One-bar +DM (plus) or -DM: the move when it is positive and beats the other one.
    if plus:
        return diff_p if (diff_p > 0 and diff_p > diff_m) else 0.0
    return diff_m if (diff_m > 0 and diff_p < diff_m) else 0.0


@njit(**_JIT)
def _di_1d(hi, lo, cl, m, n, plus, res):
    # TA_PLUS_DI / TA_MINUS_DI: DM and TR summed over the first n-1 changes, then Wilder
    # sums s = s - s / n + x; DI = 100 * DM / TR (0 if TR is 0). First output at bar n.
    if not _nan_head(res, m, n):
        return
    fn = float(n)
    dm = 0.0
    tr = 0.0
    ph = hi[0]
    pl = lo[0]
    pc = cl[0]
    for i in range(1, n):
        diff_p = hi[i] - ph
        ph = hi[i]
        diff_m = pl - lo[i]
        pl = lo[i]
        dm += _dm_move(diff_p, diff_m, plus)
        tr += _S.true_range(ph, pl, pc)
        pc = cl[i]
    for i in range(n, m):
        diff_p = hi[i] - ph
        ph = hi[i]
        diff_m = pl - lo[i]
        pl = lo[i]
        # TA-Lib adds nothing on a bar without a move; adding 0.0 is the same (dm >= 0).
        dm = dm - dm / fn + _dm_move(diff_p, diff_m, plus)
        tr = tr - tr / fn + _S.true_range(ph, pl, pc)
        pc = cl[i]
        # The TR sum only ever adds non-negative terms: tested exactly (TA-Lib 0.8, #253).
        res[i] = 100.0 * (dm / tr) if tr > 0.0 else 0.0


@njit(**_JIT)
def _lag_1d(src, m, k, res):
    _fill_nan(res, 0, min(k, m))
    for i in range(k, m):
        res[i] = src[i - k]


@njit(**_JIT)
def _rolling_ext_1d(src, m, n, want_max, dq, res):
    # Monotonic deque of indices (O(m)); dq[head:tail] holds candidate extremes.
    head = 0
    tail = 0
    for i in range(m):
        v = src[i]
        if want_max:
            while tail > head and src[dq[tail - 1]] <= v:
                tail -= 1
        else:
            while tail > head and src[dq[tail - 1]] >= v:
                tail -= 1
        dq[tail] = i
        tail += 1
        if dq[head] <= i - n:
            head += 1
        res[i] = src[dq[head]] if i >= n - 1 else np.nan


@njit(**_JIT)
def _rvol_1d(src, m, n, scale, ret, res, fresh):
    # Sample std (ddof=1) of the last n log returns r_i = log(c_i / c_{i-1}), times
    # sqrt(periods per year). Rolling variance as in _rolling_var (exactly 0 on a window of
    # zero returns). First output at bar n. fresh: compute the returns into ret[1:m] (only
    # when m > n); else they are there already (the last-row driver computes them once per
    # symbol for every window).
    if not _nan_head(res, m, n):
        return
    if fresh:
        for i in range(1, m):
            ret[i] = np.log(src[i] / src[i - 1])
    _rolling_var(ret, 1, m, n, res)
    ddof = float(n) / float(n - 1)
    for i in range(n, m):
        res[i] = math.sqrt(res[i] * ddof) * scale


# ---------------------------------------------------------------------------------------------
# Panel drivers: loop over columns (outside), time (inside).
# ---------------------------------------------------------------------------------------------

_K_SMA, _K_EMA, _K_RSI, _K_ROC, _K_LAG, _K_MAX, _K_MIN, _K_RVOL = range(8)


@njit(**_JIT)
def _panel1(x, kind, n, fparam, out):
    t_len, n_cols = x.shape
    b = np.empty((1, t_len))
    r = np.empty((1, t_len))
    bx, res = b[0], r[0]
    aux = np.empty(t_len)
    idx = np.empty(t_len, np.int64)
    dq = np.empty(t_len, np.int64)
    outs = out.reshape((1, t_len, n_cols))
    for j in range(n_cols):
        m = _gather_bars((x,), j, b, idx)
        # SMA, EMA, RSI and ROC run time-major (_tm); this driver serves the rest.
        if kind == _K_LAG:
            _lag_1d(bx, m, n, res)
        elif kind == _K_MAX:
            _rolling_ext_1d(bx, m, n, True, dq, res)
        elif kind == _K_MIN:
            _rolling_ext_1d(bx, m, n, False, dq, res)
        else:
            _rvol_1d(bx, m, n, fparam, aux, res, True)
        _scatter_bars(r, idx, m, outs, j)


_K_ATR, _K_ADX, _K_PDI, _K_MDI = range(4)


@njit(**_JIT)
def _panel_hlc(h, lo, c, kind, n, eps, out):
    t_len, n_cols = h.shape
    b = np.empty((3, t_len))
    r = np.empty((1, t_len))
    idx = np.empty(t_len, np.int64)
    outs = out.reshape((1, t_len, n_cols))
    for j in range(n_cols):
        m = _gather_bars((h, lo, c), j, b, idx)
        # ATR and ADX run time-major (_tm); this driver serves +DI / -DI.
        _di_1d(b[0], b[1], b[2], m, n, kind == _K_PDI, r[0])
        _scatter_bars(r, idx, m, outs, j)
