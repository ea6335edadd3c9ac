"""Technical indicator kernels: pure numpy-in, numpy-out functions over time-major panels.

Inputs are ``(T, N) float64`` arrays (row = trading date, column = symbol; a ``(T,)`` array
is one symbol) with NaN where a symbol has no bar. Windows count each symbol's own bars:
gaps are skipped, neither restarting nor poisoning an indicator. The TA-Lib twins reproduce
TA-Lib's C algorithms in the same arithmetic order. See :mod:`technic.indicators.cpu` for
the full gap policy and conventions.

Dispatch: the public functions of :mod:`~technic.indicators.cpu` and
:mod:`~technic.indicators.extra` are re-exported here, except SMA (and its alias
``rolling_mean``), MACD, BBANDS, ADX, STOCH, WILLR and MFI, which are defined below with
the same contract, validation and docstring. MACD and ADX (like EMA, RSI and ATR, which
``cpu`` already sends there) run the branch-free, gap-aware ``tm_*`` kernel of
:mod:`technic.indicators._tm` on the whole panel. The windowed ones run the branch-free
``rg_*`` kernel on the regular columns and handle the columns with a gap inside their
history per :func:`technic.indicators._tm.run_regular` (compacted to their own bars, or the
``tm_*`` ring twin on the whole panel when too many columns have gaps). Everything is
vectorized across symbols, and bit-identical to the per-column twins.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numpy.typing import ArrayLike

from technic.indicators import _tm
from technic.indicators import cpu as _cpu
from technic.indicators import extra as _extra
from technic.indicators.cpu import (
    TA_EPSILON,
    atr,
    ema,
    lag,
    minus_di,
    obv,
    plus_di,
    realized_vol,
    roc,
    rolling_max,
    rolling_min,
    rsi,
)
from technic.indicators.extra import (
    aroon,
    cci,
    cmf,
    dema,
    dist_from_high,
    donchian,
    gap_pct,
    keltner,
    linreg_r2,
    linreg_r2_rows,
    linreg_slope,
    mom,
    natr,
    rel_volume,
    rolling_vwap,
    stochrsi,
    tema,
    wma,
)

__all__ = [
    "TA_EPSILON",
    "adx",
    "aroon",
    "atr",
    "bbands",
    "cci",
    "cmf",
    "dema",
    "dist_from_high",
    "donchian",
    "ema",
    "gap_pct",
    "keltner",
    "lag",
    "linreg_r2",
    "linreg_r2_rows",
    "linreg_slope",
    "macd",
    "mfi",
    "minus_di",
    "mom",
    "natr",
    "obv",
    "plus_di",
    "realized_vol",
    "rel_volume",
    "roc",
    "rolling_max",
    "rolling_mean",
    "rolling_min",
    "rolling_vwap",
    "rsi",
    "sma",
    "stoch",
    "stochrsi",
    "tema",
    "willr",
    "wma",
]


F64 = _cpu.F64
_HLC = ("high", "low", "close")


#: kernel -> (ring twin, fraction of irregular columns above which the ring twin runs on the
#: whole panel instead of compacting them; see _tm.run_regular).
_RING = {
    _tm.rg_sma: (_tm.tm_sma, 0.1),
    _tm.rg_bbands: (_tm.tm_bbands, 0.1),
    _tm.rg_mfi: (_tm.tm_mfi, 0.1),
    _tm.rg_stoch: (_tm.tm_stoch, 0.5),
    _tm.rg_willr: (_tm.tm_willr, 0.5),
}


def _one(x: ArrayLike, name: str, n_out: int, kernel, *params) -> tuple[F64, ...]:
    a, one_d = _cpu._as_panel(x, name)
    outs = tuple(np.empty(a.shape, dtype=np.float64) for _ in range(n_out))
    _tm.run_regular(kernel, (a,), params, outs, *_RING[kernel])
    return tuple(_cpu._shape_back(o, one_d) for o in outs)


def _many(names: tuple[str, ...], xs: tuple, n_out: int, kernel, *params) -> tuple[F64, ...]:
    arrays, one_d = _cpu._as_panels(names, *xs)
    outs = tuple(np.empty(arrays[0].shape, dtype=np.float64) for _ in range(n_out))
    _tm.run_regular(kernel, tuple(arrays), params, outs, *_RING[kernel])
    return tuple(_cpu._shape_back(o, one_d) for o in outs)


# Each wrapper below: contract, validation and docstring of its namesake in cpu / extra;
# kernel _tm.rg_<name> through _tm.run_regular, or _tm.tm_<name> where it says so.


@functools.wraps(_cpu.sma)
def sma(x: ArrayLike, n: int) -> F64:
    return _one(x, "x", 1, _tm.rg_sma, _cpu._period(n))[0]


@functools.wraps(_cpu.rolling_mean)
def rolling_mean(x: ArrayLike, n: int) -> F64:
    return sma(x, n)


@functools.wraps(_cpu.macd)
def macd(
    close: ArrayLike, fast: int = 12, slow: int = 26, signal: int = 9
) -> tuple[F64, F64, F64]:
    f = _cpu._period(fast, "fast")
    s = _cpu._period(slow, "slow")
    g = _cpu._period(signal, "signal")
    if f > s:
        raise ValueError(f"fast ({f}) must not exceed slow ({s})")
    a, one_d = _cpu._as_panel(close, "close")
    outs = tuple(np.empty(a.shape, dtype=np.float64) for _ in range(3))
    _tm.tm_macd(a, f, s, g, *outs)  # branch-free and gap-aware: no layout split needed
    m, sig, hist = (_cpu._shape_back(o, one_d) for o in outs)
    return m, sig, hist


@functools.wraps(_cpu.bbands)
def bbands(close: ArrayLike, n: int = 20, k: float = 2.0) -> tuple[F64, F64, F64]:
    n = _cpu._period(n)
    kf = float(k)
    if not math.isfinite(kf):
        raise ValueError(f"k must be finite, got {k}")
    up, mid, lo = _one(close, "close", 3, _tm.rg_bbands, n, kf)
    return up, mid, lo


@functools.wraps(_cpu.adx)
def adx(high: ArrayLike, low: ArrayLike, close: ArrayLike, n: int = 14) -> F64:
    n = _cpu._period(n)
    (h, lo, c), one_d = _cpu._as_panels(_HLC, high, low, close)
    out = np.empty(h.shape, dtype=np.float64)
    _tm.tm_adx(h, lo, c, n, TA_EPSILON, out)  # branch-free and gap-aware: no layout split
    return _cpu._shape_back(out, one_d)


@functools.wraps(_extra.stoch)
def stoch(high: ArrayLike, low: ArrayLike, close: ArrayLike, fastk: int = 14, slowk: int = 3,
          slowd: int = 3) -> tuple[F64, F64]:
    p = (_cpu._period(fastk, "fastk"), _cpu._period(slowk, "slowk"),
         _cpu._period(slowd, "slowd"))
    k, d = _many(_HLC, (high, low, close), 2, _tm.rg_stoch, *p)
    return k, d


@functools.wraps(_extra.willr)
def willr(high: ArrayLike, low: ArrayLike, close: ArrayLike, n: int = 14) -> F64:
    return _many(_HLC, (high, low, close), 1, _tm.rg_willr, _cpu._period(n))[0]


@functools.wraps(_extra.mfi)
def mfi(high: ArrayLike, low: ArrayLike, close: ArrayLike, volume: ArrayLike,
        n: int = 14) -> F64:
    return _many(_HLC + ("volume",), (high, low, close, volume), 1, _tm.rg_mfi,
                 _cpu._period(n))[0]
