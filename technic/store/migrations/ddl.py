"""SQL helpers shared by the migrations (:mod:`technic.store.migrations`) and the code that
applies them (:mod:`technic.store.schema`): identifier quoting and the DDL fragments several
migrations repeat."""

from __future__ import annotations

from collections.abc import Iterable


def quote_ident(name: str) -> str:
    """Quote an SQL identifier (schema names may be reserved words, e.g. ``full``)."""
    return '"' + name.replace('"', '""') + '"'


def _bars_table(name: str, time_col: str, timescale: bool) -> str:
    """DDL of an OHLCV bars table keyed by (symbol, <time column>), range-partitioned on the
    time column unless it becomes a TimescaleDB hypertable."""
    col = time_col.split()[0]
    part = "" if timescale else f" PARTITION BY RANGE ({col})"
    return f"""CREATE TABLE IF NOT EXISTS {name} (
    symbol text NOT NULL,
    {time_col} NOT NULL,
    open double precision NOT NULL,
    high double precision NOT NULL,
    low double precision NOT NULL,
    close double precision NOT NULL,
    volume double precision NOT NULL,
    source text NOT NULL,
    ingested_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, {col})
){part}"""


def _double_cols(names: Iterable[str]) -> str:
    return ",\n".join(f"    {c} double precision" for c in names)


def _sql_text(v: str | None) -> str:
    """A SQL string literal of a constant declared in code (never user input)."""
    return "NULL" if v is None else "'" + v.replace("'", "''") + "'"
