"""More CPU indicator kernels (numba) over time-major panels: TA-Lib twins and helpers.

Same data layout, gap policy and validation as :mod:`technic.indicators.cpu` ("bars, not
calendar days": each column is processed over the symbol's own bars; a row where any needed
input is NaN is NaN in every output and the state carries across it unchanged; lookbacks
count the symbol's bars). The TA-Lib twins replay TA-Lib C 0.8.1 (bundled with the ``ta-lib``
Python package 0.8.2) in the same arithmetic order, so they are bit-identical to ``talib`` on
each column's compressed series. TA-Lib 0.8.1 conventions that differ from the classic
0.4/0.6 code and are followed here (verified against ``talib`` 0.8.2):

* DEMA/TEMA: each EMA step is ``fma(x - prev, k, prev)`` (as TA_EMA); each EMA stage is
  seeded with the SMA of the previous stage's first ``n`` values;
* NATR: ATR's two-coefficient Wilder step ``fma(b, atr, a * tr)``; the close is tested
  exactly against 0 (no ``TA_IS_ZERO`` band);
* WMA: running sums re-anchored (rebuilt from the window) every ``8 n`` bars;
* LINEARREG_SLOPE: O(1) sliding sums, re-anchored every ``32 n`` bars and on the bar whose
  departing weighted value exceeds ``100 *`` the window's sum of ``|y|``;
* STOCH / STOCHRSI: ``fastK = ((c - LL) / (HH - LL)) * 100``, 0 when ``|HH - LL| <=
  1e-14 * (|HH| + |LL|)`` (scale-aware zero test); WILLR: ``((HH - c) / (HH - LL)) * -100``,
  0 when ``HH == LL``;
* CCI: 0 when ``|tp - mean| <= 1e-14 (|tp| + |mean|)`` (scale-aware) or the deviation sum
  is exactly 0 -- not the fixed ``TA_IS_ZERO`` band on both terms of the older source, which
  returns -66.67 on a flat window whose mean carries a few ulps of rounding; the window sums
  run over TA-Lib's circular buffer in slot order (not chronological);
* MFI: a bar's flow is "no movement" when ``|tp - tp_prev| <= 1e-14 * (|tp| + |tp_prev|)``
  (ties, including near-ties, count in neither sum; a move with zero volume adds 0); after
  ``n`` consecutive empty bars both running sums are reset to exactly 0; MFI is 0 when the
  sum of flows is ``<= 0`` (no longer the old ``< 1.0`` rule), and the positive sum is
  clamped into ``[0, total]``;
* AROON: ties pick the most recent extreme.

LINREG_R2 (no TA-Lib function; conceptually ``CORREL(close, bar index, n) ** 2``) recomputes
each window in one pass over values shifted by the window's first value, so that every
result depends on its own ``n`` bars only (the panel, the last-row kernel of
:mod:`~technic.indicators.lastrow` and the GPU twin give the same bits).

Implementation: as in :mod:`~technic.indicators.cpu`, each column's own bars are gathered
into contiguous scratch, a 1-D kernel runs on them, and the result is scattered back. Scratch
is ``O(T)`` per call; outputs are allocated once. Serial, ``nogil``, ``cache=True``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numba import njit
from numpy.typing import ArrayLike

from technic.indicators import _rg, _tm
from technic.indicators._common import _fma
from technic.indicators.cpu import (
    F64,
    TA_EPSILON,
    _as_panel,
    _as_panels,
    _atr_1d,
    _ema_1d,
    _fill_nan,
    _period,
    _rolling_ext_1d,
    _rsi_1d,
    _shape_back,
    _sma_1d,
)

__all__ = [
    "aroon",
    "cci",
    "cmf",
    "dema",
    "dist_from_high",
    "donchian",
    "gap_pct",
    "keltner",
    "linreg_r2",
    "linreg_slope",
    "mfi",
    "mom",
    "natr",
    "rel_volume",
    "rolling_vwap",
    "stoch",
    "stochrsi",
    "tema",
    "willr",
    "wma",
]

_JIT = {"cache": True, "nogil": True}


# ---------------------------------------------------------------------------------------------
# 1-D kernels on a gap-free series (rows of `b`, first m values); they write res[q, :m].
# ---------------------------------------------------------------------------------------------


@njit(**_JIT)
def _wma_1d(src, m, n, res):
    # TA_WMA 0.8.1: periodSum / periodSub running sums, output periodSum / (n(n+1)/2), then
    # periodSum -= periodSub; both sums are rebuilt from the window every 8 n bars.
    if m < n:
        _fill_nan(res, 0, m)
        return
    if n == 1:
        for i in range(m):
            res[i] = src[i]
        return
    _fill_nan(res, 0, n - 1)
    div = float(n) * (n + 1) / 2.0
    psub = 0.0
    psum = 0.0
    for i in range(n - 1):
        v = src[i]
        psub += v
        psum += v * (i + 1)
    left = 8 * n
    trail = 0.0
    fn = float(n)
    for i in range(n - 1, m):
        v = src[i]
        psub += v
        psub -= trail
        psum += v * fn
        left -= 1
        if left <= 0:
            left = 8 * n
            psub = 0.0
            psum = 0.0
            rw = 1
            for j in range(i - n + 1, i + 1):
                v = src[j]
                psub += v
                psum += v * rw
                rw += 1
        trail = src[i - n + 1]
        res[i] = psum / div
        psum -= psub


@njit(**_JIT)
def _ema_stage(src, off, m, n, k, res):
    # TA-Lib EMA over src[off:m]: SMA seed of src[off : off+n] at off+n-1, then fma steps.
    # Returns the offset of its first value (m when there is none).
    if m - off < n:
        _fill_nan(res, off, m)
        return m
    _fill_nan(res, off, off + n - 1)
    total = 0.0
    for i in range(off, off + n):
        total += src[i]
    prev = total / float(n)
    res[off + n - 1] = prev
    for i in range(off + n, m):
        prev = _fma(src[i] - prev, k, prev)
        res[i] = prev
    return off + n - 1


@njit(**_JIT)
def _dema_tema_1d(src, m, n, triple, e1, e2, e3, res):
    # TA_DEMA = 2 e1 - e2; TA_TEMA = e3 + (3 e1 - 3 e2); each EMA stage seeded with the SMA of
    # the first n values of the previous stage. n = 1: a copy (as TA-Lib).
    if n == 1:
        for i in range(m):
            res[i] = src[i]
        return
    k = 2.0 / float(n + 1)
    o1 = _ema_stage(src, 0, m, n, k, e1)
    o2 = _ema_stage(e1, o1, m, n, k, e2)
    if triple:
        o3 = _ema_stage(e2, o2, m, n, k, e3)
        _fill_nan(res, 0, o3)
        for i in range(o3, m):
            res[i] = e3[i] + ((3.0 * e1[i]) - (3.0 * e2[i]))
    else:
        _fill_nan(res, 0, o2)
        for i in range(o2, m):
            res[i] = (2.0 * e1[i]) - e2[i]


@njit(**_JIT)
def _natr_1d(hi, lo, cl, m, n, res):
    # TA_NATR 0.8.1: ATR (SMA seed of n TRs, then fma(b, atr, a*tr)), / close * 100; 0 where
    # the close is exactly 0.
    _atr_1d(hi, lo, cl, m, n, res)
    for i in range(n, m):
        c = cl[i]
        res[i] = (res[i] / c) * 100.0 if c != 0.0 else 0.0


@njit(**_JIT)
def _extremes(hi, lo, a, b):
    # Highest of hi[a:b] and lowest of lo[a:b] (any order gives the same values).
    hh = hi[a]
    ll = lo[a]
    for j in range(a + 1, b):
        if hi[j] > hh:
            hh = hi[j]
        if lo[j] < ll:
            ll = lo[j]
    return hh, ll


@njit(**_JIT)
def _fastk_1d(hi, lo, cl, off, m, n, res):
    # TA-Lib 0.8.1 fast %K on [off, m): ((c - LL) / (HH - LL)) * 100, 0 when HH - LL is zero
    # relative to |HH| + |LL| (TA_IS_ZERO_SCALED). Values from off + n - 1.
    _fill_nan(res, off, min(off + n - 1, m))
    for i in range(off + n - 1, m):
        hh, ll = _extremes(hi, lo, i - n + 1, i + 1)
        if abs(hh - ll) <= TA_EPSILON * (abs(hh) + abs(ll)):
            res[i] = 0.0
        else:
            res[i] = ((cl[i] - ll) / (hh - ll)) * 100.0


@njit(**_JIT)
def _sma_from(src, off, m, n, res):
    # TA_SMA over src[off:m] (values from off + n - 1), written to res[off:m].
    if m > off:
        _sma_1d(src[off:m], m - off, n, res[off:m])


@njit(**_JIT)
def _stoch_1d(hi, lo, cl, m, fk, sk, sd, fast, r_k, r_d):
    # TA_STOCH (matype SMA): fast %K, slow %K = SMA(fast %K, sk), slow %D = SMA(slow %K, sd);
    # both outputs start at fk + sk + sd - 3.
    _fastk_1d(hi, lo, cl, 0, m, fk, fast)
    _sma_from(fast, fk - 1, m, sk, r_k)
    _sma_from(r_k, fk + sk - 2, m, sd, r_d)
    first = min(fk + sk + sd - 3, m)
    _fill_nan(r_k, 0, first)
    _fill_nan(r_d, 0, first)


@njit(**_JIT)
def _stochrsi_1d(src, m, n, fk, fd, rsi_buf, r_k, r_d):
    # TA_STOCHRSI (matype SMA): RSI(n), fast %K of the RSI over fk bars (high = low = close =
    # RSI), fast %D = SMA(fast %K, fd); both start at n + fk + fd - 2.
    _rsi_1d(src, m, n, rsi_buf)
    _fastk_1d(rsi_buf, rsi_buf, rsi_buf, n, m, fk, r_k)
    _sma_from(r_k, n + fk - 1, m, fd, r_d)
    first = min(n + fk + fd - 2, m)
    _fill_nan(r_k, 0, first)
    _fill_nan(r_d, 0, first)


@njit(**_JIT)
def _willr_1d(hi, lo, cl, m, n, res):
    # TA_WILLR 0.8.1: ((HH - c) / (HH - LL)) * -100, 0 when HH == LL.
    _fill_nan(res, 0, min(n - 1, m))
    for i in range(n - 1, m):
        hh, ll = _extremes(hi, lo, i - n + 1, i + 1)
        if (hh - ll) / (-100.0) != 0.0:
            res[i] = ((hh - cl[i]) / (hh - ll)) * (-100.0)
        else:
            res[i] = 0.0


@njit(**_JIT)
def _cci_1d(hi, lo, cl, m, n, circ, res):
    # TA_CCI: typical prices in a circular buffer (bar i in slot i % n); mean and mean
    # absolute deviation summed in SLOT order; (tp - mean) / (0.015 * (mad_sum / n)), 0 when
    # tp - mean is zero relative to |tp| + |mean| (scale-aware) or the deviation sum is 0.
    _fill_nan(res, 0, min(n - 1, m))
    slot = 0
    for i in range(m):
        tp = (hi[i] + lo[i] + cl[i]) / 3
        circ[slot] = tp
        if i >= n - 1:
            avg = 0.0
            for j in range(n):
                avg += circ[j]
            avg /= n
            s = 0.0
            for j in range(n):
                s += abs(circ[j] - avg)
            d = tp - avg
            if not abs(d) <= TA_EPSILON * (abs(tp) + abs(avg)) and s != 0.0:
                res[i] = d / (0.015 * (s / n))
            else:
                res[i] = 0.0
        slot += 1
        if slot == n:
            slot = 0


@njit(**_JIT)
def _mfi_1d(hi, lo, cl, vol, m, n, pos, neg, res):
    # TA_MFI 0.8.1 (issues #107, #244): see the module docstring.
    if m <= n:
        _fill_nan(res, 0, m)
        return
    _fill_nan(res, 0, n)
    prev = (hi[0] + lo[0] + cl[0]) / 3.0
    ps = 0.0
    ns = 0.0
    null_run = 0
    slot = 0
    for i in range(1, m):
        if i > n:
            ps -= pos[slot]
            ns -= neg[slot]
        tp = (hi[i] + lo[i] + cl[i]) / 3.0
        d = tp - prev
        scale = abs(tp) + abs(prev)
        prev = tp
        flow = tp * vol[i]
        if abs(d) <= TA_EPSILON * scale:
            flow = 0.0
        pf = 0.0 if d < 0.0 else flow
        nf = flow if d < 0.0 else 0.0
        pos[slot] = pf
        neg[slot] = nf
        ps += pf
        ns += nf
        null_run = null_run + 1 if flow == 0.0 else 0
        if null_run >= n:
            null_run = n
            ps = 0.0
            ns = 0.0
        if i >= n:
            tot = ps + ns
            pc = 0.0 if ps < 0.0 else (tot if ps > tot else ps)
            res[i] = 0.0 if tot <= 0.0 else 100.0 * (pc / tot)
        slot += 1
        if slot == n:
            slot = 0


@njit(**_JIT)
def _aroon_1d(hi, lo, m, n, r_dn, r_up):
    # TA_AROON: window of n + 1 bars; ties pick the most recent extreme;
    # up = (100 / n) * (n - bars since the highest high), down likewise with the lowest low.
    _fill_nan(r_dn, 0, min(n, m))
    _fill_nan(r_up, 0, min(n, m))
    f = 100.0 / float(n)
    for i in range(n, m):
        hh = hi[i - n]
        hidx = i - n
        ll = lo[i - n]
        lidx = i - n
        for j in range(i - n + 1, i + 1):
            if hi[j] >= hh:
                hh = hi[j]
                hidx = j
            if lo[j] <= ll:
                ll = lo[j]
                lidx = j
        r_up[i] = f * (n - (i - hidx))
        r_dn[i] = f * (n - (i - lidx))


@njit(**_JIT)
def _mom_1d(src, m, n, res):
    _fill_nan(res, 0, min(n, m))
    for i in range(n, m):
        res[i] = src[i] - src[i - n]


@njit(**_JIT)
def _linreg_slope_1d(src, m, n, res):
    # TA_LINEARREG_SLOPE 0.8.1 (issues #103, #254): see the module docstring.
    if m < n:
        _fill_nan(res, 0, m)
        return
    _fill_nan(res, 0, n - 1)
    fn = float(n)
    sx = fn * (n - 1) * 0.5
    sxx = fn * (n - 1) * (2 * n - 1) / 6.0
    div = sx * sx - n * sxx
    sxy = 0.0
    sy = 0.0
    sa = 0.0
    for k in range(n - 1, -1, -1):
        v = src[n - 1 - k]
        sy += v
        sxy += float(k) * v
        sa += abs(v)
    left = 32 * n
    trail = src[0]
    res[n - 1] = (n * sxy - sx * sy) / div
    for i in range(n, m):
        wt = fn * trail
        sxy = sxy + sy - wt
        sy = sy - trail + src[i]
        sa = sa - abs(trail) + abs(src[i])
        left -= 1
        if left <= 0 or abs(wt) > 100.0 * sa:
            left = 32 * n
            sy = 0.0
            sxy = 0.0
            sa = 0.0
            w = float(n - 1)
            for j in range(i - n + 1, i + 1):
                v = src[j]
                sy += v
                sxy += w * v
                sa += abs(v)
                w -= 1.0
        trail = src[i - n + 1]
        res[i] = (n * sxy - sx * sy) / div


@njit(**_JIT)
def _linreg_r2_at(src, a, n):
    # R^2 of the least-squares line of src[a : a+n] against x = 0..n-1, the squared
    # correlation Sxy^2 / (Sxx Syy), in one pass over d_k = y_k - y_a in k order (R^2 is
    # shift-invariant; the shift keeps the sums small and makes a constant window give
    # exactly Syy == 0): s1 = sum d, s2 = sum d^2, sk = sum k d; Syy = s2 - s1^2 / n,
    # Sxy = sk - xbar s1, Sxx = n (n^2 - 1) / 12. NaN unless Syy > 0; clamped to <= 1.
    # Products are never fused (numba does not contract; the GPU twin uses _mul).
    fn = float(n)
    xbar = (fn - 1.0) * 0.5
    sxx = (fn * ((fn * fn) - 1.0)) / 12.0
    y0 = src[a]
    s1 = 0.0
    s2 = 0.0
    sk = 0.0
    for k in range(n):
        d = src[a + k] - y0
        s1 += d
        s2 += d * d
        sk += float(k) * d
    syy = s2 - (s1 * s1) / fn
    if not syy > 0.0:
        return np.nan
    sxy = sk - xbar * s1
    r2 = (sxy * sxy) / (sxx * syy)
    return 1.0 if r2 > 1.0 else r2


@njit(**_JIT)
def _linreg_r2_rows(x, rows, n, out):
    # _linreg_r2_at of the n own bars ending at each row of `rows` (rows with a bar), per
    # column: the same value _linreg_r2_1d gives there, without the other rows.
    t_len, n_cols = x.shape
    buf = np.empty(n)
    for j in range(n_cols):
        for r in rows:
            v = x[r, j]
            if np.isnan(v):
                continue
            k = n
            t = r
            while t >= 0 and k > 0:
                if not np.isnan(x[t, j]):
                    k -= 1
                    buf[k] = x[t, j]
                t -= 1
            if k == 0:
                out[r, j] = _linreg_r2_at(buf, 0, n)


@njit(**_JIT)
def _linreg_r2_1d(src, m, n, res):
    # _linreg_r2_at for every window of n own bars; the first n - 1 bars are NaN.
    _fill_nan(res, 0, min(n - 1, m))
    for i in range(n - 1, m):
        res[i] = _linreg_r2_at(src, i - n + 1, n)


@njit(**_JIT)
def _cmf_1d(hi, lo, cl, vol, m, n, res):
    # Chaikin Money Flow: sum of MFV / sum of volume over the last n bars, window sums
    # recomputed per bar (no running-sum drift). MFV = ((c - l) - (h - c)) / (h - l) * v, 0
    # when h == l.
    _fill_nan(res, 0, min(n - 1, m))
    for i in range(n - 1, m):
        smf = 0.0
        sv = 0.0
        for j in range(i - n + 1, i + 1):
            rng = hi[j] - lo[j]
            if rng != 0.0:
                smf += ((cl[j] - lo[j]) - (hi[j] - cl[j])) / rng * vol[j]
            sv += vol[j]
        res[i] = smf / sv


@njit(**_JIT)
def _vwap_1d(hi, lo, cl, vol, m, n, res):
    # Rolling VWAP: sum(typical * volume) / sum(volume) over the last n bars, typical =
    # (h + l + c) / 3; window sums recomputed per bar.
    _fill_nan(res, 0, min(n - 1, m))
    for i in range(n - 1, m):
        spv = 0.0
        sv = 0.0
        for j in range(i - n + 1, i + 1):
            spv += (hi[j] + lo[j] + cl[j]) / 3.0 * vol[j]
            sv += vol[j]
        res[i] = spv / sv


@njit(**_JIT)
def _donchian_1d(hi, lo, m, n, dq, r_up, r_mid, r_lo):
    _rolling_ext_1d(hi, m, n, True, dq, r_up)
    _rolling_ext_1d(lo, m, n, False, dq, r_lo)
    for i in range(m):
        r_mid[i] = (r_up[i] + r_lo[i]) / 2.0


@njit(**_JIT)
def _keltner_1d(hi, lo, cl, m, n, atr_n, k, atr_buf, r_up, r_mid, r_lo):
    # middle = TA EMA(close, n) (SMA seed); ATR = TA ATR(atr_n) (Wilder, SMA seed);
    # bands = middle +- k * ATR. Lookback max(n - 1, atr_n).
    _ema_1d(cl, m, n, r_mid)
    _atr_1d(hi, lo, cl, m, atr_n, atr_buf)
    first = min(max(n - 1, atr_n), m)
    _fill_nan(r_mid, 0, first)
    _fill_nan(r_up, 0, first)
    _fill_nan(r_lo, 0, first)
    for i in range(first, m):
        w = k * atr_buf[i]
        r_up[i] = r_mid[i] + w
        r_lo[i] = r_mid[i] - w


@njit(**_JIT)
def _gap_pct_1d(op, cl, m, res):
    _fill_nan(res, 0, min(1, m))
    for i in range(1, m):
        res[i] = 100.0 * (op[i] / cl[i - 1] - 1.0)


@njit(**_JIT)
def _rel_volume_1d(vol, m, n, res):
    # volume / mean of the previous n bars' volume (the current bar excluded); window sum
    # recomputed per bar. IEEE division: x / 0 is inf (NaN for 0 / 0).
    _fill_nan(res, 0, min(n, m))
    for i in range(n, m):
        s = 0.0
        for j in range(i - n, i):
            s += vol[j]
        res[i] = vol[i] / (s / n)


@njit(**_JIT)
def _dist_high_1d(cl, hi, m, n, dq, res):
    _rolling_ext_1d(hi, m, n, True, dq, res)
    for i in range(n - 1, m):
        res[i] = cl[i] / res[i] - 1.0


# ---------------------------------------------------------------------------------------------
# Panel driver: gather the column's bars (rows where every input is present), run, scatter.
# ---------------------------------------------------------------------------------------------

(_WMA, _DEMA, _TEMA, _NATR, _STOCH, _STOCHRSI, _WILLR, _CCI, _MFI, _AROON, _MOM, _LINREG,
 _CMF, _VWAP, _DONCHIAN, _KELTNER, _GAP, _RELVOL, _DISTHIGH, _LINREG_R2) = range(20)


@njit(**_JIT)
def _panel(xs, kind, p, fp, outs):
    n_in = len(xs)
    t_len, n_cols = xs[0].shape
    n_out = outs.shape[0]
    b = np.empty((n_in, t_len))
    res = np.empty((n_out, t_len))
    aux = np.empty((3, t_len))
    idx = np.empty(t_len, np.int64)
    dq = np.empty(t_len, np.int64)
    for j in range(n_cols):
        m = 0
        for t in range(t_len):
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
        # STOCH, WILLR, CCI and MFI run time-major (_tm); this driver serves the rest.
        if kind == _WMA:
            _wma_1d(b[0], m, p[0], res[0])
        elif kind in (_DEMA, _TEMA):
            _dema_tema_1d(b[0], m, p[0], kind == _TEMA, aux[0], aux[1], aux[2], res[0])
        elif kind == _NATR:
            _natr_1d(b[0], b[1], b[2], m, p[0], res[0])
        elif kind == _STOCHRSI:
            _stochrsi_1d(b[0], m, p[0], p[1], p[2], aux[0], res[0], res[1])
        elif kind == _AROON:
            _aroon_1d(b[0], b[1], m, p[0], res[0], res[1])
        elif kind == _MOM:
            _mom_1d(b[0], m, p[0], res[0])
        elif kind == _LINREG:
            _linreg_slope_1d(b[0], m, p[0], res[0])
        elif kind == _CMF:
            _cmf_1d(b[0], b[1], b[2], b[3], m, p[0], res[0])
        elif kind == _VWAP:
            _vwap_1d(b[0], b[1], b[2], b[3], m, p[0], res[0])
        elif kind == _DONCHIAN:
            _donchian_1d(b[0], b[1], m, p[0], dq, res[0], res[1], res[2])
        elif kind == _KELTNER:
            _keltner_1d(b[0], b[1], b[2], m, p[0], p[1], fp, aux[0], res[0], res[1], res[2])
        elif kind == _GAP:
            _gap_pct_1d(b[0], b[1], m, res[0])
        elif kind == _RELVOL:
            _rel_volume_1d(b[0], m, p[0], res[0])
        elif kind == _LINREG_R2:
            _linreg_r2_1d(b[0], m, p[0], res[0])
        else:
            _dist_high_1d(b[0], b[1], m, p[0], dq, res[0])
        for q in range(n_out):
            k = 0
            for t in range(t_len):
                if k < m and idx[k] == t:
                    outs[q, t, j] = res[q, k]
                    k += 1
                else:
                    outs[q, t, j] = np.nan


def _run(names: tuple[str, ...], inputs: tuple, kind: int, n_out: int, params: tuple[int, ...],
         fparam: float = 0.0):
    if len(names) == 1:
        a, one_d = _as_panel(inputs[0], names[0])
        arrays = [a]
    else:
        arrays, one_d = _as_panels(names, *inputs)
    outs = np.empty((n_out, *arrays[0].shape), dtype=np.float64)
    if kind == _STOCH:
        _rg.run_regular(_rg.rg_stoch, tuple(arrays), params, (outs[0], outs[1]), _tm.tm_stoch,
                        0.5)
    elif kind == _WILLR:
        _rg.run_regular(_rg.rg_willr, tuple(arrays), params, (outs[0],), _tm.tm_willr, 0.5)
    elif kind == _CCI:
        _tm.tm_cci(*arrays, params[0], outs[0])
    elif kind == _MFI:
        _rg.run_regular(_rg.rg_mfi, tuple(arrays), params, (outs[0],), _tm.tm_mfi, 0.1)
    else:
        p = np.array(params + (0,) * (3 - len(params)), dtype=np.int64)
        _panel(tuple(arrays), kind, p, float(fparam), outs)
    res = tuple(_shape_back(outs[q], one_d) for q in range(n_out))
    return res[0] if n_out == 1 else res


_HLC = ("high", "low", "close")
_HLCV = ("high", "low", "close", "volume")


# ---------------------------------------------------------------------------------------------
# Public API: TA-Lib twins.
# ---------------------------------------------------------------------------------------------


def wma(x: ArrayLike, n: int) -> F64:
    """Weighted moving average (weights 1..n, newest heaviest).

    Convention and source: TA-Lib ``TA_WMA`` 0.8.1: ``sum(w_i x_i) / (n (n + 1) / 2)`` kept
    as two running sums (``periodSum``, ``periodSub``), rebuilt from the window every
    ``8 n`` bars (TA-Lib issue #255). ``n = 1`` returns ``x``.

    Args:
        x: ``(T, N) float64``, time-major (or ``(T,)``), any unit. NaN = no bar.
        n: window in the symbol's own bars, ``>= 1``.

    Returns:
        Same shape as ``x``, ``float64``, unit of ``x``. Lookback ``n - 1`` bars. Gap policy
        as in :mod:`technic.indicators.cpu` (gap rows NaN, state carried across gaps).

    Raises:
        ValueError: ``n < 1`` or ``x`` is not 1-D or 2-D.
        TypeError: ``n`` is not an integer.
    """
    return _run(("x",), (x,), _WMA, 1, (_period(n),))


def dema(x: ArrayLike, n: int) -> F64:
    """Double exponential moving average, ``2 EMA - EMA(EMA)`` (Mulloy, 1994).

    Convention and source: TA-Lib ``TA_DEMA``, default compatibility, 0.8.1 arithmetic:
    ``EMA1 = EMA(x, n)``, ``EMA2 = EMA(EMA1, n)`` (each seeded with the SMA of its input's
    first ``n`` values, steps ``fma(x - prev, k, prev)``, ``k = 2 / (n + 1)``); result
    ``(2 * EMA1) - EMA2``. ``n = 1`` returns ``x``.

    Args:
        x: ``(T, N) float64``, time-major (or ``(T,)``), any unit. NaN = no bar.
        n: period in the symbol's own bars, ``>= 1``.

    Returns:
        Same shape as ``x``, ``float64``, unit of ``x``. Lookback ``2 (n - 1)`` bars. Gap
        policy as in :mod:`technic.indicators.cpu`.

    Raises:
        ValueError: ``n < 1`` or ``x`` is not 1-D or 2-D.
        TypeError: ``n`` is not an integer.
    """
    return _run(("x",), (x,), _DEMA, 1, (_period(n),))


def tema(x: ArrayLike, n: int) -> F64:
    """Triple exponential moving average, ``3 EMA1 - 3 EMA2 + EMA3`` (Mulloy, 1994).

    Convention and source: TA-Lib ``TA_TEMA``, default compatibility, 0.8.1 arithmetic: three
    chained TA-Lib EMAs (see :func:`dema`), combined as ``EMA3 + ((3 * EMA1) - (3 * EMA2))``.
    ``n = 1`` returns ``x``.

    Args:
        x: ``(T, N) float64``, time-major (or ``(T,)``), any unit. NaN = no bar.
        n: period in the symbol's own bars, ``>= 1``.

    Returns:
        Same shape as ``x``, ``float64``, unit of ``x``. Lookback ``3 (n - 1)`` bars. Gap
        policy as in :mod:`technic.indicators.cpu`.

    Raises:
        ValueError: ``n < 1`` or ``x`` is not 1-D or 2-D.
        TypeError: ``n`` is not an integer.
    """
    return _run(("x",), (x,), _TEMA, 1, (_period(n),))


def natr(high: ArrayLike, low: ArrayLike, close: ArrayLike, n: int = 14) -> F64:
    """Normalized Average True Range: ``ATR(n) / close * 100`` (percent).

    Convention and source: Forman, TASC May 2006; TA-Lib ``TA_NATR`` 0.8.1: the ATR of
    :func:`~technic.indicators.atr` (SMA seed, ``fma(b, atr, a * tr)`` Wilder step) divided
    by the bar's own close, times 100; 0 where the close is exactly 0.

    Args:
        high, low, close: ``(T, N) float64`` prices in quote currency, time-major (or
            ``(T,)``), same shape. A row is a bar only where all three are non-NaN.
        n: period in the symbol's own bars, ``>= 2`` (TA-Lib's ``n = 1`` returns the raw,
            un-normalized true range; refused here).

    Returns:
        Same shape as the inputs, ``float64``, percent of the close. Lookback ``n`` bars. Gap
        policy as in :mod:`technic.indicators.cpu`.

    Raises:
        ValueError: ``n < 2``, shapes differ, or an input is not 1-D or 2-D.
        TypeError: ``n`` is not an integer.
    """
    return _run(_HLC, (high, low, close), _NATR, 1, (_period(n, minimum=2),))


def stoch(high: ArrayLike, low: ArrayLike, close: ArrayLike, fastk: int = 14, slowk: int = 3,
          slowd: int = 3) -> tuple[F64, F64]:
    """Slow stochastic oscillator: ``(slowk, slowd)``, 0–100.

    Convention and source: Lane (1950s); TA-Lib ``TA_STOCH`` with SMA smoothing (matype 0),
    0.8.1 arithmetic: ``fastK = ((close - LL) / (HH - LL)) * 100`` over the last ``fastk``
    bars (``HH`` highest high, ``LL`` lowest low), 0 when ``|HH - LL| <= 1e-14 (|HH| +
    |LL|)``; ``slowK = SMA(fastK, slowk)``, ``slowD = SMA(slowK, slowd)`` (TA_SMA running
    sums). Both outputs start at the same bar, as in TA-Lib.

    Args:
        high, low, close: ``(T, N) float64`` prices in quote currency, time-major (or
            ``(T,)``), same shape. A row is a bar only where all three are non-NaN.
        fastk, slowk, slowd: periods in the symbol's own bars, each ``>= 1``.

    Returns:
        ``(slowk, slowd)``, each of the inputs' shape, ``float64``, 0–100. Lookback
        ``fastk + slowk + slowd - 3`` bars (17 for the defaults). Gap policy as in
        :mod:`technic.indicators.cpu`.

    Raises:
        ValueError: a period ``< 1``, shapes differ, or an input is not 1-D or 2-D.
        TypeError: a period is not an integer.
    """
    p = (_period(fastk, "fastk"), _period(slowk, "slowk"), _period(slowd, "slowd"))
    return _run(_HLC, (high, low, close), _STOCH, 2, p)


def stochrsi(close: ArrayLike, n: int = 14, fastk: int = 5, fastd: int = 3) -> tuple[F64, F64]:
    """Stochastic RSI: ``(fastk, fastd)``, 0–100.

    Convention and source: Chande and Kroll, TASC V.11:5; TA-Lib ``TA_STOCHRSI`` with SMA
    smoothing (matype 0): the RSI of :func:`~technic.indicators.rsi` (``n``), then TA-Lib's
    fast stochastic of that RSI series over ``fastk`` bars (high = low = close = RSI; see
    :func:`stoch` for the zero rule), ``fastD = SMA(fastK, fastd)``. Both outputs start at
    the same bar.

    Args:
        close: ``(T, N) float64`` close prices in quote currency, time-major (or ``(T,)``).
            NaN = no bar.
        n: RSI period, ``>= 1``; fastk, fastd: periods, ``>= 1``; all in the symbol's bars.

    Returns:
        ``(fastk, fastd)``, each of ``close``'s shape, ``float64``, 0–100. Lookback
        ``n + fastk + fastd - 2`` bars (20 for the defaults). Gap policy as in
        :mod:`technic.indicators.cpu`.

    Raises:
        ValueError: a period ``< 1`` or ``close`` is not 1-D or 2-D.
        TypeError: a period is not an integer.
    """
    p = (_period(n), _period(fastk, "fastk"), _period(fastd, "fastd"))
    return _run(("close",), (close,), _STOCHRSI, 2, p)


def willr(high: ArrayLike, low: ArrayLike, close: ArrayLike, n: int = 14) -> F64:
    """Williams %R, -100–0.

    Convention and source: Williams (1973); TA-Lib ``TA_WILLR`` 0.8.1:
    ``((HH - close) / (HH - LL)) * -100`` over the last ``n`` bars, 0 when ``HH == LL``.

    Args:
        high, low, close: ``(T, N) float64`` prices in quote currency, time-major (or
            ``(T,)``), same shape. A row is a bar only where all three are non-NaN.
        n: window in the symbol's own bars, ``>= 1``.

    Returns:
        Same shape as the inputs, ``float64``, -100–0. Lookback ``n - 1`` bars. Gap policy as
        in :mod:`technic.indicators.cpu`.

    Raises:
        ValueError: ``n < 1``, shapes differ, or an input is not 1-D or 2-D.
        TypeError: ``n`` is not an integer.
    """
    return _run(_HLC, (high, low, close), _WILLR, 1, (_period(n),))


def cci(high: ArrayLike, low: ArrayLike, close: ArrayLike, n: int = 20) -> F64:
    """Commodity Channel Index.

    Convention and source: Lambert (1980); TA-Lib ``TA_CCI``: typical price ``tp = (h + l +
    c) / 3``; ``CCI = (tp - mean) / (0.015 * mean_abs_dev)`` over the last ``n`` typical
    prices; 0 when ``|tp - mean| <= 1e-14 (|tp| + |mean|)`` or the deviation sum is 0.
    Sums follow TA-Lib's circular-buffer slot order (bit-identical).

    Args:
        high, low, close: ``(T, N) float64`` prices in quote currency, time-major (or
            ``(T,)``), same shape. A row is a bar only where all three are non-NaN.
        n: window in the symbol's own bars, ``>= 1`` (TA-Lib accepts ``>= 2``).

    Returns:
        Same shape as the inputs, ``float64``, dimensionless (typically -300–300). Lookback
        ``n - 1`` bars. Gap policy as in :mod:`technic.indicators.cpu`.

    Raises:
        ValueError: ``n < 1``, shapes differ, or an input is not 1-D or 2-D.
        TypeError: ``n`` is not an integer.
    """
    return _run(_HLC, (high, low, close), _CCI, 1, (_period(n),))


def mfi(high: ArrayLike, low: ArrayLike, close: ArrayLike, volume: ArrayLike,
        n: int = 14) -> F64:
    """Money Flow Index, 0–100.

    Convention and source: Quong and Soudack; TA-Lib ``TA_MFI`` 0.8.1 (issues #107, #244):
    raw flow ``tp * volume`` with ``tp = (h + l + c) / 3``, positive when ``tp`` rose,
    negative when it fell; a "tie" (``|tp - tp_prev| <= 1e-14 (|tp| + |tp_prev|)``) adds to
    neither sum. Running sums over the last ``n`` flows (reset to exactly 0 after ``n``
    empty bars); ``MFI = 100 * pos / (pos + neg)`` with ``pos`` clamped into ``[0, total]``,
    and 0 when ``pos + neg <= 0`` (TA-Lib before 0.8 used ``< 1.0``).

    Args:
        high, low, close: ``(T, N) float64`` prices in quote currency; volume: shares; all
            time-major (or ``(T,)``), same shape. A row is a bar only where all four are
            non-NaN.
        n: period in the symbol's own bars, ``>= 1``.

    Returns:
        Same shape as the inputs, ``float64``, 0–100. Lookback ``n`` bars. Gap policy as in
        :mod:`technic.indicators.cpu` (the change across a gap is from the previous bar).

    Raises:
        ValueError: ``n < 1``, shapes differ, or an input is not 1-D or 2-D.
        TypeError: ``n`` is not an integer.
    """
    return _run(_HLCV, (high, low, close, volume), _MFI, 1, (_period(n),))


def aroon(high: ArrayLike, low: ArrayLike, n: int = 14) -> tuple[F64, F64]:
    """Aroon: ``(down, up)``, 0–100.

    Convention and source: Chande (1995); TA-Lib ``TA_AROON``: over a window of ``n + 1``
    bars, ``up = (100 / n) * (n - bars since the highest high)``, ``down`` likewise with the
    lowest low; on ties the most recent extreme counts.

    Args:
        high, low: ``(T, N) float64`` prices in quote currency, time-major (or ``(T,)``),
            same shape. A row is a bar only where both are non-NaN.
        n: period in the symbol's own bars, ``>= 1``.

    Returns:
        ``(down, up)``, each of the inputs' shape, ``float64``, 0–100. Lookback ``n`` bars.
        Gap policy as in :mod:`technic.indicators.cpu`.

    Raises:
        ValueError: ``n < 1``, shapes differ, or an input is not 1-D or 2-D.
        TypeError: ``n`` is not an integer.
    """
    return _run(("high", "low"), (high, low), _AROON, 2, (_period(n),))


def mom(x: ArrayLike, n: int = 10) -> F64:
    """Momentum: ``x - x[n bars ago]``.

    Convention and source: TA-Lib ``TA_MOM``.

    Args:
        x: ``(T, N) float64``, time-major (or ``(T,)``), any unit. NaN = no bar.
        n: distance in the symbol's own bars, ``>= 1``.

    Returns:
        Same shape as ``x``, ``float64``, unit of ``x``. Lookback ``n`` bars. Gap policy as
        in :mod:`technic.indicators.cpu`.

    Raises:
        ValueError: ``n < 1`` or ``x`` is not 1-D or 2-D.
        TypeError: ``n`` is not an integer.
    """
    return _run(("x",), (x,), _MOM, 1, (_period(n),))


def linreg_slope(x: ArrayLike, n: int = 14) -> F64:
    """Slope of the least-squares line through the last ``n`` bars (unit of ``x`` per bar).

    Convention and source: TA-Lib ``TA_LINEARREG_SLOPE`` 0.8.1 (issues #103, #254):
    ``m = (n SumXY - SumX SumY) / (SumX^2 - n SumXSqr)`` with ``x`` = bars ago, kept as O(1)
    sliding sums, rebuilt from the window every ``32 n`` bars and when the departing value's
    weight exceeds 100 times the window's ``sum |y|``.

    Args:
        x: ``(T, N) float64``, time-major (or ``(T,)``), any unit. NaN = no bar.
        n: window in the symbol's own bars, ``>= 2``.

    Returns:
        Same shape as ``x``, ``float64``, unit of ``x`` per bar. Lookback ``n - 1`` bars. Gap
        policy as in :mod:`technic.indicators.cpu` (a gap is not a step on the x axis).

    Raises:
        ValueError: ``n < 2`` or ``x`` is not 1-D or 2-D.
        TypeError: ``n`` is not an integer.
    """
    return _run(("x",), (x,), _LINREG, 1, (_period(n, minimum=2),))


# ---------------------------------------------------------------------------------------------
# Public API: helpers without a TA-Lib twin.
# ---------------------------------------------------------------------------------------------


def linreg_r2(close: ArrayLike, n: int) -> F64:
    """R² of the least-squares line through the last ``n`` closes against the bar index.

    Convention and source: the coefficient of determination of the ordinary least-squares
    fit ``close ≈ a + b k`` over the window's bars ``k = 0..n-1`` (a gap is not a step on
    the ``k`` axis), which for a simple regression is the squared Pearson correlation of
    close and ``k`` (Draper & Smith, *Applied Regression Analysis*, 3rd ed., §1.3):

    ``R² = Sxy² / (Sxx Syy)``, ``Sxy = Σ (k − k̄)(y_k − ȳ)``, ``Syy = Σ (y_k − ȳ)²``,
    ``Sxx = Σ (k − k̄)² = n (n² − 1) / 12``

    -- conceptually TA-Lib ``CORREL(close, index, n) ** 2``. Each window is computed on its
    own, in one pass over ``d_k = y_k − y_0`` (``y_0`` = the window's first close) in ``k``
    order: ``Syy = Σd² − (Σd)² / n``, ``Sxy = Σ k d − k̄ Σd``; no running sums across
    windows, so no drift, and the value depends only on the window's ``n`` bars. A result
    that rounds above 1 is clamped to 1. Zero variance: when the window's ``n`` closes are
    all equal every ``d_k`` is 0, so ``Syy`` is exactly 0 and the ratio is 0/0: the result
    is NaN (no trend and nothing to explain; TA-Lib's CORREL would return 0 there). NaN also
    wherever the computed ``Syy`` is not positive. R² says how straight the path was, not
    its direction: a steady decline scores as high as a steady rise.

    Args:
        close: ``(T, N) float64`` close prices in quote currency (any unit: R² is scale- and
            shift-invariant), time-major (or ``(T,)``). NaN = no bar.
        n: window in the symbol's own bars, ``>= 2``.

    Returns:
        Same shape as ``close``, ``float64``, fraction in ``[0, 1]`` (1 = every close on the
        line). Lookback ``n - 1`` bars. NaN on gap rows, during the warm-up, on constant
        windows, and where the window holds ``±inf``. Gap policy as in
        :mod:`technic.indicators.cpu`. Cost ``O(T N n)``.

    Raises:
        ValueError: ``n < 2`` or ``close`` is not 1-D or 2-D.
        TypeError: ``n`` is not an integer.
    """
    return _run(("close",), (close,), _LINREG_R2, 1, (_period(n, minimum=2),))


def linreg_r2_rows(close: ArrayLike, rows: Sequence[int], n: int) -> F64:
    """:func:`linreg_r2` at the given rows only (NaN elsewhere): a refresh that keeps one
    date's row needs one window per symbol, not ``T``.

    Args:
        close: ``(T, N) float64`` close prices, time-major, NaN = no bar.
        rows: panel row indices to compute (``0 <= row < T``).
        n: window in the symbol's own bars, ``>= 2``.

    Returns:
        ``(T, N) float64``: at each requested row exactly the value :func:`linreg_r2` gives
        there (same arithmetic), NaN on every other row.

    Raises:
        ValueError: ``n < 2``, ``close`` is not 2-D, or a row is out of range.
        TypeError: ``n`` is not an integer.
    """
    n = _period(n, minimum=2)
    x = np.ascontiguousarray(close, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError("close must be a (T, N) array")
    idx = np.asarray(list(rows), dtype=np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= x.shape[0]):
        raise ValueError("a row is outside the panel")
    out = np.full(x.shape, np.nan)
    _linreg_r2_rows(x, idx, n, out)
    return out


def cmf(high: ArrayLike, low: ArrayLike, close: ArrayLike, volume: ArrayLike,
        n: int = 20) -> F64:
    """Chaikin Money Flow, -1–1.

    Convention and source: Chaikin; ``sum(MFV) / sum(volume)`` over the last ``n`` bars,
    ``MFV = ((c - l) - (h - c)) / (h - l) * v`` and 0 when ``h == l``. Both window sums are
    recomputed for every bar (no running-sum drift). No TA-Lib twin.

    Args:
        high, low, close: ``(T, N) float64`` prices in quote currency; volume: shares; all
            time-major (or ``(T,)``), same shape. A row is a bar only where all four are
            non-NaN.
        n: window in the symbol's own bars, ``>= 1``.

    Returns:
        Same shape as the inputs, ``float64``, fraction in -1–1 (NaN where the window's
        volume sums to 0). Lookback ``n - 1`` bars. Gap policy as in
        :mod:`technic.indicators.cpu`.

    Raises:
        ValueError: ``n < 1``, shapes differ, or an input is not 1-D or 2-D.
        TypeError: ``n`` is not an integer.
    """
    return _run(_HLCV, (high, low, close, volume), _CMF, 1, (_period(n),))


def rolling_vwap(high: ArrayLike, low: ArrayLike, close: ArrayLike, volume: ArrayLike,
                 n: int = 20) -> F64:
    """Rolling volume-weighted average price of the last ``n`` bars.

    Convention: ``sum(typical * volume) / sum(volume)``, ``typical = (h + l + c) / 3``, both
    sums recomputed for every bar. No TA-Lib twin.

    Args:
        high, low, close: ``(T, N) float64`` prices in quote currency; volume: shares; all
            time-major (or ``(T,)``), same shape. A row is a bar only where all four are
            non-NaN.
        n: window in the symbol's own bars, ``>= 1``.

    Returns:
        Same shape as the inputs, ``float64``, quote currency (NaN where the window's volume
        sums to 0). Lookback ``n - 1`` bars. Gap policy as in :mod:`technic.indicators.cpu`.

    Raises:
        ValueError: ``n < 1``, shapes differ, or an input is not 1-D or 2-D.
        TypeError: ``n`` is not an integer.
    """
    return _run(_HLCV, (high, low, close, volume), _VWAP, 1, (_period(n),))


def donchian(high: ArrayLike, low: ArrayLike, n: int = 20) -> tuple[F64, F64, F64]:
    """Donchian channel: ``(upper, middle, lower)``.

    Convention: ``upper`` = highest high and ``lower`` = lowest low of the last ``n`` bars
    (current bar included, as :func:`~technic.indicators.rolling_max` / ``rolling_min``),
    ``middle = (upper + lower) / 2``. No TA-Lib twin.

    Args:
        high, low: ``(T, N) float64`` prices in quote currency, time-major (or ``(T,)``),
            same shape. A row is a bar only where both are non-NaN.
        n: window in the symbol's own bars, ``>= 1``.

    Returns:
        Three arrays of the inputs' shape, ``float64``, quote currency. Lookback ``n - 1``
        bars. Gap policy as in :mod:`technic.indicators.cpu`.

    Raises:
        ValueError: ``n < 1``, shapes differ, or an input is not 1-D or 2-D.
        TypeError: ``n`` is not an integer.
    """
    return _run(("high", "low"), (high, low), _DONCHIAN, 3, (_period(n),))


def keltner(high: ArrayLike, low: ArrayLike, close: ArrayLike, n: int = 20, atr_n: int = 10,
            k: float = 2.0) -> tuple[F64, F64, F64]:
    """Keltner channel: ``(upper, middle, lower)``.

    Convention: ``middle = EMA(close, n)`` and ``ATR(atr_n)`` exactly as
    :func:`~technic.indicators.ema` and :func:`~technic.indicators.atr` (TA-Lib seeding: the
    EMA is seeded with the SMA of the first ``n`` closes, the ATR with the SMA of the first
    ``atr_n`` true ranges, then Wilder smoothing); ``upper/lower = middle ± k * ATR``
    (Raschke's EMA/ATR form). No TA-Lib twin.

    Args:
        high, low, close: ``(T, N) float64`` prices in quote currency, time-major (or
            ``(T,)``), same shape. A row is a bar only where all three are non-NaN.
        n: EMA period, ``>= 1``; atr_n: ATR period, ``>= 1``; both in the symbol's bars.
        k: band width in ATRs, finite.

    Returns:
        Three arrays of the inputs' shape, ``float64``, quote currency. Lookback
        ``max(n - 1, atr_n)`` bars (all three start together). Gap policy as in
        :mod:`technic.indicators.cpu`.

    Raises:
        ValueError: a period ``< 1``, ``k`` not finite, shapes differ, or an input is not
            1-D or 2-D.
        TypeError: a period is not an integer.
    """
    kf = float(k)
    if not math.isfinite(kf):
        raise ValueError(f"k must be finite, got {k}")
    p = (_period(n), _period(atr_n, "atr_n"))
    return _run(_HLC, (high, low, close), _KELTNER, 3, p, kf)


def gap_pct(open: ArrayLike, close: ArrayLike) -> F64:
    """Opening gap in percent: ``100 * (open / previous bar's close - 1)``.

    Args:
        open, close: ``(T, N) float64`` prices in quote currency, time-major (or ``(T,)``),
            same shape. A row is a bar only where both are non-NaN.

    Returns:
        Same shape as the inputs, ``float64``, percent. Lookback 1 bar. Gap policy as in
        :mod:`technic.indicators.cpu`: the previous close is the symbol's previous bar's,
        however many days ago.

    Raises:
        ValueError: shapes differ, or an input is not 1-D or 2-D.
    """
    return _run(("open", "close"), (open, close), _GAP, 1, ())


def rel_volume(volume: ArrayLike, n: int = 20) -> F64:
    """Relative volume: the bar's volume / mean volume of the previous ``n`` bars.

    Convention: the current bar is excluded from the mean (same as
    ``volume / lag(sma(volume, n), 1)``); the window sum is recomputed per bar. IEEE
    division: a zero mean gives inf (NaN for 0 / 0).

    Args:
        volume: ``(T, N) float64`` shares, time-major (or ``(T,)``). NaN = no bar.
        n: number of previous bars, ``>= 1``.

    Returns:
        Same shape as ``volume``, ``float64``, ratio (1 = average). Lookback ``n`` bars. Gap
        policy as in :mod:`technic.indicators.cpu`.

    Raises:
        ValueError: ``n < 1`` or ``volume`` is not 1-D or 2-D.
        TypeError: ``n`` is not an integer.
    """
    return _run(("volume",), (volume,), _RELVOL, 1, (_period(n),))


def dist_from_high(close: ArrayLike, high: ArrayLike, n: int = 252) -> F64:
    """Distance from the rolling high: ``close / max(high over the last n bars) - 1``.

    Convention: the window includes the current bar (so the value is ``<= 0`` when
    ``close <= high``); ``-0.2`` means 20 % below the high.

    Args:
        close, high: ``(T, N) float64`` prices in quote currency, time-major (or ``(T,)``),
            same shape. A row is a bar only where both are non-NaN.
        n: window in the symbol's own bars, ``>= 1`` (252 ≈ 52 weeks of daily bars).

    Returns:
        Same shape as the inputs, ``float64``, fraction. Lookback ``n - 1`` bars. Gap policy
        as in :mod:`technic.indicators.cpu`.

    Raises:
        ValueError: ``n < 1``, shapes differ, or an input is not 1-D or 2-D.
        TypeError: ``n`` is not an integer.
    """
    return _run(("close", "high"), (close, high), _DISTHIGH, 1, (_period(n),))
