"""The ``technic`` command line."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated, overload

import pandas as pd
import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from technic.commands.options import app as options_app
from technic.config import get_settings
from technic.universe import DEFAULT_RULES

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
db_app = typer.Typer(help="Database: where it is, create or migrate the schema.",
                     no_args_is_help=True, rich_markup_mode="markdown")
ingest_app = typer.Typer(help="Load bars and reference data into the store.",
                         no_args_is_help=True, rich_markup_mode="markdown")
features_app = typer.Typer(help="The feature store (features_daily).", no_args_is_help=True,
                            rich_markup_mode="markdown")
app.add_typer(db_app, name="db")
app.add_typer(ingest_app, name="ingest")
app.add_typer(features_app, name="features")
app.add_typer(options_app, name="options")
from technic.commands import screen as _screen  # noqa: E402 - the screens' commands

app.command("sectors")(_screen.sectors)
app.command("columns")(_screen.columns)
app.add_typer(_screen.preset_app, name="preset")

console = Console(stderr=True)
out = Console()


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


def _fail(msg: str, code: int = 1) -> typer.Exit:
    console.print(f"[bold red]error:[/] {escape(msg)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _target(create: bool = False):
    """Resolve the database and make sure the schema is current; a schema that does not
    exist is created only with ``create`` (commands that load data), else a one-line error
    saying to run `technic db init` (technic/commands/common.py)."""
    from technic.commands.common import target

    return target(create)


@overload
def _parse_date(value: str, name: str = ...) -> dt.date: ...
@overload
def _parse_date(value: str | None, name: str = ...) -> dt.date | None: ...
def _parse_date(value: str | None, name: str = "--as-of") -> dt.date | None:
    from technic.commands.common import parse_date

    return parse_date(value, name)


# ----------------------------------------------------------------------------- db
@db_app.command("init")
def db_init() -> None:
    """Create or migrate the schema (idempotent). TimescaleDB hypertables when the extension is
    available, native yearly range partitions otherwise."""
    target, report = _target(create=True)
    what = f"applied migration(s) {report.applied}" if report.applied else "already current"
    out.print(f"database: {target.describe()}\nschema version {report.version} "
              f"({report.variant} storage): {what}")


@db_app.command("info")
def db_info() -> None:
    """Show which database is used and how many rows each table holds."""
    from technic.store.catalog import table_counts

    target, report = _target()
    t = Table("table", "rows", title=f"{target.describe()} — {report.variant} storage")
    for name, n in table_counts(target).items():
        t.add_row(name, f"{n:,}")
    out.print(t)


# ----------------------------------------------------------------------------- ingest
def _print_ingest(reports) -> None:
    # Fitted to the terminal like the scan table: the file's name (the full path is in
    # ingest_runs.path) and numbers never cut; columns that do not fit are named instead.
    from technic.commands.screen import OutputFormat, write_rows

    rows = pd.DataFrame([{
        "run": str(r.run_id), "file": Path(r.path).name if r.path else "",
        "read": f"{r.rows_read:,}", "inserted": f"{r.rows_inserted:,}",
        "rejected": f"{r.rows_rejected:,}", "updated": f"{r.rows_updated:,}",
        "unchanged": f"{r.rows_unchanged:,}", "symbols": f"{r.symbols_upserted:,}",
        "seconds": f"{sum(r.timings.get(k, 0.0) for k in ('read_s', 'validate_s', 'store_s')):.2f}"}
        for r in reports])
    if len(rows):  # counts that are not all zero first: they are what a run did
        counts = ["inserted", "rejected", "updated", "unchanged", "symbols"]
        counts.sort(key=lambda c: bool((rows[c] == "0").all()))
        write_rows(rows, ["run", "file", "read", *counts, "seconds"], OutputFormat.table,
                   "ingest", None, keep_order=True, hint="widen the terminal")
    for r in reports:
        for reason, n in r.rejects_by_reason.items():
            out.print(f"  run {r.run_id}: [yellow]{n:,} row(s) rejected[/]: {reason} "
                      f"(see ingest_rejects WHERE run_id = {r.run_id})")


@ingest_app.command("files")
def ingest_files_cmd(
    path: Annotated[Path | None, typer.Argument(
        help="A directory (its universe.parquet, bars_daily.parquet/.csv and "
             "fundamentals.parquet/.csv) or one file. "
             "Default: the bundled real subset (TECHNIC_DATA_DIR).")] = None,
) -> None:
    """Load bars (Parquet/CSV: symbol, date, open, high, low, close, volume), universe rows and
    quarterly fundamentals (symbol, period_end, available_date, line items).

    Bad rows are stored in ingest_rejects with their reason and counted; good rows are upserted
    (re-running the same file changes nothing). Exit code 0 unless the file is unusable."""
    from technic.jobs.ingest import ingest_files
    from technic.providers.files import InputFileError

    target, _ = _target(create=True)
    src = path or get_settings().data_dir
    with console.status(f"ingesting {src} …"):
        try:
            reports = ingest_files(target, src)
        except InputFileError as e:
            raise _fail(str(e), 2) from None
    _print_ingest(reports)


@ingest_app.command("synthetic")
def ingest_synthetic_cmd(
    symbols: Annotated[int, typer.Option("--symbols", min=1, help="Number of symbols.")] = 6000,
    days: Annotated[int, typer.Option("--days", min=2, help="Bars per symbol.")] = 504,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same bars).")] = 0,
) -> None:
    """Generate realistic synthetic OHLCV (GBM closes, log-normal volume) for scale tests."""
    from technic.jobs.ingest import ingest_synthetic

    target, _ = _target(create=True)
    with console.status(f"generating and ingesting {symbols:,} × {days} bars …"):
        report = ingest_synthetic(target, symbols, days, seed)
    _print_ingest([report])


@ingest_app.command("status")
def ingest_status_cmd(
    top: Annotated[int, typer.Option(min=1, help="Symbols with the most gaps to list.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Data quality: freshness per source (last date, rows, symbols), rejected rows by reason,
    failed ingest runs (runs whose process died are marked failed first: "orphaned"), runs
    in progress, and symbols with missing sessions between their first and last bar."""
    from technic.store.quality import ingest_status

    target, _ = _target()
    st = ingest_status(target, top)
    if as_json:
        sys.stdout.write(json.dumps(st.as_dict()) + "\n")
        return
    t = Table("source", "last date", "rows", "symbols", "last ingest", "price basis",
              title="bars_daily")
    for r in st.sources:
        t.add_row(r["source"], r["last_date"], f"{r['rows']:,}", f"{r['symbols']:,}",
                  r["last_ingest"][:19], _basis_text(r))
    out.print(t)
    if st.mixed_basis_symbols:
        out.print(f"[yellow]{st.mixed_basis_symbols:,} symbol(s) have daily bars of different "
                  f"price bases[/] (features across them splice two bases)")
    if st.rejects:
        t = Table("source", "reason", "rows", title="rejected rows (ingest_rejects)")
        for r in st.rejects:
            t.add_row(r["source"], r["reason"], f"{r['rows']:,}")
        out.print(t)
    for r in st.failed_runs:
        out.print(f"[red]failed run {r['run_id']}[/] {escape(r['path'] or '')} at "
                  f"{r['started_at'][:19]}: {escape(r['error'] or '')}", highlight=False)
    for r in st.running_runs:
        out.print(f"running: run {r['run_id']} {escape(r['path'] or '')} since "
                  f"{r['started_at'][:19]}", highlight=False)
    out.print(f"gaps: {st.gaps_total:,} symbol-sessions missing inside symbols' histories")
    if st.gaps_top:
        t = Table("symbol", "missing sessions", "first bar", "last bar", title="most gaps")
        for r in st.gaps_top:
            t.add_row(r["symbol"], str(r["gaps"]), r["first"], r["last"])
        out.print(t)


