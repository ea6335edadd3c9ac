"""The ``technic`` command line: the app, its global options and the registration of the
command groups, which live in :mod:`technic.commands` (one module per subject)."""

from __future__ import annotations

import logging
import os
import sys
from typing import Annotated

import typer
from rich.logging import RichHandler
from rich.markup import escape

from technic.commands import (
    db,
    demo,
    evaluate,
    features,
    ingest,
    options,
    portfolio,
    scan,
    screen,
    serve,
)
from technic.commands.common import console

#: Set by ``--debug`` (or ``TECHNIC_DEBUG=1``): unexpected errors show their traceback.
_DEBUG = False


def _debug() -> bool:
    return _DEBUG or os.environ.get("TECHNIC_DEBUG", "").strip().lower() in {"1", "true", "yes"}


def describe_error(e: BaseException) -> str:
    """One line for an error the CLI did not handle itself: database errors name the
    driver's error and its first line (no SQL, no traceback)."""
    from technic.config import ConfigError
    from technic.store.db import describe_database_error, first_line

    if isinstance(e, ConfigError):  # names the TECHNIC_* variable: not a database problem
        return str(e)
    return describe_database_error(e) or f"{type(e).__name__}: {first_line(e)}"


class _Cli(typer.Typer):
    """The command group; an error no command handled becomes one line on stderr and exit
    code 1 (the traceback with ``--debug`` or ``TECHNIC_DEBUG=1``)."""

    def __call__(self, *args, **kwargs):
        try:
            return super().__call__(*args, **kwargs)
        except Exception as e:
            if _debug():
                raise
            console.print(f"[bold red]error:[/] {escape(describe_error(e))}", highlight=False)
            console.print("(run with --debug or TECHNIC_DEBUG=1 for the traceback)",
                          style="dim", highlight=False)
            sys.exit(1)


app = _Cli(
    help="technic — a market scanner: ingest OHLCV bars into PostgreSQL, refresh the feature "
         "store, scan and rank the universe, and query the results with SQL.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_show_locals=False,
    rich_markup_mode="markdown")

# The command groups, in the order `technic --help` lists them.
app.add_typer(db.app, name="db")
app.add_typer(ingest.app, name="ingest")
app.add_typer(features.app, name="features")
app.add_typer(options.app, name="options")
app.command("sectors")(screen.sectors)
app.command("columns")(screen.columns)
app.add_typer(screen.preset_app, name="preset")
app.command("scan")(scan.scan)
app.command("evaluate")(evaluate.evaluate)
app.command("train")(evaluate.train)
app.command("serve")(serve.serve)
app.command("demo")(demo.demo)
portfolio.register(app)  # portfolio, backtest


@app.callback()
def _main(verbose: Annotated[bool, typer.Option("--verbose", "-v",
                                                help="Log progress details (INFO).")] = False,
          debug: Annotated[bool, typer.Option(
              "--debug", help="Show the traceback of an unexpected error (also "
                              "TECHNIC_DEBUG=1); without it, one line.")] = False,
          ) -> None:
    global _DEBUG
    _DEBUG = _DEBUG or debug
    level = logging.INFO if verbose else logging.WARNING
    # The handler's level also filters libraries (Dask) that set their own loggers to INFO.
    logging.basicConfig(level=level, format="%(message)s",
                        handlers=[RichHandler(console=console, show_path=False, level=level)])


if __name__ == "__main__":  # pragma: no cover
    app()
