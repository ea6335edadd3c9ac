"""A throwaway PostgreSQL database for a benchmark run (created, then dropped)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from technic.store.db import libpq_uri

ADMIN = os.environ.get("TECHNIC_BENCH_ADMIN_URL",
                       "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


@contextmanager
def throwaway_database(admin_url: str = ADMIN) -> Iterator[str]:
    """Create ``technic_bench_<random>`` on the admin URL's server; yield its SQLAlchemy URL;
    drop it (and dispose technic's pooled engines) on exit."""
    db = f"technic_bench_{secrets.token_hex(3)}"
    with psycopg.connect(libpq_uri(admin_url), autocommit=True) as c:
        c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
    try:
        yield make_url(admin_url).set(database=db).render_as_string(hide_password=False)
    finally:
        from technic.store.db import _ENGINES

        for e in _ENGINES.values():
            e.dispose()
        with psycopg.connect(libpq_uri(admin_url), autocommit=True) as c:
            c.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(db)))