def _basis_text(r: dict) -> str:
    def yn(v):
        return "?" if v is None else ("yes" if v else "no")
    as_of = f" as of {r['adjusted_as_of']}" if r.get("adjusted_as_of") else ""
    return f"splits {yn(r.get('split_adjusted'))}, dividends {yn(r.get('dividend_adjusted'))}" \
        + as_of


@ingest_app.command("partial")
def ingest_partial_cmd(
    at: Annotated[str | None, typer.Option(
        "--at", help="Time (ISO 8601; no zone = UTC). Default: now.")] = None,
) -> None:
    """Build today's partial daily bars from the intraday bars stored up to --at and upsert
    them into bars_daily (source intraday-partial; a complete bar ingested later replaces
    them). Then `technic features refresh --changed-only` and `technic scan` see the day so
    far."""
    import pandas as pd

    from technic.jobs.ingest import build_partial_daily

    target, _ = _target(create=True)
    try:
        when = pd.Timestamp(at) if at else pd.Timestamp.now(tz="UTC")
        report = build_partial_daily(target, when)
    except ValueError as e:
        raise _fail(str(e), 2) from None
    _print_ingest([report])


@ingest_app.command("splits")
def ingest_splits_cmd(
    path: Annotated[Path | None, typer.Argument(
        help="CSV/Parquet with symbol, ex_date (or execution_date), split_from, split_to.")
    ] = None,
    polygon_start: Annotated[str | None, typer.Option(
        "--polygon-start", help="Fetch splits from Polygon from this execution date.")] = None,
) -> None:
    """Record stock splits and adjust stored bars that lack them (prices / ratio, volume x
    ratio, before the ex-date; one transaction; applying twice does nothing)."""
    import pandas as pd

    from technic.jobs.ingest import ingest_splits

    target, _ = _target(create=True)
    if (path is None) == (polygon_start is None):
        raise _fail("give either a splits file or --polygon-start", 2)
    if path is not None:
        splits = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
        source = path.name
    else:
        from technic.providers.polygon import PolygonClient, PolygonError

        s = get_settings()
        try:
            with PolygonClient(base_url=s.polygon_base_url,
                               requests_per_minute=s.polygon_requests_per_minute) as client:
                splits = client.splits(start=_parse_date(polygon_start, "--polygon-start"))
        except PolygonError as e:
            raise _fail(str(e), 2) from None
        source = "polygon"
    try:
        report = ingest_splits(target, splits, source=source)
    except (ValueError, KeyError) as e:
        raise _fail(f"{type(e).__name__}: {e}", 2) from None
    out.print(f"{report.symbols_upserted} new split(s) recorded, {report.rows_read} applied, "
              f"{report.rows_updated:,} daily bar(s) adjusted")


