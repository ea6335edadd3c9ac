"""The feature set: which indicators describe a symbol on a date.

* :mod:`technic.features.registry` — every feature defined once (name, indicator and
  parameters or derivation, unit, migration); the column list, units table and DDL come from it.
* :mod:`technic.features.plans` — the CPU, GPU and last-row plans generated from the registry.
* :mod:`technic.features.compute` — feature panels and rows from a :class:`technic.panel.Panel`.
"""

from __future__ import annotations

from technic.features.compute import (
    DEVICES,
    compute_features,
    feature_arrays,
    last_row_features,
)
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
