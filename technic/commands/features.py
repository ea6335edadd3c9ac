"""``technic features``: refresh the feature store (incremental, full on Dask, GPU) and
backfill its history."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from technic.commands.common import console, fail, out, parse_date
from technic.commands.common import target as open_target
from technic.config import get_settings

app = typer.Typer(help="The feature store (features_daily).", no_args_is_help=True,
                  rich_markup_mode="markdown")


def _print_dashboard(url: str) -> None:
    console.print(f"Dask dashboard: {url}", highlight=False, soft_wrap=True)


def refresh(target, as_of: dt.date | None, local: bool, only_changed: bool = False,
            use_gpu: bool = False):
    """A full refresh with a progress bar (``technic features refresh --full``, ``demo``)."""
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


@app.command("backfill")
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

    s_date, e_date = parse_date(start, "--start"), parse_date(end, "--end")
    target, _ = open_target()
    try:
        with Progress(TextColumn("[bold]backfill features"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("chunks"), TimeElapsedColumn(), console=console) as progress:
            task = progress.add_task("backfill", total=None)

            def tick(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            r = run_backfill(target, s_date, e_date, local=local, on_chunk_done=tick,
                             on_dashboard=_print_dashboard)
    except (NoDataError, ValueError) as e:
        raise fail(str(e)) from None
    out.print(f"features {r.start} … {r.as_of}: {r.rows_written:,} rows for {r.symbols:,} "
              f"symbols in {r.chunks} chunk(s), {r.timings['total_s']:.2f} s")


@app.command("refresh")
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

    target, _ = open_target()
    try:
        if refresh_mode(incremental, changed_only, gpu) == "incremental":
            r = _refresh_incremental(target, parse_date(as_of), local)
            out.print(f"features for {r.as_of}: {r.rows_written:,} symbols recomputed "
                      f"({r.mode}, window from {r.window_layer}), "
                      f"{r.timings['total_s']:.2f} s")
            return
        r = refresh(target, parse_date(as_of), local, changed_only, use_gpu=gpu)
    except NoDataError as e:
        raise fail(str(e)) from None
    except OSError as e:  # TECHNIC_DASK_ADDRESS set but its scheduler does not answer
        raise fail(f"cannot reach the Dask scheduler at {get_settings().dask_address}: {e} "
                   "(unset TECHNIC_DASK_ADDRESS for a local cluster, or use --local)"
                   if get_settings().dask_address else str(e)) from None
    out.print(f"features for {r.as_of}: {r.rows_written:,} symbols in {r.chunks} chunk(s), "
              f"{r.timings['total_s']:.2f} s")
