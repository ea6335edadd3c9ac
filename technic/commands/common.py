"""What every CLI command shares: the consoles, one-line failures, the database target."""

from __future__ import annotations

import datetime as dt
import logging
from typing import overload

import typer
from rich.console import Console
from rich.markup import escape

log = logging.getLogger("technic.cli")

#: Messages and progress (stderr) and results (stdout).
console = Console(stderr=True)
out = Console()


def fail(msg: str, code: int = 1) -> typer.Exit:
    """Print ``error: msg`` (one line, stderr) and return the exit to raise."""
    console.print(f"[bold red]error:[/] {escape(msg)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


@overload
def parse_date(value: str, name: str = ...) -> dt.date: ...
@overload
def parse_date(value: str | None, name: str = ...) -> dt.date | None: ...
def parse_date(value: str | None, name: str = "--as-of") -> dt.date | None:
    """An ISO date option (``YYYY-MM-DD``), None when not given.

    Raises:
        typer.BadParameter: not an ISO date (typer prints it with the option's name, exit 2).
    """
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not an ISO date (YYYY-MM-DD)",
                                 param_hint=name) from None


def target(create: bool = False):
    """Resolve the database, check and migrate the schema, and log which database is used
    (INFO: shown with ``--verbose``; stdout stays clean for ``--format csv/json``).

    Args:
        create: create the schema if missing (``db init``, ingests, ``demo``); otherwise a
            missing schema is a one-line error telling to run ``technic db init``.

    Returns:
        ``(target, InitReport)``.
    """
    from technic.config import ConfigError, get_settings
    from technic.jobs.target import SchemaMissing, open_target
    from technic.store.db import DatabaseUnavailable
    from technic.store.schema import MigrationError

    try:
        get_settings()
    except ConfigError as e:  # e.g. TECHNIC_DASK_WORKERS=abc: not a database problem
        raise fail(str(e), 2) from None
    try:
        t, report = open_target(create=create)
    except SchemaMissing as e:
        raise fail(str(e)) from None
    except (DatabaseUnavailable, MigrationError) as e:  # the server answered: say why
        raise fail(str(e)) from None
    except Exception as e:  # connection refused, bad URL, permissions …
        raise fail(f"cannot use the database: {type(e).__name__}: {e}\n"
                   "Set TECHNIC_DATABASE_URL to a reachable PostgreSQL "
                   "(postgresql+psycopg://user:pass@host:5432/db).") from None
    log.info("database: %s", t.describe())
    return t, report
