"""Row-level validation of input rows before they reach the store (pure, no database).

* :mod:`technic.validation.bars` — OHLCV bars, daily and intraday (:func:`validate_bars`: a
  vectorized Arrow path for typed input, a pandas path for text), the reject reasons in its
  module table, :class:`PriceBasis` of a bar source, the stored Arrow schemas.

Every name is re-exported here, so ``from technic.validation import X`` keeps working.
"""

from technic.validation.bars import (
    _BAD_SYMBOL_CHARS,
    DAILY_SCHEMA,
    FALSE_WORDS,
    FUNDAMENTAL_COLUMNS,
    INTRADAY_SCHEMA,
    MAX_PUBLIC_LAG_DAYS,
    MAX_REJECT_TEXT,
    MAX_SYMBOL_LENGTH,
    NUMERIC_COLUMNS,
    PRICE_COLUMNS,
    TRUE_WORDS,
    PriceBasis,
    ValidationResult,
    _calendar_reasons,
    _date_reasons,
    _jsonable,
    _now,
    _validate_pandas,
    frame_to_table,
    parse_flag,
    time_column,
    validate_bars,
    validate_fundamentals,
    validate_universe,
)

__all__ = [
    "DAILY_SCHEMA", "FALSE_WORDS", "FUNDAMENTAL_COLUMNS", "INTRADAY_SCHEMA",
    "MAX_PUBLIC_LAG_DAYS", "MAX_REJECT_TEXT", "MAX_SYMBOL_LENGTH", "NUMERIC_COLUMNS",
    "PRICE_COLUMNS", "TRUE_WORDS", "PriceBasis", "ValidationResult", "frame_to_table",
    "parse_flag", "time_column", "validate_bars", "validate_fundamentals", "validate_universe",
    # private helpers that technic.options.chains and the tests import from here
    "_BAD_SYMBOL_CHARS", "_calendar_reasons", "_date_reasons", "_jsonable", "_now",
    "_validate_pandas",
]
