"""Reads for browsing stored scans (the HTTP API and its web page): run history, one run, a
page of a run's ranked results (sorted, filtered), a symbol's bars, stored features and its
ranks over time.

Every identifier put into SQL here comes from a fixed list (:data:`RESULT_COLUMNS`,
:data:`technic.features.registry.FEATURE_COLUMNS`); values are bound parameters.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import pandas as pd
import sqlalchemy as sa

from technic.features.registry import FEATURE_COLUMNS
from technic.screen.filter import Node
from technic.store.db import DatabaseTarget, get_engine
from technic.store.migrations import DEFAULT_PRESET
from technic.store.results import RESULT_COLUMNS
from technic.store.screen import (
    RESULT_SQL_COLUMNS,
    SCAN_RESULTS,
    check_result_filter,
    filter_clause,
)

#: ``scan_runs`` columns a run's description holds.
RUN_COLUMNS: tuple[str, ...] = ("run_id", "started_at", "finished_at", "as_of", "status",
                                "preset", "params", "counts", "timings", "regime", "error")

#: Columns of ``scan_results`` a page may select or sort by (``run_id`` excluded).
RESULT_FIELDS: tuple[str, ...] = tuple(c for c in RESULT_COLUMNS if c != "run_id")

_RUN_SELECT = ", ".join(RUN_COLUMNS)


def _plain(v: Any) -> Any:
    """A JSON-ready value: dates and timestamps as ISO 8601 text."""
    if isinstance(v, dt.datetime | dt.date):
        return v.isoformat()
    return v


def _run_dict(row: sa.RowMapping) -> dict[str, Any]:
    return {k: _plain(row[k]) for k in RUN_COLUMNS}


def list_scan_runs(target: DatabaseTarget, limit: int = 50, offset: int = 0,
                   preset: str | None = None, status: str | None = None
                   ) -> tuple[int, list[dict[str, Any]]]:
    """Scan runs, newest first.

    Args:
        limit, offset: the page (``limit`` ≥ 1, ``offset`` ≥ 0).
        preset: only runs of this ``scan_runs.preset``; None = every run.
        status: only runs with this status (``running``, ``ok``, ``failed``); None = all.

    Returns:
        ``(total, runs)``: the number of matching runs and the page, each run a dict of
        :data:`RUN_COLUMNS` (timestamps as ISO 8601 text, JSON columns as dicts).
    """
    where: list[str] = ["true"]
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    if preset is not None:
        where.append("preset = :preset")
        params["preset"] = preset
    if status is not None:
        where.append("status = :status")
        params["status"] = status
    cond = " AND ".join(where)
    with get_engine(target).connect() as c:
        total = int(c.execute(sa.text(f"SELECT count(*) FROM scan_runs WHERE {cond}"),
                              params).scalar_one())
        rows = c.execute(sa.text(f"SELECT {_RUN_SELECT} FROM scan_runs WHERE {cond} "
                                 "ORDER BY run_id DESC LIMIT :limit OFFSET :offset"),
                         params).mappings().all()
    return total, [_run_dict(r) for r in rows]


def get_scan_run(target: DatabaseTarget, run_id: int) -> dict[str, Any] | None:
    """One ``scan_runs`` row as a dict of :data:`RUN_COLUMNS`, or None when there is none."""
    with get_engine(target).connect() as c:
        row = c.execute(sa.text(f"SELECT {_RUN_SELECT} FROM scan_runs WHERE run_id = :id"),
                        {"id": run_id}).mappings().first()
    return None if row is None else _run_dict(row)


def latest_run_id(target: DatabaseTarget, preset: str = DEFAULT_PRESET) -> int | None:
    """The run ``latest_scan_results`` shows for ``preset``: the newest successful run of it
    (latest ``as_of``, then latest run); None when there is none."""
    with get_engine(target).connect() as c:
        v = c.execute(sa.text(
            "SELECT run_id FROM scan_runs WHERE status = 'ok' AND preset = :p "
            "ORDER BY as_of DESC, run_id DESC LIMIT 1"), {"p": preset}).scalar()
    return None if v is None else int(v)


def run_sectors(target: DatabaseTarget, run_id: int) -> list[str]:
    """Distinct non-NULL sectors among the results of ``run_id``, sorted."""
    with get_engine(target).connect() as c:
        return sorted(r[0] for r in c.execute(sa.text(
            "SELECT DISTINCT sector FROM scan_results WHERE run_id = :id "
            "AND sector IS NOT NULL"), {"id": run_id}))


def read_scan_results(target: DatabaseTarget, run_id: int,
                      columns: Sequence[str] = RESULT_FIELDS, sort: str = "rank",
                      descending: bool = False, sectors: Sequence[str] = (),
                      min_price: float | None = None, limit: int = 100, offset: int = 0,
                      where: Node | None = None) -> tuple[int, list[dict[str, Any]]]:
    """One page of a run's ranked results.

    Args:
        columns: result columns to return, in this order (from :data:`RESULT_FIELDS`).
        sort: column to order by (from :data:`RESULT_FIELDS`); ties and NULLs (last) are
            broken by rank.
        descending: order ``sort`` high to low.
        sectors: keep only these sectors (case-insensitive); empty = all.
        min_price: keep only rows with ``close`` ≥ this (USD); None = all.
        limit, offset: the page (``limit`` ≥ 1, ``offset`` ≥ 0).
        where: a parsed screen filter (:func:`technic.screen.parse_filter`) over the stored
            columns, compiled by :func:`technic.store.screen.filter_clause` (bound
            parameters only); None = none.

    Returns:
        ``(total, rows)``: the number of rows that pass the filters and the page, each row a
        dict ``column → value`` (NULL → None).

    Raises:
        ValueError: a column or the sort column is not in :data:`RESULT_FIELDS`;
            :class:`technic.screen.FilterError` (a ValueError): ``where`` reads a column
            ``scan_results`` does not store.
    """
    bad = [c for c in (*columns, sort) if c not in RESULT_FIELDS]
    if bad:
        raise ValueError(f"unknown result column(s): {', '.join(bad)}")
    check_result_filter(where)
    r = SCAN_RESULTS.c
    conds: list[Any] = [r.run_id == sa.bindparam("run", int(run_id), type_=sa.BigInteger)]
    if sectors:
        conds.append(sa.func.lower(r.sector).in_(sa.bindparam(
            "sectors", [s.lower() for s in sectors], expanding=True, type_=sa.Text)))
    if min_price is not None:
        conds.append(r.close >= sa.bindparam("min_price", float(min_price), type_=sa.Float))
    if where is not None:
        conds.append(filter_clause(where, RESULT_SQL_COLUMNS))
    key = r[sort].desc() if descending else r[sort].asc()
    order = [key.nulls_last(), *([] if sort == "rank" else [r.rank.asc()])]
    cols = list(columns) or ["rank"]
    page = sa.select(*(r[c] for c in cols)).where(*conds).order_by(*order).limit(
        sa.bindparam("limit", int(limit), type_=sa.Integer)).offset(
        sa.bindparam("offset", int(offset), type_=sa.Integer))
    with get_engine(target).connect() as c:
        total = int(c.execute(sa.select(sa.func.count()).select_from(SCAN_RESULTS)
                              .where(*conds)).scalar_one())
        rows = c.execute(page).mappings().all()
    return total, [{k: row[k] for k in columns} for row in rows]


def symbol_reference(target: DatabaseTarget, symbol: str) -> dict[str, Any] | None:
    """The ``symbols`` row of ``symbol`` (name, exchange, sector, industry, security_type,
    is_etf, active, market_cap), or None when it is unknown."""
    with get_engine(target).connect() as c:
        row = c.execute(sa.text(
            "SELECT symbol, name, exchange, sector, industry, security_type, is_etf, active, "
            "market_cap FROM symbols WHERE symbol = :s"), {"s": symbol}).mappings().first()
    return None if row is None else dict(row)


def symbol_bars(target: DatabaseTarget, symbol: str, last_n: int) -> pd.DataFrame:
    """The last ``last_n`` daily bars of ``symbol``: ``date, open, high, low, close, volume``
    (USD per share; shares), oldest first; empty when it has none."""
    with get_engine(target).connect() as c:
        rows = c.execute(sa.text(
            "SELECT date, open, high, low, close, volume FROM (SELECT * FROM bars_daily "
            "WHERE symbol = :s ORDER BY date DESC LIMIT :n) b ORDER BY date"),
            {"s": symbol, "n": last_n}).all()
    return pd.DataFrame(rows, columns=["date", "open", "high", "low", "close", "volume"])


def symbol_features(target: DatabaseTarget, symbol: str) -> dict[str, Any] | None:
    """The latest stored ``features_daily`` row of ``symbol`` (``date`` and every feature
    column, NULL → None), or None when it has none."""
    cols = ", ".join(FEATURE_COLUMNS)
    with get_engine(target).connect() as c:
        row = c.execute(sa.text(
            f"SELECT date, {cols} FROM features_daily WHERE symbol = :s "
            "ORDER BY date DESC LIMIT 1"), {"s": symbol}).mappings().first()
    return None if row is None else {k: _plain(v) for k, v in row.items()}


def symbol_rank_history(target: DatabaseTarget, symbol: str, preset: str = DEFAULT_PRESET,
                        last_n: int = 250) -> list[dict[str, Any]]:
    """``symbol``'s rank and scores in the successful runs of ``preset``: for each scan date
    (``as_of``) the latest such run, oldest first, at most the last ``last_n`` dates.

    Returns:
        Dicts ``as_of, run_id, rank, passed`` (symbols ranked in that run), ``tech_rating``,
        ``merit``, ``ics`` (dates as ISO text).
    """
    with get_engine(target).connect() as c:
        rows = c.execute(sa.text(
            "SELECT * FROM (SELECT DISTINCT ON (s.as_of) s.as_of, r.run_id, r.rank, "
            "(s.counts->>'passed')::int AS passed, r.tech_rating, r.merit, r.ics "
            "FROM scan_results r JOIN scan_runs s USING (run_id) "
            "WHERE r.symbol = :sym AND s.status = 'ok' AND s.preset = :p "
            "ORDER BY s.as_of DESC, r.run_id DESC LIMIT :n) h ORDER BY as_of"),
            {"sym": symbol, "p": preset, "n": last_n}).mappings().all()
    return [{k: _plain(v) for k, v in r.items()} for r in rows]
