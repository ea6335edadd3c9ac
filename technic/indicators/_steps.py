"""Each indicator's per-bar state step, written once, for every driver and target.

A step takes a symbol's state and its bar (and, for windowed indicators, ring buffers of
its last ``n`` own values, shape ``(n, N)``, indexed ``[slot, symbol]``) and returns the new
state and the output value, in TA-Lib 0.8.1's order of arithmetic. One definition serves
three drivers:

* the time-major CPU kernels of :mod:`technic.indicators._tm` (``(T, N)`` panels: the state
  lives in length-``N`` vectors; a gap row keeps the old state; the recursive steps (EMA,
  RSI, MACD, ATR, ADX) are branch-free, so LLVM vectorizes them across symbols),
* the 1-D kernels of :mod:`technic.indicators._oned` / ``_oned_extra`` (one symbol's own
  bars: the last-row path of :mod:`technic.indicators.lastrow`; rings as ``(n, 1)``),
* the CUDA kernels of :mod:`technic.indicators._cuda` (one thread per symbol).

Steps here: EMA, RSI, MACD, ATR (and true range), ADX, SMA, ROC, OBV, STOCH, WILLR (and the
high/low ring push), MFI, BBANDS (and the rolling variance it shares with the CUDA realized
volatility). Their drivers are generated per target by :mod:`._drivers`. CCI, the CPU
rolling variance / realized volatility, lags, rolling extremes and LINREG_R2 still have a
CPU and a CUDA text of the same arithmetic; the ``rg_*`` regular-column kernels of
:mod:`._rg` are a separate fast path.

The steps are plain Python functions that name two arithmetic primitives as globals: ``mul``
(a product that is never fused) and ``fma`` (the fused multiply-add TA-Lib emits). On the
CPU they are ``a * b`` (numba never contracts) and the LLVM ``fma`` intrinsic; on a GPU,
libdevice ``dmul_rn`` and ``cuda.fma``. :func:`compile_steps` binds them per target, so the
GPU twins are equal to the CPU kernels by construction. A divisor whose result a select
discards is replaced by 1 (no division by zero: the CUDA simulator runs the steps as Python).
"""

from __future__ import annotations

import math
import types
from collections.abc import Callable
from typing import Any

from numba import njit

from technic.indicators._common import TA_EPSILON, _fma


@njit(cache=True, nogil=True, inline="always")
def _mul_cpu(a, b):
    return a * b


@njit(cache=True, nogil=True, inline="always", error_model="numpy")
def _log_cpu(x):
    return math.log(x)


# Bound for the CPU; compile_steps rebinds them per target.
fma = _fma
mul = _mul_cpu
log = _log_cpu


def true_range(h, lo, prev_close):
    # TA-Lib order: start from high - low, then the two distances to the previous close.
    greatest = h - lo
    v = abs(prev_close - h)
    greatest = v if v > greatest else greatest
    v = abs(prev_close - lo)
    return v if v > greatest else greatest


def atr_step(c, st, h, lo, pc, n, fn, beta, alpha):
    # TA_ATR at own bar c (c = 0: first bar): TR from bar 1; the TR sum until bar n, its mean
    # (the seed) at bar n, then the TA-Lib 0.8 Wilder step atr = fma(b, atr, a * tr),
    # b = (n-1)/n, a = 1 - b (issue #338). Returns the new state (TR sum, then ATR), which is
    # the output from bar n on.
    tr = true_range(h, lo, pc)
    acc = st + tr
    return (fma(beta, st, mul(alpha, tr)) if c > n
            else (acc / fn if c == n else (acc if c >= 1 else st)))


