"""The 1-D indicator kernels of :mod:`technic.indicators.cpu` (one symbol's own bars).

Each ``_<name>_1d(src, m, ..., res)`` computes an indicator over the first ``m`` values of a
gap-free series (a column's own bars, gathered by ``_gather*``) into ``res``; the recursive
ones drive the per-bar steps of :mod:`._steps`. They serve the last-row path
(:mod:`.lastrow`), the indicators without a time-major kernel (``_panel1``, ``_panel_hlc``:
gather a column, run the kernel, scatter back with NaN on gap rows) and
:mod:`.extra`. TA-Lib conventions and sources: :mod:`technic.indicators.cpu`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from technic.indicators._common import _JIT
from technic.indicators._steps import CPU as _S

# ---------------------------------------------------------------------------------------------
# Gather / scatter: a column's own bars into contiguous scratch and back.
# ---------------------------------------------------------------------------------------------


@njit(**_JIT)
def _gather1(x, j, bx, idx):
    m = 0
    for t in range(x.shape[0]):
        v = x[t, j]
        if not np.isnan(v):
            bx[m] = v
            idx[m] = t
            m += 1
    return m


@njit(**_JIT)
def _gather2(a, b, j, ba, bb, idx):
    m = 0
    for t in range(a.shape[0]):
        va = a[t, j]
        vb = b[t, j]
        if not (np.isnan(va) or np.isnan(vb)):
            ba[m] = va
            bb[m] = vb
            idx[m] = t
            m += 1
    return m


@njit(**_JIT)
def _gather3(a, b, c, j, ba, bb, bc, idx):
    m = 0
    for t in range(a.shape[0]):
        va = a[t, j]
        vb = b[t, j]
        vc = c[t, j]
        if not (np.isnan(va) or np.isnan(vb) or np.isnan(vc)):
            ba[m] = va
            bb[m] = vb
            bc[m] = vc
            idx[m] = t
            m += 1
    return m


@njit(**_JIT)
def _scatter(res, idx, m, out, j):
    k = 0
    for t in range(out.shape[0]):
        if k < m and idx[k] == t:
            out[t, j] = res[k]
            k += 1
        else:
            out[t, j] = np.nan


# ---------------------------------------------------------------------------------------------
# 1-D kernels on a gap-free series src[:m]; they write res[:m] (NaN during the warm-up).
# ---------------------------------------------------------------------------------------------


@njit(**_JIT)
def _fill_nan(res, lo, hi):
    for i in range(lo, hi):
        res[i] = np.nan


@njit(**_JIT)
def _sma_1d(src, m, n, res):
    # TA_SMA: running total, add the new bar, output total / n, subtract the trailing bar.
    if m < n:
        _fill_nan(res, 0, m)
        return
    _fill_nan(res, 0, n - 1)
    total = 0.0
    for i in range(n - 1):
        total += src[i]
    fn = float(n)
    for i in range(n - 1, m):
        total += src[i]
        tmp = total
        total -= src[i - n + 1]
        res[i] = tmp / fn


@njit(**_JIT)
def _ema_1d(src, m, n, res):
    # TA_EMA (default compatibility): _steps.ema_step over the own bars (output from bar
    # n - 1); n = 1 is the series itself (k = 1: TA-Lib returns it unchanged).
    if n == 1:
        for i in range(m):
            res[i] = src[i]
        return
    k = 2.0 / float(n + 1)
    fn = float(n)
    p = 0.0
    for i in range(m):
        p = _S.ema_step(i, p, src[i], n, fn, k)
        res[i] = p if i >= n - 1 else np.nan


@njit(**_JIT)
def _rsi_1d(src, m, n, res):
    # TA_RSI (Wilder), TA-Lib 0.8 form: _steps.rsi_step over the own bars (output from bar n).
    inv = 1.0 / float(n)
    fn1 = float(n - 1)
    gain = 0.0
    loss = 0.0
    px = 0.0
    for i in range(m):
        gain, loss, r = _S.rsi_step(i, gain, loss, px, src[i], n, inv, fn1)
        px = src[i]
        res[i] = r if i >= n else np.nan


@njit(**_JIT)
def _macd_1d(src, m, fast, slow, signal, r_macd, r_sig, r_hist):
    # TA_MACD (default compatibility): _steps.macd_step over the own bars (outputs from bar
    # slow + signal - 2).
    kf = 2.0 / float(fast + 1)
    ks = 2.0 / float(slow + 1)
    kg = 2.0 / float(signal + 1)
    f0 = slow + signal - 2
    f = 0.0
    s = 0.0
    g = 0.0
    for i in range(m):
        f, s, g, mv = _S.macd_step(i, f, s, g, src[i], fast, slow, signal, kf, ks, kg)
        r_macd[i] = mv if i >= f0 else np.nan
        r_sig[i] = g if i >= f0 else np.nan
        r_hist[i] = mv - g if i >= f0 else np.nan


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
    t1 = 0.0
    t2 = 0.0
    for j in range(off, off + lb):
        d = src[j] - shift
        t1 += d
        d *= d
        t2 += d
    bars_left = 32 * n
    for i in range(off + lb, m):
        d = src[i] - shift
        t1 += d
        d *= d
        t2 += d
        mean1 = t1 * inv
        v = t2 * inv - mean1 * mean1
        d = src[i - lb] - shift
        t1 -= d
        d *= d
        t2 -= d
        bars_left -= 1
        if v < 0.000001 * (t2 * inv) or d > 1000000.0 * t2 or bars_left <= 0:
            bars_left = 32 * n
            ws = i - lb
            s = 0.0
            for j in range(ws, i + 1):
                s += src[j]
            shift = s * inv
            t1 = 0.0
            t2 = 0.0
            for j in range(ws, i + 1):
                d = src[j] - shift
                t1 += d
                d *= d
                t2 += d
            mean1 = t1 * inv
            v = t2 * inv - mean1 * mean1
            if v < 0.000000000001 * (t2 * inv):
                v = 0.0
            d = src[ws] - shift
            t1 -= d
            d *= d
            t2 -= d
        var[i] = v


@njit(**_JIT)
def _bbands_1d(src, m, n, k, r_up, r_mid, r_lo):
    # TA_BBANDS, SMA path of TA-Lib 0.8.1 (issues #117, #118, #243): middle band = SMA
    # running sum; std = sqrt of the shifted-sum population variance (_rolling_var);
    # upper / lower = middle +- std * k.
    _sma_1d(src, m, n, r_mid)
    if m < n:
        _fill_nan(r_up, 0, m)
        _fill_nan(r_lo, 0, m)
        return
    _fill_nan(r_up, 0, n - 1)
    _fill_nan(r_lo, 0, n - 1)
    _rolling_var(src, 0, m, n, r_up)  # r_up holds the variance until overwritten below
    for i in range(n - 1, m):
        dev = math.sqrt(r_up[i]) * k
        mid = r_mid[i]
        r_up[i] = mid + dev
        r_lo[i] = mid - dev


@njit(**_JIT)
def _atr_1d(hi, lo, cl, m, n, res):
    # TA_ATR: _steps.atr_step over the own bars (output from bar n).
    beta = float(n - 1) / float(n)
    alpha = 1.0 - beta
    fn = float(n)
    st = 0.0
    pc = 0.0
    for i in range(m):
        st = _S.atr_step(i, st, hi[i], lo[i], pc, n, fn, beta, alpha)
        pc = cl[i]
        res[i] = st if i >= n else np.nan


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
    if m <= n:
        _fill_nan(res, 0, m)
        return
    _fill_nan(res, 0, n)
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
def _adx_1d(hi, lo, cl, m, n, eps, res):
    # TA_ADX: _steps.adx_step over the own bars (output from bar 2n - 1).
    fn = float(n)
    fn1 = float(n - 1)
    fo = 2 * n - 1
    ph = 0.0
    pl = 0.0
    pc = 0.0
    pdm = 0.0
    mdm = 0.0
    tr = 0.0
    adx_v = 0.0
    for i in range(m):
        pdm, mdm, tr, adx_v = _S.adx_step(i, ph, pl, pc, pdm, mdm, tr, adx_v, hi[i], lo[i], n,
                                          fn, fn1, fo, eps)
        ph = hi[i]
        pl = lo[i]
        pc = cl[i]
        res[i] = adx_v if i >= fo else np.nan


@njit(**_JIT)
def _obv_1d(cl, vol, m, res):
    # TA_OBV: starts at the first bar's volume; + volume on an up close, - on a down close.
    if m == 0:
        return
    obv_v = vol[0]
    prev = cl[0]
    for i in range(m):
        c = cl[i]
        if c > prev:
            obv_v += vol[i]
        elif c < prev:
            obv_v -= vol[i]
        res[i] = obv_v
        prev = c


@njit(**_JIT)
def _roc_1d(src, m, n, res):
    # TA_ROC: ((x / x[n bars ago]) - 1) * 100, 0 where the old value is 0.
    _fill_nan(res, 0, min(n, m))
    for i in range(n, m):
        old = src[i - n]
        if old != 0.0:
            res[i] = ((src[i] / old) - 1.0) * 100.0
        else:
            res[i] = 0.0


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
def _rvol_1d(src, m, n, scale, ret, res):
    # Sample std (ddof=1) of the last n log returns r_i = log(c_i / c_{i-1}), times
    # sqrt(periods per year). Rolling variance as in _rolling_var (exactly 0 on a window of
    # zero returns). First output at bar n.
    if m <= n:
        _fill_nan(res, 0, m)
        return
    _fill_nan(res, 0, n)
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
    bx = np.empty(t_len)
    res = np.empty(t_len)
    aux = np.empty(t_len)
    idx = np.empty(t_len, np.int64)
    dq = np.empty(t_len, np.int64)
    for j in range(n_cols):
        m = _gather1(x, j, bx, idx)
        # SMA, EMA, RSI and ROC run time-major (_tm); this driver serves the rest.
        if kind == _K_LAG:
            _lag_1d(bx, m, n, res)
        elif kind == _K_MAX:
            _rolling_ext_1d(bx, m, n, True, dq, res)
        elif kind == _K_MIN:
            _rolling_ext_1d(bx, m, n, False, dq, res)
        else:
            _rvol_1d(bx, m, n, fparam, aux, res)
        _scatter(res, idx, m, out, j)


_K_ATR, _K_ADX, _K_PDI, _K_MDI = range(4)


@njit(**_JIT)
def _panel_hlc(h, lo, c, kind, n, eps, out):
    t_len, n_cols = h.shape
    bh = np.empty(t_len)
    bl = np.empty(t_len)
    bc = np.empty(t_len)
    res = np.empty(t_len)
    idx = np.empty(t_len, np.int64)
    for j in range(n_cols):
        m = _gather3(h, lo, c, j, bh, bl, bc, idx)
        # ATR and ADX run time-major (_tm); this driver serves +DI / -DI.
        if kind == _K_PDI:
            _di_1d(bh, bl, bc, m, n, True, res)
        else:
            _di_1d(bh, bl, bc, m, n, False, res)
        _scatter(res, idx, m, out, j)
