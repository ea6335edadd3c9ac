"""The feature store: ``features_daily`` writes (upsert) and reads joined with reference data."""

from __future__ import annotations

import datetime as dt
from contextlib import nullcontext

import numpy as np
import pandas as pd
import pyarrow as pa
import sqlalchemy as sa

from technic.features.registry import FEATURE_COLUMNS
from technic.store.db import DatabaseTarget, adbc_connect, get_engine, pooled_adbc
from technic.store.schema import ensure_partitions

_COLS = ("symbol", "date", *FEATURE_COLUMNS, "n_bars")


def _days(df: pd.DataFrame) -> np.ndarray:
    # The rows' dates as (n,) datetime64[D] (a column of dates, Timestamps or datetime64).
    d = df["date"].to_numpy()
    if d.dtype.kind != "M":
        d = pd.to_datetime(df["date"]).to_numpy()
    return d.astype("datetime64[D]")


def _to_arrow(df: pd.DataFrame, days: np.ndarray) -> pa.Table:
    arrays = {
        "symbol": pa.array(df["symbol"].astype(str).to_numpy(), pa.string()),
        "date": pa.array(days, pa.date32()),
    }
    for c in FEATURE_COLUMNS:
        v = df[c].to_numpy(dtype=np.float64)
        arrays[c] = pa.array(v, pa.float64(), mask=~np.isfinite(v))  # NaN/inf → SQL NULL
    arrays["n_bars"] = pa.array(df["n_bars"].to_numpy(dtype=np.int32), pa.int32())
    return pa.table(arrays)


def write_features(target: DatabaseTarget, df: pd.DataFrame, conn=None) -> int:
    """Upsert feature rows (one transaction: readers see all of them or none).

    Args:
        df: columns ``symbol, date, <FEATURE_COLUMNS>, n_bars``; NaN is stored as NULL.
        conn: an open :func:`technic.store.db.adbc_connect` connection to reuse (committed,
            left open); default a new one.

    Returns:
        Rows written.

    Raises:
        KeyError: a column is missing.
    """
    if df.empty:
        return 0
    missing = [c for c in _COLS if c not in df.columns]
    if missing:
        raise KeyError(f"feature frame lacks column(s): {', '.join(missing)}")
    days = _days(df)
    distinct = np.unique(days)
    years = np.unique(distinct.astype("datetime64[Y]"))
    with get_engine(target).begin() as sql_conn:
        ensure_partitions(sql_conn, target.schema, "features_daily", years)
    cols = ", ".join(_COLS)
    sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in (*FEATURE_COLUMNS, "n_bars"))
    with (nullcontext(conn) if conn is not None else adbc_connect(target)) as conn, \
            conn.cursor() as cur:
        # Feature writers take turns (short transactions). Dates with no rows yet (a new
        # day: the common case) are copied straight into the table; otherwise the rows are
        # staged and upserted.
        cur.execute("SELECT pg_advisory_xact_lock(hashtext('technic-features-write'))")
        cur.fetchall()
        cur.execute("SELECT count(*) FROM features_daily WHERE date = ANY($1)",
                    parameters=pa.record_batch([pa.array([distinct.tolist()],
                                                         pa.list_(pa.date32()))], names=["d"]))
        (stored,) = cur.fetchone()
        if not stored:
            cur.adbc_ingest("features_daily", _to_arrow(df, days), mode="append")
        else:
            cur.adbc_ingest("_stage_features", _to_arrow(df, days), mode="create",
                            temporary=True)
            cur.execute(f"INSERT INTO features_daily ({cols}) SELECT {cols} "
                        f"FROM _stage_features ON CONFLICT (symbol, date) DO UPDATE SET "
                        f"{sets}, computed_at = now()")
            cur.execute("DROP TABLE _stage_features")  # the connection may be reused
        conn.commit()
    return len(df)


def latest_feature_date(target: DatabaseTarget, on_or_before: dt.date | None = None
                        ) -> dt.date | None:
    """The latest date in ``features_daily`` (on or before ``on_or_before``), or None."""
    sql = "SELECT max(date) FROM features_daily" + (" WHERE date <= :d" if on_or_before else "")
    with get_engine(target).connect() as c:
        return c.execute(sa.text(sql), {"d": on_or_before}).scalar()


def features_version(target: DatabaseTarget, date: dt.date) -> str:
    """A token that changes whenever the feature rows of ``date`` change (cache keys).

    Built from the row count and the latest ``computed_at`` of that date (every upsert sets
    ``computed_at = now()``) and the latest ``symbols.updated_at`` (reference data is joined).
    """
    with get_engine(target).connect() as c:
        n, last, ref = c.execute(sa.text(
            "SELECT count(*), max(computed_at), (SELECT max(updated_at) FROM symbols) "
            "FROM features_daily WHERE date = :d"), {"d": date}).one()
    stamp = [x.timestamp() if x else 0.0 for x in (last, ref)]
    return f"{n}-{stamp[0]:.6f}-{stamp[1]:.6f}"


def read_features_arrow(target: DatabaseTarget, date: dt.date) -> pa.Table:
    """Feature rows of ``date`` joined with reference data, as an Arrow table (see
    :func:`read_features`)."""
    sql = (f"SELECT {', '.join('f.' + c for c in _COLS)}, s.name, s.exchange, s.sector, "
           "s.industry, s.security_type, s.is_etf, s.active "
           "FROM features_daily f JOIN symbols s USING (symbol) WHERE f.date = $1 "
           "ORDER BY f.symbol")
    with pooled_adbc(target) as conn, conn.cursor() as cur:
        cur.execute(sql, parameters=(date,))
        return cur.fetch_arrow_table()


def read_features(target: DatabaseTarget, date: dt.date) -> pd.DataFrame:
    """Feature rows of ``date`` joined with reference data from ``symbols``.

    Returns:
        One row per symbol: ``symbol, date, <FEATURE_COLUMNS>, n_bars, name, exchange, sector,
        industry, security_type, is_etf, active`` (NULL → NaN/None).
    """
    return read_features_arrow(target, date).to_pandas(date_as_object=True)
