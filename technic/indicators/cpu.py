"""CPU indicator kernels (numba), TA-Lib-exact, over time-major panels.

Data layout
    Every kernel takes ``(T, N) float64`` arrays, time-major: row = trading date shared by the
    whole universe, column = symbol. A ``(T,)`` array is accepted too and treated as one
    symbol; the result then has shape ``(T,)`` as well. Outputs have the input's shape, are
    ``float64`` and are NaN where the indicator is undefined. Prices are in quote currency
    (USD) per share, volume in shares.

Gap policy: "bars, not calendar days"
    NaN in an input marks a day on which the symbol has no bar (not yet listed, delisted, or a
    vendor gap in mid-history). Each column is processed over the symbol's OWN bars only:

    * a row where any input the indicator needs is NaN for that column is skipped: the output
      is NaN on that row, and the recursive state or rolling window carries over the gap
      unchanged (a gap neither restarts nor poisons the indicator);
    * windows, lookbacks and lags are therefore counted in the symbol's bars, never in
      calendar or panel rows;
    * consequently, for every column, the values at its non-NaN rows equal the 1-D
      computation applied to the compressed series ``x[~isnan(x)]``. For the TA-Lib twins
      that computation is TA-Lib's own C algorithm replayed in the same arithmetic order
      (same running sums, seeds, divisions and fused multiply-adds), so the results are
      bit-identical to ``talib`` on the compressed series;
    * rows before the indicator's lookback (counted in the symbol's own bars) are NaN.

    Only NaN is a gap; ``±inf`` is treated as a value and propagates as IEEE arithmetic says.

TA-Lib conventions
    Default compatibility mode, unstable period 0, as in the TA-Lib C library 0.8.1 bundled
    with the ``ta-lib`` Python package 0.8.2 (source: https://github.com/TA-Lib/ta-lib,
    ``ta_codegen/input/<function>``). That release changed some arithmetic against the
    classic 0.4/0.6 code, and these kernels follow 0.8.1:

    * EMA and MACD steps are ``fma(x - prev, k, prev)`` (one rounding); ATR's Wilder step is
      ``fma(b, atr, a * tr)`` with ``b = (n-1)/n``, ``a = 1 - b``;
    * RSI scales by a hoisted ``1/n`` and tests ``gain + loss`` exactly against 0 (no
      epsilon band: tiny-priced symbols are not zeroed); PLUS_DI/MINUS_DI/ADX test the TR sum
      exactly, and ADX keeps ``TA_IS_ZERO`` (``|v| < TA_EPSILON = 1e-14``; 1e-8 in old
      releases) only on the dimensionless DI sum;
    * BBANDS uses a cancellation-free shifted-sum variance with periodic re-anchoring
      (TA-Lib issues #117, #118, #243) instead of ``E[x²] - mean²`` on raw prices.

Implementation
    The standard kernels (SMA, EMA, RSI, MACD, BBANDS, ATR, ADX, OBV, ROC, and STOCH, WILLR,
    CCI, MFI in :mod:`~technic.indicators.extra`) are time-major (:mod:`._tm`): the outer
    loop walks the rows, the inner loop the symbols (contiguous in a C-ordered panel), each
    symbol with its own state vector and small rings of its last ``n`` bars, in the same
    arithmetic order as the 1-D kernels below, which remain the specification (and serve
    the other indicators): each column is gathered into a contiguous scratch buffer of its
    own bars, the 1-D kernel runs on it, and the result is scattered back (NaN on gap rows).
    Inputs are made C-contiguous first. The kernels are serial (``nogil=True``: callers may
    run them from several threads; the pipeline runs one Dask worker process per core) and
    compiled once per machine (``cache=True``).
"""

from __future__ import annotations

import math
import operator

import numpy as np
from numba import njit
from numpy.typing import ArrayLike, NDArray

