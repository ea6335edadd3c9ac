"""The feature set computed from a Panel, on the CPU or the GPU, per the registry.

Every feature on date *d* uses only bars on or before *d* (all kernels are causal), and windows
count the symbol's own bars (see :mod:`technic.indicators` for the gap policy). What is
computed is :mod:`technic.features.registry` through the plans of
:mod:`technic.features.plans`; units are in ``FEATURE_UNITS`` and docs/tables.md.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pandas as pd

from technic.calendar import as_day
from technic.features.plans import device_series, last_row_plan, panel_series
from technic.features.registry import FEATURE_COLUMNS, derive_features
from technic.indicators.lastrow import last_row_values
from technic.panel import Panel

#: Where the indicator kernels run: numba on the CPU, or numba.cuda on a GPU.
DEVICES = ("cpu", "gpu")


def _check_device(device: str) -> str:
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    return device


def _n_bars(close: np.ndarray) -> np.ndarray:
    return np.cumsum(np.isfinite(close), axis=0).astype(np.float64)


def _gpu_rows(p: Panel, rows: Sequence[int] | None) -> dict[str, np.ndarray]:
    # Series on the device; only the requested rows (default all) copied back, then derived
    # on the host with the same expressions as the CPU path.
    dev = device_series(p.close, p.high, p.low, p.volume)
    if rows is None:
        g = {k: d.copy_to_host() for k, d in dev.items()}
    else:
        g = {k: np.stack([d[r].copy_to_host() for r in rows]) for k, d in dev.items()}
    f = derive_features(g)
    n = _n_bars(p.close)
    f["n_bars"] = n if rows is None else n[list(rows)]
    return f


def feature_arrays(p: Panel, device: str = "cpu",
                   rows: Sequence[int] | None = None) -> dict[str, np.ndarray]:
    """Compute every feature as a ``(T, N) float64`` array over the whole panel.

    Args:
        p: the bars (``(T, N) float64`` time-major, USD per share and shares, NaN = no bar);
            history before the first output date must be included in it.
        device: ``"cpu"`` (numba kernels of :mod:`technic.indicators`) or ``"gpu"`` (their
            numba.cuda twins in :mod:`technic.indicators.gpu`, results copied back to the
            host; bit-identical to the CPU path except the log returns of realized
            volatility, ≤ 1e-9 relative).
        rows: on the CPU, compute ``trend_r2_63`` (an ``O(n)`` window per value) only at
            these panel rows, NaN elsewhere; default every row.

    Returns:
        ``{column: (T, N) float64}`` for ``FEATURE_COLUMNS`` plus ``n_bars`` (bars seen so
        far, counted in the panel window).

    Raises:
        ValueError: an unknown ``device``.
        technic.indicators.gpu.GPUUnavailableError: ``device="gpu"`` without a CUDA device.
    """
    if _check_device(device) == "gpu" and p.close.shape[1] > 0:
        return _gpu_rows(p, None)
    f = derive_features(panel_series(p, rows))
    f["n_bars"] = _n_bars(p.close)
    return f


def last_row_features(high: np.ndarray, low: np.ndarray, close: np.ndarray,
                      volume: np.ndarray, rows: np.ndarray | None = None,
                      ) -> dict[str, np.ndarray]:
    """Every feature at the last own bar of a symbol-major window (the incremental refresh).

    Args:
        high, low, close: ``(N, T) float64`` USD per share, **symbol-major**, NaN = no bar.
        volume: ``(N, T) float64`` shares.
        rows: which symbols (row indices) to compute; default all.

    Returns:
        ``{column: (len(rows),) float64}`` for ``FEATURE_COLUMNS`` plus ``n_bars``: the
        registry's last-row plan (:func:`technic.indicators.lastrow.last_row_values`), then
        :func:`~technic.features.registry.derive_features`; bit-identical to the last row of
        :func:`feature_arrays` on the same window.

    Raises:
        ValueError: the four inputs differ in shape or are not 2-D.
    """
    plan = last_row_plan()
    values, n_bars = last_row_values(high, low, close, volume, plan, rows)
    f = derive_features(dict(zip(plan.names, values, strict=True)))
    f["n_bars"] = n_bars
    return f


def compute_features(p: Panel, dates: Sequence[np.datetime64 | dt.date] | None = None,
                     device: str = "cpu") -> pd.DataFrame:
    """Feature rows for the given dates (default: the panel's last date).

    Args:
        p: bars with enough history before the first requested date (≥ ``FULL_HISTORY_BARS``
            for every feature to be defined).
        dates: dates to output, each present in ``p.dates``.
        device: ``"cpu"`` or ``"gpu"`` (see :func:`feature_arrays`; on the GPU only the
            requested rows are copied back).

    Returns:
        Long frame ``symbol, date, <FEATURE_COLUMNS>, n_bars``: one row per symbol with a bar
        on that date; undefined features are NaN. Sorted by date, symbol.

    Raises:
        KeyError: a requested date is not in the panel.
        ValueError: an unknown ``device``.
        technic.indicators.gpu.GPUUnavailableError: ``device="gpu"`` without a CUDA device.
    """
    _check_device(device)
    t_count = len(p.dates)
    if t_count == 0:
        return pd.DataFrame(columns=["symbol", "date", *FEATURE_COLUMNS, "n_bars"])
    if dates is None:
        rows = [t_count - 1]
    else:
        idx = {d: i for i, d in enumerate(p.dates.astype("datetime64[D]"))}
        try:
            rows = [idx[as_day(d)] for d in dates]
        except KeyError as e:
            raise KeyError(f"date {e.args[0]} not in the panel") from None
    if device == "gpu" and p.close.shape[1] > 0:
        picked = _gpu_rows(p, rows)  # row k of each array is panel row rows[k]
        at = list(range(len(rows)))
    else:
        picked = feature_arrays(p, rows=rows)
        at = rows
    frames = []
    for r, k in zip(rows, at, strict=True):
        has_bar = np.isfinite(p.close[r])
        data = {"symbol": p.symbols[has_bar],
                "date": np.repeat(p.dates[r], int(has_bar.sum()))}
        for name in (*FEATURE_COLUMNS, "n_bars"):
            data[name] = picked[name][k, has_bar]
        frames.append(pd.DataFrame(data))
    out = pd.concat(frames, ignore_index=True)
    out["n_bars"] = out["n_bars"].astype(np.int32)
    return out
