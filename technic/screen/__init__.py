"""Screens: the filter language, the column registry and presets (pure, no database).

* :mod:`technic.screen.columns` — every column a screen can filter, sort or show, with kind,
  unit and meaning (``technic columns``);
* :mod:`technic.screen.filter` — ``--where`` text → AST (validated against the registry) →
  a row mask over a frame; :mod:`technic.store.screen` compiles the same AST to bound SQL;
* :mod:`technic.screen.presets` — named screens and the built-in ones.

Grammar and examples: docs/screens.md.
"""

from technic.screen.columns import (
    COLUMNS,
    FEATURE_SCOPE,
    OPTION_SCOPE,
    Column,
    UnknownColumnError,
    check_column,
    parse_columns,
)
from technic.screen.filter import FilterError, Node, conjoin, evaluate, parse_filter, to_text
from technic.screen.presets import BUILTIN_PRESETS, Preset, check_preset_name

__all__ = ["BUILTIN_PRESETS", "COLUMNS", "FEATURE_SCOPE", "OPTION_SCOPE", "Column",
           "FilterError", "Node", "Preset", "UnknownColumnError", "check_column",
           "check_preset_name", "conjoin", "evaluate", "parse_columns", "parse_filter",
           "to_text"]
