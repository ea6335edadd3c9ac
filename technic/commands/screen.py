"""Screens on the command line: the scan's output (table fitted to the terminal, CSV, JSON),
``technic sectors``, ``technic columns`` and ``technic preset …``.

Presentation only: parsing and validation live in :mod:`technic.screen`, the work in
:mod:`technic.jobs.scan`, the SQL in :mod:`technic.store`.
"""

from __future__ import annotations

import json
import math
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.table import Column, Table

from technic.commands.common import console, fail, out, target
from technic.screen.columns import COLUMNS
from technic.screen.filter import FilterError, columns_of


class OutputFormat(StrEnum):
    """``--format`` of the scan's rows."""

    table = "table"
    csv = "csv"
    json = "json"


#: The default table, in display order, and the priority each column has when the terminal
#: is too narrow for all (lower = kept longer). Columns a filter or ``--sort`` reads are
#: added right after ``symbol``.
DEFAULT_TABLE: tuple[str, ...] = (
    "rank", "symbol", "sector", "close", "ics", "tech_rating", "merit", "trend_score",
    "momentum_score", "volatility_score", "volume_score", "alpha_5d", "ret_12_1", "rsi_14",
    "dollar_volume_20")
_PRIORITY: tuple[str, ...] = (
    "rank", "symbol", "close", "ics", "tech_rating", "sector", "merit", "ret_12_1", "rsi_14",
    "alpha_5d", "dollar_volume_20", "momentum_score", "trend_score", "volume_score",
    "volatility_score")
_HEADERS = {"tech_rating": "TechRating", "trend_score": "trend", "momentum_score": "mom.",
            "volatility_score": "vol.", "volume_score": "volume", "alpha_5d": "α 5d",
            "ret_12_1": "ret 12-1", "rsi_14": "RSI", "dollar_volume_20": "$vol 20d",
            "merit": "MERIT", "ics": "ICS (rank)"}


def _human(v: float, money: bool) -> str:
    for div, suf in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(v) >= div:
            return f"{'$' if money else ''}{v / div:,.1f}{suf}"
    return f"{'$' if money else ''}{v:,.0f}"


def format_value(column: str, v: object) -> str:
    """One cell of the table: numbers in the column's unit (prices 2 decimals, points 1,
    fractions as percent, USD and share amounts with K/M/B/T), ``—`` for NULL. Never cut."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)) or v is pd.NA:
        return "—"
    col = COLUMNS.get(column)
    if col is None or col.kind == "text":
        return str(v)
    if col.kind == "bool":
        return "yes" if v else "no"
    x = float(v)  # type: ignore[arg-type]
    unit = col.unit
    if column == "rank" or column == "n_bars":
        return f"{int(x)}"
    if column.startswith("alpha_") and column != "alpha_score":
        return f"{x:+.2%}"
    if unit.startswith("USD, mean of close * volume") or column in (
            "market_cap", "market_cap_pit", "dollar_volume"):
        return _human(x, True)
    if unit.startswith("shares"):
        return _human(x, False)
    if unit.startswith(("0-100", "-1..1")):
        return f"{x:.1f}" if unit.startswith("0-100") else f"{x:+.2f}"
    if unit.startswith("percent"):
        return f"{x:.2f}%"
    if unit.startswith("annualized fraction") or column in ("bb_pctb", "bb_width",
                                                            "trend_r2_63"):
        return f"{x:.1%}" if column != "bb_pctb" else f"{x:.2f}"
    if unit.startswith("fraction"):
        return f"{x:+.1%}"
    if unit.startswith("ratio"):
        return f"{x:.2f}"
    if unit.startswith("USD"):
        return f"{x:,.2f}"
    return f"{x:,.4g}"


def terminal_width() -> int:
    """Width to fit the table to: ``COLUMNS`` if set, else the terminal's (rich), ≥ 40."""
    env = os.environ.get("COLUMNS", "").strip()
    if env.isdigit():
        return max(40, int(env))
    return max(40, Console().width)