@ingest_app.command("polygon")
def ingest_polygon_cmd(
    start: Annotated[str, typer.Option(help="First date (YYYY-MM-DD).")],
    end: Annotated[str | None, typer.Option(
        help="Last date; default: the last complete NYSE session.")] = None,
    adjusted: Annotated[bool, typer.Option(
        "--adjusted/--unadjusted", help="Split-adjusted bars (recorded per run).")] = True,
) -> None:
    """Backfill daily bars for the whole US market from Polygon (grouped daily, one request per
    NYSE session; needs TECHNIC_POLYGON_API_KEY). Resumable: re-run the same command after an
    interruption and it continues from the first session not yet stored."""
    from technic.calendar import last_complete_session
    from technic.jobs.ingest import ingest_polygon
    from technic.providers.polygon import PolygonClient, PolygonError

    s = get_settings()
    s_date = _parse_date(start, "--start")
    e_date = _parse_date(end, "--end") or last_complete_session()
    target, _ = _target(create=True)
    try:
        client = PolygonClient(base_url=s.polygon_base_url,
                               requests_per_minute=s.polygon_requests_per_minute)
    except PolygonError as e:
        raise _fail(str(e), 2) from None
    from technic.calendar import sessions

    try:
        days = sessions(s_date, e_date)
    except ValueError as e:
        raise _fail(str(e), 2) from None
    reports = []
    with client, Progress(TextColumn("[bold]polygon {task.fields[day]}"), BarColumn(),
                          MofNCompleteColumn(), TextColumn("sessions"), TimeElapsedColumn(),
                          console=console) as progress:
        task = progress.add_task("polygon", total=len(days), day="")

        def tick(day: dt.date, report) -> None:
            progress.update(task, advance=1, day=str(day))

        try:
            reports = ingest_polygon(target, client, s_date, e_date, adjusted=adjusted,
                                     on_date=tick)
        except PolygonError as e:
            raise _fail(f"{e} — the sessions before it are stored; re-run to resume") from None
    skipped = len(days) - len(reports)
    out.print(f"{len(reports)} session(s) ingested, {skipped} already stored")
    if reports:
        _print_ingest(reports)


