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
from numpy.typing import ArrayLike, NDArray

from technic.indicators import _rg, _tm
from technic.indicators._common import TA_EPSILON
from technic.indicators._doc import doc
from technic.indicators._oned import (
    _K_ADX,
    _K_ATR,
    _K_EMA,
    _K_LAG,
    _K_MAX,
    _K_MDI,
    _K_MIN,
    _K_PDI,
    _K_ROC,
    _K_RSI,
    _K_RVOL,
    _K_SMA,
    _panel1,
    _panel_hlc,
)

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
        _rg.run_regular(_rg.rg_roc, (a,), (n,), (out,), _tm.tm_roc, 0.1)
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


_DI = """<<Name>> Directional Indicator (<<s>>DI), 0–100.

    Convention and source: Wilder, 1978; TA-Lib ``TA_<<NAME>>_DI``: ``100 * <<s>>DM_n / TR_n``
    with the Wilder sums of :func:`adx` (0 where ``TR_n`` is 0).

    Args:
        high, low, close: ``(T, N) float64`` prices in quote currency, time-major (or
            ``(T,)``), same shape. A row is a bar only where all three are non-NaN.
        n: period in the symbol's own bars, ``>= 1``. For ``n = 1`` TA-Lib returns the raw
            ratio ``<<s>>DM / TR`` (not scaled by 100); this function returns
            ``100 * <<s>>DM / TR``.

    Returns:
        Same shape as the inputs, ``float64``, 0–100. Lookback ``n`` bars. Gap policy as in
        the module docstring.

    <<panels_raises>>
    """


@doc(_DI, Name="Plus", NAME="PLUS", s="+")
def plus_di(high: ArrayLike, low: ArrayLike, close: ArrayLike, n: int = 14) -> F64:  # _DI
    return _run_hlc(high, low, close, _K_PDI, _period(n))


@doc(_DI, Name="Minus", NAME="MINUS", s="-")
def minus_di(high: ArrayLike, low: ArrayLike, close: ArrayLike, n: int = 14) -> F64:  # _DI
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


_EXTREME = """<<what>> value of the last ``n`` bars (the current bar included).

    Convention: same values as TA-Lib ``TA_<<ta>>`` / pandas ``rolling(n).<<ta_lower>>()`` on the
    compressed series; monotonic-deque algorithm, ``O(T)`` per column.

    Args:
        x: ``(T, N) float64``, time-major (or ``(T,)``), any unit (e.g. <<field>> in quote
            currency). NaN = no bar.
        n: window in the symbol's own bars, ``>= 1``.

    Returns:
        Same shape as ``x``, ``float64``, unit of ``x``. Lookback ``n - 1`` bars. Gap policy
        as in the module docstring.

    <<x_raises>>
    """


@doc(_EXTREME, what="Highest", ta="MAX", ta_lower="max", field="high")
def rolling_max(x: ArrayLike, n: int) -> F64:  # _EXTREME
    return _run1(x, "x", _K_MAX, _period(n))


@doc(_EXTREME, what="Lowest", ta="MIN", ta_lower="min", field="low")
def rolling_min(x: ArrayLike, n: int) -> F64:  # _EXTREME
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
