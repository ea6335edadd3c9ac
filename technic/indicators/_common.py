"""Shared numba pieces of the indicator kernels: the FMA intrinsic, TA-Lib's epsilon, options."""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

#: TA-Lib 0.8 zero band (``TA_IS_ZERO``: ``|v| < TA_EPSILON``), used by ADX on the DI sum.
TA_EPSILON = 1e-14

#: Options of every indicator kernel: compiled once per machine (``cache``), callable from
#: several threads (``nogil``), and IEEE division (``error_model="numpy"``): ``x / 0`` is
#: ``±inf`` and ``0 / 0`` NaN, as in TA-Lib's C and numpy, instead of a ZeroDivisionError
#: (which a zero price raised in the 1-D kernels, and which the parallel last-row driver
#: could not even report). The branch-free kernels also need it: they evaluate both arms
#: of a test and select, so an unused arm may divide by 0, and the checks would block SIMD.
_JIT = {"cache": True, "nogil": True, "error_model": "numpy"}


@intrinsic
def _fma(typingctx, a, b, c):
    """``a * b + c`` with a single rounding (C99 ``fma``), as TA-Lib 0.8 emits it."""
    sig = types.float64(types.float64, types.float64, types.float64)

    def codegen(context, builder, signature, args):
        d = ir.DoubleType()
        fn = builder.module.declare_intrinsic("llvm.fma", [d], ir.FunctionType(d, [d, d, d]))
        return builder.call(fn, args)

    return sig, codegen
