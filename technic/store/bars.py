"""Reads of daily bars from the store: as-of dates, symbol lists and panels (via Arrow)."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from contextlib import nullcontext

import pyarrow as pa
import sqlalchemy as sa

from technic.panel import Panel
from technic.store.db import DatabaseTarget, adbc_connect, get_engine


class NoDataError(LookupError):
    """The store holds no bars for what was asked (empty database, date before the data)."""


def last_bar_date(target: DatabaseTarget, on_or_before: dt.date | None = None) -> dt.date:
    """The latest date with any bar, optionally on or before ``on_or_before``.

    Raises:
        NoDataError: no bars (on or before that date).
    """
    sql = "SELECT max(date) FROM trading_dates" + (" WHERE date <= :d" if on_or_before else "")
    with get_engine(target).connect() as c:
        d = c.execute(sa.text(sql), {"d": on_or_before}).scalar()
    if d is None:
        raise NoDataError("no daily bars stored" + (f" on or before {on_or_before}"
                                                    if on_or_before else "")
                          + "; run `technic ingest files` first")
    return d


def symbols_with_bar(target: DatabaseTarget, date: dt.date) -> list[str]:
    """Symbols that have a bar on ``date``, sorted."""
    with get_engine(target).connect() as c:
        rows = c.execute(sa.text("SELECT symbol FROM bars_daily WHERE date = :d ORDER BY symbol"),
                         {"d": date}).scalars().all()
    return list(rows)


def window_start(target: DatabaseTarget, end: dt.date, lookback_bars: int) -> dt.date:
    """First date of the last ``lookback_bars`` trading dates up to ``end``.

    Trading dates are the dates of ``bars_daily`` (any symbol; kept in ``trading_dates`` by
    every daily ingest), so the window is the same for every symbol and every chunk: results
    never depend on how symbols are chunked.

    Raises:
        NoDataError: no bars on or before ``end``.
    """
    with get_engine(target).connect() as c:
        d = c.execute(sa.text(
            "SELECT min(date) FROM (SELECT date FROM trading_dates WHERE date <= :end "
            "ORDER BY date DESC LIMIT :n) t"), {"end": end, "n": lookback_bars}).scalar()
    if d is None:
        raise NoDataError(f"no daily bars on or before {end}")
    return d


def bars_version(target: DatabaseTarget) -> int:
    """A number that grows with every ingest that changed ``bars_daily`` (cache keys): the
    latest successful ``ingest_runs.run_id`` that inserted or updated bars, 0 if none."""
    with get_engine(target).connect() as c:
        v = c.execute(sa.text(
            "SELECT max(run_id) FROM ingest_runs WHERE status = 'ok' "
            "AND coalesce(rows_inserted, 0) + coalesce(rows_updated, 0) > 0")).scalar()
    return int(v or 0)


def read_bars_arrow(target: DatabaseTarget, start: dt.date, end: dt.date,
                    symbols: Sequence[str] | None = None, conn=None) -> pa.Table:
    """Long bars ``symbol, date, open, high, low, close, volume`` dated ``start`` … ``end``
    (inclusive), optionally only for ``symbols``, as an Arrow table (binary COPY via ADBC).

    ``conn``: an open :func:`adbc_connect` connection to reuse (left open); default a new
    one."""
    sql = ("SELECT symbol, date, open, high, low, close, volume FROM bars_daily "
           "WHERE date >= $1 AND date <= $2")
    with (nullcontext(conn) if conn is not None else adbc_connect(target)) as conn, \
            conn.cursor() as cur:
        if symbols is not None:
            # ADBC binds one Arrow row of parameters; a list parameter goes as list<string>.
            cur.execute(sql + " AND symbol = ANY($3)", parameters=pa.record_batch(
                [pa.array([start], pa.date32()), pa.array([end], pa.date32()),
                 pa.array([list(symbols)], pa.list_(pa.string()))], names=["a", "b", "c"]))
        else:
            cur.execute(sql, parameters=(start, end))
        return cur.fetch_arrow_table()


def load_panel(target: DatabaseTarget, start: dt.date, end: dt.date,
               symbols: Sequence[str] | None = None, cache=None,
               version: int | None = None) -> Panel:
    """Load the bars dated ``start`` … ``end`` (inclusive) as a :class:`Panel`.

    Args:
        target: the store.
        start: first date included (see :func:`window_start`).
        end: last date included.
        symbols: restrict to these symbols (a Dask chunk); ``None`` = every symbol.
        cache: a :class:`technic.cache.FrameCache` to look the bars up in first.
        version: :func:`bars_version` at planning time (part of the cache key; required with
            ``cache``).

    Returns:
        Panel ``(T, N)``: ``T`` dates on which at least one loaded symbol has a bar; symbols
        with no bar in the window are absent.
    """
    if cache is None:
        return Panel.from_arrow(read_bars_arrow(target, start, end, symbols))
    if version is None:
        raise ValueError("load_panel: a cached read needs the bars version")
    digest = hashlib.sha1("\n".join(symbols or ["*"]).encode()).hexdigest()[:16]
    table, _ = cache.get_or_load(f"bars:{version}:{start}:{end}:{digest}",
                                 lambda: read_bars_arrow(target, start, end, symbols))
    return Panel.from_arrow(table)
