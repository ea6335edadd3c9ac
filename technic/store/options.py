"""Option chains and option metrics in the store: ``option_chains`` (migration 21) and
``option_metrics`` (migration 22).

Chains are written like bars (:mod:`technic.store.ingest`): one transaction under an advisory
lock; rows of sessions with no stored chain are copied straight in (binary COPY), the others
go through a staging table, an update of contracts whose values changed and an insert of new
contracts, so a re-run of the same file changes nothing (``rows_unchanged``). Nothing is
deleted: a contract missing from a later file of the same session stays stored.
"""

from __future__ import annotations

import datetime as dt
import json
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from technic.store.db import DatabaseTarget, adbc_connect, get_engine
from technic.store.ingest import IngestReport, _const_strings
from technic.store.migrations import OPTION_METRIC_TYPES, OPTION_VALUE_COLUMNS
from technic.store.schema import ensure_partitions

_KEY = ("date", "underlying", "expiration", "option_type", "strike")
_LOCK = "SELECT pg_advisory_xact_lock(hashtext('technic-ingest-option_chains'))"


def _literal(d: dt.date) -> str:
    return f"DATE '{d.isoformat()}'"


def _stored_dates(cur, dates: list[dt.date]) -> set[dt.date]:
    """The sessions among ``dates`` with at least one stored contract (one index probe each)."""
    found = set()
    for d in dates:
        cur.execute("SELECT EXISTS (SELECT 1 FROM option_chains WHERE date = $1)",
                    parameters=(d,))
        if cur.fetchone()[0]:
            found.add(d)
    return found


def _upsert(cur, report: IngestReport, rows: pa.Table, source: str) -> None:
    """Stage ``rows``; rewrite contracts whose values changed, insert new ones."""
    cur.adbc_ingest("_stage_options", rows, mode="replace", temporary=True)
    cur.execute("ANALYZE _stage_options")
    lo, hi = pc.min_max(rows["date"]).values()
    rng = f"o.date >= {_literal(lo.as_py())} AND o.date <= {_literal(hi.as_py())}"
    vals = ", ".join(OPTION_VALUE_COLUMNS)
    on = " AND ".join(f"o.{k} = s.{k}" for k in _KEY)
    cur.execute(f"""CREATE TEMPORARY TABLE _diff_options ON COMMIT DROP AS
        SELECT s.*, o.date IS NULL AS is_new
        FROM _stage_options s LEFT JOIN option_chains o ON {on} AND {rng}
        WHERE o.date IS NULL
           OR ({', '.join('o.' + c for c in OPTION_VALUE_COLUMNS)})
              IS DISTINCT FROM ({', '.join('s.' + c for c in OPTION_VALUE_COLUMNS)})""")
    cur.execute("SELECT count(*) FILTER (WHERE NOT is_new), min(date) FILTER (WHERE NOT "
                "is_new), max(date) FILTER (WHERE NOT is_new), count(*) FILTER (WHERE is_new) "
                "FROM _diff_options")
    n_changed, c_lo, c_hi, n_new = cur.fetchone()
    if n_changed or n_new:
        # TimescaleDB: stored contracts of these sessions may sit in compressed chunks. The
        # constant date bounds keep the decompression to those sessions' batches, so let it
        # run whatever timescaledb's per-transaction row limit (as for bars_daily).
        cur.execute("SELECT current_setting('timescaledb.max_tuples_decompressed_per_dml_"
                    "transaction', true) IS NOT NULL")
        if cur.fetchone()[0]:
            cur.execute("SET LOCAL timescaledb.max_tuples_decompressed_per_dml_transaction = 0")
    if n_changed:
        sets = ", ".join(f"{c} = d.{c}" for c in OPTION_VALUE_COLUMNS)
        don = " AND ".join(f"o.{k} = d.{k}" for k in _KEY)
        crng = f"o.date >= {_literal(c_lo)} AND o.date <= {_literal(c_hi)}"
        cur.execute(f"""WITH up AS (
            UPDATE option_chains o SET {sets}, source = $1, ingested_at = now()
            FROM _diff_options d WHERE NOT d.is_new AND {don} AND {crng} RETURNING 1)
            SELECT count(*) FROM up""", parameters=(source,))
        report.rows_updated += int(cur.fetchone()[0])
    if not n_new:
        return
    cur.execute(f"""WITH ins AS (
        INSERT INTO option_chains ({', '.join(_KEY)}, {vals}, source)
        SELECT {', '.join(_KEY)}, {vals}, $1 FROM _diff_options WHERE is_new RETURNING 1)
        SELECT count(*) FROM ins""", parameters=(source,))
    report.rows_inserted += int(cur.fetchone()[0])


