"""Technical indicator kernels: pure numpy-in, numpy-out functions over time-major panels.

Inputs are ``(T, N) float64`` arrays (row = trading date, column = symbol; a ``(T,)`` array
is one symbol) with NaN where a symbol has no bar. Windows count each symbol's own bars:
gaps are skipped, neither restarting nor poisoning an indicator. The TA-Lib twins reproduce
TA-Lib's C algorithms in the same arithmetic order. See :mod:`technic.indicators.cpu` for
the full gap policy and conventions.
"""

from technic.indicators.cpu import (
    TA_EPSILON,
    adx,
    atr,
    bbands,
    ema,
    lag,
    macd,
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
