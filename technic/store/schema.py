"""Applying the schema migrations and managing the live schema.

The migrations themselves (their DDL, :data:`~technic.store.migrations.MIGRATIONS`,
:func:`~technic.store.migrations.migration_sql`) live in :mod:`technic.store.migrations`; this
module applies them (:func:`init_db`: storage variant, advisory lock, one transaction) and
keeps the live schema up to date: TimescaleDB detection and enabling, roll-up refreshes
(:func:`refresh_rollups`), partitions created ahead of writes (:func:`ensure_partitions`).

Two storage variants share the same table names and queries:

* **timescaledb** — when the extension can be enabled (installed *and* preloaded):
  ``bars_daily`` and ``features_daily`` are hypertables on ``date`` with one chunk per calendar
  year (shorter chunks compress poorly for daily bars), created ahead of each write by
  :func:`ensure_partitions` (TimescaleDB's own ``INTERVAL '1 year'`` is 360 days, so its
  chunks would straddle years). The extension lives in ``public``, never in a technic schema.
* **native** — plain PostgreSQL: the same tables are ``PARTITION BY RANGE (date)`` with one
  partition per calendar year, created ahead of each write by :func:`ensure_partitions`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from tenacity import retry, retry_if_exception, stop_after_delay, wait_exponential

from technic.store.migrations import MIGRATIONS, ROLLUPS, quote_ident

log = logging.getLogger(__name__)


def timescale_schema(conn: Connection) -> str | None:
    """The schema the ``timescaledb`` extension is installed in, or None when it is not
    installed in this database."""
    return conn.execute(sa.text(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
        "WHERE e.extname = 'timescaledb'")).scalar()


def _refresh_conflict(e: BaseException) -> bool:
    """A refresh refused because an overlapping refresh of the same aggregate runs (e.g. its
    policy job): SQLSTATE 55P03."""
    return isinstance(e, sa.exc.DBAPIError) and getattr(e.orig, "sqlstate", None) == "55P03"


@retry(retry=retry_if_exception(_refresh_conflict), wait=wait_exponential(0.2, max=5),
       stop=stop_after_delay(300), reraise=True)
def _refresh_cagg(conn: Connection, stmt: sa.TextClause, params: dict) -> None:
    conn.execute(stmt, params)


def refresh_rollups(engine: Engine, schema: str, start: dt.datetime | None = None,
                    end: dt.datetime | None = None) -> None:
    """Bring the intraday roll-ups up to date with ``bars_intraday``.

    Plain materialized views are recomputed (``REFRESH MATERIALIZED VIEW``). TimescaleDB
    continuous aggregates are refreshed over ``[start, end]`` widened to whole buckets
    (``refresh_continuous_aggregate``; only invalidated or never-materialized buckets are
    recomputed), so they hold the right rows right after an ingest whatever its dates: the
    refresh policies only reach back days, and background jobs may not run at all.

    Runs on its own autocommit connection (a continuous aggregate cannot be refreshed inside
    a transaction): call it after the ingest has committed. A refresh that overlaps one in
    progress (a policy job) is retried for up to 5 minutes.

    Args:
        start, end: tz-aware bounds of the bar starts (``ts``) just written; None = the whole
            table.

    Raises:
        sqlalchemy.exc.DBAPIError: a refresh failed.
    """
    q = quote_ident(schema)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        ext = timescale_schema(conn)
        for view, bucket in ROLLUPS:
            kind = conn.execute(sa.text(
                "SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = :s AND c.relname = :v"), {"s": schema, "v": view}).scalar()
            if kind is None:
                continue
            if ext is not None and conn.execute(sa.text(
                    "SELECT 1 FROM timescaledb_information.continuous_aggregates "
                    "WHERE view_schema = :s AND view_name = :v"),
                    {"s": schema, "v": view}).first() is not None:  # a continuous aggregate
                x, b = quote_ident(ext), f"INTERVAL '{bucket}'"
                lo = "NULL" if start is None else f"{x}.time_bucket({b}, CAST(:a AS timestamptz))"
                hi = "NULL" if end is None else \
                    f"{x}.time_bucket({b}, CAST(:b AS timestamptz)) + {b}"
                _refresh_cagg(conn, sa.text(f"CALL {x}.refresh_continuous_aggregate("
                                            f"'{q}.{view}', {lo}, {hi})"), {"a": start, "b": end})
            elif kind == "m":
                conn.execute(sa.text(f"REFRESH MATERIALIZED VIEW {q}.{view}"))


@dataclass
class InitReport:
    """What ``init_db`` did: storage variant, versions applied now, current version."""

    variant: str
    applied: list[int]
    version: int


class MigrationError(RuntimeError):
    """A schema migration failed on a server that answered; the message names the migration
    and the server's reason (its transaction is rolled back, nothing of it is applied)."""


def timescale_available(conn: Connection) -> bool:
    """True when the ``timescaledb`` extension files are installed in the server (it may
    still fail to load: see :func:`init_db`)."""
    row = conn.execute(
        sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")
    ).first()
    return row is not None


