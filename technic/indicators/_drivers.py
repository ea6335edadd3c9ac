"""The drivers of the per-bar steps, written once per target and generated per indicator.

Each indicator whose state step lives in :mod:`._steps` is described here by a
:class:`Spec`: its input panels, parameters, ring buffers, per-symbol state (with initial
values), the constants it derives from its parameters, and the few lines that call its step
on one bar (they read the state variables, the bar's values ``v`` (one input) or ``hv``,
``lv``, ``cv``, ``vv`` (high, low, close, volume), the symbol's ring column ``j``, and
assign the new state and the outputs ``r0``, ``r1``, ...). From a spec, :func:`driver`
writes the source of one driver for a target and compiles it with that target's ``jit`` and
compiled steps ``S``:

* ``"tm"``: the time-major CPU kernel ``tm_<name>(panels..., params..., outs...)`` over
  ``(T, N)`` panels, state in length-``N`` vectors, rings ``(rows, N)`` allocated inside.
  A gap row (any input NaN) writes NaN and keeps the state: branchy (``continue``), or for
  ``free`` specs (the recursive ones) branch-free: every lane runs the step and a select keeps
  the old state, so LLVM vectorizes across symbols.
* ``"cuda"``: ``_k_<name>(panels..., params..., rings..., outs...)``, one thread per symbol,
  state in registers, rings in device memory (allocated by :mod:`.gpu`).
* ``"oned"``: ``_<name>_1d(series..., m, params..., outs...)`` over the first ``m`` bars of
  a gap-free series (rings ``(rows, 1)`` allocated inside), for the last-row path. With
  ``split`` the bars run in two loops, before and from the bar where the other drivers' capped
  counter stops, so the compiler can drop the step's warm-up arms in the second (ADX).

The driver loop (thread preamble, NaN test, state load / store) thus exists once per
target; the generated source is compiled under this file's name, so ``cache=True`` keys it
by this file's stamp and the function's name and code.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

#: The value each input panel's bar is bound to in a spec's lines.
_VALUE = {"x": "v", "h": "hv", "lo": "lv", "cl": "cv", "vol": "vv"}


@dataclass(frozen=True)
class Spec:
    """One indicator's driver description (see the module docstring)."""

    name: str
    panels: tuple[str, ...]
    params: tuple[str, ...]
    outs: tuple[str, ...]
    state: tuple[tuple[str, str], ...]
    body: tuple[str, ...]
    consts: tuple[str, ...] = ()
    rings: tuple[tuple[str, str], ...] = ()
    free: bool = False
    copy_if: str = ""  # a parameter test under which the output is the input itself
    split: bool = False  # oned: warm-up and steady bars in two loops (see _src_oned)


#: The lines after a windowed step (one ring of the last n values): the next ring slot, then
#: the bar count, capped at n.
_ADVANCE = ("s = S.next_slot(s, n)", "c = c + 1 if c < n else c")
_RING = (("ring", "n"),)