from technic.indicators import _rg, _tm
from technic.indicators._common import _JIT, TA_EPSILON
from technic.indicators._steps import CPU as _S

__all__ = [
    "TA_EPSILON",
    "adx",
    "atr",
    "bbands",
    "ema",
    "lag",
    "macd",
    "minus_di",
    "obv",
    "plus_di",
    "realized_vol",
    "roc",
    "rolling_max",
    "rolling_mean",
    "rolling_min",
    "rsi",
    "sma",
]

F64 = NDArray[np.float64]

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


# ---------------------------------------------------------------------------------------------
# Validation helpers.
# ---------------------------------------------------------------------------------------------


def _as_panel(x: ArrayLike, name: str) -> tuple[np.ndarray, bool]:
    """``x`` as a 2-D float64 array (a view when possible) and whether it was 1-D."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        return np.ascontiguousarray(a).reshape(-1, 1), True
    if a.ndim == 2:
        return np.ascontiguousarray(a), False
    raise ValueError(f"{name} must be a (T,) or (T, N) array, got shape {a.shape}")


def _as_panels(names: tuple[str, ...], *xs: ArrayLike) -> tuple[list[np.ndarray], bool]:
    arrays = [np.asarray(x, dtype=np.float64) for x in xs]
    shapes = [a.shape for a in arrays]
    if any(s != shapes[0] for s in shapes[1:]):
        got = ", ".join(f"{nm} {s}" for nm, s in zip(names, shapes, strict=True))
        raise ValueError(f"{', '.join(names)} must have the same shape; got {got}")
    out, one_d = [], False
    for nm, a in zip(names, arrays, strict=True):
        p, one_d = _as_panel(a, nm)
        out.append(p)
    return out, one_d


def _period(n: int, name: str = "n", minimum: int = 1) -> int:
    try:
        v = operator.index(n)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {type(n).__name__}") from None
    if v < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {v}")
    return v


def _shape_back(out: np.ndarray, one_d: bool) -> F64:
    return out.reshape(-1) if one_d else out


def _run1(x: ArrayLike, name: str, kind: int, n: int, fparam: float = 0.0) -> F64:
    a, one_d = _as_panel(x, name)
    out = np.empty(a.shape, dtype=np.float64)
    if kind == _K_SMA:
        _rg.run_regular(_rg.rg_sma, (a,), (n,), (out,), _tm.tm_sma, 0.1)
    elif kind == _K_EMA:
        _tm.tm_ema(a, n, out)
    elif kind == _K_RSI:
        _tm.tm_rsi(a, n, out)
    elif kind == _K_ROC:
        _tm.tm_roc(a, n, out)
    else:
        _panel1(a, kind, n, fparam, out)
    return _shape_back(out, one_d)


def _run_hlc(high: ArrayLike, low: ArrayLike, close: ArrayLike, kind: int, n: int) -> F64:
    (h, lo, c), one_d = _as_panels(("high", "low", "close"), high, low, close)
    out = np.empty(h.shape, dtype=np.float64)
    if kind == _K_ATR:
        _tm.tm_atr(h, lo, c, n, out)
    elif kind == _K_ADX:
        _tm.tm_adx(h, lo, c, n, TA_EPSILON, out)  # branch-free and gap-aware: no layout split
    else:
        _panel_hlc(h, lo, c, kind, n, TA_EPSILON, out)
    return _shape_back(out, one_d)


# ---------------------------------------------------------------------------------------------
# Public API.
# ---------------------------------------------------------------------------------------------


def sma(x: ArrayLike, n: int) -> F64:
    """Simple moving average over the last ``n`` bars.

    Convention and source: TA-Lib ``TA_SMA`` (running total: add the new bar, output
    total / n, subtract the trailing bar).

    Args:
        x: ``(T, N) float64``, time-major (or ``(T,)``), any unit (price in quote currency,
            volume in shares, ...). NaN = no bar.
        n: window in the symbol's own bars, ``>= 1``.

    Returns:
        Same shape as ``x``, ``float64``, same unit as ``x``. Lookback ``n - 1`` bars.
        Gap policy (module docstring): NaN on rows where ``x`` is NaN and during the first
        ``n - 1`` bars of each symbol; gaps are skipped, not counted.

    Raises:
        ValueError: ``n < 1`` or ``x`` is not 1-D or 2-D.
        TypeError: ``n`` is not an integer.
    """
    return _run1(x, "x", _K_SMA, _period(n))


def rolling_mean(x: ArrayLike, n: int) -> F64:
    """Mean of the last ``n`` bars: an alias of :func:`sma` (same algorithm, same result).

    Args:
        x: ``(T, N) float64``, time-major (or ``(T,)``), any unit. NaN = no bar.
        n: window in the symbol's own bars, ``>= 1``.

    Returns:
        Same shape as ``x``, ``float64``, unit of ``x``. Lookback ``n - 1``. Gap policy as in
        the module docstring.

    Raises:
        ValueError: ``n < 1`` or ``x`` is not 1-D or 2-D.
        TypeError: ``n`` is not an integer.
    """
    return sma(x, n)


def ema(x: ArrayLike, n: int) -> F64:
    """Exponential moving average, ``k = 2 / (n + 1)``, seeded with an SMA.

    Convention and source: TA-Lib ``TA_EMA``, default compatibility: the first value (bar
    ``n - 1``) is the SMA of the first ``n`` bars, then ``prev = (x - prev) * k + prev``,
    evaluated as ``fma(x - prev, k, prev)`` like TA-Lib 0.8.1. ``n = 1`` returns ``x``.

    Args:
        x: ``(T, N) float64``, time-major (or ``(T,)``), any unit (usually close price in
            quote currency). NaN = no bar.
        n: period in the symbol's own bars, ``>= 1``.

    Returns:
        Same shape as ``x``, ``float64``, unit of ``x``. Lookback ``n - 1`` bars. Gap policy
        as in the module docstring (the recursion carries over gaps unchanged).

    Raises:
        ValueError: ``n < 1`` or ``x`` is not 1-D or 2-D.
        TypeError: ``n`` is not an integer.
    """
    return _run1(x, "x", _K_EMA, _period(n))


def rsi(close: ArrayLike, n: int = 14) -> F64:
    """Relative Strength Index, Wilder smoothing, 0–100.

    Convention and source: Wilder, *New Concepts in Technical Trading Systems*, 1978; TA-Lib
    ``TA_RSI`` conventions (default compatibility, TA-Lib 0.8.1 arithmetic): average gain /
    loss seeded with the simple mean of the first ``n`` changes, then
    ``avg = (avg * (n - 1) + x) / n`` computed as ``avg *= n - 1; avg += x; avg *= 1/n``;
    ``RSI = 100 * gain / (gain + loss)``, and 0 where ``gain + loss`` is exactly 0 (a window
    of unchanged closes; TA-Lib before 0.8 used ``|gain + loss| < 1e-8``).

    Args:
        close: ``(T, N) float64`` close prices in quote currency, time-major (or ``(T,)``).
            NaN = no bar.
        n: period in the symbol's own bars, ``>= 1`` (TA-Lib accepts ``>= 2``; ``n = 1``
            gives 100 on an up bar, 0 otherwise).

    Returns:
        Same shape as ``close``, ``float64``, 0–100. Lookback ``n`` bars. Gap policy as in
        the module docstring (the change across a gap is from the previous bar's close).

    Raises:
        ValueError: ``n < 1`` or ``close`` is not 1-D or 2-D.
        TypeError: ``n`` is not an integer.
    """
    return _run1(close, "close", _K_RSI, _period(n))


def macd(
    close: ArrayLike, fast: int = 12, slow: int = 26, signal: int = 9
) -> tuple[F64, F64, F64]:
    """Moving Average Convergence/Divergence: ``(macd, signal, hist)``.

    Convention and source: Appel (1979); TA-Lib ``TA_MACD``, default compatibility. The fast
    and slow EMAs both start at bar ``slow - 1``: the slow EMA is seeded with the SMA of the
    first ``slow`` bars, the fast EMA with the SMA of the ``fast`` bars ENDING at bar
    ``slow - 1`` (a TA-Lib quirk: not the first ``fast`` bars). ``macd = EMA_fast -
    EMA_slow``; ``signal`` is a TA-Lib EMA of the macd line (seeded with the SMA of its first
    ``signal`` values); ``hist = macd - signal``. Every EMA step is
    ``fma(x - prev, k, prev)`` as in TA-Lib 0.8.1.

    Args:
        close: ``(T, N) float64`` close prices in quote currency, time-major (or ``(T,)``).
            NaN = no bar.
        fast, slow, signal: periods in the symbol's own bars, each ``>= 1`` (TA-Lib
            accepts ``fast, slow >= 2``), ``fast <= slow`` (TA-Lib silently swaps them; this
            raises instead).

    Returns:
        Three arrays of ``close``'s shape, ``float64``, in quote currency. All three start at
        bar ``slow + signal - 2`` (33 for the defaults); earlier bars and gap rows are NaN.

    Raises:
        ValueError: a period ``< 1``, ``fast > slow``, or ``close`` is not 1-D or 2-D.
        TypeError: a period is not an integer.
    """
    f = _period(fast, "fast")
    s = _period(slow, "slow")
    g = _period(signal, "signal")
    if f > s:
        raise ValueError(f"fast ({f}) must not exceed slow ({s})")
    a, one_d = _as_panel(close, "close")
    outs = [np.empty(a.shape, dtype=np.float64) for _ in range(3)]
    _tm.tm_macd(a, f, s, g, *outs)
    m, sig, hist = (_shape_back(o, one_d) for o in outs)
    return m, sig, hist


def bbands(close: ArrayLike, n: int = 20, k: float = 2.0) -> tuple[F64, F64, F64]:
    """Bollinger Bands: ``(upper, middle, lower)``.

    Convention and source: Bollinger (1980s); TA-Lib ``TA_BBANDS`` with ``MAType = SMA`` and
    ``nbdevup = nbdevdn = k``. ``middle`` = :func:`sma`; ``std`` is the POPULATION standard
    deviation over the window, computed as TA-Lib 0.8.1 does: running sums of deviations
    from a shift (re-anchored at the window mean by a fresh two-pass when cancellation,
    a departing outlier or 32 n bars call for it; a re-anchored variance below 1e-12 of the
    mean squared deviation is 0), which stays accurate for prices far from 1 (e.g. > 1e6);
    ``upper/lower = middle ± k * std``.

    Args:
        close: ``(T, N) float64`` close prices in quote currency, time-major (or ``(T,)``).
            NaN = no bar.
        n: window in the symbol's own bars, ``>= 1`` (TA-Lib accepts ``>= 2``).
        k: band width in standard deviations, finite.

    Returns:
        Three arrays of ``close``'s shape, ``float64``, quote currency. Lookback ``n - 1``
        bars. Gap policy as in the module docstring.

    Raises:
        ValueError: ``n < 1``, ``k`` not finite, or ``close`` is not 1-D or 2-D.
        TypeError: ``n`` is not an integer.
    """
    n = _period(n)
    kf = float(k)
    if not math.isfinite(kf):
        raise ValueError(f"k must be finite, got {k}")
    a, one_d = _as_panel(close, "close")
    outs = [np.empty(a.shape, dtype=np.float64) for _ in range(3)]
    _rg.run_regular(_rg.rg_bbands, (a,), (n, kf), tuple(outs), _tm.tm_bbands, 0.1)
    up, mid, lo = (_shape_back(o, one_d) for o in outs)
    return up, mid, lo


def atr(high: ArrayLike, low: ArrayLike, close: ArrayLike, n: int = 14) -> F64:
    """Average True Range, Wilder smoothing.

    Convention and source: Wilder, *New Concepts in Technical Trading Systems*, 1978; TA-Lib
    ``TA_ATR``: true range = max(high - low, |prev close - high|, |prev close - low|), first
    defined at bar 1; seed = SMA of the first ``n`` true ranges (output at bar ``n``), then
    ``atr = (atr * (n - 1) + tr) / n``, evaluated as TA-Lib 0.8.1 does:
    ``fma(b, atr, a * tr)`` with ``b = (n - 1) / n``, ``a = 1 - b``.

    Args:
        high, low, close: ``(T, N) float64`` prices in quote currency, time-major (or
            ``(T,)``), same shape. A row is a bar only where all three are non-NaN.
        n: period in the symbol's own bars, ``>= 1`` (``n = 1`` is TA-Lib's TRANGE).

    Returns:
        Same shape as the inputs, ``float64``, quote currency. Lookback ``n`` bars. Gap
        policy as in the module docstring (the previous close is the previous bar's).

    Raises:
        ValueError: ``n < 1``, shapes differ, or an input is not 1-D or 2-D.
        TypeError: ``n`` is not an integer.
    """
    return _run_hlc(high, low, close, _K_ATR, _period(n))


def adx(high: ArrayLike, low: ArrayLike, close: ArrayLike, n: int = 14) -> F64:
    """Average Directional Movement Index, 0–100.

    Convention and source: Wilder, *New Concepts in Technical Trading Systems*, 1978; TA-Lib
    ``TA_ADX``: +DM = up-move when it exceeds the down-move and is > 0 (-DM symmetric);
    +DM, -DM and TR are summed over the first ``n - 1`` changes, then smoothed with Wilder
    sums ``s = s - s / n + x``; ``DX = 100 * |-DI - +DI| / (-DI + +DI)`` (a bar whose TR sum
    is 0, or whose DI sum is within ``TA_EPSILON`` of 0, adds no DX); the first ADX is the
    mean of the first ``n`` DX, then ``adx = (adx * (n - 1) + dx) / n``. No rounding (as
    TA-Lib).

    Args:
        high, low, close: ``(T, N) float64`` prices in quote currency, time-major (or
            ``(T,)``), same shape. A row is a bar only where all three are non-NaN.
        n: period in the symbol's own bars, ``>= 1`` (TA-Lib accepts ``>= 2``).

    Returns:
        Same shape as the inputs, ``float64``, 0–100. Lookback ``2 n - 1`` bars (27 for
        ``n = 14``). Gap policy as in the module docstring.

    Raises:
        ValueError: ``n < 1``, shapes differ, or an input is not 1-D or 2-D.
        TypeError: ``n`` is not an integer.
    """
    return _run_hlc(high, low, close, _K_ADX, _period(n))


def plus_di(high: ArrayLike, low: ArrayLike, close: ArrayLike, n: int = 14) -> F64:
    """Plus Directional Indicator (+DI), 0–100.

    Convention and source: Wilder, 1978; TA-Lib ``TA_PLUS_DI``: ``100 * +DM_n / TR_n`` with
    the Wilder sums of :func:`adx` (0 where ``TR_n`` is 0).

    Args:
        high, low, close: ``(T, N) float64`` prices in quote currency, time-major (or
            ``(T,)``), same shape. A row is a bar only where all three are non-NaN.
        n: period in the symbol's own bars, ``>= 1``. For ``n = 1`` TA-Lib returns the raw
            ratio ``+DM / TR`` (not scaled by 100); this function returns ``100 * +DM / TR``.

    Returns:
        Same shape as the inputs, ``float64``, 0–100. Lookback ``n`` bars. Gap policy as in
        the module docstring.

    Raises:
        ValueError: ``n < 1``, shapes differ, or an input is not 1-D or 2-D.
        TypeError: ``n`` is not an integer.
    """
    return _run_hlc(high, low, close, _K_PDI, _period(n))


def minus_di(high: ArrayLike, low: ArrayLike, close: ArrayLike, n: int = 14) -> F64:
    """Minus Directional Indicator (-DI), 0–100.

    Convention and source: Wilder, 1978; TA-Lib ``TA_MINUS_DI``: ``100 * -DM_n / TR_n`` with
    the Wilder sums of :func:`adx` (0 where ``TR_n`` is 0).

    Args:
        high, low, close: ``(T, N) float64`` prices in quote currency, time-major (or
            ``(T,)``), same shape. A row is a bar only where all three are non-NaN.
        n: period in the symbol's own bars, ``>= 1``. For ``n = 1`` TA-Lib returns the raw
            ratio ``-DM / TR`` (not scaled by 100); this function returns ``100 * -DM / TR``.

    Returns:
        Same shape as the inputs, ``float64``, 0–100. Lookback ``n`` bars. Gap policy as in
        the module docstring.

    Raises:
        ValueError: ``n < 1``, shapes differ, or an input is not 1-D or 2-D.
        TypeError: ``n`` is not an integer.
    """
    return _run_hlc(high, low, close, _K_MDI, _period(n))


def obv(close: ArrayLike, volume: ArrayLike) -> F64:
    """On-Balance Volume.

    Convention and source: Granville, 1963; TA-Lib ``TA_OBV``: starts at the volume of the
    symbol's first bar, then adds the bar's volume on an up close, subtracts it on a down
    close, and is unchanged on an equal close. The level depends on where the series starts
    (use differences over a window, not the level).

    Args:
        close: ``(T, N) float64`` close prices in quote currency, time-major (or ``(T,)``).
        volume: same shape, shares. A row is a bar only where both are non-NaN.

    Returns:
        Same shape as the inputs, ``float64``, shares. Lookback 0. Gap policy as in the
        module docstring (the comparison across a gap is with the previous bar's close).

    Raises:
        ValueError: shapes differ, or an input is not 1-D or 2-D.
    """
    (c, v), one_d = _as_panels(("close", "volume"), close, volume)
    out = np.empty(c.shape, dtype=np.float64)
    _tm.tm_obv(c, v, out)
    return _shape_back(out, one_d)


def roc(close: ArrayLike, n: int = 10) -> F64:
    """Rate of change in percent: ``(x / x[n bars ago] - 1) * 100``.

    Convention and source: TA-Lib ``TA_ROC`` (0 where the old value is 0).

    Args:
        close: ``(T, N) float64`` prices in quote currency, time-major (or ``(T,)``).
            NaN = no bar.
        n: distance in the symbol's own bars, ``>= 1``.

    Returns:
        Same shape as ``close``, ``float64``, percent. Lookback ``n`` bars. Gap policy as in
        the module docstring.

    Raises:
        ValueError: ``n < 1`` or ``close`` is not 1-D or 2-D.
        TypeError: ``n`` is not an integer.
    """
    return _run1(close, "close", _K_ROC, _period(n))


def lag(x: ArrayLike, k: int) -> F64:
    """The value ``k`` bars ago in the symbol's own bar sequence.

    Convention: a shift over the compressed (gap-free) series, not over panel rows: on a row
    after a gap, ``lag(x, 1)`` is the symbol's previous bar, however many days ago.

    Args:
        x: ``(T, N) float64``, time-major (or ``(T,)``), any unit. NaN = no bar.
        k: bars back, ``>= 0`` (``0`` returns a copy with the same NaN).

    Returns:
        Same shape as ``x``, ``float64``, unit of ``x``. NaN until the symbol has ``k + 1``
        bars and on rows where ``x`` is NaN (lookback ``k``).

    Raises:
        ValueError: ``k < 0`` or ``x`` is not 1-D or 2-D.
        TypeError: ``k`` is not an integer.
    """
    return _run1(x, "x", _K_LAG, _period(k, "k", minimum=0))


def rolling_max(x: ArrayLike, n: int) -> F64:
    """Highest value of the last ``n`` bars (the current bar included).

    Convention: same values as TA-Lib ``TA_MAX`` / pandas ``rolling(n).max()`` on the
    compressed series; monotonic-deque algorithm, ``O(T)`` per column.

    Args:
        x: ``(T, N) float64``, time-major (or ``(T,)``), any unit (e.g. high in quote
            currency). NaN = no bar.
        n: window in the symbol's own bars, ``>= 1``.

    Returns:
        Same shape as ``x``, ``float64``, unit of ``x``. Lookback ``n - 1`` bars. Gap policy
        as in the module docstring.

    Raises:
        ValueError: ``n < 1`` or ``x`` is not 1-D or 2-D.
        TypeError: ``n`` is not an integer.
    """
    return _run1(x, "x", _K_MAX, _period(n))


def rolling_min(x: ArrayLike, n: int) -> F64:
    """Lowest value of the last ``n`` bars (the current bar included).

    Convention: same values as TA-Lib ``TA_MIN`` / pandas ``rolling(n).min()`` on the
    compressed series; monotonic-deque algorithm, ``O(T)`` per column.

    Args:
        x: ``(T, N) float64``, time-major (or ``(T,)``), any unit (e.g. low in quote
            currency). NaN = no bar.
        n: window in the symbol's own bars, ``>= 1``.

    Returns:
        Same shape as ``x``, ``float64``, unit of ``x``. Lookback ``n - 1`` bars. Gap policy
        as in the module docstring.

    Raises:
        ValueError: ``n < 1`` or ``x`` is not 1-D or 2-D.
        TypeError: ``n`` is not an integer.
    """
    return _run1(x, "x", _K_MIN, _period(n))


def realized_vol(close: ArrayLike, n: int = 20, periods_per_year: float = 252) -> F64:
    """Annualized realized volatility of log returns.

    Convention: sample standard deviation (``ddof = 1``) of the last ``n`` log returns
    ``log(close_t / close_{t-1})`` over consecutive bars of the symbol, times
    ``sqrt(periods_per_year)`` (close-to-close estimator; no TA-Lib twin). The rolling
    variance uses TA-Lib 0.8.1's cancellation-free shifted-sum algorithm (see
    :func:`bbands`), within ~1e-10 relative of a two-pass computation, and exactly 0 on a
    window of zero returns (unchanged closes).

    Args:
        close: ``(T, N) float64`` close prices in quote currency (> 0), time-major (or
            ``(T,)``). NaN = no bar. A non-positive price gives NaN/inf returns, which make
            the windows holding them NaN (and can persist until the next re-anchor).
        n: number of returns, ``>= 2`` (the sample std needs two).
        periods_per_year: bars per year used to annualize (252 for daily bars), ``> 0``.

    Returns:
        Same shape as ``close``, ``float64``, annualized fraction (0.25 = 25 %/year).
        Lookback ``n`` bars (``n`` returns need ``n + 1`` closes). Gap policy as in the
        module docstring (the return across a gap is from the previous bar's close).

    Raises:
        ValueError: ``n < 2``, ``periods_per_year <= 0`` or not finite, or ``close`` is not
            1-D or 2-D.
        TypeError: ``n`` is not an integer.
    """
    n = _period(n, minimum=2)
    ppy = float(periods_per_year)
    if not (math.isfinite(ppy) and ppy > 0):
        raise ValueError(f"periods_per_year must be finite and > 0, got {periods_per_year}")
    return _run1(close, "close", _K_RVOL, n, math.sqrt(ppy))
