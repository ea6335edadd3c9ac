"""The feature set: which indicators describe a symbol on a date.

* :mod:`technic.features.registry` — every feature defined once (name, indicator and
  parameters or derivation, unit, migration); the column list, units table and DDL come from it.
* :mod:`technic.features.plans` — the CPU, GPU and last-row plans generated from the registry.
* :mod:`technic.features.compute` — feature panels and rows from a :class:`technic.panel.Panel`.

The registry's names are imported here eagerly (numpy only: the store's schema reads them);
the compute functions on first use, so importing the schema does not load the numba kernels.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from technic.features.registry import (
    FEATURE_COLUMNS,
    FEATURE_UNITS,
    FEATURES,
    FULL_HISTORY_BARS,
    SERIES,
    Feature,
    Series,
    columns_added_by,
    derive_features,
)

if TYPE_CHECKING:
    from technic.features.compute import (
        DEVICES,
        compute_features,
        feature_arrays,
        last_row_features,
    )

_COMPUTE = ("DEVICES", "compute_features", "feature_arrays", "last_row_features")

__all__ = [
    "DEVICES",
    "FEATURES",
    "FEATURE_COLUMNS",
    "FEATURE_UNITS",
    "FULL_HISTORY_BARS",
    "SERIES",
    "Feature",
    "Series",
    "columns_added_by",
    "compute_features",
    "derive_features",
    "feature_arrays",
    "last_row_features",
]


def __getattr__(name: str) -> Any:
    if name in _COMPUTE:
        from technic.features import compute

        return getattr(compute, name)
    raise AttributeError(f"module 'technic.features' has no attribute {name!r}")
