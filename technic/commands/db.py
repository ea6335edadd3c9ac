"""``technic db``: which database is used; create or migrate its schema."""

from __future__ import annotations

import typer
from rich.table import Table

from technic.commands.common import out
from technic.commands.common import target as open_target

app = typer.Typer(help="Database: where it is, create or migrate the schema.",
                  no_args_is_help=True, rich_markup_mode="markdown")


@app.command("init")
def db_init() -> None:
    """Create or migrate the schema (idempotent). TimescaleDB hypertables when the extension is
    available, native yearly range partitions otherwise."""
    target, report = open_target(create=True)
    what = f"applied migration(s) {report.applied}" if report.applied else "already current"
    out.print(f"database: {target.describe()}\nschema version {report.version} "
              f"({report.variant} storage): {what}")


@app.command("info")
def db_info() -> None:
    """Show which database is used and how many rows each table holds."""
    from technic.store.catalog import table_counts

    target, report = open_target()
    t = Table("table", "rows", title=f"{target.describe()} — {report.variant} storage")
    for name, n in table_counts(target).items():
        t.add_row(name, f"{n:,}")
    out.print(t)