def fit_columns(df: pd.DataFrame, wanted: list[str], width: int, keep_order: bool = False,
                pinned: tuple[str, ...] = ()
                ) -> tuple[list[str], list[str], dict[str, list[str]]]:
    """Choose the columns that fit ``width`` without cutting a value.

    Args:
        df: the rows to show.
        wanted: candidate columns in display order.
        keep_order: True (user ``--columns``): priority = the given order; False: the
            built-in priority (:data:`_PRIORITY`), then the given order.
        pinned: columns kept right after rank and symbol (those a filter or sort reads).

    Returns:
        ``(shown, hidden, cells)``: shown columns in display order, hidden ones, and the
        formatted cells of every wanted column.
    """
    cells = {c: [format_value(c, v) for v in df[c].tolist()] for c in wanted}
    need = {c: max([len(_HEADERS.get(c, c)), *map(len, cells[c])]) + 3 for c in wanted}
    rank = {c: i for i, c in enumerate(wanted)} if keep_order else {
        c: (_PRIORITY.index(c) if c in _PRIORITY else len(_PRIORITY) + wanted.index(c))
        for c in wanted}
    order = sorted(wanted, key=lambda c: (c not in ("rank", "symbol"), c not in pinned,
                                          rank[c]))
    used, shown = 1, set[str]()
    for c in order:
        if used + need[c] <= width or c == "symbol" or not shown:
            shown.add(c)
            used += need[c]
    vis = [c for c in wanted if c in shown]
    return vis, [c for c in wanted if c not in shown], cells


def results_table(df: pd.DataFrame, columns: list[str], title: str, width: int,
                  keep_order: bool = False, pinned: tuple[str, ...] = ()
                  ) -> tuple[Table, list[str]]:
    """A rich table of ``df`` fitted to ``width`` (lower-priority columns dropped, values
    never cut); returns it with the hidden columns."""
    vis, hidden, cells = fit_columns(df, columns, width, keep_order, pinned)
    t = Table()
    for c in vis:
        text = COLUMNS[c].kind == "text" if c in COLUMNS else any(
            ch.isalpha() for v in cells[c] for ch in v)
        t.add_column(_HEADERS.get(c, c), justify="left" if text else "right", no_wrap=True,
                     min_width=max(len(_HEADERS.get(c, c)), *map(len, cells[c] or [""])))
    for i in range(len(df)):
        t.add_row(*(cells[c][i] for c in vis))
    return t, hidden


def default_columns(screen_cols: set[str], sort: str | None, available: list[str]) -> list[str]:
    """The default table with the columns a filter or ``--sort`` reads added after symbol."""
    extra = [c for c in sorted(screen_cols) + ([sort] if sort else [])
             if c not in DEFAULT_TABLE and c in available]
    base = [c for c in DEFAULT_TABLE if c in available]
    i = base.index("symbol") + 1 if "symbol" in base else 0
    return list(dict.fromkeys(base[:i] + extra + base[i:]))


def write_rows(df: pd.DataFrame, columns: list[str], fmt: OutputFormat, title: str,
               output: Path | None, keep_order: bool = False, doc: dict | None = None,
               footer: str | None = None, pinned: tuple[str, ...] = (),
               hint: str = "widen the terminal, choose --columns, or use --format csv/json"
               ) -> None:
    """Print (or write to ``output``) rows as a fitted table, CSV (raw values, full
    precision) or JSON (``doc`` when given, else a list of records)."""
    cols = [c for c in columns if c in df.columns]
    if fmt is OutputFormat.table:
        width = 200 if output else terminal_width()
        table, hidden = results_table(df, cols, title, width, keep_order, pinned)
        con = Console(file=output.open("w"), width=width) if output else out
        if title:
            con.print(title, highlight=False, soft_wrap=True)
        con.print(table)
        if footer:
            con.print(footer, highlight=False, soft_wrap=True)
        if hidden:
            con.print(f"hidden to fit {width} columns: {', '.join(hidden)} ({hint})",
                      style="dim", highlight=False, soft_wrap=True)
        if output:
            assert con.file is not None
            con.file.close()
            console.print(f"wrote {len(df):,} row(s) to {output}", highlight=False)
        return
    if fmt is OutputFormat.csv:
        text = df[cols].to_csv(index=False, lineterminator="\n")
    else:
        if doc is None:
            doc = {"results": _records(df[cols])}
        text = json.dumps(doc, default=str) + "\n"
    if output:
        output.write_text(text)
        console.print(f"wrote {len(df):,} row(s) to {output}", highlight=False)
    else:
        sys.stdout.write(text)


def _records(df: pd.DataFrame) -> list[dict]:
    import numpy as np

    return [{k: (None if isinstance(v, float) and not np.isfinite(v) else
                 (v.item() if isinstance(v, np.generic) else v)) for k, v in r.items()}
            for r in df.to_dict(orient="records")]


