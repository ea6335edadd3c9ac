"""The CUDA kernels (numba.cuda) behind :mod:`technic.indicators.gpu`: one thread per symbol.

Layout, arithmetic (``_mul`` never fused, ``_fma`` where TA-Lib fuses, ``_log``) and the
simulator's exact primitives are described in :mod:`technic.indicators.gpu`. The recursive
indicators and STOCH / WILLR drive the per-bar steps of :mod:`._steps` compiled here as
device functions (``_G``); the others are written against the time-major ring kernels of
:mod:`._tm` in the same order of arithmetic.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from numba import cuda
from numba.core import config as _nb_config

from technic.indicators import _steps
from technic.indicators._common import TA_EPSILON

#: True when numba runs CUDA kernels in its simulator (``NUMBA_ENABLE_CUDASIM=1``).
SIMULATOR: bool = bool(_nb_config.ENABLE_CUDASIM)

_NAN = math.nan


# ---------------------------------------------------------------------------------------------
# Arithmetic primitives: exact products, fused multiply-add, log (see the module docstring).
# ---------------------------------------------------------------------------------------------

if SIMULATOR:

    def _fma_exact(a, b, c):
        fa, fb, fc = float(a), float(b), float(c)
        if not (math.isfinite(fa) and math.isfinite(fb) and math.isfinite(fc)):
            return np.float64(fa) * np.float64(fb) + np.float64(fc)
        # int / int true division in Fraction.__float__ rounds correctly: one rounding.
        return np.float64(float(Fraction(fa) * Fraction(fb) + Fraction(fc)))

    def _mul_ieee(a, b):
        return np.float64(a) * np.float64(b)

    def _log_np(x):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(np.float64(x))

    _fma = cuda.jit(device=True)(_fma_exact)
    _mul = cuda.jit(device=True)(_mul_ieee)
    _log = cuda.jit(device=True)(_log_np)
else:
    from numba.cuda import libdevice

    @cuda.jit(device=True)
    def _fma(a, b, c):
        return cuda.fma(a, b, c)

    @cuda.jit(device=True)
    def _mul(a, b):
        return libdevice.dmul_rn(a, b)

    @cuda.jit(device=True)
    def _log(x):
        return math.log(x)


# ---------------------------------------------------------------------------------------------
# Single-input kernels.
# ---------------------------------------------------------------------------------------------


# The per-bar steps of technic.indicators._steps, compiled as CUDA device functions with this
# module's _mul / _fma: the same source as the CPU kernels, so the same arithmetic.
_G = _steps.compile_steps(cuda.jit(device=True), "technic.indicators._cuda._G", fma=_fma,
                          mul=_mul)


@cuda.jit
def _k_sma(x, n, ring, out):
    # _steps.sma_bar per thread (one symbol; its ring in device memory); a gap row is NaN.
    j = cuda.grid(1)
    if j >= x.shape[1]:
        return
    c = 0
    s = 0
    total = 0.0
    for t in range(x.shape[0]):
        v = x[t, j]
        if math.isnan(v):
            out[t, j] = _NAN
            continue
        total, out[t, j] = _G.sma_bar(c, s, total, ring, j, v, n)
        s = _G.next_slot(s, n)
        c = c + 1 if c < n else c


@cuda.jit
def _k_ema(x, n, out):
    # _steps.ema_step per thread (one symbol); a gap row is NaN and keeps the state.
    j = cuda.grid(1)
    if j >= x.shape[1]:
        return
    c = 0
    p = 0.0
    k = 2.0 / float(n + 1)
    fn = float(n)
    for t in range(x.shape[0]):
        v = x[t, j]
        if n == 1:
            out[t, j] = v  # k = 1: the series itself
            continue
        if math.isnan(v):
            out[t, j] = _NAN
            continue
        p = _G.ema_step(c, p, v, n, fn, k)
        out[t, j] = p if c >= n - 1 else _NAN
        c = c + 1 if c < n else c


@cuda.jit
def _k_rsi(x, n, out):
    # _steps.rsi_step per thread (one symbol); a gap row is NaN and keeps the state.
    j = cuda.grid(1)
    if j >= x.shape[1]:
        return
    c = 0
    px = 0.0
    gain = 0.0
    loss = 0.0
    inv = 1.0 / float(n)
    fn1 = float(n - 1)
    for t in range(x.shape[0]):
        v = x[t, j]
        if math.isnan(v):
            out[t, j] = _NAN
            continue
        gain, loss, r = _G.rsi_step(c, gain, loss, px, v, n, inv, fn1)
        px = v
        out[t, j] = r if c >= n else _NAN
        c = c + 1 if c <= n else c


@cuda.jit
def _k_macd(x, fast, slow, signal, o_macd, o_sig, o_hist):
    # _steps.macd_step per thread (one symbol); a gap row is NaN and keeps the state.
    j = cuda.grid(1)
    if j >= x.shape[1]:
        return
    c = 0
    pf = 0.0
    ps = 0.0
    sg = 0.0
    kf = 2.0 / float(fast + 1)
    ks = 2.0 / float(slow + 1)
    kg = 2.0 / float(signal + 1)
    f0 = slow + signal - 2
    for t in range(x.shape[0]):
        v = x[t, j]
        if math.isnan(v):
            o_macd[t, j] = _NAN
            o_sig[t, j] = _NAN
            o_hist[t, j] = _NAN
            continue
        pf, ps, sg, m = _G.macd_step(c, pf, ps, sg, v, fast, slow, signal, kf, ks, kg)
        o_macd[t, j] = m if c >= f0 else _NAN
        o_sig[t, j] = sg if c >= f0 else _NAN
        o_hist[t, j] = m - sg if c >= f0 else _NAN
        c = c + 1 if c <= f0 else c


@cuda.jit(device=True)
def _var_step(ring, j, n, so, v, old, shift, s1, s2, left):
    # One output step of cpu._rolling_var for the window ending with v (already in the ring;
    # `old` = the window's oldest value, in slot `so`). Returns var and the new state.
    inv = 1.0 / float(n)
    sh = shift
    d = v - sh
    t1 = s1 + d
    d = _mul(d, d)
    t2 = s2 + d
    mean1 = _mul(t1, inv)
    var = _mul(t2, inv) - _mul(mean1, mean1)
    d = old - sh
    t1 -= d
    d = _mul(d, d)
    t2 -= d
    bl = left - 1
    if var < _mul(0.000001, _mul(t2, inv)) or d > _mul(1000000.0, t2) or bl <= 0:
        bl = 32 * n
        acc = 0.0
        q = so
        for _ in range(n):
            acc += ring[q, j]
            q = _G.next_slot(q, n)
        sh = _mul(acc, inv)
        t1 = 0.0
        t2 = 0.0
        q = so
        for _ in range(n):
            d = ring[q, j] - sh
            t1 += d
            d = _mul(d, d)
            t2 += d
            q = _G.next_slot(q, n)
        mean1 = _mul(t1, inv)
        var = _mul(t2, inv) - _mul(mean1, mean1)
        if var < _mul(0.000000000001, _mul(t2, inv)):
            var = 0.0
        d = old - sh
        t1 -= d
        d = _mul(d, d)
        t2 -= d
    return var, sh, t1, t2, bl


@cuda.jit
def _k_bbands(x, n, k, ring, o_up, o_mid, o_lo):
    # Twin of _tm.tm_bbands: SMA middle band + cpu._rolling_var shifted-sum variance.
    j = cuda.grid(1)
    if j >= x.shape[1]:
        return
    cnt = 0
    slot = 0
    total = 0.0
    shift = 0.0
    s1 = 0.0
    s2 = 0.0
    left = 32 * n
    fn = float(n)
    lb = n - 1
    for t in range(x.shape[0]):
        v = x[t, j]
        if math.isnan(v):
            o_up[t, j] = _NAN
            o_mid[t, j] = _NAN
            o_lo[t, j] = _NAN
            continue
        ring[slot, j] = v
        so = _G.next_slot(slot, n)
        slot = so
        c = cnt
        if c < lb:
            if c == 0:
                shift = v
            cnt = c + 1
            total += v
            d = v - shift
            s1 += d
            d = _mul(d, d)
            s2 += d
            o_up[t, j] = _NAN
            o_mid[t, j] = _NAN
            o_lo[t, j] = _NAN
            continue
        if c == 0:  # n == 1
            shift = v
            cnt = 1
        tot = total + v
        old = ring[so, j]
        total = tot - old
        mid = tot / fn
        var, shift, s1, s2, left = _var_step(ring, j, n, so, v, old, shift, s1, s2, left)
        dev = _mul(math.sqrt(var), k)
        o_up[t, j] = mid + dev
        o_mid[t, j] = mid
        o_lo[t, j] = mid - dev


@cuda.jit
def _k_rvol(x, n, scale, ring, out):
    # Twin of cpu._rvol_1d: log returns of the symbol's consecutive bars, the variance of
    # the last n by cpu._rolling_var (shift = the first return), sqrt(var * n / (n - 1))
    # times sqrt(periods per year). n >= 2.
    j = cuda.grid(1)
    if j >= x.shape[1]:
        return
    cnt = 0
    prevc = 0.0
    slot = 0
    shift = 0.0
    s1 = 0.0
    s2 = 0.0
    left = 32 * n
    lb = n - 1
    ddof = float(n) / float(n - 1)
    for t in range(x.shape[0]):
        v = x[t, j]
        if math.isnan(v):
            out[t, j] = _NAN
            continue
        if cnt == 0:
            cnt = 1
            prevc = v
            out[t, j] = _NAN
            continue
        r = _log(v / prevc)  # IEEE: CUDA kernels use numpy's error model
        prevc = v
        ring[slot, j] = r
        so = _G.next_slot(slot, n)
        slot = so
        kr = cnt - 1  # index of this return among the symbol's returns
        if kr < lb:
            if kr == 0:
                shift = r
            cnt += 1
            d = r - shift
            s1 += d
            d = _mul(d, d)
            s2 += d
            out[t, j] = _NAN
            continue
        var, shift, s1, s2, left = _var_step(ring, j, n, so, r, ring[so, j], shift, s1, s2,
                                             left)
        out[t, j] = _mul(math.sqrt(_mul(var, ddof)), scale)


@cuda.jit
def _k_roc(x, n, ring, out):
    # _steps.roc_bar per thread (one symbol; its ring in device memory); a gap row is NaN.
    j = cuda.grid(1)
    if j >= x.shape[1]:
        return
    c = 0
    s = 0
    for t in range(x.shape[0]):
        v = x[t, j]
        if math.isnan(v):
            out[t, j] = _NAN
            continue
        out[t, j] = _G.roc_bar(c, s, ring, j, v, n)
        s = _G.next_slot(s, n)
        c = c + 1 if c <= n else c


@cuda.jit
def _k_lag(x, k, ring, out):
    # Twin of cpu._lag_1d over the compressed series: the value k own bars ago.
    j = cuda.grid(1)
    if j >= x.shape[1]:
        return
    cnt = 0
    slot = 0
    for t in range(x.shape[0]):
        v = x[t, j]
        if k == 0 or math.isnan(v):
            out[t, j] = v
            continue
        if cnt >= k:
            out[t, j] = ring[slot, j]
        else:
            cnt += 1
            out[t, j] = _NAN
        ring[slot, j] = v
        slot = _G.next_slot(slot, k)


@cuda.jit
def _k_extreme(x, n, want_max, ring, out):
    # Same values as cpu._rolling_ext_1d (a max / min is exact whatever the algorithm): a
    # ring of the last n own values; the window is rescanned only when the departing value
    # was the extreme.
    j = cuda.grid(1)
    if j >= x.shape[1]:
        return
    cnt = 0
    slot = 0
    ext = 0.0
    for t in range(x.shape[0]):
        v = x[t, j]
        if math.isnan(v):
            out[t, j] = _NAN
            continue
        if cnt == 0:
            ext = v
        elif cnt >= n:
            old = ring[slot, j]
            ring[slot, j] = v
            if old == ext:
                q = _G.next_slot(slot, n)
                ext = ring[q, j]
                for _ in range(n - 1):
                    q = _G.next_slot(q, n)
                    w = ring[q, j]
                    if (w > ext) if want_max else (w < ext):
                        ext = w
            elif (v > ext) if want_max else (v < ext):
                ext = v
        elif (v > ext) if want_max else (v < ext):
            ext = v
        ring[slot, j] = v
        slot = _G.next_slot(slot, n)
        if cnt < n:
            cnt += 1
        out[t, j] = ext if cnt >= n else _NAN


@cuda.jit
def _k_linreg_r2(x, n, ring, out):
    # Twin of extra._linreg_r2_1d: a ring of the last n own values; at each bar with n of
    # them, extra._linreg_r2_at over the window in chronological order (oldest first): one
    # pass over d = y - y_oldest, Syy = s2 - s1^2 / n, Sxy = sk - xbar s1, R^2 = Sxy^2 /
    # (Sxx Syy), NaN unless Syy > 0, clamped to <= 1. Every product through _mul (no FMA).
    j = cuda.grid(1)
    if j >= x.shape[1]:
        return
    fn = float(n)
    xbar = _mul(fn - 1.0, 0.5)
    sxx = _mul(fn, _mul(fn, fn) - 1.0) / 12.0
    cnt = 0
    slot = 0
    for t in range(x.shape[0]):
        v = x[t, j]
        if math.isnan(v):
            out[t, j] = _NAN
            continue
        ring[slot, j] = v
        slot = _G.next_slot(slot, n)
        if cnt < n:
            cnt += 1
        if cnt < n:
            out[t, j] = _NAN
            continue
        q = slot  # the oldest of the last n values
        y0 = ring[q, j]
        s1 = 0.0
        s2 = 0.0
        sk = 0.0
        for k in range(n):
            d = ring[q, j] - y0
            s1 += d
            s2 += _mul(d, d)
            sk += _mul(float(k), d)
            q = _G.next_slot(q, n)
        syy = s2 - _mul(s1, s1) / fn
        if not syy > 0.0:
            out[t, j] = _NAN
            continue
        sxy = sk - _mul(xbar, s1)
        r2 = _mul(sxy, sxy) / _mul(sxx, syy)
        out[t, j] = 1.0 if r2 > 1.0 else r2


@cuda.jit
def _k_mul(a, b, out):
    # Elementwise a * b (IEEE, as numpy's), stored so no later sum can fuse with it.
    j = cuda.grid(1)
    if j >= a.shape[1]:
        return
    for t in range(a.shape[0]):
        out[t, j] = _mul(a[t, j], b[t, j])


# ---------------------------------------------------------------------------------------------
# High / low / close (/ volume) kernels.
# ---------------------------------------------------------------------------------------------


@cuda.jit
def _k_atr(h, lo, cl, n, out):
    # _steps.atr_step per thread (one symbol); a gap row is NaN and keeps the state.
    j = cuda.grid(1)
    if j >= h.shape[1]:
        return
    c = 0
    pc = 0.0
    st = 0.0
    beta = float(n - 1) / float(n)
    alpha = 1.0 - beta
    fn = float(n)
    for t in range(h.shape[0]):
        hv = h[t, j]
        lv = lo[t, j]
        cv = cl[t, j]
        if math.isnan(hv) or math.isnan(lv) or math.isnan(cv):
            out[t, j] = _NAN
            continue
        st = _G.atr_step(c, st, hv, lv, pc, n, fn, beta, alpha)
        out[t, j] = st if c >= n else _NAN
        pc = cv
        c = c + 1 if c <= n else c


@cuda.jit
def _k_adx(h, lo, cl, n, eps, out):
    # _steps.adx_step per thread (one symbol); a gap row is NaN and keeps the state.
    j = cuda.grid(1)
    if j >= h.shape[1]:
        return
    c = 0
    ph = 0.0
    pl = 0.0
    pc = 0.0
    pdm = 0.0
    mdm = 0.0
    tr = 0.0
    adx_v = 0.0
    fn = float(n)
    fn1 = float(n - 1)
    fo = 2 * n - 1
    for t in range(h.shape[0]):
        hv = h[t, j]
        lv = lo[t, j]
        cv = cl[t, j]
        if math.isnan(hv) or math.isnan(lv) or math.isnan(cv):
            out[t, j] = _NAN
            continue
        pdm, mdm, tr, adx_v = _G.adx_step(c, ph, pl, pc, pdm, mdm, tr, adx_v, hv, lv, n, fn,
                                        fn1, fo, eps)
        out[t, j] = adx_v if c >= fo else _NAN
        ph = hv
        pl = lv
        pc = cv
        c = c + 1 if c <= fo else c


@cuda.jit
def _k_obv(cl, vol, out):
    # _steps.obv_bar per thread (one symbol); a gap row is NaN and keeps the state.
    j = cuda.grid(1)
    if j >= cl.shape[1]:
        return
    c = 0
    prev = 0.0
    acc = 0.0
    for t in range(cl.shape[0]):
        cv = cl[t, j]
        vv = vol[t, j]
        if math.isnan(cv) or math.isnan(vv):
            out[t, j] = _NAN
            continue
        acc = _G.obv_bar(c, prev, acc, cv, vv)
        prev = cv
        out[t, j] = acc
        c = 1


@cuda.jit
def _k_stoch(h, lo, cl, fk, sk, sd, rh, rl, kr, dr, o_k, o_d):
    # _steps.stoch_bar per thread (one symbol; rings in device memory); a gap row is NaN.
    j = cuda.grid(1)
    if j >= h.shape[1]:
        return
    c = 0
    s = 0
    hh = 0.0
    ll = 0.0
    ks = 0
    ktot = 0.0
    ds = 0
    dtot = 0.0
    first = fk + sk + sd - 3
    cap = first if first > fk else fk  # max(): builtin max does not type on CUDA
    for t in range(h.shape[0]):
        hv = h[t, j]
        lv = lo[t, j]
        cv = cl[t, j]
        if math.isnan(hv) or math.isnan(lv) or math.isnan(cv):
            o_k[t, j] = _NAN
            o_d[t, j] = _NAN
            continue
        hh, ll, ks, ktot, ds, dtot, sk_v, sd_v = _G.stoch_bar(c, s, hh, ll, ks, ktot, ds, dtot,
                                                            rh, rl, kr, dr, j, hv, lv, cv, fk,
                                                            sk, sd)
        o_k[t, j] = sk_v
        o_d[t, j] = sd_v
        s = _G.next_slot(s, fk)
        c = c + 1 if c < cap else c


@cuda.jit
def _k_willr(h, lo, cl, n, rh, rl, out):
    # _steps.willr_bar per thread (one symbol; rings in device memory); a gap row is NaN.
    j = cuda.grid(1)
    if j >= h.shape[1]:
        return
    c = 0
    s = 0
    hh = 0.0
    ll = 0.0
    for t in range(h.shape[0]):
        hv = h[t, j]
        lv = lo[t, j]
        cv = cl[t, j]
        if math.isnan(hv) or math.isnan(lv) or math.isnan(cv):
            out[t, j] = _NAN
            continue
        hh, ll, out[t, j] = _G.willr_bar(c, s, hh, ll, rh, rl, j, hv, lv, cv, n)
        s = _G.next_slot(s, n)
        c = c + 1 if c < n else c


@cuda.jit
def _k_cci(h, lo, cl, n, ring, out):
    # Twin of _tm.tm_cci / extra._cci_1d: typical prices in TA-Lib's circular buffer (own
    # bar i in slot i % n); mean and mean absolute deviation summed in SLOT order.
    j = cuda.grid(1)
    if j >= h.shape[1]:
        return
    cnt = 0
    slot = 0
    lb = n - 1
    for t in range(h.shape[0]):
        hv = h[t, j]
        lv = lo[t, j]
        cv = cl[t, j]
        if math.isnan(hv) or math.isnan(lv) or math.isnan(cv):
            out[t, j] = _NAN
            continue
        tp = (hv + lv + cv) / 3.0
        ring[slot, j] = tp
        slot = _G.next_slot(slot, n)
        if cnt < lb:
            cnt += 1
            out[t, j] = _NAN
            continue
        a = 0.0
        for q in range(n):
            a += ring[q, j]
        a = a / n
        sd = 0.0
        for q in range(n):
            sd += abs(ring[q, j] - a)
        d = tp - a
        if abs(d) <= _mul(TA_EPSILON, abs(tp) + abs(a)) or sd == 0.0:
            out[t, j] = 0.0
        else:
            out[t, j] = d / _mul(0.015, sd / n)


@cuda.jit
def _k_mfi(h, lo, cl, vol, n, pos, neg, out):
    # _steps.mfi_bar per thread (one symbol; flow rings in device memory); a gap row is NaN.
    j = cuda.grid(1)
    if j >= h.shape[1]:
        return
    c = 0
    s = 0
    prev = 0.0
    ps = 0.0
    ns = 0.0
    nr = 0
    for t in range(h.shape[0]):
        hv = h[t, j]
        lv = lo[t, j]
        cv = cl[t, j]
        vv = vol[t, j]
        if math.isnan(hv) or math.isnan(lv) or math.isnan(cv) or math.isnan(vv):
            out[t, j] = _NAN
            continue
        prev, ps, ns, nr, out[t, j] = _G.mfi_bar(c, s, prev, ps, ns, nr, pos, neg, j, hv, lv,
                                                 cv, vv, n)
        s = _G.next_slot(s, n) if c >= 1 else s
        c = c + 1 if c <= n else c