SPECS: dict[str, Spec] = {s.name: s for s in (
    Spec("sma", ("x",), ("n",), ("out",), (("c", "0"), ("s", "0"), ("total", "0.0")),
         ("total, r0 = S.sma_bar(c, s, total, ring, j, v, n)",) + _ADVANCE,
         rings=_RING),
    Spec("bbands", ("x",), ("n", "k"), ("o_up", "o_mid", "o_lo"),
         (("c", "0"), ("s", "0"), ("total", "0.0"), ("shift", "0.0"), ("s1", "0.0"),
          ("s2", "0.0"), ("left", "32 * n")),
         ("total, shift, s1, s2, left, r0, r1, r2 = S.bbands_bar(c, s, total, shift, s1, s2, "
          "left, ring, j, v, n, k)",) + _ADVANCE,
         rings=_RING),
    Spec("ema", ("x",), ("n",), ("out",), (("c", "0"), ("p", "0.0")),
         ("q = S.ema_step(c, p, v, n, fn, k)",
          "r0 = q if c >= n - 1 else nan",
          "p = q",
          "c = c + 1 if c < n else c"),
         consts=("k = 2.0 / float(n + 1)", "fn = float(n)"), free=True, copy_if="n == 1"),
    Spec("rsi", ("x",), ("n",), ("out",),
         (("c", "0"), ("px", "0.0"), ("gain", "0.0"), ("loss", "0.0")),
         ("gain, loss, r = S.rsi_step(c, gain, loss, px, v, n, inv, fn1)",
          "r0 = r if c >= n else nan",
          "px = v",
          "c = c + 1 if c <= n else c"),
         consts=("inv = 1.0 / float(n)", "fn1 = float(n - 1)"), free=True),
    Spec("macd", ("x",), ("fast", "slow", "signal"), ("o_macd", "o_sig", "o_hist"),
         (("c", "0"), ("pf", "0.0"), ("ps", "0.0"), ("sg", "0.0")),
         ("pf, ps, sg, mv = S.macd_step(c, pf, ps, sg, v, fast, slow, signal, kf, ks, kg)",
          "r0 = mv if c >= f0 else nan",
          "r1 = sg if c >= f0 else nan",
          "r2 = mv - sg if c >= f0 else nan",
          "c = c + 1 if c <= f0 else c"),
         consts=("kf = 2.0 / float(fast + 1)", "ks = 2.0 / float(slow + 1)",
                 "kg = 2.0 / float(signal + 1)", "f0 = slow + signal - 2"), free=True),
    Spec("roc", ("x",), ("n",), ("out",), (("c", "0"), ("s", "0")),
         ("r0 = S.roc_bar(c, s, ring, j, v, n)",
          "s = S.next_slot(s, n)",
          "c = c + 1 if c <= n else c"),
         rings=_RING),
    Spec("atr", ("h", "lo", "cl"), ("n",), ("out",), (("c", "0"), ("pc", "0.0"), ("st", "0.0")),
         ("st = S.atr_step(c, st, hv, lv, pc, n, fn, beta, alpha)",
          "r0 = st if c >= n else nan",
          "pc = cv",
          "c = c + 1 if c <= n else c"),
         consts=("beta = float(n - 1) / float(n)", "alpha = 1.0 - beta", "fn = float(n)"),
         free=True),
    Spec("adx", ("h", "lo", "cl"), ("n", "eps"), ("out",),
         (("c", "0"), ("ph", "0.0"), ("pl", "0.0"), ("pc", "0.0"), ("pdm", "0.0"),
          ("mdm", "0.0"), ("tr", "0.0"), ("adx", "0.0")),
         ("pdm, mdm, tr, adx = S.adx_step(c, ph, pl, pc, pdm, mdm, tr, adx, hv, lv, n, fn, "
          "fn1, fo, eps)",
          "r0 = adx if c >= fo else nan",
          "ph = hv",
          "pl = lv",
          "pc = cv",
          "c = c + 1 if c <= fo else c"),
         consts=("fn = float(n)", "fn1 = float(n - 1)", "fo = 2 * n - 1"), free=True,
         split=True),
    Spec("obv", ("cl", "vol"), (), ("out",), (("c", "0"), ("prev", "0.0"), ("acc", "0.0")),
         ("acc = S.obv_bar(c, prev, acc, cv, vv)",
          "prev = cv",
          "r0 = acc",
          "c = 1"), free=True),
    Spec("lag", ("x",), ("k",), ("out",), (("c", "0"), ("s", "0")),
         ("r0 = S.lag_bar(c, s, ring, j, v, k)",
          "s = S.next_slot(s, k)",
          "c = c + 1 if c < k else c"),
         rings=(("ring", "k"),), copy_if="k == 0"),
    Spec("extreme", ("x",), ("n", "want_max"), ("out",), (("c", "0"), ("s", "0"), ("e", "0.0")),
         ("e, r0 = S.ext_bar(c, s, e, ring, j, v, n, want_max)",) + _ADVANCE,
         rings=_RING),
    Spec("rvol", ("x",), ("n", "scale"), ("out",),
         (("c", "0"), ("s", "0"), ("prevc", "0.0"), ("shift", "0.0"), ("s1", "0.0"),
          ("s2", "0.0"), ("left", "32 * n")),
         ("prevc, shift, s1, s2, left, r0 = S.rvol_bar(c, s, prevc, shift, s1, s2, left, ring, "
          "j, v, n, ddof, scale)",
          "s = S.next_slot(s, n) if c >= 1 else s",
          "c = c + 1 if c < n else c"),
         consts=("ddof = float(n) / float(n - 1)",), rings=_RING),
    Spec("linreg_r2", ("x",), ("n",), ("out",), (("c", "0"), ("s", "0")),
         ("r0 = S.linreg_r2_bar(c, s, ring, j, v, n)",) + _ADVANCE,
         rings=_RING),
    Spec("cci", ("h", "lo", "cl"), ("n",), ("out",), (("c", "0"), ("s", "0")),
         ("r0 = S.cci_bar(c, s, ring, j, hv, lv, cv, n)",) + _ADVANCE,
         rings=_RING),
    Spec("stoch", ("h", "lo", "cl"), ("fk", "sk", "sd"), ("o_k", "o_d"),
         (("c", "0"), ("s", "0"), ("hh", "0.0"), ("ll", "0.0"), ("ks", "0"), ("ktot", "0.0"),
          ("ds", "0"), ("dtot", "0.0")),
         ("hh, ll, ks, ktot, ds, dtot, r0, r1 = S.stoch_bar(c, s, hh, ll, ks, ktot, ds, dtot, "
          "rh, rl, kr, dr, j, hv, lv, cv, fk, sk, sd)",
          "s = S.next_slot(s, fk)",
          "c = c + 1 if c < cap else c"),
         # cap: bars counted until the window is full and outputs start (max() does not
         # type on CUDA).
         consts=("first = fk + sk + sd - 3", "cap = first if first > fk else fk"),
         rings=(("rh", "fk"), ("rl", "fk"), ("kr", "sk"), ("dr", "sd"))),
    Spec("willr", ("h", "lo", "cl"), ("n",), ("out",),
         (("c", "0"), ("s", "0"), ("hh", "0.0"), ("ll", "0.0")),
         ("hh, ll, r0 = S.willr_bar(c, s, hh, ll, rh, rl, j, hv, lv, cv, n)",) + _ADVANCE,
         rings=(("rh", "n"), ("rl", "n"))),
    Spec("mfi", ("h", "lo", "cl", "vol"), ("n",), ("out",),
         (("c", "0"), ("s", "0"), ("prev", "0.0"), ("ps", "0.0"), ("ns", "0.0"), ("nr", "0")),
         ("prev, ps, ns, nr, r0 = S.mfi_bar(c, s, prev, ps, ns, nr, pos, neg, j, hv, lv, cv, "
          "vv, n)",
          "s = S.next_slot(s, n) if c >= 1 else s",
          "c = c + 1 if c <= n else c"),
         rings=(("pos", "n"), ("neg", "n"))),
)}