@ingest_app.command("polygon-financials")
def ingest_polygon_financials_cmd(
    symbols: Annotated[list[str], typer.Argument(help="Tickers, e.g. AAPL MSFT.")],
    filed_from: Annotated[str | None, typer.Option(
        "--filed-from", help="First filing date (YYYY-MM-DD); default: all.")] = None,
    filed_to: Annotated[str | None, typer.Option(
        "--filed-to", help="Last filing date (YYYY-MM-DD); default: all.")] = None,
) -> None:
    """Quarterly fundamentals from Polygon's vX/reference/financials into the fundamentals
    table (one ingest run per ticker; needs TECHNIC_POLYGON_API_KEY). Filing dates are the
    quarters' public dates; free cash flow stays NULL (the endpoint has no capex line)."""
    from technic.jobs.ingest import ingest_polygon_financials
    from technic.providers.polygon import PolygonClient, PolygonError

    s = get_settings()
    a, b = _parse_date(filed_from, "--filed-from"), _parse_date(filed_to, "--filed-to")
    target, _ = _target()
    try:
        with PolygonClient(base_url=s.polygon_base_url,
                           requests_per_minute=s.polygon_requests_per_minute) as client:
            reports = ingest_polygon_financials(target, client, symbols, start=a, end=b)
    except PolygonError as e:
        raise _fail(f"{e} — tickers before it are stored") from None
    _print_ingest(reports)


# ----------------------------------------------------------------------------- features
def _print_dashboard(url: str) -> None:
    console.print(f"Dask dashboard: {url}", highlight=False, soft_wrap=True)


