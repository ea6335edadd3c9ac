"""``technic ingest``: load bars, splits, reference data and fundamentals into the store
(files, synthetic bars, Polygon), build today's partial bars, and report data quality."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from technic.commands.common import console, fail, out, parse_date
from technic.commands.common import target as open_target
from technic.config import get_settings

app = typer.Typer(help="Load bars and reference data into the store.",
                  no_args_is_help=True, rich_markup_mode="markdown")


def print_ingest(reports) -> None:
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


@app.command("files")
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

    target, _ = open_target(create=True)
    src = path or get_settings().data_dir
    with console.status(f"ingesting {src} …"):
        try:
            reports = ingest_files(target, src)
        except InputFileError as e:
            raise fail(str(e), 2) from None
    print_ingest(reports)


@app.command("synthetic")
def ingest_synthetic_cmd(
    symbols: Annotated[int, typer.Option("--symbols", min=1, help="Number of symbols.")] = 6000,
    days: Annotated[int, typer.Option("--days", min=2, help="Bars per symbol.")] = 504,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same bars).")] = 0,
) -> None:
    """Generate realistic synthetic OHLCV (GBM closes, log-normal volume) for scale tests."""
    from technic.jobs.ingest import ingest_synthetic

    target, _ = open_target(create=True)
    with console.status(f"generating and ingesting {symbols:,} × {days} bars …"):
        report = ingest_synthetic(target, symbols, days, seed)
    print_ingest([report])


@app.command("status")
def ingest_status_cmd(
    top: Annotated[int, typer.Option(min=1, help="Symbols with the most gaps to list.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Data quality: freshness per source (last date, rows, symbols), rejected rows by reason,
    failed ingest runs (runs whose process died are marked failed first: "orphaned"), runs
    in progress, and symbols with missing sessions between their first and last bar."""
    from technic.store.quality import ingest_status

    target, _ = open_target()
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


@app.command("partial")
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

    target, _ = open_target(create=True)
    try:
        when = pd.Timestamp(at) if at else pd.Timestamp.now(tz="UTC")
        report = build_partial_daily(target, when)
    except ValueError as e:
        raise fail(str(e), 2) from None
    print_ingest([report])


@app.command("splits")
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

    target, _ = open_target(create=True)
    if (path is None) == (polygon_start is None):
        raise fail("give either a splits file or --polygon-start", 2)
    if path is not None:
        splits = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
        source = path.name
    else:
        from technic.providers.polygon import PolygonClient, PolygonError

        s = get_settings()
        try:
            with PolygonClient(base_url=s.polygon_base_url,
                               requests_per_minute=s.polygon_requests_per_minute) as client:
                splits = client.splits(start=parse_date(polygon_start, "--polygon-start"))
        except PolygonError as e:
            raise fail(str(e), 2) from None
        source = "polygon"
    try:
        report = ingest_splits(target, splits, source=source)
    except (ValueError, KeyError) as e:
        raise fail(f"{type(e).__name__}: {e}", 2) from None
    out.print(f"{report.symbols_upserted} new split(s) recorded, {report.rows_read} applied, "
              f"{report.rows_updated:,} daily bar(s) adjusted")


@app.command("polygon")
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
    s_date = parse_date(start, "--start")
    e_date = parse_date(end, "--end") or last_complete_session()
    target, _ = open_target(create=True)
    try:
        client = PolygonClient(base_url=s.polygon_base_url,
                               requests_per_minute=s.polygon_requests_per_minute)
    except PolygonError as e:
        raise fail(str(e), 2) from None
    from technic.calendar import sessions

    try:
        days = sessions(s_date, e_date)
    except ValueError as e:
        raise fail(str(e), 2) from None
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
            raise fail(f"{e} — the sessions before it are stored; re-run to resume") from None
    skipped = len(days) - len(reports)
    out.print(f"{len(reports)} session(s) ingested, {skipped} already stored")
    if reports:
        print_ingest(reports)


@app.command("polygon-financials")
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
    a, b = parse_date(filed_from, "--filed-from"), parse_date(filed_to, "--filed-to")
    target, _ = open_target()
    try:
        with PolygonClient(base_url=s.polygon_base_url,
                           requests_per_minute=s.polygon_requests_per_minute) as client:
            reports = ingest_polygon_financials(target, client, symbols, start=a, end=b)
    except PolygonError as e:
        raise fail(f"{e} — tickers before it are stored") from None
    print_ingest(reports)
