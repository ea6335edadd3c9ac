"""Technical indicator kernels: pure numpy-in, numpy-out functions over time-major panels.

Inputs are ``(T, N) float64`` arrays (row = trading date, column = symbol; a ``(T,)`` array
is one symbol) with NaN where a symbol has no bar. Windows count each symbol's own bars:
gaps are skipped, neither restarting nor poisoning an indicator. The TA-Lib twins reproduce
TA-Lib's C algorithms in the same arithmetic order. See :mod:`technic.indicators.cpu` for
the full gap policy and conventions.

Dispatch: the public functions of :mod:`~technic.indicators.cpu` and
:mod:`~technic.indicators.extra` are re-exported here, except MACD, BBANDS and MFI, which
are defined below with the same contract and docstring: they run the branch-free,
time-major ``rg_*`` kernel of :mod:`technic.indicators._tm` on the whole panel (vectorized
across symbols) and recompute only the irregular columns (a gap inside the history) with the
matching ``tm_*`` ring kernel. Results are bit-identical to the per-column twins.
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
    adx,
    atr,
    ema,
    lag,
    minus_di,
    obv,
    plus_di,
    realized_vol,
    roc,
    rolling_max,
    rolling_mean,
    rolling_min,
    rsi,
    sma,
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
    linreg_slope,
    mom,
    natr,
    rel_volume,
    rolling_vwap,
    stoch,
    stochrsi,
    tema,
    willr,
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


@functools.wraps(_cpu.macd)
def macd(
    close: ArrayLike, fast: int = 12, slow: int = 26, signal: int = 9
) -> tuple[F64, F64, F64]:
    # Contract and docstring: cpu.macd (same validation). Kernels: _tm.rg_macd, then
    # _tm.tm_macd on the irregular columns.
    f = _cpu._period(fast, "fast")
    s = _cpu._period(slow, "slow")
    g = _cpu._period(signal, "signal")
    if f > s:
        raise ValueError(f"fast ({f}) must not exceed slow ({s})")
    a, one_d = _cpu._as_panel(close, "close")
    outs = tuple(np.empty(a.shape, dtype=np.float64) for _ in range(3))
    first, bad = _tm.layout(a, a, a, a)
    _tm.rg_macd(a, f, s, g, first, *outs)
    _cpu._irregular(bad, (a,), outs, _tm.tm_macd, f, s, g)
    m, sig, hist = (_cpu._shape_back(o, one_d) for o in outs)
    return m, sig, hist


@functools.wraps(_cpu.bbands)
def bbands(close: ArrayLike, n: int = 20, k: float = 2.0) -> tuple[F64, F64, F64]:
    # Contract and docstring: cpu.bbands (same validation). Kernels: _tm.rg_bbands, then
    # _tm.tm_bbands on the irregular columns.
    n = _cpu._period(n)
    kf = float(k)
    if not math.isfinite(kf):
        raise ValueError(f"k must be finite, got {k}")
    a, one_d = _cpu._as_panel(close, "close")
    outs = tuple(np.empty(a.shape, dtype=np.float64) for _ in range(3))
    first, bad = _tm.layout(a, a, a, a)
    _tm.rg_bbands(a, n, kf, first, *outs)
    _cpu._irregular(bad, (a,), outs, _tm.tm_bbands, n, kf)
    up, mid, lo = (_cpu._shape_back(o, one_d) for o in outs)
    return up, mid, lo


@functools.wraps(_extra.mfi)
def mfi(high: ArrayLike, low: ArrayLike, close: ArrayLike, volume: ArrayLike,
        n: int = 14) -> F64:
    # Contract and docstring: extra.mfi (same validation). Kernels: _tm.rg_mfi, then
    # _tm.tm_mfi on the irregular columns.
    n = _cpu._period(n)
    (h, lo, c, v), one_d = _cpu._as_panels(("high", "low", "close", "volume"),
                                            high, low, close, volume)
    out = np.empty(h.shape, dtype=np.float64)
    first, bad = _tm.layout(h, lo, c, v)
    _tm.rg_mfi(h, lo, c, v, n, first, out)
    _cpu._irregular(bad, (h, lo, c, v), (out,), _tm.tm_mfi, n)
    return _cpu._shape_back(out, one_d)
