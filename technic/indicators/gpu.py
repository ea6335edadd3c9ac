"""GPU twins of the indicator kernels (numba.cuda); the feature set's GPU plan is
:func:`technic.features.plans.device_series`.

Layout and threads
    Inputs are the same time-major ``(T, N) float64`` C-ordered panels as on the CPU (row =
    trading date, column = symbol; a ``(T,)`` array is one symbol). One CUDA thread owns one
    symbol and walks time: at each row the threads of a warp read 32 neighbouring symbols of
    the same row, so every load and store is coalesced. A thread's recursive state (running
    sums, EMA / Wilder state, bars seen) lives in registers; rolling windows live in ring
    buffers of shape ``(n, N)`` in device memory (slot-major, so they are coalesced too),
    exactly like the per-symbol rings of :mod:`technic.indicators._tm`.

Arithmetic
    Every kernel here is the twin of a ``tm_*`` kernel of :mod:`._tm` (which in turn twins
    the 1-D TA-Lib replays of :mod:`.cpu` and :mod:`.extra`): same NaN/gap policy (a row
    where an input is NaN writes NaN and leaves the symbol's state untouched; windows count
    the symbol's own bars), same seeds, same order of additions. CUDA compilers contract
    ``a * b + c`` into a fused multiply-add by default, which the CPU kernels never do, so
    every product is written ``_mul(a, b)`` (libdevice ``__nv_dmul_rn``, never fused) and
    every FMA that TA-Lib 0.8.1 emits is an explicit ``_fma`` (``cuda.fma``). Divisions and
    square roots are IEEE round-to-nearest (``fastmath`` off). What can still differ from
    the CPU is ``log`` (libdevice vs. the C library, ≤ 1 ulp; realized volatility only), so
    results agree with the CPU path to ≤ 1e-9 relative (tests/test_gpu.py), and are
    bit-identical for every other indicator on a GPU.

Simulator
    With ``NUMBA_ENABLE_CUDASIM=1`` (set before numba is imported) the same kernels run in
    numba's CUDA simulator (pure Python, slow: small panels only). There ``_mul`` is a plain
    IEEE product, ``_fma`` is an exactly rounded FMA computed with fractions and ``_log``
    is ``numpy.log`` (NaN/-inf instead of Python's ``ValueError``), so the simulated kernels
    follow the same arithmetic as a GPU.

Public functions take host ``numpy`` arrays (results copied back to the host) or CUDA
device arrays (results stay on the device). They raise :class:`GPUUnavailableError` when
no CUDA device (or simulator) is present.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Any

import numpy as np
from numba import cuda
from numba.core import config as _nb_config

from technic.indicators import _steps
from technic.indicators._common import TA_EPSILON

__all__ = [
    "GPUUnavailableError",
    "SIMULATOR",
    "adx",
    "atr",
    "bbands",
    "cci",
    "ema",
    "is_available",
    "lag",
    "linreg_r2",
    "macd",
    "mfi",
    "mul",
    "obv",
    "realized_vol",
    "roc",
    "rolling_max",
    "rolling_min",
    "rsi",
    "sma",
    "stoch",
    "willr",
]

#: True when numba runs CUDA kernels in its simulator (``NUMBA_ENABLE_CUDASIM=1``).
SIMULATOR: bool = bool(_nb_config.ENABLE_CUDASIM)

#: Threads per block on a GPU (the simulator uses at most N threads, one block).
THREADS_PER_BLOCK = 128

_NAN = math.nan


class GPUUnavailableError(RuntimeError):
    """No usable CUDA device (and no simulator): the GPU path cannot run."""


def is_available() -> bool:
    """Whether the GPU kernels can run here: a CUDA device, or numba's CUDA simulator.

    Returns:
        ``numba.cuda.is_available()`` (True under ``NUMBA_ENABLE_CUDASIM=1``); False instead
        of raising when the driver is missing or broken.
    """
    try:
        return bool(cuda.is_available())
    except Exception:  # noqa: BLE001 - a broken driver is "not available"
        return False


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
_G = _steps.compile_steps(cuda.jit(device=True), "technic.indicators.gpu._G", fma=_fma,
                          mul=_mul)


@cuda.jit
def _k_sma(x, n, ring, out):
    # Twin of _tm.tm_sma.
    j = cuda.grid(1)
    if j >= x.shape[1]:
        return
    cnt = 0
    slot = 0
    total = 0.0
    fn = float(n)
    lb = n - 1
    for t in range(x.shape[0]):
        v = x[t, j]
        if math.isnan(v):
            out[t, j] = _NAN
            continue
        ring[slot, j] = v
        slot = _G.next_slot(slot, n)
        if cnt >= lb:
            tot = total + v
            total = tot - ring[slot, j]
            out[t, j] = tot / fn
        else:
            cnt += 1
            total += v
            out[t, j] = _NAN


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
    # Twin of _tm.tm_roc: ((x / x[n bars ago]) - 1) * 100, 0 where the old value is 0.
    j = cuda.grid(1)
    if j >= x.shape[1]:
        return
    cnt = 0
    slot = 0
    for t in range(x.shape[0]):
        v = x[t, j]
        if math.isnan(v):
            out[t, j] = _NAN
            continue
        old = ring[slot, j]
        ring[slot, j] = v
        slot = _G.next_slot(slot, n)
        if cnt >= n:
            out[t, j] = _mul((v / old) - 1.0, 100.0) if old != 0.0 else 0.0
        else:
            cnt += 1
            out[t, j] = _NAN


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
    # Twin of _tm.tm_obv: starts at the first bar's volume; +/- volume on an up/down close.
    j = cuda.grid(1)
    if j >= cl.shape[1]:
        return
    seen = False
    prev = 0.0
    acc = 0.0
    for t in range(cl.shape[0]):
        cv = cl[t, j]
        vv = vol[t, j]
        if math.isnan(cv) or math.isnan(vv):
            out[t, j] = _NAN
            continue
        if seen:
            if cv > prev:
                acc += vv
            elif cv < prev:
                acc -= vv
        else:
            seen = True
            acc = vv
        prev = cv
        out[t, j] = acc


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
    # Twin of _tm.tm_mfi (TA-Lib 0.8.1 MFI): flows of own bars 1.. in rings.
    j = cuda.grid(1)
    if j >= h.shape[1]:
        return
    cnt = 0
    slot = 0
    prev = 0.0
    ps = 0.0
    ns = 0.0
    null_run = 0
    for t in range(h.shape[0]):
        hv = h[t, j]
        lv = lo[t, j]
        cv = cl[t, j]
        vv = vol[t, j]
        if math.isnan(hv) or math.isnan(lv) or math.isnan(cv) or math.isnan(vv):
            out[t, j] = _NAN
            continue
        c = cnt
        tp = (hv + lv + cv) / 3.0
        if c == 0:
            cnt = 1
            prev = tp
            out[t, j] = _NAN
            continue
        s = slot
        if c > n:
            ps -= pos[s, j]
            ns -= neg[s, j]
        else:
            cnt = c + 1
        p0 = prev
        d = tp - p0
        scale = abs(tp) + abs(p0)
        prev = tp
        flow = _mul(tp, vv)
        if abs(d) <= _mul(TA_EPSILON, scale):
            flow = 0.0
        pf = 0.0 if d < 0.0 else flow
        nf = flow if d < 0.0 else 0.0
        pos[s, j] = pf
        neg[s, j] = nf
        ps += pf
        ns += nf
        nr = null_run + 1 if flow == 0.0 else 0
        if nr >= n:
            nr = n
            ps = 0.0
            ns = 0.0
        null_run = nr
        slot = _G.next_slot(s, n)
        if c >= n:
            tot = ps + ns
            pc = 0.0 if ps < 0.0 else (tot if ps > tot else ps)
            out[t, j] = 0.0 if tot <= 0.0 else _mul(100.0, pc / tot)
        else:
            out[t, j] = _NAN


# ---------------------------------------------------------------------------------------------
# Host-side wrappers.
# ---------------------------------------------------------------------------------------------


def _require() -> None:
    if not is_available():
        raise GPUUnavailableError(
            "no CUDA device is available (numba.cuda.is_available() is False); "
            "use device='cpu' or run on a worker with a GPU")


def _launch(kernel, n_cols: int, *args: Any) -> None:
    if n_cols == 0:
        return
    tpb = min(THREADS_PER_BLOCK, n_cols) if SIMULATOR else THREADS_PER_BLOCK
    kernel[(n_cols + tpb - 1) // tpb, tpb](*args)


def _empty(shape: tuple[int, ...]):
    return cuda.device_array(shape, dtype=np.float64)


def _ring(rows: int, n_cols: int):
    return cuda.device_array((max(rows, 1), max(n_cols, 1)), dtype=np.float64)


def _is_device(a: Any) -> bool:
    # numba device arrays (and the simulator's) have copy_to_host; CuPy & co. the interface.
    return hasattr(a, "copy_to_host") or hasattr(a, "__cuda_array_interface__")


class _Inputs:
    """Arrays moved to the device as ``(T, N)`` C-ordered float64, and how to give results back."""

    def __init__(self, names: Sequence[str], arrays: Sequence[Any]):
        _require()
        self.on_device = all(_is_device(a) for a in arrays)
        self.one_d = False
        dev = []
        shape = None
        for nm, a in zip(names, arrays, strict=True):
            if self.on_device:
                d = a if hasattr(a, "copy_to_host") else cuda.as_cuda_array(a)
                if d.dtype != np.float64 or d.ndim != 2:
                    raise ValueError(f"{nm} on the device must be (T, N) float64, got "
                                     f"{d.ndim}-D {d.dtype}")
                if not d.is_c_contiguous():
                    raise ValueError(f"{nm} on the device must be C-contiguous")
            else:
                h = np.asarray(a.copy_to_host() if hasattr(a, "copy_to_host") else a,
                               dtype=np.float64)
                if h.ndim == 1:
                    h = h.reshape(-1, 1)
                    self.one_d = True
                elif h.ndim != 2:
                    raise ValueError(f"{nm} must be a (T,) or (T, N) array, got shape "
                                     f"{h.shape}")
                d = cuda.to_device(np.ascontiguousarray(h))
            if shape is not None and d.shape != shape:
                raise ValueError(f"{', '.join(names)} must have the same shape; got "
                                 f"{shape} and {d.shape}")
            shape = d.shape
            dev.append(d)
        self.arrays = dev
        self.shape: tuple[int, int] = shape  # type: ignore[assignment]

    def back(self, d):
        """A result as the caller's kind of array: device array, or host (1-D if given 1-D)."""
        if self.on_device:
            return d
        h = d.copy_to_host()
        return h.reshape(-1) if self.one_d else h


