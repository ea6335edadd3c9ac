"""CPU indicators without a TA-Lib twin (numba) over time-major panels.

LINREG_R2, CMF, rolling VWAP, Donchian and Keltner channels, gap, relative volume and the
distance from the rolling high. Same data layout, gap policy and validation as
:mod:`technic.indicators.cpu`; run by the panel driver of :mod:`technic.indicators.extra`
(each column's own bars gathered, a 1-D kernel of :mod:`._oned_extra`, scattered back).

LINREG_R2 (no TA-Lib function; conceptually ``CORREL(close, bar index, n) ** 2``) recomputes
each window in one pass over values shifted by the window's first value, so that every
result depends on its own ``n`` bars only (the panel, the last-row kernel of
:mod:`~technic.indicators.lastrow` and the GPU twin give the same bits).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from technic.indicators._doc import doc
from technic.indicators._oned_extra import (
    _CMF,
    _DISTHIGH,
    _DONCHIAN,
    _GAP,
    _KELTNER,
    _LINREG_R2,
    _RELVOL,
    _VWAP,
    _linreg_r2_rows,
)
from technic.indicators.cpu import F64, _period
from technic.indicators.extra import _HLC, _HLCV, _run

__all__ = [
    "cmf",
    "dist_from_high",
    "donchian",
    "gap_pct",
    "keltner",
    "linreg_r2",
    "linreg_r2_rows",
    "rel_volume",
    "rolling_vwap",
]


def linreg_r2(close: ArrayLike, n: int) -> F64:
    """R² of the least-squares line through the last ``n`` closes against the bar index.

    Convention and source: the coefficient of determination of the ordinary least-squares
    fit ``close ≈ a + b k`` over the window's bars ``k = 0..n-1`` (a gap is not a step on
    the ``k`` axis), which for a simple regression is the squared Pearson correlation of
    close and ``k`` (Draper & Smith, *Applied Regression Analysis*, 3rd ed., §1.3):

    ``R² = Sxy² / (Sxx Syy)``, ``Sxy = Σ (k − k̄)(y_k − ȳ)``, ``Syy = Σ (y_k − ȳ)²``,
    ``Sxx = Σ (k − k̄)² = n (n² − 1) / 12``

    -- conceptually TA-Lib ``CORREL(close, index, n) ** 2``. Each window is computed on its
    own, in one pass over ``d_k = y_k − y_0`` (``y_0`` = the window's first close) in ``k``
    order: ``Syy = Σd² − (Σd)² / n``, ``Sxy = Σ k d − k̄ Σd``; no running sums across
    windows, so no drift, and the value depends only on the window's ``n`` bars. A result
    that rounds above 1 is clamped to 1. Zero variance: when the window's ``n`` closes are
    all equal every ``d_k`` is 0, so ``Syy`` is exactly 0 and the ratio is 0/0: the result
    is NaN (no trend and nothing to explain; TA-Lib's CORREL would return 0 there). NaN also
    wherever the computed ``Syy`` is not positive. R² says how straight the path was, not
    its direction: a steady decline scores as high as a steady rise.

    Args:
        close: ``(T, N) float64`` close prices in quote currency (any unit: R² is scale- and
            shift-invariant), time-major (or ``(T,)``). NaN = no bar.
        n: window in the symbol's own bars, ``>= 2``.

    Returns:
        Same shape as ``close``, ``float64``, fraction in ``[0, 1]`` (1 = every close on the
        line). Lookback ``n - 1`` bars. NaN on gap rows, during the warm-up, on constant
        windows, and where the window holds ``±inf``. Gap policy as in
        :mod:`technic.indicators.cpu`. Cost ``O(T N n)``.

    Raises:
        ValueError: ``n < 2`` or ``close`` is not 1-D or 2-D.
        TypeError: ``n`` is not an integer.
    """
    return _run(("close",), (close,), _LINREG_R2, 1, (_period(n, minimum=2),))


def linreg_r2_rows(close: ArrayLike, rows: Sequence[int], n: int) -> F64:
    """:func:`linreg_r2` at the given rows only (NaN elsewhere): a refresh that keeps one
    date's row needs one window per symbol, not ``T``.

    Args:
        close: ``(T, N) float64`` close prices, time-major, NaN = no bar.
        rows: panel row indices to compute (``0 <= row < T``).
        n: window in the symbol's own bars, ``>= 2``.

    Returns:
        ``(T, N) float64``: at each requested row exactly the value :func:`linreg_r2` gives
        there (same arithmetic), NaN on every other row.

    Raises:
        ValueError: ``n < 2``, ``close`` is not 2-D, or a row is out of range.
        TypeError: ``n`` is not an integer.
    """
    n = _period(n, minimum=2)
    x = np.ascontiguousarray(close, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError("close must be a (T, N) array")
    idx = np.asarray(list(rows), dtype=np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= x.shape[0]):
        raise ValueError("a row is outside the panel")
    out = np.full(x.shape, np.nan)
    _linreg_r2_rows(x, idx, n, out)
    return out


@doc()
def cmf(high: ArrayLike, low: ArrayLike, close: ArrayLike, volume: ArrayLike,
        n: int = 20) -> F64:
    """Chaikin Money Flow, -1–1.

    Convention and source: Chaikin; ``sum(MFV) / sum(volume)`` over the last ``n`` bars,
    ``MFV = ((c - l) - (h - c)) / (h - l) * v`` and 0 when ``h == l``. Both window sums are
    recomputed for every bar (no running-sum drift). No TA-Lib twin.

    Args:
        <<hlcv>>
        n: window in the symbol's own bars, ``>= 1``.

    Returns:
        Same shape as the inputs, ``float64``, fraction in -1–1 (NaN where the window's
        volume sums to 0). Lookback ``n - 1`` bars. Gap policy as in
        :mod:`technic.indicators.cpu`.

    Raises:
        ValueError: ``n < 1``, shapes differ, or an input is not 1-D or 2-D.
        TypeError: ``n`` is not an integer.
    """
    return _run(_HLCV, (high, low, close, volume), _CMF, 1, (_period(n),))


@doc()
def rolling_vwap(high: ArrayLike, low: ArrayLike, close: ArrayLike, volume: ArrayLike,
                 n: int = 20) -> F64:
    """Rolling volume-weighted average price of the last ``n`` bars.

    Convention: ``sum(typical * volume) / sum(volume)``, ``typical = (h + l + c) / 3``, both
    sums recomputed for every bar. No TA-Lib twin.

    Args:
        <<hlcv>>
        n: window in the symbol's own bars, ``>= 1``.

    Returns:
        Same shape as the inputs, ``float64``, quote currency (NaN where the window's volume
        sums to 0). Lookback ``n - 1`` bars. Gap policy as in :mod:`technic.indicators.cpu`.

    Raises:
        ValueError: ``n < 1``, shapes differ, or an input is not 1-D or 2-D.
        TypeError: ``n`` is not an integer.
    """
    return _run(_HLCV, (high, low, close, volume), _VWAP, 1, (_period(n),))


def donchian(high: ArrayLike, low: ArrayLike, n: int = 20) -> tuple[F64, F64, F64]:
    """Donchian channel: ``(upper, middle, lower)``.

    Convention: ``upper`` = highest high and ``lower`` = lowest low of the last ``n`` bars
    (current bar included, as :func:`~technic.indicators.rolling_max` / ``rolling_min``),
    ``middle = (upper + lower) / 2``. No TA-Lib twin.

    Args:
        high, low: ``(T, N) float64`` prices in quote currency, time-major (or ``(T,)``),
            same shape. A row is a bar only where both are non-NaN.
        n: window in the symbol's own bars, ``>= 1``.

    Returns:
        Three arrays of the inputs' shape, ``float64``, quote currency. Lookback ``n - 1``
        bars. Gap policy as in :mod:`technic.indicators.cpu`.

    Raises:
        ValueError: ``n < 1``, shapes differ, or an input is not 1-D or 2-D.
        TypeError: ``n`` is not an integer.
    """
    return _run(("high", "low"), (high, low), _DONCHIAN, 3, (_period(n),))


def keltner(high: ArrayLike, low: ArrayLike, close: ArrayLike, n: int = 20, atr_n: int = 10,
            k: float = 2.0) -> tuple[F64, F64, F64]:
    """Keltner channel: ``(upper, middle, lower)``.

    Convention: ``middle = EMA(close, n)`` and ``ATR(atr_n)`` exactly as
    :func:`~technic.indicators.ema` and :func:`~technic.indicators.atr` (TA-Lib seeding: the
    EMA is seeded with the SMA of the first ``n`` closes, the ATR with the SMA of the first
    ``atr_n`` true ranges, then Wilder smoothing); ``upper/lower = middle ± k * ATR``
    (Raschke's EMA/ATR form). No TA-Lib twin.

    Args:
        high, low, close: ``(T, N) float64`` prices in quote currency, time-major (or
            ``(T,)``), same shape. A row is a bar only where all three are non-NaN.
        n: EMA period, ``>= 1``; atr_n: ATR period, ``>= 1``; both in the symbol's bars.
        k: band width in ATRs, finite.

    Returns:
        Three arrays of the inputs' shape, ``float64``, quote currency. Lookback
        ``max(n - 1, atr_n)`` bars (all three start together). Gap policy as in
        :mod:`technic.indicators.cpu`.

    Raises:
        ValueError: a period ``< 1``, ``k`` not finite, shapes differ, or an input is not
            1-D or 2-D.
        TypeError: a period is not an integer.
    """
    kf = float(k)
    if not math.isfinite(kf):
        raise ValueError(f"k must be finite, got {k}")
    p = (_period(n), _period(atr_n, "atr_n"))
    return _run(_HLC, (high, low, close), _KELTNER, 3, p, kf)


def gap_pct(open: ArrayLike, close: ArrayLike) -> F64:
    """Opening gap in percent: ``100 * (open / previous bar's close - 1)``.

    Args:
        open, close: ``(T, N) float64`` prices in quote currency, time-major (or ``(T,)``),
            same shape. A row is a bar only where both are non-NaN.

    Returns:
        Same shape as the inputs, ``float64``, percent. Lookback 1 bar. Gap policy as in
        :mod:`technic.indicators.cpu`: the previous close is the symbol's previous bar's,
        however many days ago.

    Raises:
        ValueError: shapes differ, or an input is not 1-D or 2-D.
    """
    return _run(("open", "close"), (open, close), _GAP, 1, ())


def rel_volume(volume: ArrayLike, n: int = 20) -> F64:
    """Relative volume: the bar's volume / mean volume of the previous ``n`` bars.

    Convention: the current bar is excluded from the mean (same as
    ``volume / lag(sma(volume, n), 1)``); the window sum is recomputed per bar. IEEE
    division: a zero mean gives inf (NaN for 0 / 0).

    Args:
        volume: ``(T, N) float64`` shares, time-major (or ``(T,)``). NaN = no bar.
        n: number of previous bars, ``>= 1``.

    Returns:
        Same shape as ``volume``, ``float64``, ratio (1 = average). Lookback ``n`` bars. Gap
        policy as in :mod:`technic.indicators.cpu`.

    Raises:
        ValueError: ``n < 1`` or ``volume`` is not 1-D or 2-D.
        TypeError: ``n`` is not an integer.
    """
    return _run(("volume",), (volume,), _RELVOL, 1, (_period(n),))


def dist_from_high(close: ArrayLike, high: ArrayLike, n: int = 252) -> F64:
    """Distance from the rolling high: ``close / max(high over the last n bars) - 1``.

    Convention: the window includes the current bar (so the value is ``<= 0`` when
    ``close <= high``); ``-0.2`` means 20 % below the high.

    Args:
        close, high: ``(T, N) float64`` prices in quote currency, time-major (or ``(T,)``),
            same shape. A row is a bar only where both are non-NaN.
        n: window in the symbol's own bars, ``>= 1`` (252 ≈ 52 weeks of daily bars).

    Returns:
        Same shape as the inputs, ``float64``, fraction. Lookback ``n - 1`` bars. Gap policy
        as in :mod:`technic.indicators.cpu`.

    Raises:
        ValueError: ``n < 1``, shapes differ, or an input is not 1-D or 2-D.
        TypeError: ``n`` is not an integer.
    """
    return _run(("close", "high"), (close, high), _DISTHIGH, 1, (_period(n),))
