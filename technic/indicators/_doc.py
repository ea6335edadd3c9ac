"""Docstring sections several public indicator functions share, written once.

A public function's docstring may hold ``<<name>>`` markers; :func:`doc` replaces them with
the sections below (or with the keyword arguments it is given), so ``help()`` and the API
docs show the whole text while the source states each shared section once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable[..., object])

#: ``Args`` of a one-input function with one period ``n``.
X_PERIOD = """Args:
        x: ``(T, N) float64``, time-major (or ``(T,)``), any unit. NaN = no bar.
        n: period in the symbol's own bars, ``>= 1``."""

#: ``Raises`` of a one-input function with one period ``n``.
X_RAISES = """Raises:
        ValueError: ``n < 1`` or ``x`` is not 1-D or 2-D.
        TypeError: ``n`` is not an integer."""

#: The high, low, close and volume inputs (an ``Args`` entry).
HLCV = """high, low, close: ``(T, N) float64`` prices in quote currency; volume: shares; all
            time-major (or ``(T,)``), same shape. A row is a bar only where all four are
            non-NaN."""

#: ``Raises`` of a several-input function with one period ``n``.
PANELS_RAISES = """Raises:
        ValueError: ``n < 1``, shapes differ, or an input is not 1-D or 2-D.
        TypeError: ``n`` is not an integer."""

_SECTIONS = {"x_period": X_PERIOD, "x_raises": X_RAISES, "hlcv": HLCV,
             "panels_raises": PANELS_RAISES}


def doc(template: str | None = None, **fields: str) -> Callable[[F], F]:
    """Decorator: the function's docstring (or ``template``) with its ``<<name>>`` markers
    filled from ``fields`` and the shared sections of this module.

    Raises:
        KeyError: a marker has neither a field nor a shared section.
    """

    def fill(f: F) -> F:
        text = template if template is not None else (f.__doc__ or "")
        parts = dict(_SECTIONS, **fields)
        while "<<" in text:
            head, rest = text.split("<<", 1)
            name, tail = rest.split(">>", 1)
            text = head + parts[name] + tail
        f.__doc__ = text
        return f

    return fill
