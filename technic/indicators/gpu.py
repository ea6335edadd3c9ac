"""GPU twins of the indicator kernels (numba.cuda); the feature set's GPU plan is
:func:`technic.features.plans.device_series`.

Layout and threads
    Inputs are the same time-major ``(T, N) float64`` C-ordered panels as on the CPU (row =
    trading date, column = symbol; a ``(T,)`` array is one symbol). One CUDA thread owns one
    symbol and walks time: at each row the threads of a warp read 32 neighbouring symbols of
    the same row, so every load and store is coalesced. A thread's recursive state (running
    sums, EMA / Wilder state, bars seen) lives in registers; rolling windows live in ring
    buffers of shape ``(n, N)`` in device memory (slot-major, so they are coalesced too),
    exactly like the per-symbol rings of :mod:`technic.indicators._tm`.

Arithmetic
    The kernels (:mod:`._cuda`) drive the same per-bar steps as the CPU (:mod:`._steps`:
    EMA, RSI, MACD, ATR, ADX, STOCH, WILLR) or twin a ``tm_*`` kernel of :mod:`._tm`
    (the others): same NaN/gap policy (a row
    where an input is NaN writes NaN and leaves the symbol's state untouched; windows count
    the symbol's own bars), same seeds, same order of additions. CUDA compilers contract
    ``a * b + c`` into a fused multiply-add by default, which the CPU kernels never do, so
    every product is written ``_mul(a, b)`` (libdevice ``__nv_dmul_rn``, never fused) and
    every FMA that TA-Lib 0.8.1 emits is an explicit ``_fma`` (``cuda.fma``). Divisions and
    square roots are IEEE round-to-nearest (``fastmath`` off). What can still differ from
    the CPU is ``log`` (libdevice vs. the C library, ≤ 1 ulp; realized volatility only), so
    results agree with the CPU path to ≤ 1e-9 relative (tests/integration/test_gpu.py), and are
    bit-identical for every other indicator on a GPU.

Simulator
    With ``NUMBA_ENABLE_CUDASIM=1`` (set before numba is imported) the same kernels run in
    numba's CUDA simulator (pure Python, slow: small panels only). There ``_mul`` is a plain
    IEEE product, ``_fma`` is an exactly rounded FMA computed with fractions and ``_log``
    is ``numpy.log`` (NaN/-inf instead of Python's ``ValueError``), so the simulated kernels
    follow the same arithmetic as a GPU.

Public functions take host ``numpy`` arrays (results copied back to the host) or CUDA
device arrays (results stay on the device). They raise :class:`GPUUnavailableError` when
no CUDA device (or simulator) is present.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numba import cuda

from technic.indicators._common import TA_EPSILON
from technic.indicators._cuda import (
    SIMULATOR,
    _k_adx,
    _k_atr,
    _k_bbands,
    _k_cci,
    _k_ema,
    _k_extreme,
    _k_lag,
    _k_linreg_r2,
    _k_macd,
    _k_mfi,
    _k_mul,
    _k_obv,
    _k_roc,
    _k_rsi,
    _k_rvol,
    _k_sma,
    _k_stoch,
    _k_willr,
)

__all__ = [
    "GPUUnavailableError",
    "SIMULATOR",
    "adx",
    "atr",
    "bbands",
    "cci",
    "ema",
    "is_available",
    "lag",
    "linreg_r2",
    "macd",
    "mfi",
    "mul",
    "obv",
    "realized_vol",
    "roc",
    "rolling_max",
    "rolling_min",
    "rsi",
    "sma",
    "stoch",
    "willr",
]


#: Threads per block on a GPU (the simulator uses at most N threads, one block).
THREADS_PER_BLOCK = 128



class GPUUnavailableError(RuntimeError):
    """No usable CUDA device (and no simulator): the GPU path cannot run."""


def is_available() -> bool:
    """Whether the GPU kernels can run here: a CUDA device, or numba's CUDA simulator.

    Returns:
        ``numba.cuda.is_available()`` (True under ``NUMBA_ENABLE_CUDASIM=1``); False instead
        of raising when the driver is missing or broken.
    """
    try:
        return bool(cuda.is_available())
    except Exception:  # noqa: BLE001 - a broken driver is "not available"
        return False


# ---------------------------------------------------------------------------------------------
# Host-side wrappers.
# ---------------------------------------------------------------------------------------------


def _require() -> None:
    if not is_available():
        raise GPUUnavailableError(
            "no CUDA device is available (numba.cuda.is_available() is False); "
            "use device='cpu' or run on a worker with a GPU")


def _launch(kernel, n_cols: int, *args: Any) -> None:
    if n_cols == 0:
        return
    tpb = min(THREADS_PER_BLOCK, n_cols) if SIMULATOR else THREADS_PER_BLOCK
    kernel[(n_cols + tpb - 1) // tpb, tpb](*args)


def _empty(shape: tuple[int, ...]):
    return cuda.device_array(shape, dtype=np.float64)


def _ring(rows: int, n_cols: int):
    return cuda.device_array((max(rows, 1), max(n_cols, 1)), dtype=np.float64)


def _is_device(a: Any) -> bool:
    # numba device arrays (and the simulator's) have copy_to_host; CuPy & co. the interface.
    return hasattr(a, "copy_to_host") or hasattr(a, "__cuda_array_interface__")


class _Inputs:
    """Arrays moved to the device as ``(T, N)`` C-ordered float64, and how to give results back."""

    def __init__(self, names: Sequence[str], arrays: Sequence[Any]):
        _require()
        self.on_device = all(_is_device(a) for a in arrays)
        self.one_d = False
        dev = []
        shape = None
        for nm, a in zip(names, arrays, strict=True):
            if self.on_device:
                d = a if hasattr(a, "copy_to_host") else cuda.as_cuda_array(a)
                if d.dtype != np.float64 or d.ndim != 2:
                    raise ValueError(f"{nm} on the device must be (T, N) float64, got "
                                     f"{d.ndim}-D {d.dtype}")
                if not d.is_c_contiguous():
                    raise ValueError(f"{nm} on the device must be C-contiguous")
            else:
                h = np.asarray(a.copy_to_host() if hasattr(a, "copy_to_host") else a,
                               dtype=np.float64)
                if h.ndim == 1:
                    h = h.reshape(-1, 1)
                    self.one_d = True
                elif h.ndim != 2:
                    raise ValueError(f"{nm} must be a (T,) or (T, N) array, got shape "
                                     f"{h.shape}")
                d = cuda.to_device(np.ascontiguousarray(h))
            if shape is not None and d.shape != shape:
                raise ValueError(f"{', '.join(names)} must have the same shape; got "
                                 f"{shape} and {d.shape}")
            shape = d.shape
            dev.append(d)
        self.arrays = dev
        self.shape: tuple[int, int] = shape  # type: ignore[assignment]

    def back(self, d):
        """A result as the caller's kind of array: device array, or host (1-D if given 1-D)."""
        if self.on_device:
            return d
        h = d.copy_to_host()
        return h.reshape(-1) if self.one_d else h


