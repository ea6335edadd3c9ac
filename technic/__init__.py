"""technic: a market scanner built as a scheduled dataflow pipeline.

The Python API (:mod:`technic.api`, docs/python-api.md) is reachable from here, loaded on
first use::

    import technic as tc
    tc.scan(where="rsi_14 < 30 and close > sma_200")   # DataFrame; writes nothing
    tc.features("AAPL", start="2025-01-01"); tc.bars("AAPL"); tc.columns(); tc.presets()

``technic.features`` is also the feature-set package (its registry: ``technic.features.
FEATURES`` …); calling it, ``tc.features(...)``, is :func:`technic.api.features`.
"""

import sys
import types
from typing import Any

__version__ = "0.1.0"

_API = ("scan", "bars", "columns", "presets")


class _FeaturesPackage(types.ModuleType):
    """The ``technic.features`` package, callable as :func:`technic.api.features`."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from technic.api import features

        return features(*args, **kwargs)


import technic.features  # noqa: E402, F401 - numpy only; made callable below

sys.modules["technic.features"].__class__ = _FeaturesPackage


def __getattr__(name: str) -> Any:
    if name in _API:
        from technic import api

        return getattr(api, name)
    raise AttributeError(f"module 'technic' has no attribute {name!r}")
