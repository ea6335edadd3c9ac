"""Small lookups about what the store holds: row counts per table, known sectors, the latest
intraday bar, finished ingest runs, the latest good scan of a date. SQL only; callers are the
jobs, the CLI and the flows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pandas as pd
import sqlalchemy as sa

from technic.store.db import DatabaseTarget, get_engine

#: The tables ``technic db info`` counts, in display order.
INFO_TABLES: tuple[str, ...] = ("symbols", "bars_daily", "features_daily", "ingest_runs",
                                "ingest_rejects", "scan_runs", "scan_results", "fundamentals",
                                "scan_presets")


def table_counts(target: DatabaseTarget,
                 tables: Sequence[str] = INFO_TABLES) -> dict[str, int]:
    """Rows per table, ``{table: count}`` in the order of ``tables``.

    Raises:
        ValueError: a name that is not one of :data:`INFO_TABLES` (never interpolate
            arbitrary names into SQL).
    """
    unknown = [t for t in tables if t not in INFO_TABLES]
    if unknown:
        raise ValueError(f"not a counted table: {', '.join(unknown)}")
    with get_engine(target).connect() as c:
        return {t: int(c.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one())
                for t in tables}


def known_sectors(target: DatabaseTarget) -> list[str]:
    """Distinct non-NULL ``symbols.sector`` values, sorted; empty while ``symbols`` is."""
    with get_engine(target).connect() as c:
        return sorted(r[0] for r in c.execute(sa.text(
            "SELECT DISTINCT sector FROM symbols WHERE sector IS NOT NULL")))


def latest_intraday_start(target: DatabaseTarget) -> pd.Timestamp | None:
    """Start of the latest stored intraday bar (UTC), None when ``bars_intraday`` is empty."""
    with get_engine(target).connect() as c:
        last = c.execute(sa.text("SELECT max(ts) FROM bars_intraday")).scalar()
    return None if last is None else pd.Timestamp(last).tz_convert("UTC")


def ingest_run_finished_at(target: DatabaseTarget, run_id: int) -> dt.datetime | None:
    """When ingest run ``run_id`` finished (None: no such run, or still running)."""
    with get_engine(target).connect() as c:
        return c.execute(sa.text("SELECT finished_at FROM ingest_runs WHERE run_id = :v"),
                         {"v": run_id}).scalar()


def finished_ingest_paths(target: DatabaseTarget, source: str, prefix: str) -> list[str]:
    """``ingest_runs.path`` of the runs of ``source`` that finished (status ``ok``) and whose
    path starts with ``prefix``."""
    with get_engine(target).connect() as c:
        return list(c.execute(sa.text(
            "SELECT path FROM ingest_runs WHERE source = :s AND status = 'ok' "
            "AND starts_with(path, :p)"), {"s": source, "p": prefix}).scalars())


def ok_scan_run_on(target: DatabaseTarget, day: dt.date) -> int | None:
    """The latest scan run of ``day`` (``scan_runs.as_of``) that finished ``ok``, or None."""
    with get_engine(target).connect() as c:
        return c.execute(sa.text("SELECT max(run_id) FROM scan_runs WHERE as_of = :d "
                                 "AND status = 'ok'"), {"d": day}).scalar()
