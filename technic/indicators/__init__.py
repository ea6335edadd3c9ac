"""Technical indicator kernels: pure numpy-in, numpy-out functions over time-major panels.

Inputs are ``(T, N) float64`` arrays (row = trading date, column = symbol; a ``(T,)`` array
is one symbol) with NaN where a symbol has no bar. Windows count each symbol's own bars:
gaps are skipped, neither restarting nor poisoning an indicator. The TA-Lib twins reproduce
TA-Lib's C algorithms in the same arithmetic order. See :mod:`technic.indicators.cpu` for
the full gap policy and conventions.

The public API: the functions of :mod:`~technic.indicators.cpu` and
:mod:`~technic.indicators.extra` (TA-Lib twins) and :mod:`~technic.indicators.helpers`
(indicators without a TA-Lib twin), re-exported here; the docstrings are on the functions that
run. Layers underneath:

* :mod:`._steps` — each indicator's per-bar state step (SMA, BBANDS, EMA, RSI, MACD, ROC,
  ATR, ADX, OBV, STOCH, WILLR, MFI), written once and compiled for the CPU and, by
  :mod:`._cuda`, for CUDA;
* :mod:`._drivers` — one spec per stepped indicator, from which its time-major
  (``_tm.tm_*``), 1-D (``_oned._*_1d``) and CUDA (``_cuda._k_*``) drivers are generated:
  each driver loop is written once per target;
* :mod:`._tm` — time-major panel kernels: the generated, gap-aware ``tm_*`` and CCI; the
  ``rg_*`` windowed fast path for regular columns (:mod:`._rg`, van Herk window extremes),
  run through :func:`technic.indicators._rg.run_regular`;
* the 1-D kernels of :mod:`._oned` / :mod:`._oned_extra` — one symbol's own bars (the
  last-row path of :mod:`.lastrow` and the indicators without a time-major kernel);
* :mod:`.gpu` — numba.cuda twins (kernels in :mod:`._cuda`), one generated per indicator.

Adding an indicator: its per-bar step in :mod:`._steps` (listed in ``STEPS``, written
branch-free where it can be, with ``mul``/``fma`` where TA-Lib multiplies or fuses); its
:class:`._drivers.Spec` in ``_drivers.SPECS`` and one line each in :mod:`._tm`,
:mod:`._cuda` and :mod:`._oned` binding the generated drivers, plus an entry in
``gpu._TWINS`` and, if a feature uses it, an opcode in
:data:`technic.indicators.lastrow.OPS`; the public function with its docstring in
:mod:`.cpu`, :mod:`.extra` or :mod:`.helpers`, re-exported here; a TA-Lib parity test on
real data in tests/unit/test_indicators.py and a case in tests/integration/test_gpu.py.
"""

from __future__ import annotations

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
from technic.indicators.extra import (
    aroon,
    cci,
    dema,
    linreg_slope,
    mfi,
    mom,
    natr,
    stoch,
    stochrsi,
    tema,
    willr,
    wma,
)
from technic.indicators.helpers import (
    cmf,
    dist_from_high,
    donchian,
    gap_pct,
    keltner,
    linreg_r2,
    linreg_r2_rows,
    rel_volume,
    rolling_vwap,
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
