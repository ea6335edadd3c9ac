"""Read OHLCV bars and universe (reference) rows from Parquet or CSV files.

Bars files need the columns ``symbol, date, open, high, low, close, volume`` (prices in quote
currency per share, volume in shares). Dates are ISO 8601 (``YYYY-MM-DD``) in CSV files or
``date32``/timestamp in Parquet. Values are returned as read: validation happens in
:mod:`technic.validation`, so a malformed row becomes a counted reject, not a crash. CSV lines
with the wrong number of fields are returned apart (``bad_lines``: ``row``, ``reason``) for
``ingest_rejects``; bytes that are not UTF-8 are read as U+FFFD (so the value fails its check).
A file that cannot be read at all (missing, empty, not Parquet/CSV, corrupt compression,
truncated) raises :class:`InputFileError` naming the file and the reason.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from technic.options.chains import ALIASES as OPTION_ALIASES
from technic.options.chains import OPTION_SCHEMA, REQUIRED_COLUMNS, is_option_chain
from technic.validation import MAX_REJECT_TEXT, PriceBasis

_T = TypeVar("_T")

BAR_COLUMNS = ("symbol", "date", "open", "high", "low", "close", "volume")
#: Intraday bars: ``ts`` is the bar start (UTC) instead of ``date``.
INTRADAY_BAR_COLUMNS = ("symbol", "ts", "open", "high", "low", "close", "volume")
UNIVERSE_COLUMNS = ("symbol", "name", "exchange", "sector", "industry", "security_type",
                    "is_etf", "active", "market_cap")


#: The real Stooq end-of-day export (``../shared/data/bars_daily.parquet`` and the bundled cut).
STOOQ_DAILY = PriceBasis(
    split_adjusted=True, dividend_adjusted=True, adjusted_as_of=dt.date(2025, 7, 9),
    vendor="Stooq", note="end-of-day export, back-adjusted for splits and cash dividends "
                         "as of 2025-07-09")
#: The real Stooq 5-minute export and the daily bars aggregated from it.
STOOQ_5MIN = PriceBasis(
    split_adjusted=True, dividend_adjusted=False, adjusted_as_of=dt.date(2026, 6, 22),
    vendor="Stooq", note="5-minute export (regular session, bar starts in UTC) and daily "
                         "bars aggregated from it; split-adjusted as of 2026-06-22, ordinary "
                         "cash dividends not adjusted")

#: Bar files whose source and price basis are known, by file name: (``source`` tag of the
#: stored bars, basis). Other files are stored as ``files`` with an unknown basis.
KNOWN_BAR_FILES: dict[str, tuple[str, PriceBasis]] = {
    "bars_daily.parquet": ("files", STOOQ_DAILY),
    "bars_daily_2026.parquet": ("stooq-5min", STOOQ_5MIN),
    "bars_5min.parquet": ("stooq-5min", STOOQ_5MIN),
}


def bar_source(path: str | Path) -> tuple[str, PriceBasis | None]:
    """The ``source`` tag and price basis of a bars file.

    A Parquet file may name them in its key-value metadata (``technic.source``,
    ``technic.split_adjusted`` / ``technic.dividend_adjusted`` = ``true``/``false``,
    ``technic.adjusted_as_of`` = ISO date, ``technic.vendor``); otherwise
    :data:`KNOWN_BAR_FILES` by file name; otherwise ``("files", None)`` (basis unknown).
    """
    p = Path(path)
    meta: dict[bytes, bytes] = {}
    if p.suffix.lower() == ".parquet" and p.exists():
        meta = _reading(p, lambda: pq.read_schema(p)).metadata or {}
    if b"technic.source" in meta:
        def flag(k: str) -> bool | None:
            v = meta.get(f"technic.{k}".encode())
            return None if v is None else v.decode().strip().lower() == "true"
        as_of = meta.get(b"technic.adjusted_as_of")
        vendor = meta.get(b"technic.vendor")
        return meta[b"technic.source"].decode(), PriceBasis(
            split_adjusted=flag("split_adjusted"), dividend_adjusted=flag("dividend_adjusted"),
            adjusted_as_of=dt.date.fromisoformat(as_of.decode()) if as_of else None,
            vendor=vendor.decode() if vendor else None, note=f"from {p.name}'s metadata")
    return KNOWN_BAR_FILES.get(p.name, ("files", None))


class InputFileError(ValueError):
    """A file cannot be used at all (missing, empty, unknown format, unreadable or corrupt,
    required columns absent). The message names the file and the reason, on one line."""


def _reading(p: Path, fn: Callable[[], _T]) -> _T:
    """Run a read of ``p``; any failure becomes one :class:`InputFileError` line."""
    try:
        return fn()
    except InputFileError:
        raise
    except FileNotFoundError:
        raise InputFileError(f"{p}: no such file or directory") from None
    except Exception as e:  # pyarrow/pandas/gzip/zstd errors: the file itself is unusable
        msg = " ".join(str(e).split())[:300] or type(e).__name__
        raise InputFileError(f"{p}: cannot read it ({type(e).__name__}: {msg})") from None


def _check_readable(p: Path) -> None:
    if not p.exists():
        raise InputFileError(f"{p}: no such file or directory")
    if p.is_file() and p.stat().st_size == 0:
        raise InputFileError(f"{p}: empty file")


@dataclass(frozen=True)
class FileSet:
    """The files one ``technic ingest files PATH`` call loads."""

    bars: tuple[Path, ...]
    universe: Path | None
    #: Quarterly fundamentals (``fundamentals.parquet``/``.csv``), loaded after the bars.
    fundamentals: Path | None = None
    #: option-chain files (columns of :mod:`technic.options.chains`), loaded when named
    options: tuple[Path, ...] = ()


def discover(path: str | Path) -> FileSet:
    """Decide which files under ``path`` to ingest.

    A directory contributes ``universe.parquet`` (if present), ``bars_daily.parquet`` or
    ``bars_daily.csv``, and ``fundamentals.parquet``/``.csv`` (quarterly fundamentals, see
    :func:`read_fundamentals_file`). Other files there (e.g. ``bars_daily_2026.parquet``,
    which has a different price basis, or intraday bars) are only loaded when named
    explicitly. A file is
    classified by its columns: ``close`` → bars, ``period_end`` + ``available_date`` →
    fundamentals, otherwise ``symbol`` + ``sector``/``exchange`` → universe.

    Raises:
        InputFileError: the path does not exist, or holds nothing technic can load.
    """
    p = Path(path)
    _check_readable(p)
    if p.is_dir():
        bars = tuple(f for f in (p / "bars_daily.parquet", p / "bars_daily.csv") if f.exists())
        uni = p / "universe.parquet"
        fund = [f for f in (p / "fundamentals.parquet", p / "fundamentals.csv") if f.exists()]
        fs = FileSet(bars=bars[:1], universe=uni if uni.exists() else None,
                     fundamentals=fund[0] if fund else None)
        if not fs.bars and fs.universe is None and fs.fundamentals is None:
            raise InputFileError(f"{p}: no bars_daily.parquet/.csv or universe.parquet in it")
        return fs
    cols = set(_columns(p))
    if is_option_chain(cols):
        return FileSet(bars=(), universe=None, options=(p,))
    if "close" in cols:
        return FileSet(bars=(p,), universe=None)
    if {"period_end", "available_date"} <= cols:
        return FileSet(bars=(), universe=None, fundamentals=p)
    if "symbol" in cols and cols & {"sector", "exchange"}:
        return FileSet(bars=(), universe=p)
    raise InputFileError(f"{p}: neither a bars file (needs {', '.join(BAR_COLUMNS)}) nor a "
                         f"universe file (needs symbol and sector/exchange)")


def _is_csv(p: Path) -> bool:
    return p.suffix.lower() == ".csv" or p.name.lower().endswith(".csv.gz")


def _columns(p: Path) -> list[str]:
    _check_readable(p)
    if p.suffix.lower() == ".parquet":
        return _reading(p, lambda: pq.read_schema(p).names)
    if _is_csv(p):
        names = _reading(p, lambda: list(
            pd.read_csv(p, nrows=0, encoding_errors="replace").columns))
        if not names:
            raise InputFileError(f"{p}: no header line")
        return names
    raise InputFileError(f"{p}: unknown file type (expected .parquet, .csv or .csv.gz)")


def _read_csv_text(p: Path, names: list[str], include: list[str]
                   ) -> tuple[pa.Table, pd.DataFrame]:
    """A CSV file with every column as text; lines with the wrong number of fields set apart
    as rejects, bytes that are not UTF-8 replaced by U+FFFD."""
    bad: list[dict] = []

    def on_bad_line(row) -> str:
        text = row.text or ""
        if len(text) > MAX_REJECT_TEXT:
            text = f"{text[:MAX_REJECT_TEXT]}… ({len(text):,} characters)"
        bad.append({"row": json.dumps({"line": row.number, "text": text.replace("\x00",
                                                                                "\u2400")}),
                    "reason": f"ragged CSV line ({row.actual_columns} fields, "
                              f"{row.expected_columns} expected)"})
        return "skip"

    opts = pacsv.ConvertOptions(column_types={c: pa.string() for c in names},
                                include_columns=include, strings_can_be_null=True,
                                check_utf8=False)
    table = _reading(p, lambda: pacsv.read_csv(
        p, convert_options=opts, parse_options=pacsv.ParseOptions(
            invalid_row_handler=on_bad_line)))
    cols = []
    for col in table.columns:
        try:
            col.validate(full=True)
        except pa.ArrowInvalid:  # invalid UTF-8 somewhere in the column
            col = pa.chunked_array([pa.array(
                [None if v is None else v.decode("utf-8", "replace")
                 for v in c.cast(pa.binary()).to_pylist()], type=pa.string())
                for c in col.chunks], type=pa.string())
        cols.append(col)
    table = pa.table(cols, names=table.column_names)
    return table, pd.DataFrame(bad, columns=["row", "reason"])


def time_column_of(path: str | Path) -> str:
    """``"ts"`` for an intraday bars file (a ``ts`` column, no ``date``), else ``"date"``."""
    names = _columns(Path(path))
    return "ts" if "ts" in names and "date" not in names else "date"


def _bar_columns(names: list[str]) -> tuple[str, ...]:
    return INTRADAY_BAR_COLUMNS if "ts" in names and "date" not in names else BAR_COLUMNS


def read_bars_file(path: str | Path) -> tuple[pa.Table, pd.DataFrame]:
    """Read a bars file as an Arrow table: daily (``date``) or intraday (``ts``, bar start in
    UTC), columns in the order of ``BAR_COLUMNS`` / ``INTRADAY_BAR_COLUMNS``.

    Parquet columns keep their types (``date32``, ``timestamp``, float64: no pandas copy);
    CSV columns are all text (so unparseable values survive to validation).

    Returns:
        ``(table, bad_lines)``: ``bad_lines`` holds the CSV lines that could not be split
        into the header's fields (``row`` JSON with line number and text, ``reason``); empty
        for Parquet.

    Raises:
        InputFileError: missing, empty, unknown type, unreadable or corrupt, or a required
            column is missing.
    """
    p = Path(path)
    names = _columns(p)
    cols = _bar_columns(names)
    _require(p, names, cols)
    if p.suffix.lower() == ".parquet":
        return (_reading(p, lambda: pq.read_table(p, columns=list(cols))),
                pd.DataFrame(columns=["row", "reason"]))
    return _read_csv_text(p, names, list(cols))


def read_bars_table(path: str | Path) -> pa.Table:
    """The table of :func:`read_bars_file` (ragged CSV lines left out).

    Raises:
        InputFileError: as :func:`read_bars_file`.
    """
    return read_bars_file(path)[0]


def read_bars(path: str | Path) -> pd.DataFrame:
    """Read a bars file as it is: daily (``date``) or intraday (``ts``, bar start in UTC).

    Returns:
        DataFrame with the columns of ``BAR_COLUMNS`` or ``INTRADAY_BAR_COLUMNS``; one row per
        input row. In CSV files every column is read as text (so unparseable values survive
        to validation); Parquet columns keep their types (``date`` as ``datetime64``).

    Raises:
        InputFileError: unknown file type or a required column is missing.
    """
    return read_bars_table(path).to_pandas(date_as_object=False)


def read_universe_file(path: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read a universe (reference data) file as it is: one row per input row.

    CSV columns are read as text (``is_etf``/``active``/``market_cap`` are parsed by
    :func:`technic.validation.validate_universe`); Parquet columns keep their types.

    Returns:
        ``(rows, bad_lines)``: rows with ``UNIVERSE_COLUMNS`` (missing optional columns filled
        with nulls); ``bad_lines`` as in :func:`read_bars_file`.

    Raises:
        InputFileError: missing, empty, unreadable, or no ``symbol`` column.
    """
    p = Path(path)
    names = _columns(p)
    if "symbol" not in names:
        raise InputFileError(f"{p}: universe file has no 'symbol' column")
    if p.suffix.lower() == ".parquet":
        df = _reading(p, lambda: pq.read_table(p).to_pandas())
        bad = pd.DataFrame(columns=["row", "reason"])
    else:
        table, bad = _read_csv_text(p, names, [c for c in names if c in UNIVERSE_COLUMNS])
        df = table.to_pandas()
    for c in UNIVERSE_COLUMNS:
        if c not in df.columns:
            df[c] = None
    return df[list(UNIVERSE_COLUMNS)].reset_index(drop=True), bad


