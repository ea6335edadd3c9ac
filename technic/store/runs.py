"""Liveness of ``ingest_runs`` and ``scan_runs`` rows: a run killed (``kill -9``, a crash, a
server restart) must not stay ``running`` forever.

Each run, from the moment its row is visible, holds a PostgreSQL session-level advisory lock
keyed by ``technic-run:<schema>:<table>:<run_id>`` (taken by :func:`start_run_row`, freed by
:func:`release`) on a lease connection: one per database and process, used for nothing else,
so the lock lives exactly as long as the process's session — when the process dies the server
ends the session and frees the lock. A row still ``running`` whose lock can be taken therefore
belongs to a dead process;
:func:`mark_orphans` (called by every new run and by ``technic ingest status``) marks such rows
``failed`` with the error :data:`ORPHAN_ERROR`.
"""

from __future__ import annotations

import logging
import threading

import psycopg
import sqlalchemy as sa

from technic.store.db import DatabaseTarget, get_engine, libpq_uri
from technic.store.migrations import quote_ident

log = logging.getLogger(__name__)

#: ``error`` of a run whose process died while it was running.
ORPHAN_ERROR = "orphaned: process died (its run lock was free while the row said running)"

#: Tables whose rows are runs with ``run_id`` and ``status``.
RUN_TABLES = ("ingest_runs", "scan_runs")

#: The lease connection of each database URL (this process) and the lock serialising its use.
_CONNS: dict[str, psycopg.Connection] = {}
_LOCK = threading.Lock()


def _key(target: DatabaseTarget, table: str, run_id: int) -> str:
    return f"technic-run:{target.schema}:{table}:{run_id}"


def _lease_conn(url: str) -> psycopg.Connection:
    """This process's lease connection to ``url`` (opened on first use, reopened when
    broken: the locks of a broken session are gone anyway). Call with ``_LOCK`` held."""
    conn = _CONNS.get(url)
    if conn is None or conn.closed or conn.broken:
        conn = psycopg.connect(libpq_uri(url), application_name="technic run locks")
        _CONNS[url] = conn
    return conn


def start_run_row(target: DatabaseTarget, table: str, values: dict[str, object],
                  casts: dict[str, str] | None = None) -> int:
    """Insert a run row (status ``running``) and hold its run lock until :func:`release`.

    The row and the lock commit together on a dedicated connection (session-level lock, so
    it outlives the transaction), so no other session ever sees the row without its lock.
    Rows of dead runs in ``table`` are marked failed first (:func:`mark_orphans`).

    Args:
        table: ``ingest_runs`` or ``scan_runs``.
        values: column → value of the new row.
        casts: column → SQL type to cast the parameter to (e.g. ``jsonb``).

    Returns:
        The new ``run_id``.
    """
    assert table in RUN_TABLES
    mark_orphans(target, table)
    casts = casts or {}
    cols = ", ".join(values)
    params = ", ".join(f"CAST(%({c})s AS {casts[c]})" if c in casts else f"%({c})s"
                       for c in values)
    with _LOCK:
        conn = _lease_conn(target.url)
        try:
            row = conn.execute(
                f"INSERT INTO {quote_ident(target.schema)}.{table} ({cols}) "
                f"VALUES ({params}) RETURNING run_id", values).fetchone()
            assert row is not None  # INSERT … RETURNING always returns the row
            run_id = int(row[0])
            conn.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))",
                         (_key(target, table, run_id),))
            conn.commit()
        except BaseException:
            try:
                conn.rollback()
            except Exception:
                conn.close()
            raise
    return run_id


def release(target: DatabaseTarget, table: str, run_id: int) -> None:
    """Free a run's lock; call after the final status is written. A run this process does
    not hold (another process's, or released already) is left alone."""
    with _LOCK:
        conn = _CONNS.get(target.url)
        if conn is None or conn.closed or conn.broken:
            return  # the session, and with it the lock, is gone
        try:
            conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))",
                         (_key(target, table, run_id),))
            conn.commit()
        except Exception as e:  # a broken session: its locks are gone with it
            log.debug("freeing the run lock of %s %d: %s", table, run_id, e)
            conn.close()


def mark_orphans(target: DatabaseTarget, table: str | None = None) -> list[int]:
    """Mark ``running`` rows whose run lock is free as ``failed`` (:data:`ORPHAN_ERROR`).

    Args:
        table: one of :data:`RUN_TABLES`; None = both.

    Returns:
        The run ids marked now.
    """
    marked: list[int] = []
    for t in RUN_TABLES if table is None else (table,):
        q = f"{quote_ident(target.schema)}.{t}"
        with get_engine(target).begin() as c:
            # Only the running rows are probed (one transaction-level try-lock each, released
            # at commit): a live run's lock is held, so its probe fails and it is left alone.
            now = [int(r) for r in c.execute(sa.text(f"""
                WITH r AS MATERIALIZED (SELECT run_id FROM {q} WHERE status = 'running')
                UPDATE {q} AS x SET status = 'failed', finished_at = now(), error = :e
                FROM r
                WHERE x.run_id = r.run_id AND x.status = 'running'
                  AND pg_try_advisory_xact_lock(hashtextextended(
                        'technic-run:' || :s || ':' || :t || ':' || r.run_id::text, 0))
                RETURNING x.run_id"""), {"e": ORPHAN_ERROR, "s": target.schema, "t": t})
                .scalars()]
        if now:
            log.warning("%s: marked %d orphaned run(s) failed (their process died): %s",
                        t, len(now), ", ".join(map(str, now)))
        marked += now
    return marked