def _period(n: int, name: str = "n", minimum: int = 1) -> int:
    from technic.indicators.cpu import _period as cpu_period

    return cpu_period(n, name, minimum)


def _finite(k: float, name: str = "k") -> float:
    kf = float(k)
    if not math.isfinite(kf):
        raise ValueError(f"{name} must be finite, got {k}")
    return kf


def _annual_scale(periods_per_year: float) -> float:
    ppy = float(periods_per_year)
    if not (math.isfinite(ppy) and ppy > 0):
        raise ValueError(f"periods_per_year must be finite and > 0, got {periods_per_year}")
    return math.sqrt(ppy)


def _macd_periods(fast: int, slow: int, signal: int) -> tuple[int, int, int]:
    f, s, g = _period(fast, "fast"), _period(slow, "slow"), _period(signal, "signal")
    if f > s:
        raise ValueError(f"fast ({f}) must not exceed slow ({s})")
    return f, s, g


#: name -> (kernel, inputs, outputs, params(**args) -> the kernel's parameters (validated as
#: on the CPU), rings(*params) -> the ring rows the kernel needs (each an (r, N) buffer)).
_TWINS: dict[str, tuple[Any, int, int, Callable[..., tuple], Callable[..., tuple]]] = {
    "sma": (_k_sma, 1, 1, lambda n: (_period(n),), lambda n: (n,)),
    "ema": (_k_ema, 1, 1, lambda n: (_period(n),), lambda n: ()),
    "rsi": (_k_rsi, 1, 1, lambda n: (_period(n),), lambda n: ()),
    "macd": (_k_macd, 1, 3, _macd_periods, lambda f, s, g: ()),
    "bbands": (_k_bbands, 1, 3, lambda n, k: (_period(n), _finite(k)), lambda n, k: (n,)),
    "roc": (_k_roc, 1, 1, lambda n: (_period(n),), lambda n: (n,)),
    "lag": (_k_lag, 1, 1, lambda k: (_period(k, "k", minimum=0),), lambda k: (k,)),
    "rolling_max": (_k_extreme, 1, 1, lambda n: (_period(n), True), lambda n, w: (n,)),
    "rolling_min": (_k_extreme, 1, 1, lambda n: (_period(n), False), lambda n, w: (n,)),
    "realized_vol": (_k_rvol, 1, 1, lambda n, periods_per_year: (
        _period(n, minimum=2), _annual_scale(periods_per_year)), lambda n, sc: (n,)),
    "linreg_r2": (_k_linreg_r2, 1, 1, lambda n: (_period(n, minimum=2),), lambda n: (n,)),
    "atr": (_k_atr, 3, 1, lambda n: (_period(n),), lambda n: ()),
    "adx": (_k_adx, 3, 1, lambda n: (_period(n), TA_EPSILON), lambda n, e: ()),
    "obv": (_k_obv, 2, 1, lambda: (), lambda: ()),
    "stoch": (_k_stoch, 3, 2, lambda fastk, slowk, slowd: (
        _period(fastk, "fastk"), _period(slowk, "slowk"), _period(slowd, "slowd")),
        lambda fk, sk, sd: (fk, fk, sk, sd)),
    "willr": (_k_willr, 3, 1, lambda n: (_period(n),), lambda n: (n, n)),
    "cci": (_k_cci, 3, 1, lambda n: (_period(n),), lambda n: (n,)),
    "mfi": (_k_mfi, 4, 1, lambda n: (_period(n),), lambda n: (n, n)),
}


