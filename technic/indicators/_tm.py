"""Time-major panel kernels (numba): outer loop over rows (dates), inner loop over symbols.

A ``(T, N)`` C-ordered panel is walked row by row; within a row the symbols are contiguous
in memory. Each symbol carries its own state in length-``N`` vectors (bars seen, running
sums, EMA / Wilder state) and, for rolling windows, a small ring buffer of its last ``n``
own values, shape ``(n, N)``, indexed by the symbol's own bar count modulo ``n``. A row where
a needed input is NaN writes NaN and leaves the symbol's state untouched, so every symbol is
processed over its own bars exactly as the 1-D kernels of :mod:`technic.indicators.cpu` and
:mod:`technic.indicators.extra` do, in the same arithmetic order: the results are
bit-identical to them (and so to TA-Lib 0.8.1 on the compressed series).

The recursive ones (EMA, RSI, MACD, ATR, ADX) and STOCH / WILLR drive the per-bar steps of
:mod:`._steps` (the same source as the 1-D and CUDA kernels); the recursive ones are
branch-free (every arm computed and selected; a gap row selects the old state), so they
vectorize across symbols, gaps included. The ones with a ring of own bars (SMA, BBANDS,
ROC, STOCH, WILLR, CCI, MFI, OBV) branch per symbol and run scalar; for regular columns the
``rg_*`` fast path of :mod:`._rg` replaces SMA, BBANDS, STOCH, WILLR and MFI. CCI walks the
columns in blocks of ``_CCI_BLK``.

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

#: Symbols per column block of CCI (its ring is rescanned twice a row).
_CCI_BLK = 256


# ---------------------------------------------------------------------------------------------
# Single-input kernels.
# ---------------------------------------------------------------------------------------------


@njit(**_JIT)
def tm_sma(x, n, out):
    # _steps.sma_bar per symbol (a ring of its last n values); a gap row is NaN, state kept.
    t_len, n_cols = x.shape
    cnt = np.zeros(n_cols, np.int64)
    slot = np.zeros(n_cols, np.int64)
    total = np.zeros(n_cols)
    ring = np.empty((n, n_cols))
    for t in range(t_len):
        for j in range(n_cols):
            v = x[t, j]
            if np.isnan(v):
                out[t, j] = np.nan
                continue
            c = cnt[j]
            s = slot[j]
            total[j], out[t, j] = _S.sma_bar(c, s, total[j], ring, j, v, n)
            slot[j] = _S.next_slot(s, n)
            cnt[j] = c + 1 if c < n else c


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
    # _steps.roc_bar per symbol (a ring of its last n values); a gap row is NaN, state kept.
    t_len, n_cols = x.shape
    cnt = np.zeros(n_cols, np.int64)
    slot = np.zeros(n_cols, np.int64)
    ring = np.empty((n, n_cols))
    for t in range(t_len):
        for j in range(n_cols):
            v = x[t, j]
            if np.isnan(v):
                out[t, j] = np.nan
                continue
            c = cnt[j]
            s = slot[j]
            out[t, j] = _S.roc_bar(c, s, ring, j, v, n)
            slot[j] = _S.next_slot(s, n)
            cnt[j] = c + 1 if c <= n else c


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
    # _steps.obv_bar per symbol; a gap row is NaN, state kept.
    t_len, n_cols = cl.shape
    cnt = np.zeros(n_cols, np.int64)
    prev = np.zeros(n_cols)
    acc = np.zeros(n_cols)
    for t in range(t_len):
        for j in range(n_cols):
            cv = cl[t, j]
            vv = vol[t, j]
            if np.isnan(cv) or np.isnan(vv):
                out[t, j] = np.nan
                continue
            a = _S.obv_bar(cnt[j], prev[j], acc[j], cv, vv)
            acc[j] = a
            prev[j] = cv
            out[t, j] = a
            cnt[j] = 1


@njit(**_JIT)
def tm_mfi(h, lo, cl, vol, n, out):
    # _steps.mfi_bar per symbol (flow rings of its own bars); a gap row is NaN, state kept.
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
        for j in range(n_cols):
            hv = h[t, j]
            lv = lo[t, j]
            cv = cl[t, j]
            vv = vol[t, j]
            if np.isnan(hv) or np.isnan(lv) or np.isnan(cv) or np.isnan(vv):
                out[t, j] = np.nan
                continue
            c = cnt[j]
            s = slot[j]
            prev[j], ps_a[j], ns_a[j], null_a[j], out[t, j] = _S.mfi_bar(
                c, s, prev[j], ps_a[j], ns_a[j], null_a[j], pos, neg, j, hv, lv, cv, vv, n)
            slot[j] = _S.next_slot(s, n) if c >= 1 else s
            cnt[j] = c + 1 if c <= n else c