#: Schema ``CREATE EXTENSION timescaledb`` installs into: never a technic schema (a second
#: technic schema must find the extension's functions, and ``DROP SCHEMA technic CASCADE``
#: must not drop it). ``public`` is on every technic connection's search path.
EXTENSION_SCHEMA = "public"


def _enable_timescale(engine: Engine) -> str | None:
    """Create the ``timescaledb`` extension if needed and return its schema, or None (with
    one warning) when it cannot be used here.

    Runs on a connection of its own: when the library is installed but not in
    ``shared_preload_libraries``, ``CREATE EXTENSION`` kills the backend (FATAL), which must
    not take the migration's transaction with it.
    """
    try:
        with engine.begin() as conn:
            if not timescale_available(conn):
                return None
            ext = timescale_schema(conn)
            if ext is not None:
                return ext
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
                         {"k": "technic-create-extension"})
            conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(EXTENSION_SCHEMA)}"))
            conn.execute(sa.text(f"CREATE EXTENSION IF NOT EXISTS timescaledb "
                                 f"SCHEMA {quote_ident(EXTENSION_SCHEMA)}"))
            return timescale_schema(conn)
    except sa.exc.DBAPIError as e:  # e.g. not preloaded (FATAL), no privilege
        reason = str(e.orig).strip().splitlines()[0] if e.orig is not None else str(e)
        log.warning("timescaledb is installed but cannot be enabled (%s); using native "
                    "PostgreSQL partitioning", reason)
        return None


def init_db(engine: Engine, schema: str, timescale: bool | None = None) -> InitReport:
    """Create or migrate the schema idempotently (safe to run concurrently and repeatedly).

    The storage variant is chosen when the schema is created and kept: TimescaleDB when the
    extension can be enabled (created in :data:`EXTENSION_SCHEMA` if missing), otherwise
    native partitioning (one warning when the extension is installed but cannot be enabled,
    e.g. not in ``shared_preload_libraries``). Migrations run in one transaction under an
    advisory lock, so two processes running it at once serialise. Continuous aggregates
    created by a migration are refreshed after it commits.

    Args:
        timescale: None = as available; False = native even where TimescaleDB could be
            used (side-by-side comparisons); True = TimescaleDB or :class:`MigrationError`.

    Raises:
        MigrationError: a migration statement failed (everything is rolled back), or
            ``timescale=True`` and the extension cannot be enabled.
        sqlalchemy.exc.DBAPIError: the server could not be reached.
    """
    qs = quote_ident(schema)
    with engine.connect() as conn:
        fresh = conn.execute(sa.text("SELECT to_regclass(:t) IS NULL"),
                             {"t": f"{qs}.schema_migrations"}).scalar() or not conn.execute(
            sa.text(f"SELECT EXISTS (SELECT 1 FROM {qs}.schema_migrations)")).scalar()
    ext = None
    if fresh and timescale is not False:
        ext = _enable_timescale(engine)
        if ext is None and timescale:
            raise MigrationError(f"schema {schema}: TimescaleDB requested but the timescaledb "
                                 "extension cannot be enabled on this server")
    with engine.begin() as conn:
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
                     {"k": f"technic-migrate-{schema}"})
        conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {qs}"))
        conn.execute(sa.text(f"""CREATE TABLE IF NOT EXISTS {qs}.schema_migrations (
            version integer PRIMARY KEY, description text NOT NULL, variant text NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now())"""))
        done: dict[int, str] = {version: variant for version, variant in conn.execute(
            sa.text(f"SELECT version, variant FROM {qs}.schema_migrations"))}
        new_variant = "timescaledb" if ext is not None else "native"
        variant = done[min(done)] if done else new_variant
        if variant == "timescaledb":
            ext = ext or timescale_schema(conn)
            if ext is None:
                raise MigrationError(f"schema {schema} was created for TimescaleDB but the "
                                     "timescaledb extension is not installed in this database")
            # the extension's functions, wherever it was installed
            conn.execute(sa.text(f"SET LOCAL search_path = {qs}, {quote_ident(ext)}"))
        applied: list[int] = []
        for m in MIGRATIONS:
            if m.version in done:
                continue
            try:
                for stmt in m.render(schema, variant == "timescaledb"):  # type: ignore[operator]
                    conn.execute(sa.text(stmt))
            except sa.exc.DBAPIError as e:
                reason = str(e.orig).strip() if e.orig is not None else str(e)
                raise MigrationError(
                    f"schema {schema}: migration {m.version} ({m.description}) failed "
                    f"[{variant}]: {reason}") from e
            conn.execute(
                sa.text(f"INSERT INTO {qs}.schema_migrations (version, description, variant)"
                        " VALUES (:v, :d, :var)"),
                {"v": m.version, "d": m.description, "var": variant},
            )
            applied.append(m.version)
        if applied:
            log.info("schema %s migrated to version %d (%s)", schema, MIGRATIONS[-1].version,
                     variant)
    if variant == "timescaledb" and 3 in applied:
        refresh_rollups(engine, schema)  # continuous aggregates are created empty
    return InitReport(variant=variant, applied=applied, version=MIGRATIONS[-1].version)