def show_outcome(outcome, params, fmt: OutputFormat, output: Path | None,
                 database: str | None = None) -> None:
    """Print a scan: the fitted table with the filter drops and timings, or CSV/JSON of
    the top rows (``params.columns`` or the defaults)."""
    res = outcome.results
    avail = list(res.columns)
    screen = params.screen
    pinned = tuple(sorted(columns_of(screen)) if screen is not None else ()) + (
        (params.sort,) if params.sort else ())
    if params.columns:
        cols, keep = list(params.columns), True
    elif fmt is OutputFormat.table:
        cols = default_columns(columns_of(screen) if screen is not None else set(),
                               params.sort, avail)
        keep = False
    else:
        from technic.jobs.scan import SUMMARY_COLUMNS

        extra = sorted(columns_of(screen)) if screen is not None else []
        cols = list(dict.fromkeys([*SUMMARY_COLUMNS, *extra,
                                   *([params.sort] if params.sort else [])]))
        keep = True
    head = res.head(params.top)
    if fmt is OutputFormat.json:
        write_rows(head, cols, fmt, "", output, doc=outcome.to_json(params.top, cols))
        return
    run = f"run {outcome.run_id}" if outcome.run_id is not None else "not saved"
    name = f", preset {params.preset}" if params.preset else ""
    title = (f"technic scan — {run}{name}, as of {outcome.as_of} "
             f"({outcome.counts['passed']:,} of {outcome.counts['input']:,} symbols passed)")
    drops = ", ".join(f"{k.removeprefix('dropped_')} {v:,}" for k, v in outcome.counts.items()
                      if k.startswith("dropped_"))
    footer = f"filter drops: {drops}\ntimings (s): {outcome.timings_s}" + (
        f"\ndatabase: {database}" if database else "")
    write_rows(head, cols, fmt, title, output, keep_order=keep, footer=footer, pinned=pinned)


# ----------------------------------------------------------------------------- sectors
def sectors(
    industries: Annotated[bool, typer.Option(
        "--industries", help="One row per sector and industry.")] = False,
    fmt: Annotated[OutputFormat, typer.Option("--format", help="table, csv or json.")
                   ] = OutputFormat.table,
) -> None:
    """List the sectors (with --industries: and industries) of the reference data with their
    symbol counts: the values `--sector` and `--industry` accept (case-insensitive)."""
    from technic.store.screen import sector_counts

    t, _ = target()
    df = sector_counts(t, industries)
    if fmt is not OutputFormat.table:
        write_rows(df, list(df.columns), fmt, "", None, keep_order=True)
        return
    tab = Table(*(["sector", "industry"] if industries else ["sector"]),
                Column("symbols", justify="right"), Column("active", justify="right"),
                title="sectors" + (" and industries" if industries else ""))
    for r in df.itertuples(index=False):
        keys = [str(x) if x is not None else "(none)" for x in r[:-2]]
        tab.add_row(*keys, f"{r[-2]:,}", f"{r[-1]:,}")
    out.print(tab)


# ----------------------------------------------------------------------------- columns
def columns(
    scope: Annotated[str | None, typer.Option(
        help="Only `features` (the feature store and reference data, any date), `scan` "
             "(computed by a scan: scores, fundamental factors) or `options` (the opt_* "
             "option metrics: a scan with --with-options).")] = None,
    fmt: Annotated[OutputFormat, typer.Option("--format", help="table, csv or json.")
                   ] = OutputFormat.table,
) -> None:
    """List every column `--where`, `--sort` and `--columns` accept, with its kind, unit
    and meaning (the feature registry, reference data, the scan's scores and fundamental
    factors, the opt_* option metrics: naming one turns --with-options on)."""
    if scope not in (None, "features", "scan", "options"):
        raise fail("--scope must be features, scan or options", 2)
    rows = [{"column": c.name, "kind": c.kind, "scope": c.scope, "source": c.source,
             "unit": c.unit} for c in COLUMNS.values() if scope in (None, c.scope)]
    df = pd.DataFrame(rows)
    if fmt is not OutputFormat.table:
        write_rows(df, list(df.columns), fmt, "", None, keep_order=True)
        return
    tab = Table("column", "kind", "from", "unit and meaning", title="columns")
    tab.columns[0].no_wrap = True
    for r in rows:
        tab.add_row(r["column"], r["kind"], r["source"], r["unit"])
    out.print(tab)


# ----------------------------------------------------------------------------- presets
preset_app = typer.Typer(help="Named screens stored in the database (scan_presets): save, "
                              "list, run, delete. Built-in ones exist after `db init`.",
                         no_args_is_help=True, rich_markup_mode="markdown")