def _isnan(spec: Spec, fn: str, op: str) -> str:
    # The gap test of one bar: any input NaN.
    return op.join(f"{fn}({_VALUE[p]})" for p in spec.panels)


def _src_tm(spec: Spec) -> list[str]:
    p0 = spec.panels[0]
    args = ", ".join(spec.panels + spec.params + spec.outs)
    lines = [f"def tm_{spec.name}({args}):", f"    t_len, n_cols = {p0}.shape"]
    if spec.copy_if:
        lines += [f"    if {spec.copy_if}:", "        for t in range(t_len):",
                  "            for j in range(n_cols):",
                  f"                {spec.outs[0]}[t, j] = {p0}[t, j]", "        return"]
    for name, init in spec.state:
        kind = "np.int64" if "." not in init else "np.float64"
        lines.append(f"    {name}_a = np.full(n_cols, {init}, {kind})")
    lines += [f"    {r} = np.empty(({rows}, n_cols))" for r, rows in spec.rings]
    lines += [f"    {c}" for c in spec.consts]
    lines.append("    for t in range(t_len):")
    lines += [f"        {p}_r = {p}[t]" for p in spec.panels + spec.outs]
    lines.append("        for j in range(n_cols):")
    lines += [f"            {_VALUE[p]} = {p}_r[j]" for p in spec.panels]
    body = [f"            {b}" for b in spec.body]
    if spec.free:
        lines.append(f"            ok = not ({_isnan(spec, 'np.isnan', ' | ')})")
        lines += [f"            {s}_o = {s}_a[j]\n            {s} = {s}_o" for s, _ in spec.state]
        lines += body
        lines += [f"            {s}_a[j] = {s} if ok else {s}_o" for s, _ in spec.state]
        lines += [f"            {o}_r[j] = r{i} if ok else nan" for i, o in enumerate(spec.outs)]
    else:
        lines.append(f"            if {_isnan(spec, 'np.isnan', ' or ')}:")
        lines += [f"                {o}_r[j] = nan" for o in spec.outs]
        lines.append("                continue")
        lines += [f"            {s} = {s}_a[j]" for s, _ in spec.state]
        lines += body
        lines += [f"            {o}_r[j] = r{i}" for i, o in enumerate(spec.outs)]
        lines += [f"            {s}_a[j] = {s}" for s, _ in spec.state]
    return lines