def adx_step(i, ph, pl, pc, pdm, mdm, tr, adx, h, lo, n, fn, fn1, fo, eps):
    # TA_ADX at own bar i (i = 0: first bar; ph, pl, pc: the previous bar): +DM/-DM and TR
    # summed over the first n-1 changes, then Wilder sums s -= s / n; s += x. DX = 100 *
    # |-DI - +DI| / (-DI + +DI), skipped while the TR sum is 0 or the DI sum is zero within
    # eps (TA_IS_ZERO). ADX: mean of the first n DX (bar fo = 2n-1), then (adx * (n-1) + dx)
    # / n. Returns (pdm, mdm, tr, adx), the output being adx from bar fo on.
    diff_p = h - ph
    diff_m = pl - lo
    tr1 = true_range(h, lo, pc)
    mup = (diff_m > 0) & (diff_p < diff_m)
    pup = (not mup) & (diff_p > 0) & (diff_p > diff_m)
    steady = i >= n
    warm = (i >= 1) & (i < n)
    mb = mdm - mdm / fn if steady else mdm
    pb = pdm - pdm / fn if steady else pdm
    m1 = mb + diff_m if mup else mb
    p1 = pb + diff_p if pup else pb
    t1 = tr - tr / fn + tr1 if steady else tr + tr1
    keep = steady | warm
    m1 = m1 if keep else mdm
    p1 = p1 if keep else pdm
    t1 = t1 if keep else tr
    # The divisors are replaced by 1 where the result is not used (no division by zero, so
    # the step also runs in the CUDA simulator's Python arithmetic); same bits otherwise.
    tq = t1 if t1 > 0.0 else 1.0
    mdi = mul(100.0, m1 / tq)
    pdi = mul(100.0, p1 / tq)
    s = mdi + pdi
    have = (t1 > 0.0) & (not ((-eps < s) & (s < eps)))
    dx = mul(100.0, abs(mdi - pdi) / (s if have else 1.0))
    acc = adx + dx if have else adx
    late = (mul(adx, fn1) + dx) / fn if have else adx
    a1 = late if i > fo else (acc / fn if i == fo else acc)
    a1 = a1 if steady else adx
    return p1, m1, t1, a1


def ema_step(c, p, v, n, fn, k):
    # TA_EMA at own bar c (n >= 2; n = 1 is the series itself, handled by the drivers): the
    # sum of the first n bars, its mean (the seed) at bar n-1, then fma(x - prev, k, prev),
    # k = 2 / (n + 1) (TA-Lib 0.8 fuses the step). Returns the state (sum, then EMA), which
    # is the output from bar n-1 on.
    acc = p + v
    return fma(v - p, k, p) if c >= n else (acc / fn if c == n - 1 else acc)


def rsi_step(c, g0, l0, px, v, n, inv, fn1):
    # TA_RSI (Wilder), TA-Lib 0.8 form at own bar c (px: the previous bar's value): each
    # change split branch-free into a gain and a loss; sums of the first n changes scaled by
    # a hoisted 1/n at bar n (the seed), then avg *= n - 1; avg += x; avg *= 1/n. RSI = 100 *
    # gain / (gain + loss), 0 when that sum is 0 (tested exactly, TA-Lib issue #253).
    # Returns (gain, loss, rsi); rsi is the output from bar n on.
    d = v - px
    up = d if d > 0.0 else 0.0
    gs = mul(g0, fn1)
    ls = mul(l0, fn1)
    gs += up
    ls += up - d
    ls = mul(ls, inv)
    gs = mul(gs, inv)
    gw = g0 + up
    lw = l0 + (up - d)
    gw = mul(gw, inv) if c == n else gw
    lw = mul(lw, inv) if c == n else lw
    steady = c > n
    g = gs if steady else (gw if c >= 1 else g0)
    lo = ls if steady else (lw if c >= 1 else l0)
    s = g + lo
    r = mul(100.0, g / (s if s > 0.0 else 1.0)) if s > 0.0 else 0.0
    return g, lo, r


def macd_step(i, pf, ps, sg, v, fast, slow, signal, kf, ks, kg):
    # TA_MACD (default compatibility) at own bar i: the slow sum over bars [0, slow), the
    # fast sum over [slow - fast, slow), both means at bar slow-1 (the fast EMA is seeded
    # with the SMA of the `fast` bars ENDING there); the signal sum over the MACD values of
    # bars [slow-1, f0], its mean at f0 = slow + signal - 2; every EMA step is
    # fma(x - prev, k, prev). Returns (fast, slow, signal, macd); outputs from bar f0 on.
    f0 = slow + signal - 2
    step = i >= slow
    seed = i == slow - 1
    f = fma(v - pf, kf, pf) if step else (pf + v if i >= slow - fast else pf)
    s = fma(v - ps, ks, ps) if step else ps + v
    f = f / float(fast) if seed else f
    s = s / float(slow) if seed else s
    m = f - s
    g = fma(m - sg, kg, sg) if i > f0 else (sg + m if step else (0.0 + m if seed else sg))
    g = g / float(signal) if i == f0 else g
    return f, s, g, m


