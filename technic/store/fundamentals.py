"""Quarterly fundamentals: write validated quarters into ``fundamentals`` (migration 17) and
read the quarters public on or before a date.

Like the bars ingest, one write is one transaction (quarters and rejects land together) under
an advisory lock; a quarter already stored is rewritten only when a value differs, so
re-running the same file changes nothing (``rows_unchanged``). The key is
``(symbol, period_end)``: a later source (e.g. Polygon after the shared file) replaces a
quarter whose values differ and records itself in ``source``.
"""

from __future__ import annotations

import datetime as dt
import time

import numpy as np
import pandas as pd
import pyarrow as pa

from technic.store.db import DatabaseTarget, adbc_connect, pooled_adbc
from technic.store.ingest import IngestReport
from technic.store.migrations import FUNDAMENTAL_ITEMS
from technic.validation import FUNDAMENTAL_COLUMNS

_COLS = (*FUNDAMENTAL_COLUMNS, "source")

_UPDATE = f"""
WITH up AS (
    UPDATE fundamentals AS f SET
        {", ".join(f"{c} = s.{c}" for c in _COLS[2:])}, ingested_at = now()
    FROM _stage_fund AS s
    WHERE f.symbol = s.symbol AND f.period_end = s.period_end
      AND ({", ".join(f"f.{c}" for c in _COLS[2:])})
          IS DISTINCT FROM ({", ".join(f"s.{c}" for c in _COLS[2:])})
    RETURNING 1)
SELECT count(*) FROM up
"""

_INSERT = f"""
WITH ins AS (
    INSERT INTO fundamentals ({", ".join(_COLS)})
    SELECT {", ".join(f"s.{c}" for c in _COLS)} FROM _stage_fund AS s
    WHERE NOT EXISTS (SELECT 1 FROM fundamentals f
                      WHERE f.symbol = s.symbol AND f.period_end = s.period_end)
    RETURNING 1)
SELECT count(*) FROM ins
"""


def _to_arrow(good: pd.DataFrame, source: str) -> pa.Table:
    """Validated quarters (:func:`technic.validation.validate_fundamentals`) → Arrow with the
    column types of ``fundamentals`` (NaN items → NULL)."""
    n = len(good)
    fy = pd.to_numeric(good["fiscal_year"], errors="coerce").to_numpy(dtype="float64")
    cols: dict[str, pa.Array] = {
        "symbol": pa.array(good["symbol"].astype(str).to_numpy(), pa.string()),
        "period_end": pa.array(good["period_end"].to_numpy().astype("datetime64[D]"),
                               pa.date32()),
        "available_date": pa.array(good["available_date"].to_numpy().astype("datetime64[D]"),
                                   pa.date32()),
        "fiscal_year": pa.array(np.where(np.isfinite(fy), fy, 0).astype(np.int32), pa.int32(),
                                mask=~np.isfinite(fy)),
        "fiscal_period": pa.array([None if x is None or pd.isna(x) else str(x)
                                   for x in good["fiscal_period"]], pa.string()),
    }
    for c in FUNDAMENTAL_ITEMS:
        v = good[c].to_numpy(dtype=np.float64)
        cols[c] = pa.array(v, pa.float64(), mask=~np.isfinite(v))
    cols["source"] = pa.array([source] * n, pa.string())
    return pa.table(cols)


def write_fundamentals(target: DatabaseTarget, report: IngestReport, good: pd.DataFrame,
                       rejects: pd.DataFrame | None, source: str) -> IngestReport:
    """Upsert validated quarters and store the rejects, in one transaction; fill ``report``
    (``rows_inserted``/``rows_updated``/``rows_unchanged``, ``timings['store_s']``).

    ``changed_from``/``changed_to`` stay None: they describe bar history (caches of bar
    windows and ``market_daily`` read them), which fundamentals do not touch.

    Args:
        good: rows of :func:`technic.validation.validate_fundamentals`.
        rejects: ``row`` (JSON text), ``reason``.
        source: stored in ``fundamentals.source`` (e.g. ``files``, ``polygon``).

    Raises:
        Exception: any database error; nothing is written.
    """
    t0 = time.perf_counter()
    with adbc_connect(target) as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext('technic-ingest-fundamentals'))")
        cur.fetchall()
        if len(good):
            cur.adbc_ingest("_stage_fund", _to_arrow(good, source), mode="create",
                            temporary=True)
            cur.execute(_UPDATE)
            report.rows_updated = int(cur.fetchone()[0])
            cur.execute(_INSERT)
            report.rows_inserted = int(cur.fetchone()[0])
        report.rows_unchanged = len(good) - report.rows_inserted - report.rows_updated
        if rejects is not None and len(rejects):
            stage = pa.table({"row": pa.array(rejects["row"].tolist(), type=pa.string()),
                              "reason": pa.array(rejects["reason"].tolist(), type=pa.string())})
            cur.adbc_ingest("_stage_fund_rejects", stage, mode="create", temporary=True)
            cur.execute("INSERT INTO ingest_rejects (run_id, source, row, reason) "
                        "SELECT $1, $2, CAST(row AS jsonb), reason FROM _stage_fund_rejects",
                        parameters=(report.run_id, report.source))
        conn.commit()
    report.timings["store_s"] = round(time.perf_counter() - t0, 4)
    return report


#: Quarters older than this (period end before the scan date minus it) are not read for a
#: scan: the factors use the latest quarter (at most ~15 months old) and the one a year before.
READ_WINDOW_DAYS = 900


def read_fundamentals(target: DatabaseTarget, as_of: dt.date | None = None,
                      window_days: int | None = READ_WINDOW_DAYS,
                      symbols: list[str] | None = None) -> pd.DataFrame:
    """Stored quarters, optionally only those public on or before ``as_of``.

    Args:
        as_of: keep quarters with ``available_date <= as_of`` and (with ``window_days``)
            ``period_end >= as_of - window_days``; None = every quarter.
        window_days: see ``as_of``; None = no lower bound.
        symbols: only these symbols (None = all).

    Returns:
        DataFrame with :data:`technic.validation.FUNDAMENTAL_COLUMNS` and ``source``:
        ``period_end``/``available_date`` as ``datetime64[ns]``, items float64 (NaN = NULL),
        sorted by symbol and period end.
    """
    where: list[str] = []
    params: list[object] = []
    if as_of is not None:
        params.append(as_of)
        where.append(f"available_date <= ${len(params)}")
        if window_days is not None:
            params.append(as_of - dt.timedelta(days=int(window_days)))
            where.append(f"period_end >= ${len(params)}")
    sql = (f"SELECT {', '.join(_COLS)} FROM fundamentals"
           + (" WHERE " + " AND ".join(where) if where else "")
           + " ORDER BY symbol, period_end")
    # Arrow over a pooled ADBC connection: ~3x faster than SQLAlchemy rows for 20k quarters
    with pooled_adbc(target) as conn, conn.cursor() as cur:
        cur.execute(sql, parameters=tuple(params))
        df = cur.fetch_arrow_table().to_pandas(date_as_object=False)
    if symbols is not None:
        df = df[df["symbol"].isin(list(symbols))].reset_index(drop=True)
    for c in ("period_end", "available_date"):
        df[c] = pd.to_datetime(df[c]).astype("datetime64[ns]")
    for c in FUNDAMENTAL_ITEMS:
        df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
    df["fiscal_year"] = df["fiscal_year"].astype("Int64")
    return df
