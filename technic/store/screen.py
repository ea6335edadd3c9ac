"""Screens in SQL: a parsed filter (:mod:`technic.screen.filter`) compiled to a SQLAlchemy
Core clause, and the reads that use it (the feature store with reference data, a run's
``scan_results``).

Never string-built: column names are mapped through a fixed table of column objects (a name
the registry does not know never reaches here: the parser rejects it, and the mapping raises
for a name this table lacks), and every literal is a bound parameter. Semantics equal the
pandas evaluator: NULL is unknown (SQL's own three-valued logic), text compares
case-insensitively (``lower()`` on both sides).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from technic.features.registry import FEATURE_COLUMNS
from technic.screen.columns import COLUMNS, FEATURE_SCOPE
from technic.screen.filter import (
    And,
    Cmp,
    Col,
    FilterError,
    In,
    IsNull,
    Lit,
    Node,
    Not,
    columns_of,
)
from technic.store.db import DatabaseTarget, get_engine
from technic.store.results import RESULT_COLUMNS

_F = sa.table("features_daily", *(sa.column(c) for c in ("symbol", "date", *FEATURE_COLUMNS,
                                                         "n_bars")))
_S = sa.table("symbols", *(sa.column(c) for c in ("symbol", "name", "exchange", "sector",
                                                  "industry", "security_type", "is_etf",
                                                  "active", "market_cap")))
_R = sa.table("scan_results", *(sa.column(c) for c in RESULT_COLUMNS))
#: ``scan_results`` as a SQLAlchemy Core table (the reads that combine a filter with others).
SCAN_RESULTS = _R

#: Filter name → SQL expression over ``features_daily f JOIN symbols s``.
FEATURE_SQL_COLUMNS: dict[str, ColumnElement] = {
    **{c: _F.c[c] for c in (*FEATURE_COLUMNS, "n_bars")},
    "symbol": _F.c.symbol,
    **{c: _S.c[c] for c in ("name", "exchange", "sector", "industry", "security_type",
                            "is_etf", "market_cap")},
    "dollar_volume": (_F.c.close * _F.c.volume).label("dollar_volume"),
}
#: Filter name → column of ``scan_results`` (the columns a run stores).
RESULT_SQL_COLUMNS: dict[str, ColumnElement] = {
    c: _R.c[c] for c in RESULT_COLUMNS if c in COLUMNS}


def _operand(x: Col | Lit, cols: Mapping[str, ColumnElement], kind: str) -> ColumnElement:
    if isinstance(x, Col):
        try:
            e = cols[x.name]
        except KeyError:
            raise FilterError(f"column {x.name!r} is not available here") from None
        return sa.func.lower(e) if kind == "text" else e
    v = x.value
    if kind == "text":
        return sa.bindparam(None, str(v).lower(), type_=sa.Text)
    if kind == "bool":
        return sa.bindparam(None, bool(v), type_=sa.Boolean)
    return sa.bindparam(None, float(v), type_=sa.Float)


def filter_clause(node: Node, cols: Mapping[str, ColumnElement]) -> ColumnElement:
    """The SQL boolean expression of a parsed filter.

    Args:
        node: from :func:`technic.screen.filter.parse_filter`.
        cols: filter column name → SQL expression (:data:`FEATURE_SQL_COLUMNS`,
            :data:`RESULT_SQL_COLUMNS`).

    Returns:
        A clause whose literals are all bound parameters.

    Raises:
        FilterError: a column the mapping lacks.
    """
    if isinstance(node, Cmp):
        kind = COLUMNS[node.left.name].kind if isinstance(node.left, Col) \
            else COLUMNS[node.right.name].kind  # type: ignore[union-attr]
        a, b = _operand(node.left, cols, kind), _operand(node.right, cols, kind)
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b, "=": a == b,
                "!=": a != b}[node.op]
    if isinstance(node, In):
        kind = COLUMNS[node.column.name].kind
        e = _operand(node.column, cols, kind)
        vals = [_operand(Lit(v), cols, kind) for v in node.values]
        return e.not_in(vals) if node.negate else e.in_(vals)
    if isinstance(node, IsNull):
        e = _operand(node.column, cols, "num")
        return e.is_not(None) if node.negate else e.is_(None)
    if isinstance(node, Not):
        return sa.not_(filter_clause(node.item, cols))
    parts = [filter_clause(i, cols) for i in node.items]
    return sa.and_(*parts) if isinstance(node, And) else sa.or_(*parts)


def features_select(start: dt.date, end: dt.date, symbols: Sequence[str] | None = None,
                    where: Node | None = None) -> sa.Select:
    """The statement :func:`read_feature_rows` runs (exposed for tests: it compiles with
    bound parameters only)."""
    if where is not None:
        outside = sorted(columns_of(where) - FEATURE_SCOPE)
        if outside:
            raise FilterError(f"column(s) {', '.join(outside)} exist only in a scan's results")
    cols = [_F.c.symbol, _F.c.date, *(_F.c[c] for c in (*FEATURE_COLUMNS, "n_bars")),
            *(_S.c[c] for c in ("name", "exchange", "sector", "industry", "security_type",
                                "is_etf", "active", "market_cap")),
            FEATURE_SQL_COLUMNS["dollar_volume"]]
    q = sa.select(*cols).select_from(_F.join(_S, _S.c.symbol == _F.c.symbol)).where(
        _F.c.date >= sa.bindparam("start", start, type_=sa.Date),
        _F.c.date <= sa.bindparam("end", end, type_=sa.Date))
    if symbols is not None:
        q = q.where(_F.c.symbol.in_(sa.bindparam("symbols", list(symbols), expanding=True)))
    if where is not None:
        q = q.where(filter_clause(where, FEATURE_SQL_COLUMNS))
    return q.order_by(_F.c.date, _F.c.symbol)


def read_feature_rows(target: DatabaseTarget, start: dt.date, end: dt.date,
                      symbols: Sequence[str] | None = None,
                      where: Node | None = None) -> pd.DataFrame:
    """Feature rows dated ``start`` … ``end`` (inclusive) joined with ``symbols``, optionally
    only for ``symbols`` and only the rows a filter keeps (evaluated by PostgreSQL, bound).

    Returns:
        One row per (symbol, date), ordered by date then symbol: ``symbol, date`` (datetime.date),
        the feature columns, ``n_bars``, the reference columns and ``dollar_volume``
        (USD, close × volume); NULL → NaN/None.

    Raises:
        FilterError: the filter reads a scan-only column (scores).
    """
    q = features_select(start, end, symbols, where)
    with get_engine(target).connect() as c:
        res = c.execute(q)
        df = pd.DataFrame(res.fetchall(), columns=list(res.keys()))
    for col in (*FEATURE_COLUMNS, "market_cap", "dollar_volume"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
    return df


def check_result_filter(where: Node | None) -> None:
    """Check that a parsed filter reads only columns ``scan_results`` stores.

    Raises:
        FilterError: one line naming the columns that are not stored (features a scan reads
            but does not store, e.g. ``sma_200``, and the reference columns).
    """
    if where is not None:
        outside = sorted(columns_of(where) - set(RESULT_SQL_COLUMNS))
        if outside:
            raise FilterError(f"column(s) {', '.join(outside)} are not stored in scan_results "
                              f"(it has: {', '.join(RESULT_SQL_COLUMNS)})")


def results_select(run_id: int, where: Node | None = None, sort: str | None = None,
                   descending: bool = False, limit: int | None = None,
                   offset: int = 0) -> sa.Select:
    """``scan_results`` rows of one run, filtered (bound), ordered by ``sort`` (NULLs last;
    ties by rank) or by rank, paged.

    Raises:
        FilterError: the filter or ``sort`` reads a column ``scan_results`` does not store.
    """
    check_result_filter(where)
    q = sa.select(*(_R.c[c] for c in RESULT_COLUMNS)).where(
        _R.c.run_id == sa.bindparam("run_id", int(run_id), type_=sa.BigInteger))
    if where is not None:
        q = q.where(filter_clause(where, RESULT_SQL_COLUMNS))
    order = []
    if sort:
        if sort not in RESULT_SQL_COLUMNS:
            raise FilterError(f"cannot sort by {sort!r}: not stored in scan_results")
        col = RESULT_SQL_COLUMNS[sort]
        order.append((col.desc() if descending else col.asc()).nulls_last())
    order.append(_R.c.rank.asc())
    q = q.order_by(*order).offset(sa.bindparam("offset", int(offset), type_=sa.Integer))
    if limit is not None:
        q = q.limit(sa.bindparam("limit", int(limit), type_=sa.Integer))
    return q


def read_scan_results(target: DatabaseTarget, run_id: int, where: Node | None = None,
                      sort: str | None = None, descending: bool = False,
                      limit: int | None = None, offset: int = 0) -> pd.DataFrame:
    """The stored rows of scan run ``run_id`` that a filter keeps, sorted and paged
    (:func:`results_select`; for the HTTP API and analysts' tools).

    Returns:
        The ``scan_results`` columns (:data:`technic.store.results.RESULT_COLUMNS`).
    """
    with get_engine(target).connect() as c:
        res = c.execute(results_select(run_id, where, sort, descending, limit, offset))
        return pd.DataFrame(res.fetchall(), columns=list(res.keys()))


def sector_counts(target: DatabaseTarget, industries: bool = False) -> pd.DataFrame:
    """Symbols per sector (and industry) in ``symbols``: ``sector[, industry], symbols,
    active`` (active: not marked inactive), sorted by name; NULL sectors as None."""
    keys = [_S.c.sector, *([_S.c.industry] if industries else [])]
    q = sa.select(*keys, sa.func.count().label("symbols"),
                  sa.func.count().filter(_S.c.active.is_not(False)).label("active")
                  ).group_by(*keys).order_by(*(k.asc().nulls_last() for k in keys))
    with get_engine(target).connect() as c:
        res = c.execute(q)
        return pd.DataFrame(res.fetchall(), columns=list(res.keys()))


def known_industries(target: DatabaseTarget) -> list[str]:
    """Distinct non-NULL ``symbols.industry`` values, sorted."""
    q = sa.select(_S.c.industry).where(_S.c.industry.is_not(None)).distinct()
    with get_engine(target).connect() as c:
        return sorted(c.execute(q).scalars())
