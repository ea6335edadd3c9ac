"""Scan runs and results: ``scan_runs`` lifecycle and the ``scan_results`` rows of a run."""

from __future__ import annotations

import datetime as dt
import json
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import sqlalchemy as sa

from technic.store import runs
from technic.store.db import DatabaseTarget, get_engine, pooled_adbc
from technic.store.migrations import (
    FACTOR_RESULT_COLUMNS,
    FUNDAMENTAL_RESULT_COLUMNS,
    FUNDAMENTAL_RESULT_META,
    OPTION_RESULT_COLUMNS,
    RESULT_FEATURE_COLUMNS,
    RISK_RESULT_COLUMNS,
    SCORE_COLUMNS,
)

RESULT_COLUMNS = ("run_id", "rank", "symbol", "sector", "close", "tech_rating", "ics", "merit",
                  "alpha_5d", "alpha_10d", "regime", *SCORE_COLUMNS, *RESULT_FEATURE_COLUMNS,
                  *FACTOR_RESULT_COLUMNS, *FUNDAMENTAL_RESULT_COLUMNS,
                  *(c for c, _ in FUNDAMENTAL_RESULT_META), "alpha_model",
                  *OPTION_RESULT_COLUMNS, *RISK_RESULT_COLUMNS)


def start_scan_run(target: DatabaseTarget, params: dict, preset: str | None = None) -> int:
    """Insert a ``scan_runs`` row with status ``running``; return its ``run_id``.

    Args:
        params: the scan's parameters (``scan_runs.params``).
        preset: ``scan_runs.preset``: ``default`` for the default filters (the runs
            ``latest_scan_results`` shows), a name, or None for a one-off custom scan.

    The run holds its run lock until it is finished or failed (:mod:`technic.store.runs`);
    rows of scans whose process died are marked failed now.
    """
    return runs.start_run_row(target, "scan_runs",
                              {"params": json.dumps(params, default=str), "preset": preset},
                              casts={"params": "jsonb"})


def fail_scan_run(target: DatabaseTarget, run_id: int, error: str, timings: dict) -> None:
    """Mark a run ``failed`` with its error text (its results, if any, were rolled back) and
    free its run lock (also when the update fails)."""
    try:
        with get_engine(target).begin() as c:
            c.execute(sa.text(
                "UPDATE scan_runs SET status = 'failed', finished_at = now(), error = :e, "
                "timings = CAST(:t AS jsonb) WHERE run_id = :id"),
                {"e": error, "t": json.dumps(timings), "id": run_id})
    finally:
        runs.release(target, "scan_runs", run_id)


def _col(df: pd.DataFrame, name: str, kind: str) -> pa.Array:
    if name not in df.columns:
        return pa.nulls(len(df), {"f": pa.float64(), "d": pa.date32()}.get(kind, pa.string()))
    s = df[name]
    if kind == "d":  # date (NaT → NULL)
        d = pd.to_datetime(s).to_numpy().astype("datetime64[D]")
        return pa.array(d, pa.date32(), mask=np.isnat(d))
    if kind == "f":
        v = s.to_numpy(dtype=np.float64)
        return pa.array(v, pa.float64(), mask=~np.isfinite(v))
    if kind == "i":  # bigint
        return pa.array(s.to_numpy(dtype=np.int64), pa.int64())
    if kind == "i4":  # integer (a binary COPY needs the column's exact width)
        return pa.array(s.to_numpy(dtype=np.int32), pa.int32())
    return pa.array([None if pd.isna(x) else str(x) for x in s], pa.string())


def finish_scan_run(target: DatabaseTarget, run_id: int, as_of: dt.date, results: pd.DataFrame,
                    counts: dict, timings: dict, started: float | None = None,
                    cache: dict | None = None, regime: str | None = None,
                    regime_facts: dict | None = None) -> None:
    """Write a run's results and mark it ``ok`` — in one transaction.

    Args:
        timings: per-stage seconds; ``write_results`` is added (time to stage and insert the
            rows) before the run row is updated, and ``total`` when ``started`` is given.
        started: ``time.perf_counter()`` at the start of the scan.
        cache: cache facts of the run (stored in ``scan_runs.cache``).
        results: one row per ranked symbol with ``rank, symbol, sector, close, tech_rating``,
            the score columns and the result feature columns (missing optional columns are
            stored as NULL): ``ics``, ``merit``, ``regime``, the alphas, the factor columns
            of migration 7, the fundamental columns of migration 18, ``alpha_model``
            (migration 19), the option columns of migration 22 and the risk columns of
            migration 27.
        regime: the run's regime label (``scan_runs.regime``); regime_facts: the numbers it
            came from (``scan_runs.regime_facts``, JSON; see technic/scoring/regime.py).
    """
    kinds = {"run_id": "i", "rank": "i4", "symbol": "s", "sector": "s", "regime": "s",
             **{c: "s" if t == "text" else "d" for c, t in FUNDAMENTAL_RESULT_META},
             "alpha_model": "s"}
    df = results.assign(run_id=run_id)
    table = pa.table({c: _col(df, c, kinds.get(c, "f")) for c in RESULT_COLUMNS})
    t0 = time.perf_counter()
    # A pooled connection (opening one costs ~50 ms); the rows are copied straight in — a
    # run's rows are new by construction — and commit together with the run row.
    with pooled_adbc(target) as conn, conn.cursor() as cur:
        if len(df):
            cur.adbc_ingest("scan_results", table, mode="append")
        timings["write_results"] = round(time.perf_counter() - t0, 4)
        if started is not None:
            timings["total"] = round(time.perf_counter() - started, 4)
        cur.execute(
            "UPDATE scan_runs SET status = 'ok', finished_at = now(), as_of = $1, "
            "counts = CAST($2 AS jsonb), timings = CAST($3 AS jsonb), "
            "cache = CAST($4 AS jsonb), regime = $5, regime_facts = CAST($6 AS jsonb) "
            "WHERE run_id = $7",
            parameters=(as_of, json.dumps(counts), json.dumps(timings),
                        json.dumps(cache or {}), regime,
                        None if regime_facts is None else json.dumps(regime_facts), run_id))
        conn.commit()
    runs.release(target, "scan_runs", run_id)
