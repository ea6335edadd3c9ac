"""Corporate actions (splits): record them, and adjust stored bars that do not reflect them.

A split with ratio ``r = split_to / split_from`` (a 4-for-1 split: ``1 → 4``, r = 4) divides
prices and multiplies volumes of the bars before its ex-date. Which stored bars need it
follows from their source's basis in ``bar_sources``
(:meth:`technic.validation.PriceBasis.needs_split`): unadjusted sources, and sources adjusted
as of a date before the ex-date; sources adjusted at fetch time (Polygon ``adjusted=true``) and
sources of unknown basis are left alone. Applying a split is one transaction under the bars'
ingest locks, and sets ``corporate_actions.applied_at``: applying again does nothing. Later
ingests of unadjusted bars are adjusted in flight (``technic.store.ingest``), so a re-ingest
of the raw file after a split changes nothing either.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

import pandas as pd
import sqlalchemy as sa

from technic.store.db import DatabaseTarget, get_engine
from technic.store.ingest import _LOCK_BARS, IngestReport, _widen

log = logging.getLogger(__name__)

# Bars before the ex-date whose source lacks the split. $-free SQLAlchemy text.
_NEEDS = """b.symbol = :sym AND {before}
    AND b.source IN (SELECT source FROM bar_sources s
                     WHERE s.split_adjusted = false
                        OR (s.split_adjusted AND s.adjusted_as_of < :ex))"""

_ADJUST = """
WITH up AS (
    UPDATE {table} AS b SET open = open * :f, high = high * :f, low = low * :f,
        close = close * :f, volume = volume / :f, ingested_at = now()
    WHERE {needs}
    RETURNING {day}
)
SELECT count(*), min(d), max(d) FROM (SELECT {day_expr} AS d FROM up) x
"""


def record_splits(target: DatabaseTarget, splits: pd.DataFrame, source: str) -> int:
    """Store splits (idempotent: a known ``(symbol, ex_date)`` is left as it is).

    Args:
        splits: columns ``symbol``, ``execution_date`` (or ``ex_date``; date or ISO text),
            ``split_from``, ``split_to`` (> 0; shares before / after), e.g.
            :meth:`technic.providers.polygon.PolygonClient.splits`.
        source: where they came from (``polygon``, ``manual`` …).

    Returns:
        Splits newly recorded.

    Raises:
        ValueError: a ratio that is not a positive number.
    """
    if splits.empty:
        return 0
    ex = splits["ex_date"] if "ex_date" in splits else splits["execution_date"]
    rows = pd.DataFrame({"symbol": splits["symbol"].astype(str).str.strip(),
                         "ex_date": pd.to_datetime(ex).dt.date,
                         "split_from": pd.to_numeric(splits["split_from"]).astype(float),
                         "split_to": pd.to_numeric(splits["split_to"]).astype(float)})
    if not ((rows["split_from"] > 0) & (rows["split_to"] > 0)).all():
        raise ValueError("split_from and split_to must be > 0")
    count = sa.text("SELECT count(*) FROM corporate_actions")
    with get_engine(target).begin() as c:
        c.execute(sa.text("LOCK TABLE corporate_actions IN SHARE ROW EXCLUSIVE MODE"))
        before = c.execute(count).scalar()
        c.execute(sa.text("""
            INSERT INTO corporate_actions (symbol, ex_date, kind, split_from, split_to, source)
            VALUES (:symbol, :ex_date, 'split', :split_from, :split_to, :source)
            ON CONFLICT (symbol, ex_date, kind) DO NOTHING"""),
            [{**r, "source": source} for r in rows.to_dict(orient="records")])
        return int((c.execute(count).scalar() or 0) - (before or 0))


def apply_splits(target: DatabaseTarget, report: IngestReport,
                 as_of: dt.date | None = None) -> IngestReport:
    """Adjust stored bars for every recorded, not yet applied split with ex-date ≤ ``as_of``
    (default: today, UTC), in one transaction; mark each applied.

    ``bars_daily`` rows dated before the ex-date and ``bars_intraday`` rows starting before
    the ex-date's New York midnight, of sources lacking the split: prices × split_from /
    split_to, volume ÷ that factor, ``ingested_at`` = now (so feature refreshes see them as
    changed). Fills ``report``: ``rows_read`` = splits applied, ``rows_updated`` = bars
    rewritten, ``changed_from``/``changed_to`` = earliest/latest bar date rewritten.
    """
    t0 = time.perf_counter()
    as_of = as_of or dt.datetime.now(dt.UTC).date()
    with get_engine(target).begin() as c:
        for table in ("bars_daily", "bars_intraday"):  # same order as every other writer
            c.execute(sa.text(_LOCK_BARS.format(table=table)))
        todo = c.execute(sa.text(
            "SELECT symbol, ex_date, split_from, split_to FROM corporate_actions "
            "WHERE kind = 'split' AND applied_at IS NULL AND ex_date <= :d "
            "ORDER BY ex_date, symbol FOR UPDATE"), {"d": as_of}).all()
        for sym, ex, s_from, s_to in todo:
            f = s_from / s_to
            n_rows = 0
            for table, before, day, day_expr in (
                    ("bars_daily", "b.date < :ex", "date", "d"),
                    ("bars_intraday",
                     "b.ts < (CAST(:ex AS date)::timestamp AT TIME ZONE 'America/New_York')",
                     "ts", "(d AT TIME ZONE 'America/New_York')::date")):
                sql = _ADJUST.format(table=table, needs=_NEEDS.format(before=before),
                                     day=f"{day} AS d", day_expr=day_expr)
                n, lo, hi = c.execute(sa.text(sql), {"f": f, "sym": sym, "ex": ex}).one()
                n_rows += int(n)
                if table == "bars_daily":
                    report.rows_updated += int(n)
                    _widen(report, lo, hi)
            c.execute(sa.text(
                "UPDATE corporate_actions SET applied_at = now(), applied_rows = :n "
                "WHERE symbol = :s AND ex_date = :ex AND kind = 'split'"),
                {"n": n_rows, "s": sym, "ex": ex})
            log.info("split %s %g-for-%g ex %s: %d stored bar(s) adjusted", sym, s_to, s_from,
                     ex, n_rows)
        report.rows_read = len(todo)
    report.rows_unchanged = 0
    report.timings["store_s"] = round(time.perf_counter() - t0, 4)
    return report
