"""``technic scan``: filter, score and rank the universe, store the run and print it (the
output itself is :mod:`technic.commands.screen`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from technic.commands.common import fail, parse_date
from technic.commands.common import target as open_target
from technic.universe import DEFAULT_RULES


def scan_and_show(target, params, fmt="table", output=None):
    """Run the scan ``params`` on ``target`` and print its rows (``technic scan``, ``demo``)."""
    from technic.commands.screen import OutputFormat, run_and_show

    return run_and_show(target, params, OutputFormat(fmt), output)


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
        raise fail(f"--format {fmt!r}: use table, csv or json", 2)
    params = scan_params(top, parse_date(as_of), min_price, min_dollar_volume, sector,
                         all_tickers, keep_leveraged, preset, where, industry, min_market_cap,
                         sort, descending, cols, with_options)
    target, _ = open_target()
    if preset is not None:  # a stored preset runs as itself (as `technic preset run`)
        from technic.commands.screen import stored_preset_params

        params = stored_preset_params(target, params) or params
    scan_and_show(target, params, "json" if as_json else fmt, output)