def write_option_chains(target: DatabaseTarget, report: IngestReport, chains: pa.Table | None,
                        rejects: pd.DataFrame | None, source: str) -> IngestReport:
    """Store validated chain rows and their rejects in one transaction; fill ``report``.

    Args:
        chains: rows with :data:`technic.options.chains.OPTION_SCHEMA` (validated).
        rejects: ``row`` (JSON text) and ``reason``, stored in ``ingest_rejects``.
        source: the ``option_chains.source`` tag (e.g. ``files``, ``polygon``).

    Returns:
        ``report`` with rows inserted / updated / unchanged and timings. ``changed_from`` /
        ``changed_to`` stay None: they describe bars (caches of bar windows read them).

    Raises:
        Exception: any database error; the transaction is rolled back, nothing is written.
    """
    t0 = time.perf_counter()
    if chains is not None and chains.num_rows:
        days = pc.unique(chains["date"]).cast(pa.int32()).to_numpy()
        months = np.unique(days.astype("datetime64[D]").astype("datetime64[M]"))
        with get_engine(target).begin() as conn:
            ensure_partitions(conn, target.schema, "option_chains", months)
    with adbc_connect(target) as conn, conn.cursor() as cur:
        if chains is not None and chains.num_rows:
            cur.execute(_LOCK)
            cur.fetchall()
            dates = sorted(pc.unique(chains["date"]).to_pylist())
            old = _stored_dates(cur, dates)
            is_old = pc.is_in(chains["date"], value_set=pa.array(sorted(old), pa.date32())) \
                .to_numpy(zero_copy_only=False)
            new = chains.filter(pa.array(~is_old)) if old else chains
            if new.num_rows:
                t = time.perf_counter()
                cur.adbc_ingest("option_chains", new.append_column(
                    "source", _const_strings(source, new.num_rows)), mode="append")
                report.rows_inserted += new.num_rows
                report.timings["copy_s"] = round(time.perf_counter() - t, 4)
            if old:
                t = time.perf_counter()
                _upsert(cur, report, chains.filter(pa.array(is_old)), source)
                report.timings["upsert_s"] = round(time.perf_counter() - t, 4)
            report.rows_unchanged = chains.num_rows - report.rows_inserted - report.rows_updated
            report.symbols_upserted = len(pc.unique(chains["underlying"]))
        if rejects is not None and len(rejects):
            stage = pa.table({"row": pa.array(rejects["row"].tolist(), type=pa.string()),
                              "reason": pa.array(rejects["reason"].tolist(), type=pa.string())})
            cur.adbc_ingest("_stage_rejects", stage, mode="create", temporary=True)
            cur.execute("INSERT INTO ingest_rejects (run_id, source, row, reason) "
                        "SELECT $1, $2, CAST(row AS jsonb), reason FROM _stage_rejects",
                        parameters=(report.run_id, report.source))
        conn.commit()
    if report.rows_inserted + report.rows_updated >= 100_000:
        with get_engine(target).begin() as c:
            c.execute(sa.text("ANALYZE option_chains (date, underlying)"))
    report.timings["store_s"] = round(time.perf_counter() - t0, 4)
    return report


#: Columns the metrics read from ``option_chains``.
CHAIN_READ_COLUMNS = ("date", "underlying", "expiration", "option_type", "strike",
                      "last_price", "volume", "open_interest", "implied_vol", "delta",
                      "underlying_price")


def read_option_chains(target: DatabaseTarget, start: dt.date | None = None,
                       end: dt.date | None = None,
                       underlyings: list[str] | None = None) -> pa.Table:
    """Stored chain rows for sessions ``start``–``end`` (inclusive; None = open), sorted by
    date, underlying, expiration, type, strike (the order the metrics need), as Arrow."""
    where: list[str] = ["TRUE"]
    params: list[object] = []
    if start is not None:
        params.append(start)
        where.append(f"date >= ${len(params)}")
    if end is not None:
        params.append(end)
        where.append(f"date <= ${len(params)}")
    if underlyings is not None:
        params.append(list(underlyings))
        where.append(f"underlying = ANY(${len(params)})")
    sql = (f"SELECT {', '.join(CHAIN_READ_COLUMNS)} FROM option_chains WHERE "
           f"{' AND '.join(where)} ORDER BY date, underlying, expiration, option_type, strike")
    with adbc_connect(target) as conn, conn.cursor() as cur:
        cur.execute(sql, parameters=tuple(params) or None)
        return cur.fetch_arrow_table()