def _src_cuda(spec: Spec) -> list[str]:
    p0 = spec.panels[0]
    args = ", ".join(spec.panels + spec.params + tuple(r for r, _ in spec.rings) + spec.outs)
    lines = [f"def _k_{spec.name}({args}):", "    j = cuda.grid(1)",
             f"    if j >= {p0}.shape[1]:", "        return"]
    if spec.copy_if:
        lines += [f"    if {spec.copy_if}:", f"        for t in range({p0}.shape[0]):",
                  f"            {spec.outs[0]}[t, j] = {p0}[t, j]", "        return"]
    lines += [f"    {name} = {init}" for name, init in spec.state]
    lines += [f"    {c}" for c in spec.consts]
    lines.append(f"    for t in range({p0}.shape[0]):")
    lines += [f"        {_VALUE[p]} = {p}[t, j]" for p in spec.panels]
    lines.append(f"        if {_isnan(spec, 'math.isnan', ' or ')}:")
    lines += [f"            {o}[t, j] = nan" for o in spec.outs]
    lines.append("            continue")
    lines += [f"        {b}" for b in spec.body]
    lines += [f"        {o}[t, j] = r{i}" for i, o in enumerate(spec.outs)]
    return lines


def _src_oned(spec: Spec) -> list[str]:
    p0 = spec.panels[0]
    args = ", ".join(spec.panels + ("m",) + spec.params + spec.outs)
    lines = [f"def _{spec.name}_1d({args}):"]
    if spec.copy_if:
        lines += [f"    if {spec.copy_if}:", "        for c in range(m):",
                  f"            {spec.outs[0]}[c] = {p0}[c]", "        return"]
    lines.append("    j = 0")
    lines += [f"    {r} = np.empty(({rows}, 1))" for r, rows in spec.rings]
    # The bar count c is the loop index here (the steps give the same values past the cap
    # where the other drivers stop counting), so the spec's counter update is dropped.
    lines += [f"    {name} = {init}" for name, init in spec.state if name != "c"]
    lines += [f"    {c}" for c in spec.consts]
    steady = _steady_from(spec) if spec.split else None
    loops = ["range(m)"]
    if steady is not None:
        # The same bars in two loops, split where the counter of the other drivers stops:
        # in the second one every warm-up test of the branch-free step is known, so LLVM
        # drops the unused arms (their divisions). Same operations in the same order. Only
        # where it measured faster (ADX 1.5x in the last-row path; EMA, RSI, ATR and MACD
        # unchanged), since each split loop adds compile time.
        lines.append(f"    w0 = min(m, max({steady}, 0))")
        loops = ["range(w0)", "range(w0, m)"]
    for rng in loops:
        lines.append(f"    for c in {rng}:")
        lines += [f"        {_VALUE[p]} = {p}[c]" for p in spec.panels]
        lines += [f"        {b}" for b in spec.body if not b.startswith("c = ")]
        lines += [f"        {o}[c] = r{i}" for i, o in enumerate(spec.outs)]
    return lines


def _steady_from(spec: Spec) -> str | None:
    # The first bar at which the other drivers' capped counter stops moving (the step then
    # behaves alike for every later bar), from the spec's counter update; None if it has none.
    for b in spec.body:
        m = re.fullmatch(r"c = c \+ 1 if c (<=?) (.+) else c", b)
        if m:
            return f"({m.group(2)}) + 1" if m.group(1) == "<=" else m.group(2)
    return None


_SOURCES = {"tm": _src_tm, "cuda": _src_cuda, "oned": _src_oned}


def source(name: str, target: str) -> str:
    """The generated source of indicator ``name``'s driver for ``target`` (tm, cuda, oned)."""
    return "\n".join(_SOURCES[target](SPECS[name])) + "\n"


def driver(name: str, target: str, jit: Callable[[Any], Any], steps: Any,
           **env: Any) -> Any:
    """Indicator ``name``'s driver for ``target``, compiled with ``jit``.

    ``steps`` is the module of compiled steps of that target (bound as ``S``); ``env`` adds
    globals (``cuda`` for CUDA kernels). Raises ``KeyError`` for an unknown name or target.
    """
    src = source(name, target)
    # __name__: numba rebuilds a cached function's environment from a module of that name.
    ns: dict[str, Any] = {"__name__": __name__, "np": np, "math": math, "nan": math.nan,
                          "S": steps, **env}
    exec(compile(src, __file__, "exec"), ns)  # noqa: S102 - source generated from SPECS
    fn = ns[src[4:src.index("(")]]
    return jit(fn)