@preset_app.command("list")
def preset_list(
    fmt: Annotated[OutputFormat, typer.Option("--format", help="table, csv or json.")
                   ] = OutputFormat.table,
) -> None:
    """List the stored presets: name, filter, sort, columns, built in or saved."""
    from technic.store.presets import list_presets

    t, _ = target()
    ps = list_presets(t)
    df = pd.DataFrame([{"name": p.name, "builtin": p.builtin, "where": p.where,
                        "sort": (f"{p.sort} {'desc' if p.descending else 'asc'}"
                                 if p.sort and p.descending is not None else p.sort),
                        "columns": ",".join(p.columns), "params": json.dumps(p.params),
                        "description": p.description} for p in ps])
    if fmt is not OutputFormat.table:
        write_rows(df, list(df.columns), fmt, "", None, keep_order=True)
        return
    tab = Table("name", "", "where", "sort", "description", title="presets")
    tab.columns[0].no_wrap = True
    for p in ps:
        tab.add_row(p.name, "built in" if p.builtin else "saved", p.where or "—",
                    p.sort or "rank", p.description)
    out.print(tab)


def _list_opt(values: list[str] | None) -> list[str]:
    return [v.strip() for x in values or () for v in x.split(",") if v.strip()]


@preset_app.command("save")
def preset_save(
    name: Annotated[str, typer.Argument(help="Letters, digits, '_', '.', '-'.")],
    where: Annotated[str | None, typer.Option(help="Filter (see `technic scan --help`).")
                     ] = None,
    sort: Annotated[str | None, typer.Option(help="Column to order the results by.")] = None,
    descending: Annotated[bool | None, typer.Option(
        "--desc/--asc", help="Sort direction (default: descending for numbers).")] = None,
    cols: Annotated[str | None, typer.Option("--columns", help="Columns to show, a,b,c.")
                    ] = None,
    description: Annotated[str, typer.Option(help="One line.")] = "",
    sector: Annotated[list[str] | None, typer.Option(help="Sector (repeatable).")] = None,
    industry: Annotated[list[str] | None, typer.Option(help="Industry (repeatable).")] = None,
    min_market_cap: Annotated[float | None, typer.Option(
        min=0, help="Minimum market cap, USD.")] = None,
    min_price: Annotated[float | None, typer.Option(min=0, help="Minimum close, USD.")] = None,
    min_dollar_volume: Annotated[float | None, typer.Option(
        min=0, help="Minimum 20-day dollar volume, USD.")] = None,
    top: Annotated[int | None, typer.Option(min=1, help="Rows to show.")] = None,
) -> None:
    """Save (or replace) a named screen. Built-in presets cannot be replaced."""
    from technic.jobs.scan import check_industries, check_sectors
    from technic.screen.columns import parse_columns
    from technic.screen.presets import Preset
    from technic.store.presets import PresetReadOnly, save_preset

    params: dict = {}
    for k, v in (("sectors", _list_opt(sector)), ("industries", _list_opt(industry)),
                 ("min_market_cap", min_market_cap), ("min_price", min_price),
                 ("min_dollar_volume", min_dollar_volume), ("top", top)):
        if v not in (None, []):
            params[k] = v
    try:
        p = Preset(name=name, where=where or "", sort=sort, descending=descending,
                   columns=parse_columns(cols), params=params, description=description)
    except ValueError as e:
        raise fail(str(e), 2) from None
    t, _ = target()
    try:
        check_sectors(t, params.get("sectors"))
        check_industries(t, params.get("industries"))
        new = save_preset(t, p)
    except (ValueError, PresetReadOnly) as e:
        raise fail(str(e), 2) from None
    out.print(f"preset {name} {'saved' if new else 'replaced'}; run it with "
              f"`technic preset run {name}`", highlight=False)


@preset_app.command("delete")
def preset_delete(name: Annotated[str, typer.Argument(help="A saved preset.")]) -> None:
    """Delete a saved preset (its past runs keep the name in scan_runs.preset)."""
    from technic.store.presets import PresetNotFound, PresetReadOnly, delete_preset

    t, _ = target()
    try:
        delete_preset(t, name)
    except (PresetNotFound, PresetReadOnly) as e:
        raise fail(str(e), 2) from None
    out.print(f"preset {name} deleted", highlight=False)