def _period(n: int, name: str = "n", minimum: int = 1) -> int:
    from technic.indicators.cpu import _period as cpu_period

    return cpu_period(n, name, minimum)


def _finite(k: float, name: str = "k") -> float:
    kf = float(k)
    if not math.isfinite(kf):
        raise ValueError(f"{name} must be finite, got {k}")
    return kf


def _annual_scale(periods_per_year: float) -> float:
    ppy = float(periods_per_year)
    if not (math.isfinite(ppy) and ppy > 0):
        raise ValueError(f"periods_per_year must be finite and > 0, got {periods_per_year}")
    return math.sqrt(ppy)


def _macd_periods(fast: int, slow: int, signal: int) -> tuple[int, int, int]:
    f, s, g = _period(fast, "fast"), _period(slow, "slow"), _period(signal, "signal")
    if f > s:
        raise ValueError(f"fast ({f}) must not exceed slow ({s})")
    return f, s, g


#: name -> (kernel, inputs, outputs, params(**args) -> the kernel's parameters (validated as
#: on the CPU), rings(*params) -> the ring rows the kernel needs (each an (r, N) buffer)).
_TWINS: dict[str, tuple[Any, int, int, Callable[..., tuple], Callable[..., tuple]]] = {
    "sma": (_k_sma, 1, 1, lambda n: (_period(n),), lambda n: (n,)),
    "ema": (_k_ema, 1, 1, lambda n: (_period(n),), lambda n: ()),
    "rsi": (_k_rsi, 1, 1, lambda n: (_period(n),), lambda n: ()),
    "macd": (_k_macd, 1, 3, _macd_periods, lambda f, s, g: ()),
    "bbands": (_k_bbands, 1, 3, lambda n, k: (_period(n), _finite(k)), lambda n, k: (n,)),
    "roc": (_k_roc, 1, 1, lambda n: (_period(n),), lambda n: (n,)),
    "lag": (_k_lag, 1, 1, lambda k: (_period(k, "k", minimum=0),), lambda k: (k,)),
    "rolling_max": (_k_extreme, 1, 1, lambda n: (_period(n), True), lambda n, w: (n,)),
    "rolling_min": (_k_extreme, 1, 1, lambda n: (_period(n), False), lambda n, w: (n,)),
    "realized_vol": (_k_rvol, 1, 1, lambda n, periods_per_year: (
        _period(n, minimum=2), _annual_scale(periods_per_year)), lambda n, sc: (n,)),
    "linreg_r2": (_k_linreg_r2, 1, 1, lambda n: (_period(n, minimum=2),), lambda n: (n,)),
    "atr": (_k_atr, 3, 1, lambda n: (_period(n),), lambda n: ()),
    "adx": (_k_adx, 3, 1, lambda n: (_period(n), TA_EPSILON), lambda n, e: ()),
    "obv": (_k_obv, 2, 1, lambda: (), lambda: ()),
    "stoch": (_k_stoch, 3, 2, lambda fastk, slowk, slowd: (
        _period(fastk, "fastk"), _period(slowk, "slowk"), _period(slowd, "slowd")),
        lambda fk, sk, sd: (fk, fk, sk, sd)),
    "willr": (_k_willr, 3, 1, lambda n: (_period(n),), lambda n: (n, n)),
    "cci": (_k_cci, 3, 1, lambda n: (_period(n),), lambda n: (n,)),
    "mfi": (_k_mfi, 4, 1, lambda n: (_period(n),), lambda n: (n, n)),
}