def chain_dates(target: DatabaseTarget, start: dt.date | None = None,
                end: dt.date | None = None) -> list[dt.date]:
    """Sessions with at least one stored contract, ascending."""
    with get_engine(target).connect() as c:
        return list(c.execute(sa.text(
            "SELECT DISTINCT date FROM option_chains WHERE (CAST(:a AS date) IS NULL OR "
            "date >= :a) AND (CAST(:b AS date) IS NULL OR date <= :b) ORDER BY date"),
            {"a": start, "b": end}).scalars())


def read_iv_history(target: DatabaseTarget, before: dt.date, sessions: int = 252
                    ) -> pd.DataFrame:
    """``option_metrics.atm_iv_30d`` of the ``sessions`` chain sessions before ``before``
    (exclusive): ``date``, ``underlying``, ``atm_iv_30d`` (NaN where NULL)."""
    with get_engine(target).connect() as c:
        rows = c.execute(sa.text("""
            SELECT date, underlying, atm_iv_30d FROM option_metrics
            WHERE date < :b AND date >= coalesce((
                SELECT min(date) FROM (SELECT DISTINCT date FROM option_metrics
                                       WHERE date < :b ORDER BY date DESC LIMIT :n) d),
                :b)"""), {"b": before, "n": sessions}).all()
    df = pd.DataFrame(rows, columns=["date", "underlying", "atm_iv_30d"])
    df["atm_iv_30d"] = pd.to_numeric(df["atm_iv_30d"], errors="coerce").astype("float64")
    return df


def write_option_metrics(target: DatabaseTarget, metrics: pd.DataFrame) -> int:
    """Replace the ``option_metrics`` rows of the (date, underlying) pairs in ``metrics``
    (one transaction); returns the rows written.

    Args:
        metrics: ``date``, ``underlying``, the columns of
            :data:`technic.store.migrations.OPTION_METRIC_TYPES` (missing ones stored NULL) and
            ``reasons`` (dict per row: why a metric is NULL).
    """
    if metrics.empty:
        return 0
    cols = ["date", "underlying", *OPTION_METRIC_TYPES]
    data: dict[str, pa.Array] = {
        "date": pa.array(pd.to_datetime(metrics["date"]).to_numpy().astype("datetime64[D]"),
                         pa.date32()),
        "underlying": pa.array(metrics["underlying"].astype(str).tolist(), pa.string())}
    for c, typ in OPTION_METRIC_TYPES.items():
        s = metrics[c] if c in metrics else pd.Series([None] * len(metrics))
        if typ == "integer":
            v = pd.to_numeric(s, errors="coerce")
            data[c] = pa.array(v.fillna(0).to_numpy(dtype=np.int64).astype(np.int32),
                               pa.int32(), mask=v.isna().to_numpy())
        elif typ == "date":
            v = pd.to_datetime(s, errors="coerce")
            data[c] = pa.array(v.to_numpy().astype("datetime64[D]"), pa.date32(),
                               mask=v.isna().to_numpy())
        elif typ == "text":
            data[c] = pa.array([None if pd.isna(x) else str(x) for x in s], pa.string())
        else:
            v = pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64)
            data[c] = pa.array(v, pa.float64(), mask=~np.isfinite(v))
    data["reasons"] = pa.array([json.dumps(r or {}) for r in metrics.get(
        "reasons", pd.Series([{}] * len(metrics)))], pa.string())
    table = pa.table(data)
    with adbc_connect(target) as conn, conn.cursor() as cur:
        cur.adbc_ingest("_stage_option_metrics", table, mode="create", temporary=True)
        cur.execute("DELETE FROM option_metrics m USING _stage_option_metrics s "
                    "WHERE m.date = s.date AND m.underlying = s.underlying")
        cur.execute(f"INSERT INTO option_metrics ({', '.join(cols)}, reasons) "
                    f"SELECT {', '.join(cols)}, CAST(reasons AS jsonb) "
                    f"FROM _stage_option_metrics")
        conn.commit()
    return len(table)


def read_option_metrics(target: DatabaseTarget, day: dt.date) -> pd.DataFrame:
    """The ``option_metrics`` rows of session ``day`` (one per underlying with a chain)."""
    with get_engine(target).connect() as c:
        rows = c.execute(sa.text("SELECT * FROM option_metrics WHERE date = :d ORDER BY "
                                 "underlying"), {"d": day})
        return pd.DataFrame(rows.all(), columns=list(rows.keys()))