def schema_initialised(engine: Engine, schema: str) -> bool:
    """True when ``schema`` exists and holds technic's ``schema_migrations`` table (created by
    :func:`init_db`); read-only."""
    with engine.connect() as conn:
        return bool(conn.execute(sa.text("SELECT to_regclass(:t) IS NOT NULL"),
                                 {"t": f"{quote_ident(schema)}.schema_migrations"}).scalar())


def is_native_partitioned(conn: Connection, schema: str, table: str) -> bool:
    """True when ``schema.table`` is a natively range-partitioned parent table."""
    row = conn.execute(sa.text(
        "SELECT 1 FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = :s AND c.relname = :t"
    ), {"s": schema, "t": table}).first()
    return row is not None


def _hypertable_dimension(conn: Connection, schema: str, table: str) -> str | None:
    """The time column of hypertable ``schema.table``, or None when it is not one."""
    if timescale_schema(conn) is None:
        return None
    return conn.execute(sa.text(
        "SELECT column_name FROM timescaledb_information.dimensions WHERE hypertable_schema = :s "
        "AND hypertable_name = :t AND dimension_number = 1"), {"s": schema, "t": table}).scalar()


def _epoch_us(day: str) -> int:
    """Microseconds from the Unix epoch to UTC midnight of ISO date ``day`` (TimescaleDB's
    internal time of chunk slices)."""
    return int((np.datetime64(day, "D") - np.datetime64("1970-01-01", "D"))
               .astype("timedelta64[us]").astype(np.int64))


def ensure_partitions(conn: Connection, schema: str, table: str,
                      periods: Iterable[int | np.datetime64]) -> list[str]:
    """Create the missing range partitions of ``table`` ahead of a write.

    Native variant: one partition per period. TimescaleDB hypertables: one chunk per
    calendar year for yearly periods (``_timescaledb_functions.create_chunk``; a year some
    chunk already overlaps is left alone), nothing for months (intraday chunks are
    TimescaleDB's own 7-day ones).

    Race-free: creation runs under a transaction-level advisory lock per table, so
    concurrent writers into an empty database wait for each other instead of failing with
    ``DuplicateTable``. Call it in a short transaction of its own (the lock is held until it
    commits).

    Args:
        periods: calendar years (``int`` or ``datetime64[Y]``) → ``<table>_y<YYYY>``, or
            months (``datetime64[M]``, for intraday tables) → ``<table>_m<YYYYMM>``; bounds
            are UTC midnights.

    Returns:
        The names of the partitions (or hypertable chunks) created.
    """
    qs = quote_ident(schema)
    bounds = set()
    for p in periods:
        if isinstance(p, np.datetime64) and np.datetime_data(p.dtype)[0] == "M":
            lo = p.astype("datetime64[M]")
            bounds.add((f"{table}_m{str(lo).replace('-', '')}", str(lo.astype("datetime64[D]")),
                        str((lo + 1).astype("datetime64[D]"))))
        else:
            y = int(p.astype("datetime64[Y]").astype(int) + 1970) \
                if isinstance(p, np.datetime64) else int(p)
            bounds.add((f"{table}_y{y}", f"{y}-01-01", f"{y + 1}-01-01"))
    if not bounds:
        return []
    native = is_native_partitioned(conn, schema, table)
    dim = None if native else _hypertable_dimension(conn, schema, table)
    if not native and dim is None:
        return []
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
                 {"k": f"technic-partitions-{schema}.{table}"})
    created: list[str] = []
    for name, lo, hi in sorted(bounds):
        if native:
            exists = conn.execute(sa.text(
                "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = :s AND c.relname = :t"), {"s": schema, "t": name}).first()
            if not exists:
                conn.execute(sa.text(
                    f"CREATE TABLE IF NOT EXISTS {qs}.{name} PARTITION OF {qs}.{table} "
                    f"FOR VALUES FROM ('{lo} 00:00:00+00') TO ('{hi} 00:00:00+00')"))
                created.append(name)
            continue
        if "_y" not in name[len(table):]:
            continue  # months: TimescaleDB's own chunks
        taken = conn.execute(sa.text(
            "SELECT 1 FROM timescaledb_information.chunks WHERE hypertable_schema = :s "
            "AND hypertable_name = :t AND range_start < CAST(:hi AS timestamptz) "
            "AND range_end > CAST(:lo AS timestamptz)"),
            {"s": schema, "t": table, "lo": f"{lo} 00:00:00+00",
             "hi": f"{hi} 00:00:00+00"}).first()
        if not taken:
            slices = json.dumps({dim: [_epoch_us(lo), _epoch_us(hi)]})
            chunk = conn.execute(sa.text(
                "SELECT table_name FROM _timescaledb_functions.create_chunk("
                "CAST(:h AS regclass), CAST(:sl AS jsonb))"),
                {"h": f"{qs}.{table}", "sl": slices}).scalar_one()  # one row per call
            created.append(chunk)
    return created
