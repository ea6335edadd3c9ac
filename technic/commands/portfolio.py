"""``technic portfolio`` and ``technic backtest``: argument parsing and presentation only
(the work is in :mod:`technic.jobs.portfolio`; conventions in docs/portfolio.md).

Errors are one line on stderr: bad parameters, an unknown run, infeasible caps or missing
feature history exit with code 2."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from technic.commands.common import console, fail, out
from technic.commands.common import target as open_target
from technic.portfolio.weights import METHODS

_METHOD_HELP = (f"Weighting: {' | '.join(METHODS)}. hrp = hierarchical risk parity, "
                "min-variance, max-sharpe (expected returns = the run's alphas), risk-parity "
                "(equal risk contributions), equal = 1/N.")


def _fail(msg: str, code: int = 2) -> typer.Exit:
    """A one-line error; exit 2 (bad parameters, unknown run, infeasible caps)."""
    return fail(msg, code)


def _target():
    """The database, schema migrated; a missing schema or database is exit 1."""
    return open_target()[0]


def _date(value: str, name: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise _fail(f"{name}: {value!r} is not an ISO date (YYYY-MM-DD)") from None


def _spec(method: str, top: int, max_weight: float | None, sector_cap: float | None,
          lookback: int):
    from technic.portfolio.weights import PortfolioSpec

    try:
        return PortfolioSpec(method=method, top=top, max_weight=max_weight,
                             sector_cap=sector_cap, lookback=lookback)
    except ValueError as e:
        raise _fail(str(e)) from None


Method = Annotated[str, typer.Option("--method", "-m", help=_METHOD_HELP)]
MaxWeight = Annotated[float | None, typer.Option(
    "--max-weight", help="Cap per name, fraction of the book in (0, 1] (e.g. 0.1).")]
SectorCap = Annotated[float | None, typer.Option(
    "--sector-cap", help="Cap per sector, fraction in (0, 1] (symbols without a sector form "
                         "one group).")]
Lookback = Annotated[int, typer.Option(
    "--lookback", help="Trading days of daily returns for the Ledoit-Wolf covariance.")]


def portfolio(
    run_id: Annotated[int, typer.Option("--run-id", help="Scan run to build from "
                                                        "(scan_runs.run_id).")],
    top: Annotated[int, typer.Option("--top", "-n", help="Names to hold: the best-ranked "
                                                         "with enough history.")] = 20,
    method: Method = "hrp",
    max_weight: MaxWeight = None,
    sector_cap: SectorCap = None,
    lookback: Lookback = 126,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead "
                                                         "of the table.")] = False,
) -> None:
    """Weights for the top names of a stored scan run, from the Ledoit-Wolf covariance of
    their daily returns up to the run's date (skfolio), with the run's alphas as expected
    returns for max-sharpe. Caps per name and sector are enforced (infeasible caps: an
    error). Stored in portfolios / portfolio_weights."""
    from technic.jobs.portfolio import build_portfolio

    spec = _spec(method, top, max_weight, sector_cap, lookback)
    target = _target()
    try:
        with console.status(f"building the {method} portfolio …"):
            o = build_portfolio(target, run_id, spec)
    except (LookupError, ValueError) as e:
        raise _fail(str(e)) from None
    if as_json:
        out.print_json(json.dumps(o.to_json()))
        return
    t = Table("rank", "symbol", "sector", "weight", "vol (ann.)", "μ/day",
              title=f"Portfolio {o.portfolio_id}: {method}, top {len(o.weights)} of scan run "
                    f"{run_id} ({o.as_of})")
    for r in o.weights.itertuples(index=False):
        mu = "" if r.expected_return_daily != r.expected_return_daily \
            else f"{r.expected_return_daily:+.3%}"
        t.add_row(str(r.rank), r.symbol, str(r.sector or ""), f"{r.weight:.2%}",
                  f"{r.volatility_annual:.1%}", mu)
    out.print(t)
    er = "" if o.expected_return_daily is None else \
        f", expected return {o.expected_return_daily:+.3%}/day"
    out.print(f"ex-ante volatility {o.volatility_annual:.1%}/year{er}; Ledoit-Wolf shrinkage "
              f"{o.shrinkage:.2f}; lookback {lookback} sessions")
    if o.skipped:
        out.print(f"left out for want of history: {', '.join(o.skipped)}")
    out.print(f"stored weights: SELECT * FROM {target.schema}.portfolio_weights WHERE "
              f"portfolio_id = {o.portfolio_id} ORDER BY rank;")


def backtest(
    start: Annotated[str, typer.Option(help="First session (YYYY-MM-DD).")],
    end: Annotated[str, typer.Option(help="Last session (YYYY-MM-DD).")],
    top: Annotated[int, typer.Option("--top", "-n", help="Names held after each "
                                                         "rebalance.")] = 20,
    rebalance: Annotated[str, typer.Option(
        help="weekly (signal: last session of each week) | monthly (last of each month); "
             "traded at the next session's open.")] = "weekly",
    cost_bps: Annotated[float, typer.Option(
        "--cost-bps", help="Cost per side, basis points of traded notional.")] = 10.0,
    method: Method = "hrp",
    max_weight: MaxWeight = None,
    sector_cap: SectorCap = None,
    lookback: Lookback = 126,
    report: Annotated[Path, typer.Option(help="Markdown report to write (the PNG of equity "
                                              "and drawdown goes next to it).")] = Path(
        "technic-backtest.md"),
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object (metrics) "
                                                         "instead of the table.")] = False,
) -> None:
    """Backtest a portfolio method over point-in-time scans: at each rebalance the stored
    features of the signal date are scored with the scan's own path (no scan run written;
    `technic features backfill` the range first), the top names weighted on the bars up to
    that date, traded at the next session's open with costs. Equity, drawdown, Sharpe and
    turnover against the equal-weight universe; a table, a Markdown report and a PNG; stored
    in backtests / backtest_equity / backtest_holdings."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from technic.jobs.portfolio import (
        BacktestParams,
        metrics_table,
        outcome_json,
        run_backtest,
        write_backtest_report,
    )

    try:
        params = BacktestParams(_date(start, "--start"), _date(end, "--end"),
                                _spec(method, top, max_weight, sector_cap, lookback),
                                rebalance, cost_bps)
    except ValueError as e:
        raise _fail(str(e)) from None
    target = _target()
    try:
        with Progress(TextColumn("[bold]backtest"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("rebalances"), console=console,
                      disable=as_json or not console.is_terminal,
                      transient=True) as progress:
            task = progress.add_task("backtest", total=None)

            def tick(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            o = run_backtest(target, params, on_step=tick)
    except (LookupError, ValueError) as e:
        raise _fail(str(e)) from None
    md, png = write_backtest_report(o, report)
    if as_json:
        out.print_json(json.dumps({**outcome_json(o), "report": str(md), "plot": str(png)}))
        return
    t = Table("metric", "strategy", "equal-weight universe",
              title=f"Backtest {o.backtest_id}: {method} top {top}, {rebalance}, "
                    f"{cost_bps:g} bps, {params.start} … {params.end}")
    for row in metrics_table(o):
        t.add_row(*row)
    out.print(t)
    out.print(f"report: {md}  plot: {png}\nstored curve: SELECT * FROM "
              f"{target.schema}.backtest_equity WHERE backtest_id = {o.backtest_id} "
              "ORDER BY date;")


def register(app: typer.Typer) -> None:
    """Add ``portfolio`` and ``backtest`` to the ``technic`` command group."""
    app.command("portfolio")(portfolio)
    app.command("backtest")(backtest)