# Windowed indicators keep rings of a symbol's last n own values, shape (n, N) (slot-major:
# coalesced on a GPU), indexed [slot, symbol]; the same layout on every target.


def next_slot(s, n):
    s += 1
    return 0 if s == n else s


def ext_push(r, s, n, j, c, v, e, want_max):
    # Push own bar c's value v into ring column j (slot s = c % n) and return the extreme
    # (the highest if want_max, else the lowest) of the last min(c + 1, n) values, e being
    # the one before. Same values as a chronological scan where the first extreme wins
    # (_oned_extra._extremes): the extreme only changes on a strictly greater / smaller
    # value, and the window is rescanned oldest first when the departing value equals it.
    if c == 0:
        r[s, j] = v
        return v
    if c >= n:
        old = r[s, j]
        r[s, j] = v
        if old == e:
            q = next_slot(s, n)
            e = r[q, j]
            for _ in range(n - 1):
                q = next_slot(q, n)
                w = r[q, j]
                if (w > e) if want_max else (w < e):
                    e = w
            return e
    else:
        r[s, j] = v
    return v if ((v > e) if want_max else (v < e)) else e


def hl_push(rh, rl, s, n, j, c, hv, lv, hh, ll):
    # ext_push of a bar's high and low into the rings of the last n highs / lows: returns
    # the highest high and the lowest low of the last min(c + 1, n) bars.
    return (ext_push(rh, s, n, j, c, hv, hh, True), ext_push(rl, s, n, j, c, lv, ll, False))


def willr_bar(c, s, hh, ll, rh, rl, j, hv, lv, cv, n):
    # TA_WILLR at own bar c (slot s): ((HH - c) / (HH - LL)) * -100, 0 when HH == LL; output
    # from bar n-1. Returns (HH, LL, willr).
    hh, ll = hl_push(rh, rl, s, n, j, c, hv, lv, hh, ll)
    if c < n - 1:
        return hh, ll, math.nan
    if (hh - ll) / (-100.0) != 0.0:
        return hh, ll, mul((hh - cv) / (hh - ll), -100.0)
    return hh, ll, 0.0


def stoch_bar(c, s, hh, ll, ks, ktot, ds, dtot, rh, rl, kr, dr, j, hv, lv, cv, fk, sk, sd):
    # TA_STOCH at own bar c (slot s of the fk-bar high / low rings): fast %K over fk bars
    # (0 when |HH - LL| <= 1e-14 (|HH| + |LL|)), slow %K = TA_SMA(fast %K, sk) in ring kr
    # (slot ks, running total ktot), slow %D = TA_SMA(slow %K, sd) in ring dr (slot ds,
    # total dtot); outputs from bar fk + sk + sd - 3. Returns (hh, ll, ks, ktot, ds, dtot,
    # slow %K, slow %D).
    hh, ll = hl_push(rh, rl, s, fk, j, c, hv, lv, hh, ll)
    if c < fk - 1:
        return hh, ll, ks, ktot, ds, dtot, math.nan, math.nan
    if abs(hh - ll) <= mul(TA_EPSILON, abs(hh) + abs(ll)):
        fast = 0.0
    else:
        fast = mul((cv - ll) / (hh - ll), 100.0)
    kr[ks, j] = fast
    ks = next_slot(ks, sk)
    tot = ktot + fast
    if c < fk + sk - 2:
        return hh, ll, ks, tot, ds, dtot, math.nan, math.nan
    ktot = tot - kr[ks, j]
    slowk = tot / float(sk)
    dr[ds, j] = slowk
    ds = next_slot(ds, sd)
    tot = dtot + slowk
    if c < fk + sk + sd - 3:
        return hh, ll, ks, ktot, ds, tot, math.nan, math.nan
    return hh, ll, ks, ktot, ds, tot - dr[ds, j], slowk, tot / float(sd)


