"""Row-level validation of input rows before they reach the store (pure, no database).

Each validator splits raw rows into valid rows and rejects (the input row as JSON text and the
first failing check as its reason), never raising for a bad row:

* :mod:`technic.validation.bars` — OHLCV bars, daily and intraday (:func:`validate_bars`: a
  vectorized Arrow path for typed input, a pandas path for text), the reject reasons in its
  module table, :class:`PriceBasis` of a bar source, the stored Arrow schemas;
* :mod:`technic.validation.fundamentals` — quarterly fundamentals
  (:func:`validate_fundamentals`, :data:`FUNDAMENTAL_COLUMNS`);
* :mod:`technic.validation.universe` — the universe file (:func:`validate_universe`,
  :func:`parse_flag`);
* :mod:`technic.validation._common` — what they share (and :mod:`technic.options.chains`
  uses): symbol rules, date/timestamp parsing, the NYSE calendar check, the clock, duplicate
  marking, rejected rows as JSON text.

Every name is re-exported here, so ``from technic.validation import X`` keeps working.
"""

from technic.validation._common import (
    _BAD_SYMBOL_CHARS,
    MAX_REJECT_TEXT,
    MAX_SYMBOL_LENGTH,
    _calendar_reasons,
    _date_reasons,
    _jsonable,
    _now,
)
from technic.validation.bars import (
    DAILY_SCHEMA,
    INTRADAY_SCHEMA,
    NUMERIC_COLUMNS,
    PRICE_COLUMNS,
    PriceBasis,
    ValidationResult,
    _validate_pandas,
    frame_to_table,
    time_column,
    validate_bars,
)
from technic.validation.fundamentals import (
    FUNDAMENTAL_COLUMNS,
    MAX_PUBLIC_LAG_DAYS,
    validate_fundamentals,
)
from technic.validation.universe import FALSE_WORDS, TRUE_WORDS, parse_flag, validate_universe

__all__ = [
    "DAILY_SCHEMA", "FALSE_WORDS", "FUNDAMENTAL_COLUMNS", "INTRADAY_SCHEMA",
    "MAX_PUBLIC_LAG_DAYS", "MAX_REJECT_TEXT", "MAX_SYMBOL_LENGTH", "NUMERIC_COLUMNS",
    "PRICE_COLUMNS", "TRUE_WORDS", "PriceBasis", "ValidationResult", "frame_to_table",
    "parse_flag", "time_column", "validate_bars", "validate_fundamentals", "validate_universe",
    # private helpers that technic.options.chains and the tests import from here
    "_BAD_SYMBOL_CHARS", "_calendar_reasons", "_date_reasons", "_jsonable", "_now",
    "_validate_pandas",
]
