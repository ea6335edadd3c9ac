"""Read OHLCV bars and universe (reference) rows from Parquet or CSV files.

Bars files need the columns ``symbol, date, open, high, low, close, volume`` (prices in quote
currency per share, volume in shares). Dates are ISO 8601 (``YYYY-MM-DD``) in CSV files or
``date32``/timestamp in Parquet. Values are returned as read: validation happens in
:mod:`technic.validation`, so a malformed row becomes a counted reject, not a crash.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from technic.validation import PriceBasis

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
        meta = pq.read_schema(p).metadata or {}
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
    """A file cannot be used at all (missing, unknown format, required columns absent)."""


@dataclass(frozen=True)
class FileSet:
    """The files one ``technic ingest files PATH`` call loads."""

    bars: tuple[Path, ...]
    universe: Path | None


def discover(path: str | Path) -> FileSet:
    """Decide which files under ``path`` to ingest.

    A directory contributes ``universe.parquet`` (if present) and ``bars_daily.parquet`` or
    ``bars_daily.csv``. Other files there (e.g. ``bars_daily_2026.parquet``, which has a
    different price basis, or intraday bars) are only loaded when named explicitly. A file is
    classified by its columns: ``close`` → bars, otherwise ``symbol`` + ``sector``/``exchange``
    → universe.

    Raises:
        InputFileError: the path does not exist, or holds nothing technic can load.
    """
    p = Path(path)
    if not p.exists():
        raise InputFileError(f"{p}: no such file or directory")
    if p.is_dir():
        bars = tuple(f for f in (p / "bars_daily.parquet", p / "bars_daily.csv") if f.exists())
        uni = p / "universe.parquet"
        fs = FileSet(bars=bars[:1], universe=uni if uni.exists() else None)
        if not fs.bars and fs.universe is None:
            raise InputFileError(f"{p}: no bars_daily.parquet/.csv or universe.parquet in it")
        return fs
    cols = set(_columns(p))
    if "close" in cols:
        return FileSet(bars=(p,), universe=None)
    if "symbol" in cols and cols & {"sector", "exchange"}:
        return FileSet(bars=(), universe=p)
    raise InputFileError(f"{p}: neither a bars file (needs {', '.join(BAR_COLUMNS)}) nor a "
                         f"universe file (needs symbol and sector/exchange)")


def _is_csv(p: Path) -> bool:
    return p.suffix.lower() == ".csv" or p.name.lower().endswith(".csv.gz")


def _columns(p: Path) -> list[str]:
    if p.suffix.lower() == ".parquet":
        return pq.read_schema(p).names
    if _is_csv(p):
        return list(pd.read_csv(p, nrows=0).columns)
    raise InputFileError(f"{p}: unknown file type (expected .parquet, .csv or .csv.gz)")


def time_column_of(path: str | Path) -> str:
    """``"ts"`` for an intraday bars file (a ``ts`` column, no ``date``), else ``"date"``."""
    names = _columns(Path(path))
    return "ts" if "ts" in names and "date" not in names else "date"


def _bar_columns(names: list[str]) -> tuple[str, ...]:
    return INTRADAY_BAR_COLUMNS if "ts" in names and "date" not in names else BAR_COLUMNS


def read_bars_table(path: str | Path) -> pa.Table:
    """Read a bars file as an Arrow table: daily (``date``) or intraday (``ts``, bar start in
    UTC), columns in the order of ``BAR_COLUMNS`` / ``INTRADAY_BAR_COLUMNS``.

    Parquet columns keep their types (``date32``, ``timestamp``, float64: no pandas copy);
    CSV columns are all text (so unparseable values survive to validation).

    Raises:
        InputFileError: unknown file type or a required column is missing.
    """
    p = Path(path)
    if p.suffix.lower() == ".parquet":
        names = pq.read_schema(p).names
        cols = _bar_columns(names)
        _require(p, names, cols)
        return pq.read_table(p, columns=list(cols))
    if _is_csv(p):
        names = _columns(p)
        cols = _bar_columns(names)
        _require(p, names, cols)
        opts = pacsv.ConvertOptions(column_types={c: pa.string() for c in names},
                                    include_columns=list(cols),
                                    strings_can_be_null=True)
        return pacsv.read_csv(p, convert_options=opts)
    raise InputFileError(f"{p}: unknown file type (expected .parquet, .csv or .csv.gz)")


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


def read_universe(path: str | Path) -> pd.DataFrame:
    """Read a universe (reference data) file: one row per symbol.

    Returns:
        DataFrame with ``UNIVERSE_COLUMNS`` (missing optional columns filled with nulls).

    Raises:
        InputFileError: no ``symbol`` column.
    """
    p = Path(path)
    df = pd.read_parquet(p) if p.suffix.lower() == ".parquet" else pd.read_csv(p)
    if "symbol" not in df.columns:
        raise InputFileError(f"{p}: universe file has no 'symbol' column")
    for c in UNIVERSE_COLUMNS:
        if c not in df.columns:
            df[c] = None
    df = df[list(UNIVERSE_COLUMNS)].copy()
    df["symbol"] = df["symbol"].astype("string").str.strip()
    return df[df["symbol"].notna() & (df["symbol"] != "")].drop_duplicates("symbol")


def _require(p: Path, names: list[str], needed: tuple[str, ...]) -> None:
    missing = [c for c in needed if c not in names]
    if missing:
        raise InputFileError(f"{p}: missing column(s) {', '.join(missing)}")