def mfi_bar(c, s, prev, ps, ns, nr, pos, neg, j, hv, lv, cv, vv, n):
    # TA_MFI 0.8.1 (issues #107, #244) at own bar c: typical price tp = (h + l + c) / 3; the
    # flow tp * v of bars 1.. goes to ring pos (up move) or neg (down move) at slot s (bar
    # c in slot (c - 1) % n), a move within 1e-14 (|tp| + |prev|) is no flow; running sums ps,
    # ns; after n empty bars in a row (run length nr) both sums are reset to exactly 0. MFI =
    # 100 * clamp(ps, 0, tot) / tot, 0 when tot = ps + ns <= 0; output from bar n. Returns
    # (tp, ps, ns, nr, mfi).
    tp = (hv + lv + cv) / 3.0
    if c == 0:
        return tp, ps, ns, nr, math.nan
    if c > n:
        ps -= pos[s, j]
        ns -= neg[s, j]
    d = tp - prev
    scale = abs(tp) + abs(prev)
    flow = mul(tp, vv)
    if abs(d) <= mul(TA_EPSILON, scale):
        flow = 0.0
    pf = 0.0 if d < 0.0 else flow
    nf = flow if d < 0.0 else 0.0
    pos[s, j] = pf
    neg[s, j] = nf
    ps += pf
    ns += nf
    nr = nr + 1 if flow == 0.0 else 0
    if nr >= n:
        nr = n
        ps = 0.0
        ns = 0.0
    if c < n:
        return tp, ps, ns, nr, math.nan
    tot = ps + ns
    pc = 0.0 if ps < 0.0 else (tot if ps > tot else ps)
    return tp, ps, ns, nr, (0.0 if tot <= 0.0 else mul(100.0, pc / (tot if tot > 0.0 else 1.0)))


def sma_bar(c, s, total, ring, j, v, n):
    # TA_SMA at own bar c (slot s = c % n of the ring of the last n values): the total of the
    # first n-1 bars, then total += x; out = total / n; total -= the oldest bar of the window.
    # Returns (total, sma); sma from bar n-1.
    ring[s, j] = v
    if c < n - 1:
        return total + v, math.nan
    tot = total + v
    return tot - ring[next_slot(s, n), j], tot / float(n)


def roc_bar(c, s, ring, j, v, n):
    # TA_ROC at own bar c (slot s = c % n): ((x / x[n bars ago]) - 1) * 100, 0 where the old
    # value is 0; from bar n.
    old = ring[s, j]
    ring[s, j] = v
    if c < n:
        return math.nan
    return mul((v / (old if old != 0.0 else 1.0)) - 1.0, 100.0) if old != 0.0 else 0.0


def obv_bar(c, prev, acc, cv, vv):
    # TA_OBV at own bar c: starts at the first bar's volume; + volume on an up close, - on a
    # down close. Returns the new OBV (the output). Branch-free (both sums computed, one
    # selected: the same value as TA-Lib's if/else), so the time-major driver vectorizes
    # across symbols without AVX-512's masked stores, and no branch on the close's
    # direction is mispredicted.
    r = (acc + vv) if cv > prev else ((acc - vv) if cv < prev else acc)
    return vv if c == 0 else r