def _twin(name: str) -> Callable[..., Any]:
    """The GPU twin of ``technic.indicators.<name>``: same signature and validation."""
    from technic import indicators as cpu_api

    kernel, n_in, n_out, params, rings = _TWINS[name]
    sig = inspect.signature(getattr(cpu_api, name))
    names = tuple(sig.parameters)[:n_in]

    def run(*args: Any, **kwargs: Any) -> Any:
        bound = sig.bind(*args, **kwargs)
        bound.apply_defaults()
        a = dict(bound.arguments)
        p = params(**{k: v for k, v in a.items() if k not in names})
        ins = _Inputs(names, tuple(a[k] for k in names))
        m = ins.shape[1]
        outs = [_empty(ins.shape) for _ in range(n_out)]
        _launch(kernel, m, *ins.arrays, *p, *(_ring(r, m) for r in rings(*p)), *outs)
        res = tuple(ins.back(o) for o in outs)
        return res[0] if n_out == 1 else res

    run.__name__ = run.__qualname__ = name
    run.__signature__ = sig  # type: ignore[attr-defined]
    run.__doc__ = f"""GPU twin of :func:`technic.indicators.{name}` (numba.cuda).

    Same arguments, validation, units and results as the CPU function, computed one CUDA
    thread per symbol from the same per-bar steps (:mod:`technic.indicators._steps`) or the
    same arithmetic (see the module docstring): bit-identical on a GPU, except the ``log``
    of realized volatility (≤ 1e-15 relative).

    Args:
        as :func:`technic.indicators.{name}`; arrays are host ``(T, N)`` / ``(T,)`` float64
        (results copied back, same shape) or CUDA device ``(T, N)`` C-contiguous float64
        (results stay on the device).

    Raises:
        ValueError, TypeError: as the CPU function. GPUUnavailableError: no CUDA device.
    """
    return run


sma = _twin("sma")
ema = _twin("ema")
rsi = _twin("rsi")
macd = _twin("macd")
bbands = _twin("bbands")
roc = _twin("roc")
lag = _twin("lag")
rolling_max = _twin("rolling_max")
rolling_min = _twin("rolling_min")
realized_vol = _twin("realized_vol")
linreg_r2 = _twin("linreg_r2")
atr = _twin("atr")
adx = _twin("adx")
obv = _twin("obv")
stoch = _twin("stoch")
willr = _twin("willr")
cci = _twin("cci")
mfi = _twin("mfi")


def mul(a: Any, b: Any):
    """Elementwise ``a * b`` on the GPU, IEEE-rounded as numpy's (never fused), e.g. close *
    volume = dollar volume.

    Args:
        a, b: ``(T, N) float64`` host (or ``(T,)``) or device arrays of one shape.

    Returns:
        Same shape; NaN where either is NaN.

    Raises:
        ValueError: shapes differ. GPUUnavailableError: no CUDA device.
    """
    ins = _Inputs(("a", "b"), (a, b))
    out = _empty(ins.shape)
    _launch(_k_mul, ins.shape[1], *ins.arrays, out)
    return ins.back(out)