@preset_app.command("run")
def preset_run(
    name: Annotated[str, typer.Argument(help="A stored preset (`technic preset list`).")],
    as_of: Annotated[str | None, typer.Option(help="Scan date (YYYY-MM-DD).")] = None,
    top: Annotated[int | None, typer.Option("--top", "-n", min=1, help="Rows to show.")
                   ] = None,
    fmt: Annotated[OutputFormat, typer.Option("--format", help="table, csv or json.")
                   ] = OutputFormat.table,
    output: Annotated[Path | None, typer.Option(help="Write to this file instead.")] = None,
) -> None:
    """Run a stored preset as a scan: stored in scan_runs with the preset's name
    (latest_scan_results_by_preset shows its latest run)."""
    import datetime as dt

    from technic.jobs.scan import resolve_preset
    from technic.store.presets import PresetNotFound

    try:
        day = dt.date.fromisoformat(as_of) if as_of else None
    except ValueError:
        raise fail(f"--as-of {as_of!r} is not an ISO date (YYYY-MM-DD)", 2) from None
    t, _ = target()
    try:
        params = resolve_preset(t, name, as_of=day, top=top)
    except (PresetNotFound, ValueError) as e:
        raise fail(str(e), 2) from None
    run_and_show(t, params, fmt, output)


def run_and_show(t, params, fmt: OutputFormat, output: Path | None, save: bool = True):
    """Run a scan with a progress line and print it (:func:`show_outcome`)."""
    from technic.jobs.scan import NoFeaturesError, run_scan

    try:
        with console.status("scanning …") as status:
            outcome = run_scan(t, params, save=save,
                               on_stage=lambda s: status.update(f"scan: {s} …"))
    except NoFeaturesError as e:
        raise fail(str(e)) from None
    except ValueError as e:  # an unknown sector or industry: nothing stored
        raise fail(str(e), 2) from None
    for w in outcome.warnings:
        console.print(f"[bold yellow]warning:[/] {w}", highlight=False, soft_wrap=True)
    show_outcome(outcome, params, fmt, output, database=t.describe())
    if params.with_options and fmt is OutputFormat.table and output is None:
        from technic.commands.options import options_table

        out.print(options_table(outcome.results, params.top))
    return outcome


def stored_preset_params(t, params):
    """The parameters of the stored preset ``params.preset`` (keeping ``top``, ``as_of``,
    and ``sort``/``columns`` given on the command line), or None when no preset has that name
    (the name is then only a label for the run).

    Raises:
        typer.Exit: filter options given with a stored preset (exit 2).
    """
    import dataclasses

    from technic.jobs.scan import ScanParams, resolve_preset
    from technic.store.presets import PresetNotFound

    try:
        stored = resolve_preset(t, params.preset, as_of=params.as_of, top=params.top)
    except PresetNotFound:
        return None
    probe = dataclasses.replace(params, preset=None, sort=None, descending=None, columns=(),
                                with_options=False)
    if probe != ScanParams(top=params.top, as_of=params.as_of):
        raise fail(f"--preset {params.preset} is a stored preset with its own filters: run it "
                   "without filter options (or save a new one: `technic preset save`)", 2)
    return dataclasses.replace(
        stored, sort=params.sort or stored.sort,
        descending=params.descending if params.sort else stored.descending,
        columns=params.columns or stored.columns, with_options=params.with_options)


def scan_params(top: int, as_of, min_price: float, min_dollar_volume: float,
                sector: list[str] | None, all_tickers: bool, keep_leveraged: bool,
                preset: str | None, where: str | None, industry: list[str] | None,
                min_market_cap: float | None, sort: str | None, descending: bool | None,
                cols: str | None, with_options: bool = False):
    """:class:`technic.jobs.scan.ScanParams` from the scan command's options.

    Raises:
        typer.Exit: a bad value (one line, exit 2).
    """
    from technic.jobs.scan import ScanParams
    from technic.screen.columns import parse_columns
    from technic.universe import UniverseRules

    try:
        return ScanParams(
            top=top, as_of=as_of, rules=UniverseRules(
                min_price=min_price, min_dollar_volume=min_dollar_volume,
                valid_tickers=not all_tickers, exclude_leveraged_etfs=not keep_leveraged,
                sectors=tuple(_list_opt(sector))), preset=preset, where=where,
            industries=tuple(_list_opt(industry)), min_market_cap=min_market_cap, sort=sort,
            descending=descending, columns=parse_columns(cols), with_options=with_options)
    except FilterError as e:
        raise fail(f"--where: {e}", 2) from None
    except ValueError as e:
        raise fail(str(e), 2) from None