def read_universe(path: str | Path) -> pd.DataFrame:
    """The valid rows of a universe file (:func:`read_universe_file`, then
    :func:`technic.validation.validate_universe`): one row per symbol.

    Raises:
        InputFileError: as :func:`read_universe_file`.
    """
    from technic.validation import validate_universe

    return validate_universe(read_universe_file(path)[0])[0]


def _require(p: Path, names: list[str], needed: tuple[str, ...]) -> None:
    missing = [c for c in needed if c not in names]
    if missing:
        raise InputFileError(f"{p}: missing column(s) {', '.join(missing)}")


#: Columns a fundamentals file must have (``fiscal_year``/``fiscal_period`` are optional).
FUNDAMENTALS_REQUIRED = ("symbol", "period_end", "available_date", "revenue", "net_income",
                         "total_assets", "equity", "free_cash_flow", "shares_diluted")


def read_fundamentals_file(path: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read a quarterly fundamentals file as it is (one row per input row).

    The shared ``fundamentals.parquet`` (README_options_fundamentals.md): ``symbol``,
    ``period_end`` (fiscal quarter end, a month end), ``available_date`` (first public date:
    the filing date in practice), the single-quarter flows ``revenue``, ``net_income``,
    ``free_cash_flow`` and the quarter-end ``total_assets``, ``equity`` (USD), and
    ``shares_diluted`` (weighted-average diluted shares of the quarter). Other columns
    (``source_ticker``, ``available_date_suspect``) are dropped: validation recomputes the
    suspect dates from the two dates. CSV columns are read as text.

    Returns:
        ``(rows, bad_lines)``: rows with :data:`FUNDAMENTALS_REQUIRED` plus ``fiscal_year``,
        ``fiscal_period`` (null when absent); ``bad_lines`` as in :func:`read_bars_file`.

    Raises:
        InputFileError: missing, empty, unreadable, or a required column is absent.
    """
    p = Path(path)
    names = _columns(p)
    _require(p, names, FUNDAMENTALS_REQUIRED)
    keep = [c for c in (*FUNDAMENTALS_REQUIRED, "fiscal_year", "fiscal_period") if c in names]
    if p.suffix.lower() == ".parquet":
        df = _reading(p, lambda: pq.read_table(p, columns=keep).to_pandas())
        bad = pd.DataFrame(columns=["row", "reason"])
    else:
        table, bad = _read_csv_text(p, names, keep)
        df = table.to_pandas()
    for c in ("fiscal_year", "fiscal_period"):
        if c not in df.columns:
            df[c] = None
    return df.reset_index(drop=True), bad
def read_options_file(path: str | Path) -> tuple[pa.Table, pd.DataFrame]:
    """Read an option-chain file (Parquet typed, CSV as text) with the columns of
    :data:`technic.options.chains.OPTION_SCHEMA` it has (aliases accepted).

    Returns:
        ``(table, bad_lines)`` as :func:`read_bars_file`.

    Raises:
        InputFileError: missing, empty, unknown type, unreadable or corrupt, or a required
            column (date, underlying, expiration, strike, option_type) is missing.
    """
    p = Path(path)
    names = _columns(p)
    wanted = [c for c in names if OPTION_ALIASES.get(c, c) in OPTION_SCHEMA.names]
    _require(p, [OPTION_ALIASES.get(c, c) for c in names], REQUIRED_COLUMNS)
    if p.suffix.lower() == ".parquet":
        return (_reading(p, lambda: pq.read_table(p, columns=wanted)),
                pd.DataFrame(columns=["row", "reason"]))
    return _read_csv_text(p, names, wanted)
