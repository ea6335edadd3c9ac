"""Plans generated from the feature registry: what to compute, on which driver.

* :func:`panel_series` — the full-panel CPU plan: every :data:`~technic.features.registry.SERIES`
  as ``(T, N)`` arrays from the public functions of :mod:`technic.indicators` (each indicator
  call once, however many of its outputs and lags are used).
* :func:`device_series` — the GPU plan: the same calls to their numba.cuda twins in
  :mod:`technic.indicators.gpu`, results left on the device.
* :func:`last_row_plan` — the last-row (incremental) plan for
  :func:`technic.indicators.lastrow.last_row_values`.

All three read the registry only, so a new feature needs no edit here unless its indicator is
new (then: its name in :data:`technic.indicators.lastrow.OPS`, its 1-D step there, and its
GPU twin).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np

from technic.features.registry import SERIES, Series
from technic.indicators import lastrow

#: Indicators computed only at requested rows on the CPU when the caller needs few rows
#: (an ``O(n)`` window per value): indicator -> function ``(x, rows, *params)``.
_ROWS_ONLY = {"linreg_r2": "linreg_r2_rows"}
#: Indicators the last-row plan computes at the last bar only (no lagged value).
_LAST_BAR_ONLY = {"linreg_r2", "rolling_max", "rolling_min"}


def _calls() -> dict[tuple[str, tuple[str, ...], tuple[float, ...]], list[tuple[str, Series]]]:
    calls: dict[tuple[str, tuple[str, ...], tuple[float, ...]], list[tuple[str, Series]]] = {}
    for name, s in SERIES.items():
        calls.setdefault(s.call, []).append((name, s))
    return calls


def _run_plan(inputs: dict[str, Any], mod: Any, rows: Sequence[int] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for (ind, names, params), wanted in _calls().items():
        xs = [inputs[n] for n in names]
        if ind == "bar":
            res: Any = (xs[0],)
        elif rows is not None and ind in _ROWS_ONLY:
            res = (getattr(mod, _ROWS_ONLY[ind])(*xs, rows, *params),)
        else:
            res = getattr(mod, ind)(*xs, *params)
            if not isinstance(res, tuple):
                res = (res,)
        for name, s in wanted:
            v = res[s.output]
            out[name] = v if s.lag == 0 else mod.lag(v, s.lag)
    return out


def panel_series(p: Any, rows: Sequence[int] | None = None) -> dict[str, np.ndarray]:
    """Every registry series over a panel on the CPU.

    Args:
        p: a :class:`technic.panel.Panel` (``(T, N) float64`` time-major, USD per share and
            shares, NaN = no bar).
        rows: compute the row-only indicators (``linreg_r2``: an ``O(n)`` window per value)
            only at these panel rows, NaN elsewhere; default every row.

    Returns:
        ``{series name: (T, N) float64}`` (units of each indicator, :mod:`technic.indicators`).
    """
    from technic import indicators as ind

    inputs = {"high": p.high, "low": p.low, "close": p.close, "volume": p.volume,
              "dollar_volume": p.close * p.volume}
    return _run_plan(inputs, ind, rows)


def device_series(close: Any, high: Any, low: Any, volume: Any) -> dict[str, Any]:
    """Every registry series computed on the GPU, left on the device.

    Args:
        close, high, low: ``(T, N) float64`` prices (USD), volume ``(T, N)`` shares;
            time-major, C-ordered; host arrays (copied in once) or CUDA device arrays.

    Returns:
        ``{series name: (T, N) float64 device array}``; the same bits as
        :func:`panel_series` (the GPU twins follow the CPU kernels' arithmetic) except the
        log returns of realized volatility (≤ 1e-9 relative).

    Raises:
        ValueError: shapes differ or are not 2-D.
        technic.indicators.gpu.GPUUnavailableError: no CUDA device.
    """
    from technic.indicators import gpu

    ins = gpu._Inputs(("close", "high", "low", "volume"), (close, high, low, volume))
    if ins.one_d:
        raise ValueError("close, high, low and volume must be (T, N) arrays")
    c, h, lo, v = ins.arrays
    inputs = {"close": c, "high": h, "low": lo, "volume": v, "dollar_volume": gpu.mul(c, v)}
    return _run_plan(inputs, gpu, None)


@functools.cache
def last_row_plan() -> lastrow.LastRowPlan:
    """The registry's series as a :class:`technic.indicators.lastrow.LastRowPlan`.

    Raises:
        ValueError: a series whose indicator has no last-row opcode, or a lag on an
            indicator computed at the last bar only (``linreg_r2``, ``rolling_max``,
            ``rolling_min``).
    """
    calls, fparams, outputs, names = [], [], [], []
    for q, ((ind, ins, params), wanted) in enumerate(_calls().items()):
        if ind not in lastrow.OPS:
            raise ValueError(f"indicator {ind!r} has no last-row step (technic.indicators."
                             "lastrow.OPS)")
        ints = [int(x) for x in params if not isinstance(x, float)]
        floats = [float(x) for x in params if isinstance(x, float)]
        idx = [lastrow.INPUTS.index(i) for i in ins]
        calls.append([lastrow.OPS[ind], *(idx + [-1] * (4 - len(idx))),
                      *(ints + [0] * (3 - len(ints)))])
        fparams.append(floats[0] if floats else 0.0)
        for name, s in wanted:
            if ind in _LAST_BAR_ONLY and s.lag:
                raise ValueError(f"series {name}: {ind} has no lagged last-row value")
            outputs.append([q, s.output, s.lag])
            names.append(name)
    return lastrow.LastRowPlan(calls=np.array(calls, dtype=np.int64),
                               fparams=np.array(fparams, dtype=np.float64),
                               outputs=np.array(outputs, dtype=np.int64).reshape(-1, 3),
                               names=tuple(names))
