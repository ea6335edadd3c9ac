"""The database a front end (CLI, Python API) works on: resolved, checked and migrated.

Commands that only read (``scan``, ``db info``, ``preset list``, ``tc.scan()`` …) must not
create an empty schema when ``TECHNIC_DB_SCHEMA`` has a typo: they get :class:`SchemaMissing`
("run `technic db init`"). Commands that load data (``db init``, ``ingest``, ``demo``) create
it.
"""

from __future__ import annotations

from technic.store.db import DatabaseTarget, get_engine, resolve_target
from technic.store.schema import InitReport, init_db, schema_initialised


class SchemaMissing(LookupError):
    """The configured schema does not exist (or is not a technic schema) in the database."""


def open_target(create: bool = False, target: DatabaseTarget | None = None
                ) -> tuple[DatabaseTarget, InitReport]:
    """Resolve the database like the CLI (``TECHNIC_DATABASE_URL``, else the local server,
    else the embedded one) and bring its schema up to date.

    Args:
        create: create the schema when it does not exist (``db init``, ingests, ``demo``);
            False: raise :class:`SchemaMissing` instead.
        target: use this target instead of resolving one.

    Raises:
        SchemaMissing: ``create`` is False and the schema has no technic tables.
        technic.store.db.DatabaseUnavailable, technic.store.schema.MigrationError: as
            :func:`technic.store.db.resolve_target` and :func:`technic.store.schema.init_db`.
    """
    t = target or resolve_target()
    engine = get_engine(t)
    if not create and not schema_initialised(engine, t.schema):
        raise SchemaMissing(
            f"schema {t.schema!r} does not exist in {t.describe().split(' (')[0]} (check "
            "TECHNIC_DB_SCHEMA); run `technic db init` to create it")
    return t, init_db(engine, t.schema)
