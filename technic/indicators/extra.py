"""More CPU indicator kernels (numba) over time-major panels: TA-Lib twins.

Same data layout, gap policy and validation as :mod:`technic.indicators.cpu` ("bars, not
calendar days": each column is processed over the symbol's own bars; a row where any needed
input is NaN is NaN in every output and the state carries across it unchanged; lookbacks
count the symbol's bars). The TA-Lib twins replay TA-Lib C 0.8.1 (bundled with the ``ta-lib``
Python package 0.8.2) in the same arithmetic order, so they are bit-identical to ``talib`` on
each column's compressed series. TA-Lib 0.8.1 conventions that differ from the classic
0.4/0.6 code and are followed here (verified against ``talib`` 0.8.2):

* DEMA/TEMA: each EMA step is ``fma(x - prev, k, prev)`` (as TA_EMA); each EMA stage is
  seeded with the SMA of the previous stage's first ``n`` values;
* NATR: ATR's two-coefficient Wilder step ``fma(b, atr, a * tr)``; the close is tested
  exactly against 0 (no ``TA_IS_ZERO`` band);
* WMA: running sums re-anchored (rebuilt from the window) every ``8 n`` bars;
* LINEARREG_SLOPE: O(1) sliding sums, re-anchored every ``32 n`` bars and on the bar whose
  departing weighted value exceeds ``100 *`` the window's sum of ``|y|``;
* STOCH / STOCHRSI: ``fastK = ((c - LL) / (HH - LL)) * 100``, 0 when ``|HH - LL| <=
  1e-14 * (|HH| + |LL|)`` (scale-aware zero test); WILLR: ``((HH - c) / (HH - LL)) * -100``,
  0 when ``HH == LL``;
* CCI: 0 when ``|tp - mean| <= 1e-14 (|tp| + |mean|)`` (scale-aware) or the deviation sum
  is exactly 0 -- not the fixed ``TA_IS_ZERO`` band on both terms of the older source, which
  returns -66.67 on a flat window whose mean carries a few ulps of rounding; the window sums
  run over TA-Lib's circular buffer in slot order (not chronological);
* MFI: a bar's flow is "no movement" when ``|tp - tp_prev| <= 1e-14 * (|tp| + |tp_prev|)``
  (ties, including near-ties, count in neither sum; a move with zero volume adds 0); after
  ``n`` consecutive empty bars both running sums are reset to exactly 0; MFI is 0 when the
  sum of flows is ``<= 0`` (no longer the old ``< 1.0`` rule), and the positive sum is
  clamped into ``[0, total]``;
* AROON: ties pick the most recent extreme.

The indicators without a TA-Lib twin (LINREG_R2, CMF, VWAP, channels, ...) are in
:mod:`technic.indicators.helpers`, run by this module's panel driver.

Implementation: as in :mod:`~technic.indicators.cpu`, each column's own bars are gathered
into contiguous scratch, a 1-D kernel runs on them, and the result is scattered back. Scratch
is ``O(T)`` per call; outputs are allocated once. Serial, ``nogil``, ``cache=True``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from technic.indicators import _rg, _tm
from technic.indicators._doc import doc
from technic.indicators._oned_extra import (
    _AROON,
    _CCI,
    _DEMA,
    _LINREG,
    _MFI,
    _MOM,
    _NATR,
    _STOCH,
    _STOCHRSI,
    _TEMA,
    _WILLR,
    _WMA,
    PANELS,
)
from technic.indicators.cpu import (
    F64,
    _as_panel,
    _as_panels,
    _period,
    _shape_back,
)

__all__ = [
    "aroon",
    "cci",
    "dema",
    "linreg_slope",
    "mfi",
    "mom",
    "natr",
    "stoch",
    "stochrsi",
    "tema",
    "willr",
    "wma",
]

def _run(names: tuple[str, ...], inputs: tuple, kind: int, n_out: int, params: tuple[int, ...],
         fparam: float = 0.0):
    if len(names) == 1:
        a, one_d = _as_panel(inputs[0], names[0])
        arrays = [a]
    else:
        arrays, one_d = _as_panels(names, *inputs)
    outs = np.empty((n_out, *arrays[0].shape), dtype=np.float64)
    if kind == _STOCH:
        _rg.run_regular(_rg.rg_stoch, tuple(arrays), params, (outs[0], outs[1]), _tm.tm_stoch,
                        0.5)
    elif kind == _WILLR:
        _rg.run_regular(_rg.rg_willr, tuple(arrays), params, (outs[0],), _tm.tm_willr, 0.5)
    elif kind == _CCI:
        _tm.tm_cci(*arrays, params[0], outs[0])
    elif kind == _MFI:
        _rg.run_regular(_rg.rg_mfi, tuple(arrays), params, (outs[0],), _tm.tm_mfi, 0.1)
    else:
        p = np.array(params + (0,) * (3 - len(params)), dtype=np.int64)
        PANELS[kind](tuple(arrays), p, float(fparam), outs)
    res = tuple(_shape_back(outs[q], one_d) for q in range(n_out))
    return res[0] if n_out == 1 else res


_HLC = ("high", "low", "close")

#: The end of the DEMA / TEMA docstrings (k: the number of chained EMAs).
_EMA_CHAIN = """<<x_period>>

    Returns:
        Same shape as ``x``, ``float64``, unit of ``x``. Lookback ``<<k>> (n - 1)`` bars. Gap
        policy as in :mod:`technic.indicators.cpu`.

    <<x_raises>>"""
_HLCV = ("high", "low", "close", "volume")


# ---------------------------------------------------------------------------------------------
# Public API: TA-Lib twins.
# ---------------------------------------------------------------------------------------------


def wma(x: ArrayLike, n: int) -> F64:
    """Weighted moving average (weights 1..n, newest heaviest).

    Convention and source: TA-Lib ``TA_WMA`` 0.8.1: ``sum(w_i x_i) / (n (n + 1) / 2)`` kept
    as two running sums (``periodSum``, ``periodSub``), rebuilt from the window every
    ``8 n`` bars (TA-Lib issue #255). ``n = 1`` returns ``x``.

    Args:
        x: ``(T, N) float64``, time-major (or ``(T,)``), any unit. NaN = no bar.
        n: window in the symbol's own bars, ``>= 1``.

    Returns:
        Same shape as ``x``, ``float64``, unit of ``x``. Lookback ``n - 1`` bars. Gap policy
        as in :mod:`technic.indicators.cpu` (gap rows NaN, state carried across gaps).

    Raises:
        ValueError: ``n < 1`` or ``x`` is not 1-D or 2-D.
        TypeError: ``n`` is not an integer.
    """
    return _run(("x",), (x,), _WMA, 1, (_period(n),))


@doc(ema_chain=_EMA_CHAIN, k="2")
def dema(x: ArrayLike, n: int) -> F64:
    """Double exponential moving average, ``2 EMA - EMA(EMA)`` (Mulloy, 1994).

    Convention and source: TA-Lib ``TA_DEMA``, default compatibility, 0.8.1 arithmetic:
    ``EMA1 = EMA(x, n)``, ``EMA2 = EMA(EMA1, n)`` (each seeded with the SMA of its input's
    first ``n`` values, steps ``fma(x - prev, k, prev)``, ``k = 2 / (n + 1)``); result
    ``(2 * EMA1) - EMA2``. ``n = 1`` returns ``x``.

    <<ema_chain>>
    """
    return _run(("x",), (x,), _DEMA, 1, (_period(n),))


@doc(ema_chain=_EMA_CHAIN, k="3")
def tema(x: ArrayLike, n: int) -> F64:
    """Triple exponential moving average, ``3 EMA1 - 3 EMA2 + EMA3`` (Mulloy, 1994).

    Convention and source: TA-Lib ``TA_TEMA``, default compatibility, 0.8.1 arithmetic: three
    chained TA-Lib EMAs (see :func:`dema`), combined as ``EMA3 + ((3 * EMA1) - (3 * EMA2))``.
    ``n = 1`` returns ``x``.

    <<ema_chain>>
    """
    return _run(("x",), (x,), _TEMA, 1, (_period(n),))


def natr(high: ArrayLike, low: ArrayLike, close: ArrayLike, n: int = 14) -> F64:
    """Normalized Average True Range: ``ATR(n) / close * 100`` (percent).

    Convention and source: Forman, TASC May 2006; TA-Lib ``TA_NATR`` 0.8.1: the ATR of
    :func:`~technic.indicators.atr` (SMA seed, ``fma(b, atr, a * tr)`` Wilder step) divided
    by the bar's own close, times 100; 0 where the close is exactly 0.

    Args:
        high, low, close: ``(T, N) float64`` prices in quote currency, time-major (or
            ``(T,)``), same shape. A row is a bar only where all three are non-NaN.
        n: period in the symbol's own bars, ``>= 2`` (TA-Lib's ``n = 1`` returns the raw,
            un-normalized true range; refused here).

    Returns:
        Same shape as the inputs, ``float64``, percent of the close. Lookback ``n`` bars. Gap
        policy as in :mod:`technic.indicators.cpu`.

    Raises:
        ValueError: ``n < 2``, shapes differ, or an input is not 1-D or 2-D.
        TypeError: ``n`` is not an integer.
    """
    return _run(_HLC, (high, low, close), _NATR, 1, (_period(n, minimum=2),))


def stoch(high: ArrayLike, low: ArrayLike, close: ArrayLike, fastk: int = 14, slowk: int = 3,
          slowd: int = 3) -> tuple[F64, F64]:
    """Slow stochastic oscillator: ``(slowk, slowd)``, 0–100.

    Convention and source: Lane (1950s); TA-Lib ``TA_STOCH`` with SMA smoothing (matype 0),
    0.8.1 arithmetic: ``fastK = ((close - LL) / (HH - LL)) * 100`` over the last ``fastk``
    bars (``HH`` highest high, ``LL`` lowest low), 0 when ``|HH - LL| <= 1e-14 (|HH| +
    |LL|)``; ``slowK = SMA(fastK, slowk)``, ``slowD = SMA(slowK, slowd)`` (TA_SMA running
    sums). Both outputs start at the same bar, as in TA-Lib.

    Args:
        high, low, close: ``(T, N) float64`` prices in quote currency, time-major (or
            ``(T,)``), same shape. A row is a bar only where all three are non-NaN.
        fastk, slowk, slowd: periods in the symbol's own bars, each ``>= 1``.

    Returns:
        ``(slowk, slowd)``, each of the inputs' shape, ``float64``, 0–100. Lookback
        ``fastk + slowk + slowd - 3`` bars (17 for the defaults). Gap policy as in
        :mod:`technic.indicators.cpu`.

    Raises:
        ValueError: a period ``< 1``, shapes differ, or an input is not 1-D or 2-D.
        TypeError: a period is not an integer.
    """
    p = (_period(fastk, "fastk"), _period(slowk, "slowk"), _period(slowd, "slowd"))
    return _run(_HLC, (high, low, close), _STOCH, 2, p)


def stochrsi(close: ArrayLike, n: int = 14, fastk: int = 5, fastd: int = 3) -> tuple[F64, F64]:
    """Stochastic RSI: ``(fastk, fastd)``, 0–100.

    Convention and source: Chande and Kroll, TASC V.11:5; TA-Lib ``TA_STOCHRSI`` with SMA
    smoothing (matype 0): the RSI of :func:`~technic.indicators.rsi` (``n``), then TA-Lib's
    fast stochastic of that RSI series over ``fastk`` bars (high = low = close = RSI; see
    :func:`stoch` for the zero rule), ``fastD = SMA(fastK, fastd)``. Both outputs start at
    the same bar.

    Args:
        close: ``(T, N) float64`` close prices in quote currency, time-major (or ``(T,)``).
            NaN = no bar.
        n: RSI period, ``>= 1``; fastk, fastd: periods, ``>= 1``; all in the symbol's bars.

    Returns:
        ``(fastk, fastd)``, each of ``close``'s shape, ``float64``, 0–100. Lookback
        ``n + fastk + fastd - 2`` bars (20 for the defaults). Gap policy as in
        :mod:`technic.indicators.cpu`.

    Raises:
        ValueError: a period ``< 1`` or ``close`` is not 1-D or 2-D.
        TypeError: a period is not an integer.
    """
    p = (_period(n), _period(fastk, "fastk"), _period(fastd, "fastd"))
    return _run(("close",), (close,), _STOCHRSI, 2, p)


def willr(high: ArrayLike, low: ArrayLike, close: ArrayLike, n: int = 14) -> F64:
    """Williams %R, -100–0.

    Convention and source: Williams (1973); TA-Lib ``TA_WILLR`` 0.8.1:
    ``((HH - close) / (HH - LL)) * -100`` over the last ``n`` bars, 0 when ``HH == LL``.

    Args:
        high, low, close: ``(T, N) float64`` prices in quote currency, time-major (or
            ``(T,)``), same shape. A row is a bar only where all three are non-NaN.
        n: window in the symbol's own bars, ``>= 1``.

    Returns:
        Same shape as the inputs, ``float64``, -100–0. Lookback ``n - 1`` bars. Gap policy as
        in :mod:`technic.indicators.cpu`.

    Raises:
        ValueError: ``n < 1``, shapes differ, or an input is not 1-D or 2-D.
        TypeError: ``n`` is not an integer.
    """
    return _run(_HLC, (high, low, close), _WILLR, 1, (_period(n),))


def cci(high: ArrayLike, low: ArrayLike, close: ArrayLike, n: int = 20) -> F64:
    """Commodity Channel Index.

    Convention and source: Lambert (1980); TA-Lib ``TA_CCI``: typical price ``tp = (h + l +
    c) / 3``; ``CCI = (tp - mean) / (0.015 * mean_abs_dev)`` over the last ``n`` typical
    prices; 0 when ``|tp - mean| <= 1e-14 (|tp| + |mean|)`` or the deviation sum is 0.
    Sums follow TA-Lib's circular-buffer slot order (bit-identical).

    Args:
        high, low, close: ``(T, N) float64`` prices in quote currency, time-major (or
            ``(T,)``), same shape. A row is a bar only where all three are non-NaN.
        n: window in the symbol's own bars, ``>= 1`` (TA-Lib accepts ``>= 2``).

    Returns:
        Same shape as the inputs, ``float64``, dimensionless (typically -300–300). Lookback
        ``n - 1`` bars. Gap policy as in :mod:`technic.indicators.cpu`.

    Raises:
        ValueError: ``n < 1``, shapes differ, or an input is not 1-D or 2-D.
        TypeError: ``n`` is not an integer.
    """
    return _run(_HLC, (high, low, close), _CCI, 1, (_period(n),))


@doc()
def mfi(high: ArrayLike, low: ArrayLike, close: ArrayLike, volume: ArrayLike,
        n: int = 14) -> F64:
    """Money Flow Index, 0–100.

    Convention and source: Quong and Soudack; TA-Lib ``TA_MFI`` 0.8.1 (issues #107, #244):
    raw flow ``tp * volume`` with ``tp = (h + l + c) / 3``, positive when ``tp`` rose,
    negative when it fell; a "tie" (``|tp - tp_prev| <= 1e-14 (|tp| + |tp_prev|)``) adds to
    neither sum. Running sums over the last ``n`` flows (reset to exactly 0 after ``n``
    empty bars); ``MFI = 100 * pos / (pos + neg)`` with ``pos`` clamped into ``[0, total]``,
    and 0 when ``pos + neg <= 0`` (TA-Lib before 0.8 used ``< 1.0``).

    Args:
        <<hlcv>>
        n: period in the symbol's own bars, ``>= 1``.

    Returns:
        Same shape as the inputs, ``float64``, 0–100. Lookback ``n`` bars. Gap policy as in
        :mod:`technic.indicators.cpu` (the change across a gap is from the previous bar).

    Raises:
        ValueError: ``n < 1``, shapes differ, or an input is not 1-D or 2-D.
        TypeError: ``n`` is not an integer.
    """
    return _run(_HLCV, (high, low, close, volume), _MFI, 1, (_period(n),))


def aroon(high: ArrayLike, low: ArrayLike, n: int = 14) -> tuple[F64, F64]:
    """Aroon: ``(down, up)``, 0–100.

    Convention and source: Chande (1995); TA-Lib ``TA_AROON``: over a window of ``n + 1``
    bars, ``up = (100 / n) * (n - bars since the highest high)``, ``down`` likewise with the
    lowest low; on ties the most recent extreme counts.

    Args:
        high, low: ``(T, N) float64`` prices in quote currency, time-major (or ``(T,)``),
            same shape. A row is a bar only where both are non-NaN.
        n: period in the symbol's own bars, ``>= 1``.

    Returns:
        ``(down, up)``, each of the inputs' shape, ``float64``, 0–100. Lookback ``n`` bars.
        Gap policy as in :mod:`technic.indicators.cpu`.

    Raises:
        ValueError: ``n < 1``, shapes differ, or an input is not 1-D or 2-D.
        TypeError: ``n`` is not an integer.
    """
    return _run(("high", "low"), (high, low), _AROON, 2, (_period(n),))


def mom(x: ArrayLike, n: int = 10) -> F64:
    """Momentum: ``x - x[n bars ago]``.

    Convention and source: TA-Lib ``TA_MOM``.

    Args:
        x: ``(T, N) float64``, time-major (or ``(T,)``), any unit. NaN = no bar.
        n: distance in the symbol's own bars, ``>= 1``.

    Returns:
        Same shape as ``x``, ``float64``, unit of ``x``. Lookback ``n`` bars. Gap policy as
        in :mod:`technic.indicators.cpu`.

    Raises:
        ValueError: ``n < 1`` or ``x`` is not 1-D or 2-D.
        TypeError: ``n`` is not an integer.
    """
    return _run(("x",), (x,), _MOM, 1, (_period(n),))


def linreg_slope(x: ArrayLike, n: int = 14) -> F64:
    """Slope of the least-squares line through the last ``n`` bars (unit of ``x`` per bar).

    Convention and source: TA-Lib ``TA_LINEARREG_SLOPE`` 0.8.1 (issues #103, #254):
    ``m = (n SumXY - SumX SumY) / (SumX^2 - n SumXSqr)`` with ``x`` = bars ago, kept as O(1)
    sliding sums, rebuilt from the window every ``32 n`` bars and when the departing value's
    weight exceeds 100 times the window's ``sum |y|``.

    Args:
        x: ``(T, N) float64``, time-major (or ``(T,)``), any unit. NaN = no bar.
        n: window in the symbol's own bars, ``>= 2``.

    Returns:
        Same shape as ``x``, ``float64``, unit of ``x`` per bar. Lookback ``n - 1`` bars. Gap
        policy as in :mod:`technic.indicators.cpu` (a gap is not a step on the x axis).

    Raises:
        ValueError: ``n < 2`` or ``x`` is not 1-D or 2-D.
        TypeError: ``n`` is not an integer.
    """
    return _run(("x",), (x,), _LINREG, 1, (_period(n, minimum=2),))