def var_step(ring, j, n, so, v, old, shift, s1, s2, left):
    # One output of TA-Lib 0.8.1's cancellation-free VAR (issues #118, #243) for the window
    # of the last n values in ring column j, v the newest (already in the ring), `old` the
    # oldest (slot so): running sums of deviations from a shift K, S1 = sum(x - K), S2 =
    # sum((x - K)^2), var = S2/n - (S1/n)^2; rebuilt by a fresh two-pass from slot so (K =
    # the window mean) when var < 1e-6 S2/n, when the departing squared deviation exceeds
    # 1e6 S2, or every 32 n bars (left: the countdown); a rebuilt var below 1e-12 S2/n is 0.
    # Then the departing value is taken out. Returns (var, K, S1, S2, left).
    inv = 1.0 / float(n)
    sh = shift
    d = v - sh
    t1 = s1 + d
    d = mul(d, d)
    t2 = s2 + d
    mean1 = mul(t1, inv)
    var = mul(t2, inv) - mul(mean1, mean1)
    d = old - sh
    t1 -= d
    d = mul(d, d)
    t2 -= d
    bl = left - 1
    if var < mul(0.000001, mul(t2, inv)) or d > mul(1000000.0, t2) or bl <= 0:
        bl = 32 * n
        acc = 0.0
        q = so
        for _ in range(n):
            acc += ring[q, j]
            q = next_slot(q, n)
        sh = mul(acc, inv)
        t1 = 0.0
        t2 = 0.0
        q = so
        for _ in range(n):
            d = ring[q, j] - sh
            t1 += d
            d = mul(d, d)
            t2 += d
            q = next_slot(q, n)
        mean1 = mul(t1, inv)
        var = mul(t2, inv) - mul(mean1, mean1)
        if var < mul(0.000000000001, mul(t2, inv)):
            var = 0.0
        d = old - sh
        t1 -= d
        d = mul(d, d)
        t2 -= d
    return var, sh, t1, t2, bl


def var_warm(c, shift, s1, s2, v):
    # A value before the first full window of var_step: the shift K is the first value.
    sh = v if c == 0 else shift
    d = v - sh
    return sh, s1 + d, s2 + mul(d, d)


def bbands_bar(c, s, total, shift, s1, s2, left, ring, j, v, n, k):
    # TA_BBANDS, SMA path of TA-Lib 0.8.1 (issues #117, #118, #243) at own bar c (slot s of
    # the ring of the last n values): middle band = the TA_SMA running total / n; std = sqrt
    # of var_step's population variance; upper / lower = middle +- std * k; from bar n - 1.
    # Returns (total, shift, s1, s2, left, upper, middle, lower).
    ring[s, j] = v
    if c < n - 1:
        shift, s1, s2 = var_warm(c, shift, s1, s2, v)
        return total + v, shift, s1, s2, left, math.nan, math.nan, math.nan
    shift = v if c == 0 else shift  # n == 1
    so = next_slot(s, n)  # the oldest bar of the window
    tot = total + v
    old = ring[so, j]
    mid = tot / float(n)
    var, shift, s1, s2, left = var_step(ring, j, n, so, v, old, shift, s1, s2, left)
    dev = mul(math.sqrt(var), k)
    return tot - old, shift, s1, s2, left, mid + dev, mid, mid - dev


def ext_bar(c, s, e, ring, j, v, n, want_max):
    # Rolling maximum (want_max) / minimum of the last n own values at own bar c (slot s):
    # ext_push; from bar n - 1. Returns (extreme, output).
    e = ext_push(ring, s, n, j, c, v, e, want_max)
    return e, (e if c >= n - 1 else math.nan)


def lag_bar(c, s, ring, j, v, k):
    # The value k own bars before bar c (slot s = c % k holds it), NaN for the first k bars.
    out = ring[s, j] if c >= k else math.nan
    ring[s, j] = v
    return out


def rvol_bar(c, s, prevc, shift, s1, s2, left, ring, j, v, n, ddof, scale):
    # Realized volatility at own bar c: the log return r = log(v / previous close) of bars
    # 1.. goes to slot s of the ring of the last n returns; their sample variance by
    # var_step (shift = the first return) gives sqrt(var * n / (n - 1)) * scale from bar n
    # (n >= 2; ddof = n / (n - 1)). Returns (close, shift, s1, s2, left, output).
    if c == 0:
        return v, shift, s1, s2, left, math.nan
    r = log(v / prevc)
    ring[s, j] = r
    if c < n:
        shift, s1, s2 = var_warm(c - 1, shift, s1, s2, r)
        return v, shift, s1, s2, left, math.nan
    so = next_slot(s, n)
    var, shift, s1, s2, left = var_step(ring, j, n, so, r, ring[so, j], shift, s1, s2, left)
    return v, shift, s1, s2, left, mul(math.sqrt(mul(var, ddof)), scale)