def _refresh(target, as_of: dt.date | None, local: bool, only_changed: bool = False,
             use_gpu: bool = False):
    from technic.jobs.refresh import run_refresh

    with Progress(TextColumn("[bold]refresh features"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("chunks"), TimeElapsedColumn(), console=console,
                  transient=False) as progress:
        task = progress.add_task("refresh", total=None)

        def tick(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        report, _ = run_refresh(target, as_of, mode="full", local=local,
                                changed_only=only_changed, gpu=use_gpu, on_chunk_done=tick,
                                on_dashboard=_print_dashboard)
    return report


def _refresh_incremental(target, as_of: dt.date | None, local: bool = False):
    from technic.jobs.refresh import run_refresh

    with console.status("incremental feature refresh …"):
        report, _ = run_refresh(target, as_of, mode="incremental", local=local)
    return report


@features_app.command("backfill")
def features_backfill(
    start: Annotated[str, typer.Option(help="First date (YYYY-MM-DD).")],
    end: Annotated[str | None, typer.Option(help="Last date; default: the latest date with "
                                                 "bars.")] = None,
    local: Annotated[bool, typer.Option("--local", help="Compute in this process instead of "
                                                        "on Dask.")] = False,
) -> None:
    """Compute and store feature history: every trading date from --start to --end, for every
    symbol with bars (training data for models, point-in-time evaluation). Each date uses only
    bars on or before it. On Dask (without --local) the dashboard's link is printed."""
    from technic.jobs.refresh import run_backfill
    from technic.store.bars import NoDataError

    s_date, e_date = _parse_date(start, "--start"), _parse_date(end, "--end")
    target, _ = _target()
    try:
        with Progress(TextColumn("[bold]backfill features"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("chunks"), TimeElapsedColumn(), console=console) as progress:
            task = progress.add_task("backfill", total=None)

            def tick(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            r = run_backfill(target, s_date, e_date, local=local, on_chunk_done=tick,
                             on_dashboard=_print_dashboard)
    except (NoDataError, ValueError) as e:
        raise _fail(str(e)) from None
    out.print(f"features {r.start} … {r.as_of}: {r.rows_written:,} rows for {r.symbols:,} "
              f"symbols in {r.chunks} chunk(s), {r.timings['total_s']:.2f} s")


@features_app.command("refresh")
def features_refresh(
    as_of: Annotated[str | None, typer.Option(help="Date (YYYY-MM-DD); default: the latest "
                                                   "date with bars.")] = None,
    local: Annotated[bool, typer.Option("--local", help="Compute in this process instead of "
                                                        "on Dask (either mode).")] = False,
    changed_only: Annotated[bool, typer.Option(
        "--changed-only", help="With --full: recompute only symbols whose bars changed since "
                               "their features were computed.")] = False,
    incremental: Annotated[bool, typer.Option(
        "--incremental/--full",
        help="--incremental (default): reuse the cached bar window (in-process, Redis) and "
             "compute only the new date or the symbols whose bar changed; without a usable "
             "window it reads the window once and caches it. Rows equal a full refresh. "
             "With TECHNIC_DASK_ADDRESS it runs on one long-lived worker of that cluster, "
             "which keeps the window in memory between runs (unless --local). "
             "--full: recompute every symbol from the database, fanned out over Dask.")] = True,
    gpu: Annotated[bool, typer.Option(
        "--gpu", help="Implies --full: compute on the GPU kernels, on the Dask workers that "
                      "declare the GPU resource (`dask worker --resources GPU=1`; with --local: "
                      "this machine's GPU). Without one: a warning, and the CPU.")] = False,
) -> None:
    """Compute the feature set for every symbol with a bar on the as-of date and upsert it into
    features_daily.

    The default is incremental (see --incremental); --full fans out over Dask
    (TECHNIC_DASK_ADDRESS or a LocalCluster; the Dask dashboard's link is printed), or runs
    here with --local."""
    from technic.jobs.refresh import refresh_mode
    from technic.store.bars import NoDataError

    target, _ = _target()
    try:
        if refresh_mode(incremental, changed_only, gpu) == "incremental":
            r = _refresh_incremental(target, _parse_date(as_of), local)
            out.print(f"features for {r.as_of}: {r.rows_written:,} symbols recomputed "
                      f"({r.mode}, window from {r.window_layer}), "
                      f"{r.timings['total_s']:.2f} s")
            return
        r = _refresh(target, _parse_date(as_of), local, changed_only, use_gpu=gpu)
    except NoDataError as e:
        raise _fail(str(e)) from None
    except OSError as e:  # TECHNIC_DASK_ADDRESS set but its scheduler does not answer
        raise _fail(f"cannot reach the Dask scheduler at {get_settings().dask_address}: {e} "
                    "(unset TECHNIC_DASK_ADDRESS for a local cluster, or use --local)"
                    if get_settings().dask_address else str(e)) from None
    out.print(f"features for {r.as_of}: {r.rows_written:,} symbols in {r.chunks} chunk(s), "
              f"{r.timings['total_s']:.2f} s")


# ----------------------------------------------------------------------------- scan
def _scan(target, params, fmt="table", output=None):
    from technic.commands.screen import OutputFormat, run_and_show

    return run_and_show(target, params, OutputFormat(fmt), output)


@app.command()
def scan(
    top: Annotated[int, typer.Option("--top", "-n", min=1, help="Rows to print.")] = 25,
    as_of: Annotated[str | None, typer.Option(help="Scan date (YYYY-MM-DD); default: the "
                                                   "latest feature date.")] = None,
    min_price: Annotated[float, typer.Option(
        min=0, help="Minimum last close, USD.")] = DEFAULT_RULES.min_price,
    min_dollar_volume: Annotated[float, typer.Option(
        min=0, help="Minimum 20-day average dollar volume, USD.")
    ] = DEFAULT_RULES.min_dollar_volume,
    sector: Annotated[list[str] | None, typer.Option(
        help="Keep only this sector (repeatable), e.g. --sector Technology "
             "(`technic sectors` lists them).")] = None,
    all_tickers: Annotated[bool, typer.Option(
        "--all-tickers", help="Keep warrants, units, rights, preferreds and notes.")] = False,
    keep_leveraged: Annotated[bool, typer.Option(
        "--keep-leveraged", help="Keep leveraged/inverse ETFs.")] = False,
    preset: Annotated[str | None, typer.Option(
        help="Name stored with the run (scan_runs.preset; latest_scan_results_by_preset "
             "shows the latest run of each name). Default: `default` with the default "
             "filters — the runs latest_scan_results shows — else none (a custom scan that "
             "feeds no view). The name of a stored preset (`technic preset list`) runs that "
             "preset, as `technic preset run NAME` does.")] = None,
    where: Annotated[str | None, typer.Option(
        help="Filter on any feature, reference or score column, applied after scoring, e.g. "
             "\"rsi_14 < 30 and close > sma_200\"; and/or/not, ( ), < <= > >= = !=, "
             "`col in ('a', 'b')`, `col is null`; numbers may end in K/M/B/T. "
             "`technic columns` lists the columns; docs/screens.md the grammar.")] = None,
    industry: Annotated[list[str] | None, typer.Option(
        help="Keep only this industry (repeatable; `technic sectors --industries`).")] = None,
    min_market_cap: Annotated[float | None, typer.Option(
        min=0, help="Minimum market cap, USD (symbols.market_cap), e.g. 2e9.")] = None,
    sort: Annotated[str | None, typer.Option(
        help="Order the printed rows by this column (the stored rank stays the default "
             "rank's, ICS).")
    ] = None,
    descending: Annotated[bool | None, typer.Option(
        "--desc/--asc", help="Sort direction; default descending for numbers, ascending for "
                             "rank and text.")] = None,
    cols: Annotated[str | None, typer.Option(
        "--columns", help="Columns to show, comma-separated (default: a table fitted to the "
                          "terminal width).")] = None,
    fmt: Annotated[str, typer.Option(
        "--format", help="table (fitted to the terminal: columns that do not fit are "
                         "hidden and named, values never cut), csv or json.")] = "table",
    output: Annotated[Path | None, typer.Option(help="Write the rows to this file.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Same as --format json: one JSON "
                                                         "object.")] = False,
    with_options: Annotated[bool, typer.Option(
        "--with-options", help="Add the option metrics of the scan date (opt_* columns; "
                               "symbols with a chain that day, docs/options.md); on by itself when "
                               "--where, --sort or --columns names an opt_* column.")] = False,
) -> None:
    """Filter the universe, score it (TechRating, ICS, MERIT, alphas, fundamental and
    risk-adjusted factors), rank by the default rank (ICS, docs/evaluation), store the run in
    scan_runs/scan_results and print the top rows. Only scans with the default filters replace
    what latest_scan_results shows."""
    from technic.commands.screen import scan_params

    if fmt not in ("table", "csv", "json"):
        raise _fail(f"--format {fmt!r}: use table, csv or json", 2)
    params = scan_params(top, _parse_date(as_of), min_price, min_dollar_volume, sector,
                         all_tickers, keep_leveraged, preset, where, industry, min_market_cap,
                         sort, descending, cols, with_options)
    target, _ = _target()
    if preset is not None:  # a stored preset runs as itself (as `technic preset run`)
        from technic.commands.screen import stored_preset_params

        params = stored_preset_params(target, params) or params
    _scan(target, params, "json" if as_json else fmt, output)


@app.command()
def evaluate(
    start: Annotated[str | None, typer.Option(help="First scan date (YYYY-MM-DD); needed "
                                                   "unless --write-docs.")] = None,
    end: Annotated[str | None, typer.Option(help="Last scan date (YYYY-MM-DD); needed "
                                                 "unless --write-docs.")] = None,
    report: Annotated[Path, typer.Option(help="Markdown report to write (PNG plots and the "
                                              "per-date IC go next to it).")] = Path(
        "technic-evaluation.md"),
    oos: Annotated[Path | None, typer.Option(help="Out-of-sample alpha predictions "
                                                  "(oos_alpha.parquet of `technic train`) "
                                                  "to use instead of the walk-forward "
                                                  "models of the model folder "
                                                  "(TECHNIC_MODEL_DIR, default models/).")
                   ] = None,
    write_docs: Annotated[bool, typer.Option(
        "--write-docs", help="Regenerate docs/evaluation: the default-rank study on the real "
                             "bar files of --data (no database), design vs locked test.")
    ] = False,
    data: Annotated[Path, typer.Option(help="Folder with bars_daily.parquet, universe.parquet"
                                            " and bars_daily_2014_2016.parquet "
                                            "(--write-docs).")] = Path("../shared/data"),
    docs: Annotated[Path, typer.Option(help="Output folder of --write-docs.")] = Path(
        "docs/evaluation"),
    retrain: Annotated[bool, typer.Option(help="With --write-docs: refit the walk-forward "
                                               "models first (minutes) instead of using the "
                                               "stored ones.")] = False,
) -> None:
    """Score evaluation by the protocol of docs/evaluation/README.md: every score is reported
    on the store's design period and, separately, on its locked test period (the last 12
    months), labelled with the dates it was designed on: mean RankIC with Newey-West t and a
    block-bootstrap CI, spreads after 10 bps per side, RankIC by year and size tercile, decile
    returns, PNG plots. Alphas come from the walk-forward models trained before each date.
    Needs stored feature history (`technic features backfill`). With --write-docs: the
    default-rank study on the real bar files instead (one command for docs/evaluation)."""
    from technic.jobs.evaluate import SCORE_NAMES, write_evaluation
    from technic.jobs.evaluate import evaluate as run_evaluation

    if write_docs:
        from technic.jobs.study import CANDIDATES, run_study

        with console.status("default-rank study (minutes) …"):
            try:
                table, (score, cleared, reason) = run_study(
                    data, get_settings().model_dir, docs, train=retrain)
            except (FileNotFoundError, ValueError) as e:
                raise _fail(str(e)) from None
        out.print(f"default rank: {CANDIDATES[score]} — {reason}")
        out.print(f"written: {docs}/default_rank.md (+ PNG, CSV)")
        return
    if start is None or end is None:
        raise _fail("--start and --end are required (or use --write-docs)", 2)
    s_date, e_date = _parse_date(start, "--start"), _parse_date(end, "--end")
    target, _ = _target()
    with console.status("evaluating …"):
        try:
            ev = run_evaluation(target, s_date, e_date, oos_path=oos)
        except LookupError as e:
            raise _fail(str(e)) from None
    if ev.split is not None and not ev.protocol.empty:
        t = Table("period", "score (designed on)", "horizon", "dates", "mean RankIC", "NW t",
                  "95% CI", "top−bottom net", "top−median net",
                  title=f"Design {ev.split.design_start} … {ev.split.design_end} vs locked "
                        f"test {ev.split.test_start} … {ev.split.test_end} (10 bps per side)")
        for r in ev.protocol.itertuples():
            t.add_row(r.period, f"{SCORE_NAMES.get(r.score, r.score)} ({r.designed_on})",
                      f"{r.horizon} bars", str(r.dates), f"{r.mean_rank_ic:+.4f}",
                      f"{r.nw_t:+.2f}", f"[{r.ci_lo:+.3f}, {r.ci_hi:+.3f}]",
                      f"{r.top_bottom_net:+.3%}", f"{r.top_median_net:+.3%}")
        out.print(t)
    plots, ic_path = write_evaluation(ev, report, target.describe())
    out.print(f"report: {report}  plots: {', '.join(str(p) for p in plots)}  per-date IC: "
              f"{ic_path}")


@app.command()
def train(
    start: Annotated[str, typer.Option(help="First feature date (YYYY-MM-DD).")],
    end: Annotated[str, typer.Option(help="Last feature date (YYYY-MM-DD).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the models, metrics and "
                                                        "card.")] = Path("models"),
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same models).")] = 0,
) -> None:
    """Train the XGBoost alpha models (5- and 10-bar forward excess return) on stored feature
    history (`technic features backfill` first) with purged, embargoed walk-forward folds;
    writes alpha_5d.json, alpha_10d.json, metrics.json and MODEL_CARD.md."""
    from technic.ml.train import train_models

    s_date, e_date = _parse_date(start, "--start"), _parse_date(end, "--end")
    target, _ = _target()
    with console.status("training (walk-forward folds, then the final models) …"):
        try:
            metrics = train_models(target, s_date, e_date, out_dir, seed)
        except (LookupError, ValueError) as e:
            raise _fail(str(e)) from None
    for h, hm in metrics["horizons"].items():
        sm = hm["summary"]
        out.print(f"{h}-bar walk-forward: mean RankIC {sm['mean_rank_ic']:+.4f} (ICIR "
                  f"{sm['rank_icir']:+.3f}), top−bottom decile {sm['mean_spread']:+.3%}")
    out.print(f"models, metrics and card written to {out_dir}/")


from technic.commands.serve import serve as _serve  # noqa: E402

app.command("serve")(_serve)


# ----------------------------------------------------------------------------- demo
@app.command()
def demo(
    top: Annotated[int, typer.Option("--top", "-n", min=1, help="Rows to print.")] = 25,
    data: Annotated[Path | None, typer.Option(help="Data to ingest (default: the bundled "
                                                   "real subset).")] = None,
) -> None:
    """The main job end to end: db init, ingest the bundled real data, refresh features on
    Dask, scan, print the top rows and the SQL that lists every result of the run."""
    from technic.jobs.ingest import ingest_files
    from technic.jobs.scan import ScanParams

    target, report = _target(create=True)
    out.print(f"[bold]database[/]: {target.describe()} — {report.variant} storage")
    src = data or get_settings().data_dir
    with console.status(f"ingesting {src} …"):
        reports = ingest_files(target, src)
    _print_ingest(reports)
    r = _refresh(target, None, local=False)
    out.print(f"features for {r.as_of}: {r.rows_written:,} symbols, "
              f"{r.timings['total_s']:.2f} s")
    outcome = _scan(target, ScanParams(top=top))
    out.print(
        f"\n[bold]All {len(outcome.results):,} ranked results of run {outcome.run_id}[/] are in "
        f"{target.describe()}:\n"
        f"  SELECT * FROM {target.schema}.scan_results WHERE run_id = {outcome.run_id} "
        "ORDER BY rank;\n"
        f"  (or: SELECT * FROM {target.schema}.latest_scan_results ORDER BY rank;)")


# ------------------------------------------------------------ portfolio, backtest
from technic.commands.portfolio import register as _register_portfolio  # noqa: E402

_register_portfolio(app)


if __name__ == "__main__":  # pragma: no cover
    app()
