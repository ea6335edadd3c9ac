"""What a feature refresh did (:class:`RefreshReport`), and what it needs to know about the
store's state: which trading dates form a window, which symbols have bars in a range, which
feature rows are stale, and whether an ingest rewrote history since a cached bar window was
read.

SQL only; the decisions that use these answers live in :mod:`technic.jobs.refresh` and
:mod:`technic.incremental`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import sqlalchemy as sa

from technic.store.db import DatabaseTarget, get_engine


@dataclass
class RefreshReport:
    """What one refresh or backfill did."""

    as_of: dt.date
    symbols: int
    chunks: int
    rows_written: int
    start: dt.date | None = None
    timings: dict[str, float] = field(default_factory=dict)
    #: "full", or for an incremental refresh "append" / "update" / "unchanged" / "rebuild"
    #: (see :mod:`technic.incremental`).
    mode: str = "full"
    #: Where an incremental refresh found its window: "l1", "l2" or "miss".
    window_layer: str | None = None


def stale_symbols(target: DatabaseTarget, start: dt.date, day: dt.date) -> list[str]:
    """Symbols with a bar on ``day`` whose feature row for ``day`` is missing, or was computed
    before the latest ingest of a bar in ``[start, day]``. Sorted."""
    with get_engine(target).connect() as c:
        return list(c.execute(sa.text("""
            SELECT b.symbol
            FROM (SELECT symbol, max(ingested_at) AS last_ingest,
                         bool_or(date = :day) AS has_day
                  FROM bars_daily WHERE date >= :start AND date <= :day
                  GROUP BY symbol) b
            LEFT JOIN features_daily f ON f.symbol = b.symbol AND f.date = :day
            WHERE b.has_day AND (f.symbol IS NULL OR f.computed_at < b.last_ingest)
            ORDER BY b.symbol"""), {"start": start, "day": day}).scalars())


def symbols_between(target: DatabaseTarget, start: dt.date, end: dt.date) -> list[str]:
    """Symbols with at least one daily bar in ``[start, end]``, sorted."""
    with get_engine(target).connect() as c:
        return list(c.execute(sa.text(
            "SELECT DISTINCT symbol FROM bars_daily WHERE date >= :s AND date <= :e "
            "ORDER BY symbol"), {"s": start, "e": end}).scalars())


def trading_window(target: DatabaseTarget, day: dt.date, lookback: int) -> np.ndarray:
    """The last ``lookback`` trading dates (``trading_dates``) on or before ``day``.

    Returns:
        ``(T,) datetime64[D]``, increasing, ``T ≤ lookback``.
    """
    with get_engine(target).connect() as c:
        rows = c.execute(sa.text("SELECT date FROM trading_dates WHERE date <= :d "
                                 "ORDER BY date DESC LIMIT :n"),
                         {"d": day, "n": lookback}).scalars().all()
    return np.array(sorted(rows), dtype="datetime64[D]")


def history_changed_before(target: DatabaseTarget, since_version: int, day: dt.date) -> bool:
    """Did an ingest after ``since_version`` (an ``ingest_runs.run_id``) insert or update bars
    dated before ``day``? A run without a recorded range (``changed_from`` NULL, e.g. written
    before migration 5) counts as a rewrite."""
    with get_engine(target).connect() as c:
        lo = c.execute(sa.text(
            "SELECT min(changed_from) FROM ingest_runs WHERE run_id > :v AND status = 'ok' "
            "AND coalesce(rows_inserted, 0) + coalesce(rows_updated, 0) > 0"),
            {"v": since_version}).scalar()
        unknown = c.execute(sa.text(
            "SELECT count(*) FROM ingest_runs WHERE run_id > :v AND status = 'ok' "
            "AND coalesce(rows_inserted, 0) + coalesce(rows_updated, 0) > 0 "
            "AND changed_from IS NULL"), {"v": since_version}).scalar()
    return bool(unknown) or (lo is not None and lo < day)


def feature_rows_on(target: DatabaseTarget, day: dt.date) -> int:
    """Rows of ``features_daily`` dated ``day``."""
    with get_engine(target).connect() as c:
        return int(c.execute(sa.text("SELECT count(*) FROM features_daily WHERE date = :d"),
                             {"d": day}).scalar_one())