def _twin(name: str) -> Callable[..., Any]:
    """The GPU twin of ``technic.indicators.<name>``: same signature and validation."""
    from technic import indicators as cpu_api

    kernel, n_in, n_out, params, rings = _TWINS[name]
    sig = inspect.signature(getattr(cpu_api, name))
    names = tuple(sig.parameters)[:n_in]

    def run(*args: Any, **kwargs: Any) -> Any:
        bound = sig.bind(*args, **kwargs)
        bound.apply_defaults()
        a = dict(bound.arguments)
        p = params(**{k: v for k, v in a.items() if k not in names})
        ins = _Inputs(names, tuple(a[k] for k in names))
        m = ins.shape[1]
        outs = [_empty(ins.shape) for _ in range(n_out)]
        _launch(kernel, m, *ins.arrays, *p, *(_ring(r, m) for r in rings(*p)), *outs)
        res = tuple(ins.back(o) for o in outs)
        return res[0] if n_out == 1 else res

    run.__name__ = run.__qualname__ = name
    run.__signature__ = sig
    run.__doc__ = f"""GPU twin of :func:`technic.indicators.{name}` (numba.cuda).

    Same arguments, validation, units and results as the CPU function, computed one CUDA
    thread per symbol from the same per-bar steps (:mod:`technic.indicators._steps`) or the
    same arithmetic (see the module docstring): bit-identical on a GPU, except the ``log``
    of realized volatility (≤ 1e-15 relative).

    Args:
        as :func:`technic.indicators.{name}`; arrays are host ``(T, N)`` / ``(T,)`` float64
        (results copied back, same shape) or CUDA device ``(T, N)`` C-contiguous float64
        (results stay on the device).

    Raises:
        ValueError, TypeError: as the CPU function. GPUUnavailableError: no CUDA device.
    """
    return run


sma = _twin("sma")
ema = _twin("ema")
rsi = _twin("rsi")
macd = _twin("macd")
bbands = _twin("bbands")
roc = _twin("roc")
lag = _twin("lag")
rolling_max = _twin("rolling_max")
rolling_min = _twin("rolling_min")
realized_vol = _twin("realized_vol")
linreg_r2 = _twin("linreg_r2")
atr = _twin("atr")
adx = _twin("adx")
obv = _twin("obv")
stoch = _twin("stoch")
willr = _twin("willr")
cci = _twin("cci")
mfi = _twin("mfi")


def mul(a: Any, b: Any):
    """Elementwise ``a * b`` on the GPU, IEEE-rounded as numpy's (never fused), e.g. close *
    volume = dollar volume.

    Args:
        a, b: ``(T, N) float64`` host (or ``(T,)``) or device arrays of one shape.

    Returns:
        Same shape; NaN where either is NaN.

    Raises:
        ValueError: shapes differ. GPUUnavailableError: no CUDA device.
    """
    ins = _Inputs(("a", "b"), (a, b))
    out = _empty(ins.shape)
    _launch(_k_mul, ins.shape[1], *ins.arrays, out)
    return ins.back(out)
