"""Data-quality summaries of the store: freshness per source, rejects, gaps by symbol."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import sqlalchemy as sa

from technic.store.db import DatabaseTarget, get_engine
from technic.store.runs import mark_orphans


@dataclass
class IngestStatus:
    """What ``technic ingest status`` shows.

    Attributes:
        sources: per ``bars_daily.source``: ``last_date`` (latest bar date), ``rows``,
            ``symbols``, ``last_ingest`` (latest ``ingested_at``, ISO text), and its price
            basis from ``bar_sources``: ``split_adjusted``, ``dividend_adjusted`` (None =
            unknown), ``adjusted_as_of`` (ISO date or None).
        mixed_basis_symbols: symbols whose daily bars come from sources of different price
            bases (a feature window across them splices two bases).
        rejects: rejected rows per (source, reason) over all runs.
        failed_runs: ingest runs with status ``failed`` (latest first, at most 10), runs
            whose process died (``error`` starts with ``orphaned:``) included.
        running_runs: ingest runs in progress now (their process holds the run lock).
        orphaned_now: ingest and scan runs this call found orphaned and marked failed.
        gaps_total: symbol-sessions missing between a symbol's first and last bar, where the
            store has bars of other symbols that day.
        gaps_top: the symbols with the most such gaps (at most ``top``).
    """

    sources: list[dict] = field(default_factory=list)
    mixed_basis_symbols: int = 0
    rejects: list[dict] = field(default_factory=list)
    failed_runs: list[dict] = field(default_factory=list)
    running_runs: list[dict] = field(default_factory=list)
    orphaned_now: list[int] = field(default_factory=list)
    gaps_total: int = 0
    gaps_top: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def ingest_status(target: DatabaseTarget, top: int = 10) -> IngestStatus:
    """Summarise freshness, rejects and gaps of ``bars_daily``. Writes nothing but the
    status of orphaned runs (:func:`technic.store.runs.mark_orphans`: ingest and scan runs
    whose process died are marked failed first)."""
    st = IngestStatus()
    st.orphaned_now = mark_orphans(target)
    with get_engine(target).connect() as c:
        for src, last, rows, syms, ing, sadj, dadj, as_of in c.execute(sa.text("""
                SELECT b.source, b.last, b.rows, b.symbols, b.last_ingest, s.split_adjusted,
                       s.dividend_adjusted, s.adjusted_as_of
                FROM (SELECT source, max(date) AS last, count(*) AS rows,
                             count(DISTINCT symbol) AS symbols, max(ingested_at) AS last_ingest
                      FROM bars_daily GROUP BY source) b
                LEFT JOIN bar_sources s USING (source) ORDER BY b.source""")):
            st.sources.append({"source": src, "last_date": last.isoformat(), "rows": rows,
                               "symbols": syms, "last_ingest": ing.isoformat(),
                               "split_adjusted": sadj, "dividend_adjusted": dadj,
                               "adjusted_as_of": as_of.isoformat() if as_of else None})
        if len(st.sources) > 1:
            st.mixed_basis_symbols = int(c.execute(sa.text("""
                SELECT count(*) FROM (
                    SELECT b.symbol FROM (SELECT DISTINCT symbol, source FROM bars_daily) b
                    LEFT JOIN bar_sources s USING (source)
                    GROUP BY b.symbol
                    HAVING count(DISTINCT (s.split_adjusted, s.dividend_adjusted)) > 1) x
                """)).scalar_one())
        st.rejects = [{"source": s, "reason": r, "rows": n} for s, r, n in c.execute(sa.text(
            "SELECT source, reason, count(*) FROM ingest_rejects GROUP BY 1, 2 "
            "ORDER BY 3 DESC"))]
        st.failed_runs = [{"run_id": i, "path": p, "started_at": t.isoformat(), "error": e}
                          for i, p, t, e in c.execute(sa.text(
                              "SELECT run_id, path, started_at, error FROM ingest_runs "
                              "WHERE status = 'failed' ORDER BY run_id DESC LIMIT 10"))]
        st.running_runs = [{"run_id": i, "path": p, "started_at": t.isoformat()}
                           for i, p, t in c.execute(sa.text(
                               "SELECT run_id, path, started_at FROM ingest_runs "
                               "WHERE status = 'running' ORDER BY run_id"))]
        gaps = c.execute(sa.text("""
            WITH d AS (SELECT date, row_number() OVER (ORDER BY date) AS k
                       FROM (SELECT DISTINCT date FROM bars_daily) x),
                 s AS (SELECT symbol, min(date) AS lo, max(date) AS hi, count(*) AS n
                       FROM bars_daily GROUP BY symbol)
            SELECT s.symbol, dh.k - dl.k + 1 - s.n AS gaps, s.lo, s.hi
            FROM s JOIN d dl ON dl.date = s.lo JOIN d dh ON dh.date = s.hi
            WHERE dh.k - dl.k + 1 - s.n > 0
            ORDER BY gaps DESC, s.symbol""")).all()
        st.gaps_total = int(sum(g[1] for g in gaps))
        st.gaps_top = [{"symbol": s, "gaps": int(n), "first": lo.isoformat(),
                        "last": hi.isoformat()} for s, n, lo, hi in gaps[:top]]
    return st
