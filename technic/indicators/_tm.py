"""Time-major panel kernels (numba): outer loop over rows (dates), inner loop over symbols.

A ``(T, N)`` C-ordered panel is walked row by row; within a row the symbols are contiguous
in memory. Each symbol carries its own state in length-``N`` vectors (bars seen, running
sums, EMA / Wilder state) and, for rolling windows, a small ring buffer of its last ``n``
own values, shape ``(n, N)``, indexed by the symbol's own bar count modulo ``n``. A row where
a needed input is NaN writes NaN and leaves the symbol's state untouched, so every symbol is
processed over its own bars exactly as the 1-D kernels of :mod:`technic.indicators.cpu` and
:mod:`technic.indicators.extra` do, in the same arithmetic order: the results are
bit-identical to them (and so to TA-Lib 0.8.1 on the compressed series). Those 1-D kernels
are the specification; each kernel below names its twin.

Two families. ``tm_*`` (per-symbol state and rings, as above) handle any column. The
recursive ones without a window (EMA, RSI, MACD, ATR, ADX) are branch-free: every arm of
every warm-up test is computed and selected, and a gap row selects the old state, so they
vectorize across symbols, gaps included. The ones with a ring of own bars (SMA, BBANDS, ROC,
STOCH, WILLR, CCI, MFI, OBV) branch per symbol and run scalar. ``rg_*`` handle "regular"
columns, whose bars form one run of consecutive rows (see ``layout``): there the symbol's
own bar ``i - k`` is row ``t - k``, so windows read the panel rows directly and every test
is a select, which lets LLVM vectorize across symbols. :func:`run_regular` runs an ``rg_*``
kernel on the whole panel and then the irregular columns (a gap inside the history),
compacted to their own bars, through the same kernel (or a ``tm_*`` ring twin on the whole
panel when most columns are irregular). STOCH and WILLR take their window extremes in O(1) a
value (van Herk / Gil-Werman, ``_prefix_ext``), walking the columns in blocks of ``_BLK``
symbols; CCI in blocks of ``_CCI_BLK``.

Vectorization: LLVM's loop vectorizer must prove that the arrays a loop writes do not
overlap the ones it reads, with runtime checks it gives up on past a handful of pairs, so
hot loops write few arrays (``rg_stoch`` is split into short loops for that reason).

Serial, ``nogil``, ``cache=True``, IEEE division (``error_model="numpy"``); outputs are
preallocated by the caller and fully written (NaN included).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from technic.indicators._common import _JIT as _JIT_BASE
from technic.indicators._common import TA_EPSILON
from technic.indicators._steps import CPU as _S

# IEEE division (no ZeroDivisionError check): the branch-free kernels evaluate both arms of
# a test and select, so an unused arm may divide by 0; the checks would also block SIMD.
_JIT = dict(_JIT_BASE, error_model="numpy")

#: Symbols per column block.
_BLK = 512
#: Symbols per column block of CCI (its ring is rescanned twice a row).
_CCI_BLK = 256


# ---------------------------------------------------------------------------------------------
# Single-input kernels.
# ---------------------------------------------------------------------------------------------


@njit(**_JIT)
def tm_sma(x, n, out):
    # Twin of cpu._sma_1d: total of the first n-1 bars, then total += x; out = total / n;
    # total -= x[i - n + 1] (the oldest bar of the window, from the ring).
    t_len, n_cols = x.shape
    cnt = np.zeros(n_cols, np.int64)
    slot = np.zeros(n_cols, np.int64)
    total = np.zeros(n_cols)
    ring = np.empty((n, n_cols))
    fn = float(n)
    lb = n - 1
    for t in range(t_len):
        xr = x[t]
        orow = out[t]
        for j in range(n_cols):
            v = xr[j]
            if np.isnan(v):
                orow[j] = np.nan
                continue
            s = slot[j]
            ring[s, j] = v
            s1 = _S.next_slot(s, n)
            slot[j] = s1
            c = cnt[j]
            if c >= lb:
                tot = total[j] + v
                total[j] = tot - ring[s1, j]
                orow[j] = tot / fn
            else:
                cnt[j] = c + 1
                total[j] += v
                orow[j] = np.nan


@njit(**_JIT)
def tm_ema(x, n, out):
    # _steps.ema_step per symbol; a gap row (NaN) keeps the old state (branch-free selects).
    t_len, n_cols = x.shape
    if n == 1:
        for t in range(t_len):
            for j in range(n_cols):
                out[t, j] = x[t, j]
        return
    cnt = np.zeros(n_cols, np.int64)
    prev = np.zeros(n_cols)  # the seed total while warming up, then the EMA
    k = 2.0 / float(n + 1)
    fn = float(n)
    for t in range(t_len):
        xr = x[t]
        orow = out[t]
        for j in range(n_cols):
            v = xr[j]
            ok = not np.isnan(v)
            c = cnt[j]
            p = prev[j]
            q = _S.ema_step(c, p, v, n, fn, k)
            orow[j] = q if ok & (c >= n - 1) else np.nan
            prev[j] = q if ok else p
            cnt[j] = c + 1 if ok & (c < n) else c


@njit(**_JIT)
def tm_rsi(x, n, out):
    # _steps.rsi_step per symbol; a gap row (NaN) keeps the old state (branch-free selects).
    t_len, n_cols = x.shape
    cnt = np.zeros(n_cols, np.int64)
    prevx = np.zeros(n_cols)
    gain = np.zeros(n_cols)
    loss = np.zeros(n_cols)
    inv = 1.0 / float(n)
    fn1 = float(n - 1)
    for t in range(t_len):
        xr = x[t]
        orow = out[t]
        for j in range(n_cols):
            v = xr[j]
            ok = not np.isnan(v)
            c = cnt[j]
            g0 = gain[j]
            l0 = loss[j]
            g, lo, r = _S.rsi_step(c, g0, l0, prevx[j], v, n, inv, fn1)
            orow[j] = r if ok & (c >= n) else np.nan
            gain[j] = g if ok else g0
            loss[j] = lo if ok else l0
            prevx[j] = v if ok else prevx[j]
            cnt[j] = c + 1 if ok & (c <= n) else c


@njit(**_JIT)
def tm_macd(x, fast, slow, signal, o_macd, o_sig, o_hist):
    # _steps.macd_step per symbol; a gap row keeps the old state (branch-free selects).
    t_len, n_cols = x.shape
    cnt = np.zeros(n_cols, np.int64)
    pf = np.zeros(n_cols)  # fast sum, then fast EMA
    ps = np.zeros(n_cols)  # slow sum, then slow EMA
    sg = np.zeros(n_cols)  # signal sum, then signal EMA
    kf = 2.0 / float(fast + 1)
    ks = 2.0 / float(slow + 1)
    kg = 2.0 / float(signal + 1)
    f0 = slow + signal - 2
    for t in range(t_len):
        xr = x[t]
        om = o_macd[t]
        osg = o_sig[t]
        oh = o_hist[t]
        for j in range(n_cols):
            v = xr[j]
            ok = not np.isnan(v)
            i = cnt[j]
            p = pf[j]
            q = ps[j]
            g0 = sg[j]
            f, s, g, m = _S.macd_step(i, p, q, g0, v, fast, slow, signal, kf, ks, kg)
            pf[j] = f if ok else p
            ps[j] = s if ok else q
            sg[j] = g if ok else g0
            cnt[j] = i + 1 if ok & (i <= f0) else i
            out = ok & (i >= f0)
            om[j] = m if out else np.nan
            osg[j] = g if out else np.nan
            oh[j] = m - g if out else np.nan


@njit(**_JIT)
def tm_bbands(x, n, k, o_up, o_mid, o_lo):
    # Twin of cpu._bbands_1d (SMA middle band + cpu._rolling_var shifted-sum variance).
    t_len, n_cols = x.shape
    cnt = np.zeros(n_cols, np.int64)
    slot = np.zeros(n_cols, np.int64)
    total = np.zeros(n_cols)
    shift = np.zeros(n_cols)
    s1 = np.zeros(n_cols)
    s2 = np.zeros(n_cols)
    left = np.full(n_cols, 32 * n, np.int64)
    ring = np.empty((n, n_cols))
    fn = float(n)
    inv = 1.0 / fn
    lb = n - 1
    for t in range(t_len):
        xr = x[t]
        ou = o_up[t]
        om = o_mid[t]
        ol = o_lo[t]
        for j in range(n_cols):
            v = xr[j]
            if np.isnan(v):
                ou[j] = np.nan
                om[j] = np.nan
                ol[j] = np.nan
                continue
            s = slot[j]
            ring[s, j] = v
            so = _S.next_slot(s, n)  # the oldest bar of the window
            slot[j] = so
            c = cnt[j]
            if c < lb:
                if c == 0:
                    shift[j] = v
                cnt[j] = c + 1
                total[j] += v
                d = v - shift[j]
                s1[j] += d
                d *= d
                s2[j] += d
                ou[j] = np.nan
                om[j] = np.nan
                ol[j] = np.nan
                continue
            if c == 0:  # n == 1
                shift[j] = v
                cnt[j] = 1
            # middle band: TA_SMA running total
            tot = total[j] + v
            old = ring[so, j]
            total[j] = tot - old
            mid = tot / fn
            # variance: cpu._rolling_var
            sh = shift[j]
            d = v - sh
            t1 = s1[j] + d
            d *= d
            t2 = s2[j] + d
            mean1 = t1 * inv
            var = t2 * inv - mean1 * mean1
            d = old - sh
            t1 -= d
            d *= d
            t2 -= d
            bl = left[j] - 1
            if var < 0.000001 * (t2 * inv) or d > 1000000.0 * t2 or bl <= 0:
                bl = 32 * n
                acc = 0.0
                q = so
                for _ in range(n):
                    acc += ring[q, j]
                    q = _S.next_slot(q, n)
                sh = acc * inv
                t1 = 0.0
                t2 = 0.0
                q = so
                for _ in range(n):
                    d = ring[q, j] - sh
                    t1 += d
                    d *= d
                    t2 += d
                    q = _S.next_slot(q, n)
                mean1 = t1 * inv
                var = t2 * inv - mean1 * mean1
                if var < 0.000000000001 * (t2 * inv):
                    var = 0.0
                d = old - sh
                t1 -= d
                d *= d
                t2 -= d
                shift[j] = sh
            left[j] = bl
            s1[j] = t1
            s2[j] = t2
            dev = math.sqrt(var) * k
            ou[j] = mid + dev
            om[j] = mid
            ol[j] = mid - dev


@njit(**_JIT)
def tm_roc(x, n, out):
    # Twin of cpu._roc_1d: ((x / x[n bars ago]) - 1) * 100, 0 where the old value is 0.
    t_len, n_cols = x.shape
    cnt = np.zeros(n_cols, np.int64)
    slot = np.zeros(n_cols, np.int64)
    ring = np.empty((n, n_cols))
    for t in range(t_len):
        xr = x[t]
        orow = out[t]
        for j in range(n_cols):
            v = xr[j]
            if np.isnan(v):
                orow[j] = np.nan
                continue
            s = slot[j]
            old = ring[s, j]
            ring[s, j] = v
            slot[j] = _S.next_slot(s, n)
            c = cnt[j]
            if c >= n:
                orow[j] = ((v / old) - 1.0) * 100.0 if old != 0.0 else 0.0
            else:
                cnt[j] = c + 1
                orow[j] = np.nan


# ---------------------------------------------------------------------------------------------
# High / low / close kernels.
# ---------------------------------------------------------------------------------------------


@njit(**_JIT)
def tm_atr(h, lo, cl, n, out):
    # _steps.atr_step per symbol; a gap row keeps the old state (branch-free selects).
    t_len, n_cols = h.shape
    cnt = np.zeros(n_cols, np.int64)
    pc = np.zeros(n_cols)
    st = np.zeros(n_cols)  # TR sum, then ATR
    beta = float(n - 1) / float(n)
    alpha = 1.0 - beta
    fn = float(n)
    for t in range(t_len):
        hr = h[t]
        lr = lo[t]
        cr = cl[t]
        orow = out[t]
        for j in range(n_cols):
            hv = hr[j]
            lv = lr[j]
            cv = cr[j]
            ok = not (np.isnan(hv) | np.isnan(lv) | np.isnan(cv))
            c = cnt[j]
            s0 = st[j]
            a = _S.atr_step(c, s0, hv, lv, pc[j], n, fn, beta, alpha)
            orow[j] = a if ok & (c >= n) else np.nan
            st[j] = a if ok else s0
            pc[j] = cv if ok else pc[j]
            cnt[j] = c + 1 if ok & (c <= n) else c


@njit(**_JIT)
def tm_adx(h, lo, cl, n, eps, out):
    # _steps.adx_step per symbol; a gap row keeps the old state (branch-free selects).
    t_len, n_cols = h.shape
    cnt = np.zeros(n_cols, np.int64)
    ph = np.zeros(n_cols)
    pl = np.zeros(n_cols)
    pc = np.zeros(n_cols)
    pdm_a = np.zeros(n_cols)
    mdm_a = np.zeros(n_cols)
    tr_a = np.zeros(n_cols)
    adx_a = np.zeros(n_cols)  # DX sum, then ADX
    fn = float(n)
    fn1 = float(n - 1)
    fo = 2 * n - 1
    for t in range(t_len):
        hr = h[t]
        lr = lo[t]
        cr = cl[t]
        orow = out[t]
        for j in range(n_cols):
            hv = hr[j]
            lv = lr[j]
            cv = cr[j]
            ok = not (np.isnan(hv) | np.isnan(lv) | np.isnan(cv))
            i = cnt[j]
            p0 = pdm_a[j]
            m0 = mdm_a[j]
            r0 = tr_a[j]
            a0 = adx_a[j]
            p1, m1, r1, a1 = _S.adx_step(i, ph[j], pl[j], pc[j], p0, m0, r0, a0, hv, lv, n,
                                         fn, fn1, fo, eps)
            pdm_a[j] = p1 if ok else p0
            mdm_a[j] = m1 if ok else m0
            tr_a[j] = r1 if ok else r0
            adx_a[j] = a1 if ok else a0
            orow[j] = a1 if (ok & (i >= fo)) else np.nan
            ph[j] = hv if ok else ph[j]
            pl[j] = lv if ok else pl[j]
            pc[j] = cv if ok else pc[j]
            cnt[j] = i + 1 if ok & (i <= fo) else i


@njit(**_JIT)
def tm_stoch(h, lo, cl, fk, sk, sd, o_k, o_d):
    # _steps.stoch_bar per symbol (rings of its own bars); a gap row is NaN, state kept.
    t_len, n_cols = h.shape
    cnt = np.zeros(n_cols, np.int64)
    slot = np.zeros(n_cols, np.int64)
    hh_a = np.zeros(n_cols)
    ll_a = np.zeros(n_cols)
    rh = np.empty((fk, n_cols))
    rl = np.empty((fk, n_cols))
    ks = np.zeros(n_cols, np.int64)
    ktot = np.zeros(n_cols)
    kr = np.empty((sk, n_cols))
    ds = np.zeros(n_cols, np.int64)
    dtot = np.zeros(n_cols)
    dr = np.empty((sd, n_cols))
    cap = max(fk + sk + sd - 3, fk)  # bars counted until the window is full and outputs start
    for t in range(t_len):
        for j in range(n_cols):
            hv = h[t, j]
            lv = lo[t, j]
            cv = cl[t, j]
            if np.isnan(hv) or np.isnan(lv) or np.isnan(cv):
                o_k[t, j] = np.nan
                o_d[t, j] = np.nan
                continue
            c = cnt[j]
            s = slot[j]
            (hh_a[j], ll_a[j], ks[j], ktot[j], ds[j], dtot[j], o_k[t, j],
             o_d[t, j]) = _S.stoch_bar(c, s, hh_a[j], ll_a[j], ks[j], ktot[j], ds[j], dtot[j], rh,
                                     rl, kr, dr, j, hv, lv, cv, fk, sk, sd)
            slot[j] = _S.next_slot(s, fk)
            cnt[j] = c + 1 if c < cap else c


@njit(**_JIT)
def tm_willr(h, lo, cl, n, out):
    # _steps.willr_bar per symbol (rings of its own bars); a gap row is NaN, state kept.
    t_len, n_cols = h.shape
    cnt = np.zeros(n_cols, np.int64)
    slot = np.zeros(n_cols, np.int64)
    hh_a = np.zeros(n_cols)
    ll_a = np.zeros(n_cols)
    rh = np.empty((n, n_cols))
    rl = np.empty((n, n_cols))
    for t in range(t_len):
        for j in range(n_cols):
            hv = h[t, j]
            lv = lo[t, j]
            cv = cl[t, j]
            if np.isnan(hv) or np.isnan(lv) or np.isnan(cv):
                out[t, j] = np.nan
                continue
            c = cnt[j]
            s = slot[j]
            hh_a[j], ll_a[j], out[t, j] = _S.willr_bar(c, s, hh_a[j], ll_a[j], rh, rl, j, hv, lv,
                                                     cv, n)
            slot[j] = _S.next_slot(s, n)
            cnt[j] = c + 1 if c < n else c


@njit(**_JIT)
def tm_cci(h, lo, cl, n, out):
    # Twin of extra._cci_1d: typical prices in TA-Lib's circular buffer (bar i in slot
    # i % n); mean and mean absolute deviation summed in SLOT order. Those two sums run for
    # the whole block, slot by slot (vectorized across symbols); the ring starts at 0 so the
    # unused lanes stay finite. The columns are walked in blocks of _CCI_BLK symbols so the
    # block's ring (n, _CCI_BLK), rescanned twice a row, stays in L1/L2.
    t_len, n_cols = h.shape
    cnt = np.zeros(n_cols, np.int64)
    slot = np.zeros(n_cols, np.int64)
    ring = np.zeros((n, _CCI_BLK))
    tps = np.empty(_CCI_BLK)
    ok = np.empty(_CCI_BLK, np.bool_)
    avg = np.empty(_CCI_BLK)
    dev = np.empty(_CCI_BLK)
    lb = n - 1
    for j0 in range(0, n_cols, _CCI_BLK):
        j1 = min(j0 + _CCI_BLK, n_cols)
        m = j1 - j0
        ring[:, :] = 0.0
        cb = cnt[j0:j1]
        sb = slot[j0:j1]
        for t in range(t_len):
            hr = h[t][j0:j1]
            lr = lo[t][j0:j1]
            cr = cl[t][j0:j1]
            orow = out[t][j0:j1]
            for j in range(m):
                hv = hr[j]
                lv = lr[j]
                cv = cr[j]
                tp = (hv + lv + cv) / 3
                tps[j] = tp
                valid = not (np.isnan(hv) or np.isnan(lv) or np.isnan(cv))
                ok[j] = valid
                if valid:
                    s = sb[j]
                    ring[s, j] = tp
                    sb[j] = _S.next_slot(s, n)
                avg[j] = 0.0
                dev[j] = 0.0
            # Slot order, four slots a pass (same additions, a quarter of the loads and
            # stores of the accumulators).
            q = 0
            while q + 4 <= n:
                r0 = ring[q]
                r1 = ring[q + 1]
                r2 = ring[q + 2]
                r3 = ring[q + 3]
                for j in range(m):
                    a = avg[j] + r0[j]
                    a += r1[j]
                    a += r2[j]
                    avg[j] = a + r3[j]
                q += 4
            while q < n:
                r0 = ring[q]
                for j in range(m):
                    avg[j] += r0[j]
                q += 1
            for j in range(m):
                avg[j] /= n
            q = 0
            while q + 4 <= n:
                r0 = ring[q]
                r1 = ring[q + 1]
                r2 = ring[q + 2]
                r3 = ring[q + 3]
                for j in range(m):
                    a = avg[j]
                    d = dev[j] + abs(r0[j] - a)
                    d += abs(r1[j] - a)
                    d += abs(r2[j] - a)
                    dev[j] = d + abs(r3[j] - a)
                q += 4
            while q < n:
                r0 = ring[q]
                for j in range(m):
                    dev[j] += abs(r0[j] - avg[j])
                q += 1
            for j in range(m):
                v = ok[j]
                c = cb[j]
                warm = c >= lb
                cb[j] = c + 1 if (v & (not warm)) else c
                tp = tps[j]
                a = avg[j]
                sd = dev[j]
                d = tp - a
                zero = (abs(d) <= TA_EPSILON * (abs(tp) + abs(a))) | (sd == 0.0)
                r = 0.0 if zero else d / (0.015 * (sd / n))
                orow[j] = r if (v & warm) else np.nan


# ---------------------------------------------------------------------------------------------
# Kernels with volume.
# ---------------------------------------------------------------------------------------------


@njit(**_JIT)
def tm_obv(cl, vol, out):
    # Twin of cpu._obv_1d.
    t_len, n_cols = cl.shape
    seen = np.zeros(n_cols, np.bool_)
    prev = np.zeros(n_cols)
    acc = np.zeros(n_cols)
    for t in range(t_len):
        cr = cl[t]
        vr = vol[t]
        orow = out[t]
        for j in range(n_cols):
            cv = cr[j]
            vv = vr[j]
            if np.isnan(cv) or np.isnan(vv):
                orow[j] = np.nan
                continue
            if seen[j]:
                a = acc[j]
                p = prev[j]
                if cv > p:
                    a += vv
                elif cv < p:
                    a -= vv
            else:
                seen[j] = True
                a = vv
            acc[j] = a
            prev[j] = cv
            orow[j] = a


@njit(**_JIT)
def tm_mfi(h, lo, cl, vol, n, out):
    # Twin of extra._mfi_1d: flows of bars 1.. in rings (bar i in slot (i - 1) % n).
    t_len, n_cols = h.shape
    cnt = np.zeros(n_cols, np.int64)
    slot = np.zeros(n_cols, np.int64)
    prev = np.zeros(n_cols)
    ps_a = np.zeros(n_cols)
    ns_a = np.zeros(n_cols)
    null_a = np.zeros(n_cols, np.int64)
    pos = np.empty((n, n_cols))
    neg = np.empty((n, n_cols))
    for t in range(t_len):
        hr = h[t]
        lr = lo[t]
        cr = cl[t]
        vr = vol[t]
        orow = out[t]
        for j in range(n_cols):
            hv = hr[j]
            lv = lr[j]
            cv = cr[j]
            vv = vr[j]
            if np.isnan(hv) or np.isnan(lv) or np.isnan(cv) or np.isnan(vv):
                orow[j] = np.nan
                continue
            c = cnt[j]
            tp = (hv + lv + cv) / 3.0
            if c == 0:
                cnt[j] = 1
                prev[j] = tp
                orow[j] = np.nan
                continue
            ps = ps_a[j]
            ns = ns_a[j]
            s = slot[j]
            if c > n:
                ps -= pos[s, j]
                ns -= neg[s, j]
            else:
                cnt[j] = c + 1
            p0 = prev[j]
            d = tp - p0
            scale = abs(tp) + abs(p0)
            prev[j] = tp
            flow = tp * vv
            if abs(d) <= TA_EPSILON * scale:
                flow = 0.0
            pf = 0.0 if d < 0.0 else flow
            nf = flow if d < 0.0 else 0.0
            pos[s, j] = pf
            neg[s, j] = nf
            ps += pf
            ns += nf
            nr = null_a[j] + 1 if flow == 0.0 else 0
            if nr >= n:
                nr = n
                ps = 0.0
                ns = 0.0
            null_a[j] = nr
            ps_a[j] = ps
            ns_a[j] = ns
            slot[j] = _S.next_slot(s, n)
            if c >= n:
                tot = ps + ns
                pc = 0.0 if ps < 0.0 else (tot if ps > tot else ps)
                orow[j] = 0.0 if tot <= 0.0 else 100.0 * (pc / tot)
            else:
                orow[j] = np.nan


# ---------------------------------------------------------------------------------------------
# Regular-column kernels. A column is "regular" when its bars (rows where every input is
# present) form one run of consecutive rows [first, last]; then the symbol's own bar i - k is
# simply row t - k, windows are plain row ranges, and the kernels below run branch-free
# across symbols (selects, vectorizable). Irregular columns (a gap inside the history) are
# flagged by `layout` and recomputed by the caller with the per-column 1-D kernels.
# ---------------------------------------------------------------------------------------------


@njit(**_JIT)
def layout(a, b, c, d):
    # Per column: the first row where every input (a, b, c, d; repeat one to use fewer) is
    # present (T when none) and whether the column is irregular (a bar after a missing row
    # that follows its first bar).
    t_len, n_cols = a.shape
    first = np.full(n_cols, t_len, np.int64)
    cnt = np.zeros(n_cols, np.int64)
    bad = np.zeros(n_cols, np.bool_)
    for t in range(t_len):
        ar = a[t]
        br = b[t]
        cr = c[t]
        dr = d[t]
        for j in range(n_cols):
            ok = not (np.isnan(ar[j]) | np.isnan(br[j]) | np.isnan(cr[j]) | np.isnan(dr[j]))
            k = cnt[j]
            f = first[j]
            f = t if (ok & (k == 0)) else f
            bad[j] = bad[j] | (ok & ((t - f) != k))
            first[j] = f
            cnt[j] = k + 1 if ok else k
    return first, bad


@njit(**_JIT)
def rg_sma(x, n, first, out):
    # Twin of cpu._sma_1d on regular columns: the departing bar is row t - n + 1.
    t_len, n_cols = x.shape
    total = np.zeros(n_cols)
    fn = float(n)
    lb = n - 1
    for t in range(t_len):
        xr = x[t]
        xo = x[max(t - lb, 0)]
        orow = out[t]
        for j in range(n_cols):
            v = xr[j]
            i = t - first[j]
            tot = total[j] + v
            tr = tot - xo[j]
            total[j] = tr if i >= lb else (tot if i >= 0 else total[j])
            orow[j] = tot / fn if i >= lb else np.nan


@njit(**_JIT)
def _suffix_ext(h, lo, r0, n, j0, j1, sh, sl):
    # Suffix extremes of the row block r0..r0+n-1 (columns j0..j1): sh[r] = highest high of
    # rows r0+r..r0+n-1, sl[r] the lowest low; ties keep the EARLIER row (>=, <=), so a
    # combination with a later prefix (strict >, <) returns the first extreme of the window,
    # bit for bit as the chronological scan of extra._extremes (signed zeros included).
    # One array per loop: a loop that writes one array and reads two vectorizes without
    # LLVM's runtime alias checks running out (it gives up past a handful of pairs).
    hr = h[r0 + n - 1][j0:j1]
    lr = lo[r0 + n - 1][j0:j1]
    m = hr.shape[0]
    ch = sh[n - 1]
    for j in range(m):
        ch[j] = hr[j]
    cl = sl[n - 1]
    for j in range(m):
        cl[j] = lr[j]
    for r in range(n - 2, -1, -1):
        hr = h[r0 + r][j0:j1]
        nh = sh[r + 1]
        ch = sh[r]
        for j in range(m):
            w = hr[j]
            q = nh[j]
            ch[j] = w if w >= q else q
        lr = lo[r0 + r][j0:j1]
        nl = sl[r + 1]
        cl = sl[r]
        for j in range(m):
            w = lr[j]
            q = nl[j]
            cl[j] = w if w <= q else q


@njit(**_JIT)
def _prefix_ext(h, lo, t, n, j0, j1, sh, sl, ph, pl):
    # Advance the window extremes to row t (van Herk / Gil-Werman): rows are cut into blocks
    # of n; ph / pl hold the highest high / lowest low from the start of t's block to t, and
    # sh / sl (n + 1, BLK) the suffix extremes of the previous block, rebuilt when a block
    # starts (sh[n] = -inf, sl[n] = +inf). The window t-n+1..t is then the suffix of the
    # previous block from t-n+1 plus the prefix: combine with _combine_ext at row sh[t%n+1].
    # Three operations a value instead of n, for any n.
    off = t % n
    hr = h[t][j0:j1]
    lr = lo[t][j0:j1]
    m = hr.shape[0]
    if off == 0:
        if t >= n:
            _suffix_ext(h, lo, t - n, n, j0, j1, sh, sl)
        for j in range(m):
            ph[j] = hr[j]
        for j in range(m):
            pl[j] = lr[j]
    else:
        for j in range(m):
            w = hr[j]
            q = ph[j]
            ph[j] = w if w > q else q
        for j in range(m):
            w = lr[j]
            q = pl[j]
            pl[j] = w if w < q else q
    return off + 1


@njit(**_JIT)
def _ext_buffers(n):
    sh = np.empty((n + 1, _BLK))
    sl = np.empty((n + 1, _BLK))
    sh[n] = -np.inf
    sl[n] = np.inf
    return sh, sl, np.empty(_BLK), np.empty(_BLK)


@njit(**_JIT)
def rg_willr(h, lo, cl, n, first, out):
    # Twin of extra._willr_1d on regular columns; window extremes from _prefix_ext.
    t_len, n_cols = h.shape
    sh, sl, ph, pl = _ext_buffers(n)
    lb = n - 1
    for j0 in range(0, n_cols, _BLK):
        j1 = min(j0 + _BLK, n_cols)
        fb = first[j0:j1]
        for t in range(t_len):
            q = _prefix_ext(h, lo, t, n, j0, j1, sh, sl, ph, pl)
            orow = out[t][j0:j1]
            m = orow.shape[0]
            if t < lb:
                for j in range(m):
                    orow[j] = np.nan
                continue
            xh = sh[q]
            xl = sl[q]
            hr = h[t][j0:j1]
            lr = lo[t][j0:j1]
            cr = cl[t][j0:j1]
            for j in range(m):
                cv = cr[j]
                ok = not (np.isnan(hr[j]) | np.isnan(lr[j]) | np.isnan(cv))
                a = ph[j]
                w = xh[j]
                a = a if a > w else w
                b = pl[j]
                w = xl[j]
                b = b if b < w else w
                r = ((a - cv) / (a - b)) * (-100.0) if (a - b) / (-100.0) != 0.0 else 0.0
                orow[j] = r if (ok & (t - fb[j] >= lb)) else np.nan


@njit(**_JIT)
def rg_stoch(h, lo, cl, fk, sk, sd, first, o_k, o_d):
    # Twin of extra._stoch_1d on regular columns: fast %K from the window extremes
    # (_prefix_ext); slow %K and slow %D are TA_SMA running totals whose departing values
    # come from row rings (row r in slot r % sk / r % sd).
    t_len, n_cols = h.shape
    sh, sl, ph, pl = _ext_buffers(fk)
    kr = np.zeros((sk, _BLK))
    dr = np.zeros((sd, _BLK))
    kt = np.empty(_BLK)
    dt = np.empty(_BLK)
    gap = np.empty(_BLK, np.bool_)
    fsk = float(sk)
    fsd = float(sd)
    k0 = fk - 1
    s0 = fk + sk - 2
    f0 = fk + sk + sd - 3
    for j0 in range(0, n_cols, _BLK):
        j1 = min(j0 + _BLK, n_cols)
        fb = first[j0:j1]
        m = j1 - j0
        for j in range(m):
            kt[j] = 0.0
            dt[j] = 0.0
        for t in range(t_len):
            q = _prefix_ext(h, lo, t, fk, j0, j1, sh, sl, ph, pl)
            ok_r = o_k[t][j0:j1]
            od_r = o_d[t][j0:j1]
            if t < k0:
                for j in range(m):
                    ok_r[j] = np.nan
                    od_r[j] = np.nan
                continue
            xh = sh[q]
            xl = sl[q]
            hr = h[t][j0:j1]
            lr = lo[t][j0:j1]
            cr = cl[t][j0:j1]
            kw = kr[t % sk]
            kd = kr[(t + 1) % sk]
            dw = dr[t % sd]
            dd = dr[(t + 1) % sd]
            # Five short loops, each writing one or two arrays, so that each vectorizes.
            for j in range(m):
                cv = cr[j]
                a = ph[j]
                w = xh[j]
                a = a if a > w else w
                b = pl[j]
                w = xl[j]
                b = b if b < w else w
                kw[j] = (0.0 if abs(a - b) <= TA_EPSILON * (abs(a) + abs(b))
                         else (((cv - b) / (a - b)) * 100.0))
            for j in range(m):
                gap[j] = np.isnan(hr[j]) | np.isnan(lr[j]) | np.isnan(cr[j])
            for j in range(m):
                i = t - fb[j]
                tot = kt[j] + kw[j]
                kt[j] = (tot - kd[j]) if i >= s0 else (tot if i >= k0 else kt[j])
                dw[j] = tot / fsk
            for j in range(m):
                i = t - fb[j]
                tot = dt[j] + dw[j]
                dt[j] = (tot - dd[j]) if i >= f0 else (tot if i >= s0 else dt[j])
                od_r[j] = np.nan if (gap[j] | (i < f0)) else tot / fsd
            for j in range(m):
                ok_r[j] = np.nan if (gap[j] | (t - fb[j] < f0)) else dw[j]


@njit(**_JIT)
def rg_mfi(h, lo, cl, vol, n, first, out):
    # Twin of extra._mfi_1d (and tm_mfi) on regular columns, branch-free: the flows of bar
    # i >= 1 go to a row ring (row r in slot r % n), so the flows leaving the window at bar
    # i > n (bar i - n, row t - n) are read from slot t % n before it is overwritten.
    t_len, n_cols = h.shape
    prev = np.zeros(n_cols)
    ps_a = np.zeros(n_cols)
    ns_a = np.zeros(n_cols)
    null_a = np.zeros(n_cols, np.int64)
    pos = np.zeros((n, n_cols))
    neg = np.zeros((n, n_cols))
    for t in range(t_len):
        hr = h[t]
        lr = lo[t]
        cr = cl[t]
        vr = vol[t]
        rp = pos[t % n]
        rn = neg[t % n]
        orow = out[t]
        for j in range(n_cols):
            hv = hr[j]
            lv = lr[j]
            cv = cr[j]
            vv = vr[j]
            ok = not (np.isnan(hv) | np.isnan(lv) | np.isnan(cv) | np.isnan(vv))
            i = t - first[j]
            tp = (hv + lv + cv) / 3.0
            p0 = prev[j]
            d = tp - p0
            scale = abs(tp) + abs(p0)
            flow = tp * vv
            flow = 0.0 if abs(d) <= TA_EPSILON * scale else flow
            neg_d = d < 0.0
            pf = 0.0 if neg_d else flow
            nf = flow if neg_d else 0.0
            ps = ps_a[j]
            ns = ns_a[j]
            leave = i > n
            ps1 = (ps - rp[j] if leave else ps) + pf
            ns1 = (ns - rn[j] if leave else ns) + nf
            nr = null_a[j] + 1 if flow == 0.0 else 0
            zero = nr >= n
            nr = n if zero else nr
            ps1 = 0.0 if zero else ps1
            ns1 = 0.0 if zero else ns1
            active = i >= 1
            ps_a[j] = ps1 if active else ps
            ns_a[j] = ns1 if active else ns
            null_a[j] = nr if active else null_a[j]
            prev[j] = tp if i >= 0 else p0
            rp[j] = pf
            rn[j] = nf
            tot = ps1 + ns1
            pc = 0.0 if ps1 < 0.0 else (tot if ps1 > tot else ps1)
            r = 0.0 if tot <= 0.0 else 100.0 * (pc / tot)
            orow[j] = r if (ok & (i >= n)) else np.nan


@njit(**_JIT)
def rg_bbands(x, n, k, first, o_up, o_mid, o_lo):
    # Twin of cpu._bbands_1d (and tm_bbands) on regular columns: the departing bar is row
    # t - n + 1. The steady step runs branch-free across symbols and flags the columns whose
    # shifted sums must be re-anchored (cancellation, a departing outlier, or 32 n bars);
    # those, rare, are then redone one by one with a fresh two-pass over the window rows.
    t_len, n_cols = x.shape
    total = np.zeros(n_cols)
    shift = np.zeros(n_cols)
    s1 = np.zeros(n_cols)
    s2 = np.zeros(n_cols)
    left = np.full(n_cols, 32 * n, np.int64)
    need = np.zeros(n_cols, np.bool_)
    fn = float(n)
    inv = 1.0 / fn
    lb = n - 1
    for t in range(t_len):
        xr = x[t]
        xo = x[max(t - lb, 0)]
        ou = o_up[t]
        om = o_mid[t]
        ol = o_lo[t]
        n_need = 0
        for j in range(n_cols):
            v = xr[j]
            i = t - first[j]
            steady = i >= lb
            warm = (i >= 0) & (i < lb)
            sh = v if i == 0 else shift[j]
            shift[j] = sh
            # middle band: TA_SMA running total
            tot = total[j] + v
            old = xo[j]
            total[j] = (tot - old) if steady else (tot if warm else total[j])
            mid = tot / fn
            # variance: cpu._rolling_var
            d = v - sh
            t1 = s1[j] + d
            d *= d
            t2 = s2[j] + d
            mean1 = t1 * inv
            var = t2 * inv - mean1 * mean1
            d = old - sh
            u1 = t1 - d
            d *= d
            u2 = t2 - d
            bl = left[j] - 1
            redo = steady & ((var < 0.000001 * (u2 * inv)) | (d > 1000000.0 * u2) | (bl <= 0))
            need[j] = redo
            n_need += 1 if redo else 0
            s1[j] = u1 if steady else (t1 if warm else s1[j])
            s2[j] = u2 if steady else (t2 if warm else s2[j])
            left[j] = bl if steady else left[j]
            dev = math.sqrt(var) * k
            out = steady & (not np.isnan(v))
            ou[j] = mid + dev if out else np.nan
            om[j] = mid if out else np.nan
            ol[j] = mid - dev if out else np.nan
        if n_need == 0:
            continue
        a = t - lb
        for j in range(n_cols):
            if not need[j]:
                continue
            acc = 0.0
            for r in range(a, t + 1):
                acc += x[r, j]
            sh = acc * inv
            t1 = 0.0
            t2 = 0.0
            for r in range(a, t + 1):
                d = x[r, j] - sh
                t1 += d
                d *= d
                t2 += d
            mean1 = t1 * inv
            var = t2 * inv - mean1 * mean1
            if var < 0.000000000001 * (t2 * inv):
                var = 0.0
            d = x[a, j] - sh
            t1 -= d
            d *= d
            t2 -= d
            shift[j] = sh
            s1[j] = t1
            s2[j] = t2
            left[j] = 32 * n
            if not np.isnan(xr[j]):
                dev = math.sqrt(var) * k
                mid = om[j]
                ou[j] = mid + dev
                ol[j] = mid - dev


# ---------------------------------------------------------------------------------------------
# Irregular columns: compact each one to its own bars (a regular column), run the regular
# kernel, and put the results back on the bars' rows. Bar i of a column goes to compact row
# first + i (first = the row of its first bar), so a compact row's sources lie at most the
# column's gap count below it: the gathers and scatters stay in cache.
# ---------------------------------------------------------------------------------------------


@njit(**_JIT)
def gather_own(a, b, c, d, n_in, cols, first, okm, oa, ob, oc, od):
    # oa..od (the first n_in of them; (T, k), NaN-filled by the caller): column q gets bar i of
    # panel column cols[q] of a..d at row first[q] + i. A bar is a row where a, b, c and d are
    # all present (repeat one to use fewer); okm[t, q] says whether row t is one.
    t_len = a.shape[0]
    k = cols.shape[0]
    cnt = first.copy()
    for t in range(t_len):
        ar = a[t]
        br = b[t]
        cr = c[t]
        dr = d[t]
        for q in range(k):
            # Branch-free: a gap row writes NaN into the next free slot (overwritten by the
            # next bar; an irregular column's count stays below T - first, so it is in range).
            j = cols[q]
            va = ar[j]
            vb = br[j]
            vc = cr[j]
            vd = dr[j]
            ok = not (np.isnan(va) | np.isnan(vb) | np.isnan(vc) | np.isnan(vd))
            okm[t, q] = ok
            r = cnt[q]
            cnt[q] = r + 1 if ok else r
            oa[r, q] = va if ok else np.nan
            if n_in > 1:
                ob[r, q] = vb if ok else np.nan
            if n_in > 2:
                oc[r, q] = vc if ok else np.nan
            if n_in > 3:
                od[r, q] = vd if ok else np.nan


@njit(**_JIT)
def scatter_own(okm, cols, first, res, out):
    # Inverse of gather_own for one output: column cols[q] of out gets res[first[q] + i, q] on
    # the row of the column's bar i (okm from gather_own), NaN on every other row.
    t_len = out.shape[0]
    k = cols.shape[0]
    cnt = first.copy()
    for t in range(t_len):
        mr = okm[t]
        orow = out[t]
        for q in range(k):
            ok = mr[q]
            r = cnt[q]
            cnt[q] = r + 1 if ok else r
            orow[cols[q]] = res[r, q] if ok else np.nan


def run_regular(kernel, ins: tuple, params: tuple, outs: tuple, ring=None,
                ring_above: float = 1.0) -> None:
    """Run a regular-column kernel ``rg_*`` on a whole panel, irregular columns included.

    ``kernel(*ins, *params, first, *outs)`` runs on the panel (``ins``: 1 to 4 C-contiguous
    ``(T, N) float64`` inputs; ``outs``: preallocated ``(T, N) float64`` outputs, fully
    written). The columns that :func:`layout` flags irregular (a missing row after their first
    bar) are then recomputed: each is compacted to its own bars (rows where every input is
    present) by :func:`gather_own`, which makes it regular, the same kernel runs on that
    ``(T, k)`` panel, and :func:`scatter_own` writes the values back on the bars' rows (NaN on
    gap rows). So every column equals the 1-D twin on its compressed series, bit for bit, as
    the gap policy of :mod:`technic.indicators.cpu` requires.

    The compaction costs a scattered gather and scatter per irregular value (~10-25 ms per
    1,000 columns x 752 rows); when more than ``ring_above`` (a fraction) of the columns are
    irregular, ``ring(*ins, *params, *outs)`` (the ``tm_*`` ring twin, same results, scalar)
    runs on the whole panel instead. Measured crossovers on the real universe (30 %
    irregular): ~0.1 for SMA, MACD, BBANDS, ADX and MFI, ~0.5 for STOCH and WILLR, whose
    ring kernels rescan their windows.

    Raises:
        nothing of its own; the kernel's inputs are assumed validated by the caller.
    """
    pad = tuple(ins) + (ins[0],) * (4 - len(ins))
    first, bad = layout(*pad)
    cols = np.flatnonzero(bad)
    if ring is not None and cols.size > ring_above * max(bad.size, 1):
        ring(*ins, *params, *outs)
        return
    kernel(*ins, *params, first, *outs)
    if cols.size == 0:
        return
    f = np.ascontiguousarray(first[cols])
    shape = (ins[0].shape[0], cols.size)
    sub_in = tuple(np.full(shape, np.nan) for _ in ins)
    okm = np.empty(shape, np.bool_)
    gather_own(*pad, len(ins), cols, f, okm, *(sub_in + (sub_in[0],) * (4 - len(ins))))
    sub_out = tuple(np.empty(shape) for _ in outs)
    kernel(*sub_in, *params, f, *sub_out)
    for o, so in zip(outs, sub_out, strict=True):
        scatter_own(okm, cols, f, so, o)
