"""Reads of stored history for evaluation and model training: feature rows of a date range
joined with reference data, and daily closes (for forward-return labels)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pandas as pd

from technic.store.db import DatabaseTarget, fetch_frame

#: ``symbols`` columns the universe filter needs (:func:`technic.universe.apply_rules`).
REFERENCE_COLUMNS: tuple[str, ...] = ("name", "sector", "security_type", "is_etf", "active")


def read_feature_history(target: DatabaseTarget, start: dt.date, end: dt.date,
                         columns: Sequence[str],
                         reference: Sequence[str] = REFERENCE_COLUMNS) -> pd.DataFrame:
    """Stored feature rows of ``[start, end]`` joined with reference data.

    Args:
        columns: ``features_daily`` columns to read (besides ``symbol, date``); names, not
            user input.
        reference: ``symbols`` columns to join.

    Returns:
        ``symbol, date, <columns>, <reference>``, one row per stored (symbol, date), ordered
        by date then symbol (a fixed order: seeded shuffles downstream are reproducible);
        ``date`` as ``datetime64``.
    """
    return fetch_frame(target,
                       f"SELECT f.symbol, f.date, {', '.join('f.' + c for c in columns)}, "
                       f"{', '.join('s.' + c for c in reference)} "
                       "FROM features_daily f JOIN symbols s USING (symbol) "
                       "WHERE f.date >= $1 AND f.date <= $2 ORDER BY f.date, f.symbol",
                       (start, end))


def read_closes(target: DatabaseTarget, start: dt.date,
                end: dt.date | None = None) -> pd.DataFrame:
    """Daily closes ``symbol, date, close`` (USD per share) from ``start`` (to ``end``
    inclusive, or every later bar when None), in storage order."""
    if end is None:
        return fetch_frame(target, "SELECT symbol, date, close FROM bars_daily "
                                   "WHERE date >= $1", (start,))
    return fetch_frame(target, "SELECT symbol, date, close FROM bars_daily "
                               "WHERE date >= $1 AND date <= $2", (start, end))


def read_trading_dates(target: DatabaseTarget) -> pd.Series:
    """Every trading date of the store (``trading_dates``: the dates of ``bars_daily``),
    ascending, as ``datetime64`` — the data set's calendar, from which the locked test period
    is declared (:func:`technic.scoring.protocol.locked_split`)."""
    return fetch_frame(target, "SELECT date FROM trading_dates ORDER BY date", ())["date"]
