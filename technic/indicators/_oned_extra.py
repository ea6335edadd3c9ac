"""The 1-D kernels of :mod:`technic.indicators.extra` and their panel drivers ``PANELS``.

Each ``_<name>_1d`` computes an indicator over the first ``m`` values of a gap-free series
(one symbol's own bars); the panel driver of a kind, ``PANELS[kind]``, gathers each column's
bars (rows where every input is present), runs that kind's kernel and scatters the result
back (NaN on gap rows).
TA-Lib 0.8.1 conventions and sources: :mod:`technic.indicators.extra`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from technic.indicators._common import _JIT, TA_EPSILON, _fma
from technic.indicators._oned import (
    _atr_1d,
    _ema_1d,
    _fill_nan,
    _gather_bars,
    _rolling_ext_1d,
    _rsi_1d,
    _scatter_bars,
    _sma_1d,
)

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
def _mfv(h, lo, c, v):
    # Chaikin money-flow volume of one bar: ((c - l) - (h - c)) / (h - l) * v, 0 when h == l.
    rng = h - lo
    return ((c - lo) - (h - c)) / rng * v if rng != 0.0 else 0.0


@njit(**_JIT)
def _tpv(h, lo, c, v):
    # Typical price times volume of one bar: (h + l + c) / 3 * v.
    return (h + lo + c) / 3.0 * v


@njit(**_JIT)
def _volume_ratio_1d(hi, lo, cl, vol, m, n, vwap, res):
    # sum(term(bar)) / sum(volume) over the last n bars, both window sums recomputed per bar
    # (no running-sum drift): the rolling VWAP (vwap, term _tpv) or CMF (term _mfv; adding 0
    # for a bar with h == l leaves the sum's bits as skipping it would: it starts at +0).
    # vwap is loop-invariant (LLVM unswitches it). Functions are not passed as arguments:
    # that would keep the callers out of numba's cache.
    _fill_nan(res, 0, min(n - 1, m))
    for i in range(n - 1, m):
        s = 0.0
        sv = 0.0
        for j in range(i - n + 1, i + 1):
            h, lo_, c, v = hi[j], lo[j], cl[j], vol[j]
            s += _tpv(h, lo_, c, v) if vwap else _mfv(h, lo_, c, v)
            sv += v
        res[i] = s / sv


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

#: The kernel call of each kind served by a panel driver, on the column's gathered bars
#: ``b`` (``(n_in, T)``, the first ``m`` valid), the integer parameters ``p``, the float
#: parameter ``fp``, the results ``res`` (``(n_out, T)``) and the scratch ``aux`` / ``dq``.
#: (STOCH, WILLR, CCI and MFI run time-major, :mod:`._tm` / :mod:`._rg`.)
_CALLS = {
    _WMA: "_wma_1d(b[0], m, p[0], res[0])",
    _DEMA: "_dema_tema_1d(b[0], m, p[0], False, aux[0], aux[1], aux[2], res[0])",
    _TEMA: "_dema_tema_1d(b[0], m, p[0], True, aux[0], aux[1], aux[2], res[0])",
    _NATR: "_natr_1d(b[0], b[1], b[2], m, p[0], res[0])",
    _STOCHRSI: "_stochrsi_1d(b[0], m, p[0], p[1], p[2], aux[0], res[0], res[1])",
    _AROON: "_aroon_1d(b[0], b[1], m, p[0], res[0], res[1])",
    _MOM: "_mom_1d(b[0], m, p[0], res[0])",
    _LINREG: "_linreg_slope_1d(b[0], m, p[0], res[0])",
    _CMF: "_volume_ratio_1d(b[0], b[1], b[2], b[3], m, p[0], False, res[0])",
    _VWAP: "_volume_ratio_1d(b[0], b[1], b[2], b[3], m, p[0], True, res[0])",
    _DONCHIAN: "_donchian_1d(b[0], b[1], m, p[0], dq, res[0], res[1], res[2])",
    _KELTNER: "_keltner_1d(b[0], b[1], b[2], m, p[0], p[1], fp, aux[0], res[0], res[1], res[2])",
    _GAP: "_gap_pct_1d(b[0], b[1], m, res[0])",
    _RELVOL: "_rel_volume_1d(b[0], m, p[0], res[0])",
    _LINREG_R2: "_linreg_r2_1d(b[0], m, p[0], res[0])",
    _DISTHIGH: "_dist_high_1d(b[0], b[1], m, p[0], dq, res[0])",
}

#: The panel driver, one per kind: for each column, gather its bars (rows where every input
#: is present) into ``b``, run the kind's kernel, scatter the results back (NaN on the
#: other rows). One small function per kind rather than one dispatching over all kinds:
#: each compiles only its own kernel, once (a single driver compiled every kind's kernel
#: into each of its four input-count specializations: ~23 s of a ~38 s cold compile).
_PANEL_SRC = """
def _panel_{kind}(xs, p, fp, outs):
    t_len, n_cols = xs[0].shape
    b = np.empty((len(xs), t_len))
    res = np.empty((outs.shape[0], t_len))
    aux = np.empty((3, t_len))
    idx = np.empty(t_len, np.int64)
    dq = np.empty(t_len, np.int64)
    for j in range(n_cols):
        m = _gather_bars(xs, j, b, idx)
        {call}
        _scatter_bars(res, idx, m, outs, j)
"""


def _make_panel(kind: int):
    # Compiled under this file's name with a name of its own, so that numba's cache keys it
    # by this file's stamp and the function's name (as technic.indicators._drivers does).
    # (The shared gather / scatter are named here: the generated source is all that calls them.)
    ns = dict(globals(), _gather_bars=_gather_bars, _scatter_bars=_scatter_bars)
    exec(compile(_PANEL_SRC.format(kind=kind, call=_CALLS[kind]), __file__, "exec"), ns)  # noqa: S102
    return njit(**_JIT)(ns[f"_panel_{kind}"])


#: kind -> its panel driver ``(xs, p, fp, outs)``: ``xs`` a tuple of ``(T, N)`` inputs,
#: ``p`` int64 parameters, ``fp`` a float parameter, ``outs`` ``(n_out, T, N)``.
PANELS = {kind: _make_panel(kind) for kind in _CALLS}