def linreg_r2_bar(c, s, ring, j, v, n):
    # LINREG_R2 at own bar c (slot s of the ring of the last n values), from bar n - 1: one
    # pass over the window oldest first, d = y - y_oldest: Syy = s2 - s1^2 / n, Sxy = sk -
    # xbar s1, R^2 = Sxy^2 / (Sxx Syy), NaN unless Syy > 0, clamped to <= 1 (the arithmetic
    # of _oned_extra._linreg_r2_at; every product through mul).
    ring[s, j] = v
    if c < n - 1:
        return math.nan
    fn = float(n)
    xbar = mul(fn - 1.0, 0.5)
    sxx = mul(fn, mul(fn, fn) - 1.0) / 12.0
    q = next_slot(s, n)  # the oldest of the last n values
    y0 = ring[q, j]
    s1 = 0.0
    s2 = 0.0
    sk = 0.0
    for k in range(n):
        d = ring[q, j] - y0
        s1 += d
        s2 += mul(d, d)
        sk += mul(float(k), d)
        q = next_slot(q, n)
    syy = s2 - mul(s1, s1) / fn
    if not syy > 0.0:
        return math.nan
    sxy = sk - mul(xbar, s1)
    r2 = mul(sxy, sxy) / mul(sxx, syy)
    return 1.0 if r2 > 1.0 else r2


def cci_bar(c, s, ring, j, hv, lv, cv, n):
    # TA_CCI at own bar c: typical price in TA-Lib's circular buffer (slot s = c % n); mean
    # and mean absolute deviation summed in SLOT order; (tp - mean) / (0.015 * (mad_sum /
    # n)), 0 when tp - mean is within 1e-14 (|tp| + |mean|) or the deviation sum is 0; from
    # bar n - 1 (the arithmetic of _tm.tm_cci / _oned_extra._cci_1d).
    tp = (hv + lv + cv) / 3.0
    ring[s, j] = tp
    if c < n - 1:
        return math.nan
    a = 0.0
    for q in range(n):
        a += ring[q, j]
    a = a / n
    sd = 0.0
    for q in range(n):
        sd += abs(ring[q, j] - a)
    d = tp - a
    if abs(d) <= mul(TA_EPSILON, abs(tp) + abs(a)) or sd == 0.0:
        return 0.0
    return d / mul(0.015, sd / n)


#: The step functions, in dependency order (a step may call the ones before it).
STEPS: tuple[Callable[..., Any], ...] = (
    true_range, atr_step, adx_step, ema_step, rsi_step, macd_step, next_slot, ext_push, hl_push,
    willr_bar, stoch_bar, mfi_bar, sma_bar, roc_bar, obv_bar, var_step, var_warm, bbands_bar,
    ext_bar, lag_bar, rvol_bar, linreg_r2_bar, cci_bar)


def compile_steps(jit: Callable[[Any], Any], name: str, **prims: Any) -> types.ModuleType:
    """Every step compiled with ``jit`` and the primitives ``prims`` (``fma``, ``mul``).

    Each step is re-created with globals in which ``fma``, ``mul`` and the other steps are
    the compiled ones of this target, then compiled. Returns them as attributes of a module
    object ``name`` (numba resolves ``module.step(...)`` inside compiled code).
    """
    env: dict[str, Any] = dict(globals(), **prims)
    out = types.ModuleType(name)
    for f in STEPS:
        g = types.FunctionType(f.__code__, env, f.__name__, f.__defaults__, f.__closure__)
        g.__qualname__ = f.__qualname__
        env[f.__name__] = compiled = jit(g)
        setattr(out, f.__name__, compiled)
    return out


#: The steps compiled for the CPU (njit, inlined into their callers).
CPU = compile_steps(njit(cache=True, nogil=True, inline="always", error_model="numpy"),
                    "technic.indicators._steps.CPU", fma=_fma, mul=_mul_cpu, log=_log_cpu)
