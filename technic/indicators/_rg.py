"""The regular-column fast path: branch-free ``rg_*`` kernels and :func:`run_regular`.

A column is "regular" when its bars (rows where every input is present) form one run of
consecutive rows; then the symbol's own bar ``i - k`` is row ``t - k``, windows read the
panel rows directly and every test is a select, which lets LLVM vectorize across symbols.
STOCH and WILLR take their window extremes in O(1) a value (van Herk / Gil-Werman,
``_prefix_ext``), walking the columns in blocks of ``_BLK`` symbols. Each kernel records
the panel's layout (per column: first and last bar, bar count) in its own pass
(``_own_bar``), so no separate scan of the inputs is needed; :func:`run_regular` then redoes
the irregular columns compacted to their own bars (or runs the ``tm_*`` ring twin of
:mod:`._tm` on the whole panel when a sample says most columns are irregular). Each ``rg_*``
kernel is bit-identical to its ``tm_*`` twin (tests/unit/test_indicators.py). Serial,
``nogil``, ``cache=True``, IEEE division.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from technic.indicators._common import TA_EPSILON
from technic.indicators._oned import _var_rebuild
from technic.indicators._tm import _JIT

#: Symbols per column block.
_BLK = 512


# ---------------------------------------------------------------------------------------------
# Regular-column kernels. A column is "regular" when its bars (rows where every input is
# present) form one run of consecutive rows [first, last]; then the symbol's own bar i - k is
# simply row t - k, windows are plain row ranges, and the kernels below run branch-free
# across symbols (selects, vectorizable). Irregular columns (a gap inside the history) are
# flagged by the layout each kernel returns and recomputed by run_regular.
# ---------------------------------------------------------------------------------------------


@njit(**_JIT)
def _lay(n_cols, t_len):
    # The layout a kernel records while it runs (see _own_bar): per column the row of its
    # first bar (T while none), of its last bar (-1), and its number of bars. int32 (panels
    # have fewer than 2**31 rows): half the bytes of int64 in the per-bar loads and stores,
    # which measured ~10 % of a cheap kernel such as rg_sma.
    return (np.full(n_cols, t_len, np.int32), np.full(n_cols, -1, np.int32),
            np.zeros(n_cols, np.int32))


@njit(**_JIT)
def _own_bar(first, last, cnt, j, t, ok, t_len):
    # Record whether row t is a bar of column j (ok: every input present) and return the
    # row's own-bar index on a regular column, t - first (negative before the first bar).
    # Branch-free integer selects, so it vectorizes with the kernel that calls it.
    t32 = np.int32(t)
    f = first[j]
    f = t32 if (ok & (f == t_len)) else f
    first[j] = f
    last[j] = t32 if ok else last[j]
    cnt[j] += np.int32(1) if ok else np.int32(0)
    return t - f


@njit(**_JIT)
def rg_sma(x, n, out):
    # Twin of tm_sma on regular columns: the departing bar is row t - n + 1.
    t_len, n_cols = x.shape
    first, last, cnt = _lay(n_cols, t_len)
    total = np.zeros(n_cols)
    fn = float(n)
    lb = n - 1
    for t in range(t_len):
        xr = x[t]
        xo = x[max(t - lb, 0)]
        orow = out[t]
        for j in range(n_cols):
            v = xr[j]
            i = _own_bar(first, last, cnt, j, t, not np.isnan(v), t_len)
            tot = total[j] + v
            tr = tot - xo[j]
            total[j] = tr if i >= lb else (tot if i >= 0 else total[j])
            orow[j] = tot / fn if i >= lb else np.nan
    return first, last, cnt


@njit(**_JIT)
def rg_roc(x, n, out):
    # Twin of tm_roc on regular columns: the bar n own bars back is row t - n.
    t_len, n_cols = x.shape
    first, last, cnt = _lay(n_cols, t_len)
    for t in range(t_len):
        xr, xo, orow = x[t], x[max(t - n, 0)], out[t]
        for j in range(n_cols):
            v, old = xr[j], xo[j]
            ok = not np.isnan(v)
            r = ((v / (old if old != 0.0 else 1.0)) - 1.0) * 100.0 if old != 0.0 else 0.0
            orow[j] = r if (ok & (_own_bar(first, last, cnt, j, t, ok, t_len) >= n)) else np.nan
    return first, last, cnt


@njit(**_JIT)
def _suffix_ext(h, lo, r0, n, j0, j1, sh, sl):
    # Suffix extremes of the row block r0..r0+n-1 (columns j0..j1): sh[r] = highest high of
    # rows r0+r..r0+n-1, sl[r] the lowest low; ties keep the EARLIER row (>=, <=), so a
    # combination with a later prefix (strict >, <) returns the first extreme of the window,
    # bit for bit as the chronological scan of extra._extremes (signed zeros included).
    # One array per loop: a loop that writes one array and reads two vectorizes without
    # LLVM's runtime alias checks running out (it gives up past a handful of pairs).
    m = j1 - j0
    hr, lr, ch, cl = h[r0 + n - 1][j0:j1], lo[r0 + n - 1][j0:j1], sh[n - 1], sl[n - 1]
    for j in range(m):  # (loops, not slice assignments: those take seconds to compile)
        ch[j] = hr[j]
        cl[j] = lr[j]
    for r in range(n - 2, -1, -1):
        hr, nh, ch = h[r0 + r][j0:j1], sh[r + 1], sh[r]
        for j in range(m):
            w, q = hr[j], nh[j]
            ch[j] = w if w >= q else q
        lr, nl, cl = lo[r0 + r][j0:j1], sl[r + 1], sl[r]
        for j in range(m):
            w, q = lr[j], nl[j]
            cl[j] = w if w <= q else q


@njit(**_JIT)
def _prefix_ext(h, lo, t, n, j0, j1, sh, sl, ph, pl):
    # Advance the window extremes to row t (van Herk / Gil-Werman): rows are cut into blocks
    # of n; ph / pl hold the highest high / lowest low from the start of t's block to t, and
    # sh / sl (n + 1, BLK) the suffix extremes of the previous block, rebuilt when a block
    # starts (sh[n] = -inf, sl[n] = +inf). The window t-n+1..t is then the suffix of the
    # previous block from t-n+1 plus the prefix: combine with _window_hl at row sh[t%n+1].
    # Three operations a value instead of n, for any n.
    off = t % n
    m = j1 - j0
    hr, lr = h[t][j0:j1], lo[t][j0:j1]
    if off == 0:
        if t >= n:
            _suffix_ext(h, lo, t - n, n, j0, j1, sh, sl)
        for j in range(m):
            ph[j] = hr[j]
            pl[j] = lr[j]
    else:
        for j in range(m):
            w, q = hr[j], ph[j]
            ph[j] = w if w > q else q
        for j in range(m):
            w, q = lr[j], pl[j]
            pl[j] = w if w < q else q
    return off + 1


@njit(**_JIT)
def _window_hl(a, w, b, v):
    # A symbol's highest high and lowest low of the window ending at the current row: the
    # block prefix (a, b) against the previous block's suffix (w, v), whose bars are the
    # earlier ones and so win ties.
    return (a if a > w else w), (b if b < v else v)


@njit(**_JIT)
def _ext_buffers(n):
    sh = np.full((n + 1, _BLK), -np.inf)
    sl = np.full((n + 1, _BLK), np.inf)
    return sh, sl, np.empty(_BLK), np.empty(_BLK)


@njit(**_JIT)
def rg_willr(h, lo, cl, n, out):
    # Twin of tm_willr on regular columns; window extremes from _prefix_ext (before row n - 1
    # they are not built yet, and every output there is masked).
    t_len, n_cols = h.shape
    first, last, cnt = _lay(n_cols, t_len)
    sh, sl, ph, pl = _ext_buffers(n)
    lb = n - 1
    for j0 in range(0, n_cols, _BLK):
        j1 = min(j0 + _BLK, n_cols)
        fb, lbk, cb = first[j0:j1], last[j0:j1], cnt[j0:j1]
        for t in range(t_len):
            q = _prefix_ext(h, lo, t, n, j0, j1, sh, sl, ph, pl)
            orow = out[t][j0:j1]
            m = orow.shape[0]
            xh = sh[q]
            xl = sl[q]
            hr = h[t][j0:j1]
            lr = lo[t][j0:j1]
            cr = cl[t][j0:j1]
            for j in range(m):
                cv = cr[j]
                ok = not (np.isnan(hr[j]) | np.isnan(lr[j]) | np.isnan(cv))
                a, b = _window_hl(ph[j], xh[j], pl[j], xl[j])
                r = ((a - cv) / (a - b)) * (-100.0) if (a - b) / (-100.0) != 0.0 else 0.0
                i = _own_bar(fb, lbk, cb, j, t, ok, t_len)
                orow[j] = r if (ok & (i >= lb)) else np.nan
    return first, last, cnt


@njit(**_JIT)
def rg_stoch(h, lo, cl, fk, sk, sd, o_k, o_d):
    # Twin of tm_stoch on regular columns: fast %K from the window extremes (_prefix_ext);
    # slow %K and slow %D are TA_SMA running totals whose departing values come from row
    # rings (row r in slot r % sk / r % sd).
    t_len, n_cols = h.shape
    first, last, cnt = _lay(n_cols, t_len)
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
        fb, lbk, cb = first[j0:j1], last[j0:j1], cnt[j0:j1]
        m = j1 - j0
        for j in range(m):
            kt[j] = 0.0
            dt[j] = 0.0
        for t in range(t_len):
            q = _prefix_ext(h, lo, t, fk, j0, j1, sh, sl, ph, pl)
            ok_r = o_k[t][j0:j1]
            od_r = o_d[t][j0:j1]
            hr = h[t][j0:j1]
            lr = lo[t][j0:j1]
            cr = cl[t][j0:j1]
            for j in range(m):
                g = np.isnan(hr[j]) | np.isnan(lr[j]) | np.isnan(cr[j])
                gap[j] = g
                _own_bar(fb, lbk, cb, j, t, not g, t_len)
            if t < k0:
                for j in range(m):
                    ok_r[j] = np.nan
                    od_r[j] = np.nan
                continue
            xh = sh[q]
            xl = sl[q]
            kw = kr[t % sk]
            kd = kr[(t + 1) % sk]
            dw = dr[t % sd]
            dd = dr[(t + 1) % sd]
            # Five short loops, each writing one or two arrays, so that each vectorizes.
            for j in range(m):
                cv = cr[j]
                a, b = _window_hl(ph[j], xh[j], pl[j], xl[j])
                kw[j] = (0.0 if abs(a - b) <= TA_EPSILON * (abs(a) + abs(b))
                         else (((cv - b) / (a - b)) * 100.0))
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
    return first, last, cnt


@njit(**_JIT)
def rg_mfi(h, lo, cl, vol, n, out):
    # Twin of tm_mfi on regular columns, branch-free: the flows of bar i >= 1 go to a row
    # ring (row r in slot r % n), so the flows leaving the window at bar i > n (bar i - n,
    # row t - n) are read from slot t % n before it is overwritten.
    t_len, n_cols = h.shape
    first, last, cnt = _lay(n_cols, t_len)
    # (Separate arrays: rows unpacked from one 2-D array are typed non-contiguous.)
    prev, ps_a, ns_a = np.zeros(n_cols), np.zeros(n_cols), np.zeros(n_cols)
    null_a = np.zeros(n_cols, np.int64)
    pos, neg = np.zeros((n, n_cols)), np.zeros((n, n_cols))
    for t in range(t_len):
        hr, lr, cr, vr, orow = h[t], lo[t], cl[t], vol[t], out[t]
        rp = pos[t % n]
        rn = neg[t % n]
        for j in range(n_cols):
            hv, lv, cv, vv = hr[j], lr[j], cr[j], vr[j]
            ok = not (np.isnan(hv) | np.isnan(lv) | np.isnan(cv) | np.isnan(vv))
            i = _own_bar(first, last, cnt, j, t, ok, t_len)
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
    return first, last, cnt


@njit(**_JIT)
def rg_bbands(x, n, k, o_up, o_mid, o_lo):
    # Twin of tm_bbands on regular columns: the departing bar is row t - n + 1. The steady
    # step runs branch-free across symbols and flags the columns whose shifted sums must be
    # re-anchored (cancellation, a departing outlier, or 32 n bars); those, rare, are then
    # redone one by one with a fresh two-pass over the window rows.
    t_len, n_cols = x.shape
    first, last, cnt = _lay(n_cols, t_len)
    total, shift, s1, s2 = np.zeros(n_cols), np.zeros(n_cols), np.zeros(n_cols), np.zeros(n_cols)
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
            ok = not np.isnan(v)
            i = _own_bar(first, last, cnt, j, t, ok, t_len)
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
            out = steady & ok
            ou[j] = mid + dev if out else np.nan
            om[j] = mid if out else np.nan
            ol[j] = mid - dev if out else np.nan
        if n_need == 0:
            continue
        a = t - lb
        for j in range(n_cols):
            if not need[j]:
                continue
            sh, t1, t2, var = _var_rebuild(x[:, j], a, t, inv)
            shift[j] = sh
            s1[j] = t1
            s2[j] = t2
            left[j] = 32 * n
            if not np.isnan(xr[j]):
                dev = math.sqrt(var) * k
                mid = om[j]
                ou[j] = mid + dev
                ol[j] = mid - dev
    return first, last, cnt


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
        ar, br, cr, dr = a[t], b[t], c[t], d[t]
        for q in range(k):
            # Branch-free: a gap row writes NaN into the next free slot (overwritten by the
            # next bar; an irregular column's count stays below T - first, so it is in range).
            j = cols[q]
            va, vb, vc, vd = ar[j], br[j], cr[j], dr[j]
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


#: Columns of the panel sampled (in 8 evenly spread blocks) to estimate its irregular share.
_SAMPLE = 64


@njit(**_JIT)
def _sampled_irregular(a, b, c, d, cols):
    # How many of the columns `cols` of a..d (repeat one to use fewer) are irregular.
    t_len = a.shape[0]
    k = cols.shape[0]
    first, last, cnt = _lay(k, t_len)
    for t in range(t_len):
        for q in range(k):
            j = cols[q]
            ok = not (np.isnan(a[t, j]) | np.isnan(b[t, j]) | np.isnan(c[t, j])
                      | np.isnan(d[t, j]))
            _own_bar(first, last, cnt, q, t, ok, t_len)
    bad = 0
    for q in range(k):
        bad += 1 if (cnt[q] > 0) & (cnt[q] != last[q] - first[q] + 1) else 0
    return bad


def irregular_share(ins: tuple) -> float:
    """Estimated share of irregular columns of the panel ``ins`` (1 to 4 ``(T, N)`` inputs).

    A column is irregular when its bars (rows where every input is present) do not fill the
    rows from its first bar to its last one. Exact for ``N <= 64``; above, counted on 64
    columns in 8 evenly spread blocks (~1 ms on the real universe, 752 x 8,349). Only
    :func:`run_regular`'s choice of path depends on it, never a result.
    """
    n_cols = ins[0].shape[1]
    if n_cols <= _SAMPLE:
        cols = np.arange(n_cols)
    else:
        w = _SAMPLE // 8
        starts = np.linspace(0, n_cols - w, 8).astype(np.int64)
        cols = (starts[:, None] + np.arange(w)).ravel()
    if cols.size == 0:
        return 0.0
    pad = tuple(ins) + (ins[0],) * (4 - len(ins))
    return _sampled_irregular(*pad, cols) / cols.size


def run_regular(kernel, ins: tuple, params: tuple, outs: tuple, ring=None,
                ring_above: float = 1.0) -> None:
    """Run a regular-column kernel ``rg_*`` on a whole panel, irregular columns included.

    ``kernel(*ins, *params, *outs)`` runs on the panel (``ins``: 1 to 4 C-contiguous
    ``(T, N) float64`` inputs; ``outs``: preallocated ``(T, N) float64`` outputs, fully
    written) and returns the layout it saw (per column: rows of the first and last bar, the
    number of bars; a bar is a row where every input is present), recorded in the same pass
    (no separate scan of the inputs). The columns whose bars do not fill the rows from their
    first to their last one (a gap in mid-history) are then recomputed: each is compacted to
    its own bars by :func:`gather_own`, which makes it regular, the same kernel runs on that
    ``(T, k)`` panel, and :func:`scatter_own` writes the values back on the bars' rows (NaN
    on gap rows). So every column equals the 1-D twin on its compressed series, bit for bit,
    as the gap policy of :mod:`technic.indicators.cpu` requires.

    The compaction costs a scattered gather and scatter per irregular value (~10-25 ms per
    1,000 columns x 752 rows); when :func:`irregular_share` estimates that more than
    ``ring_above`` (a fraction) of the columns are irregular, ``ring(*ins, *params, *outs)``
    (the ``tm_*`` ring twin, same results, scalar) runs on the whole panel instead.
    Crossovers measured on the real universe (30 % irregular): ~0.1 for SMA, ROC, BBANDS
    and MFI, ~0.5 for STOCH and WILLR, whose ring kernels rescan their windows.

    Raises:
        nothing of its own; the kernel's inputs are assumed validated by the caller.
    """
    if ring is not None and irregular_share(ins) > ring_above:
        ring(*ins, *params, *outs)
        return
    first, last, cnt = kernel(*ins, *params, *outs)
    cols = np.flatnonzero((cnt > 0) & (cnt != last - first + 1))
    if cols.size == 0:
        return
    pad = tuple(ins) + (ins[0],) * (4 - len(ins))
    f = np.ascontiguousarray(first[cols])
    shape = (ins[0].shape[0], cols.size)
    sub_in = tuple(np.full(shape, np.nan) for _ in ins)
    okm = np.empty(shape, np.bool_)
    gather_own(*pad, len(ins), cols, f, okm, *(sub_in + (sub_in[0],) * (4 - len(ins))))
    sub_out = tuple(np.empty(shape) for _ in outs)
    kernel(*sub_in, *params, *sub_out)
    for o, so in zip(outs, sub_out, strict=True):
        scatter_own(okm, cols, f, so, o)
