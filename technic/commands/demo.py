"""``technic demo``: the main job end to end on the bundled real data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from technic.commands.common import console, out
from technic.commands.common import target as open_target
from technic.commands.features import refresh
from technic.commands.ingest import print_ingest
from technic.commands.scan import scan_and_show
from technic.config import get_settings


def demo(
    top: Annotated[int, typer.Option("--top", "-n", min=1, help="Rows to print.")] = 25,
    data: Annotated[Path | None, typer.Option(help="Data to ingest (default: the bundled "
                                                   "real subset).")] = None,
) -> None:
    """The main job end to end: db init, ingest the bundled real data, refresh features on
    Dask, scan, print the top rows and the SQL that lists every result of the run."""
    from technic.jobs.ingest import ingest_files
    from technic.jobs.scan import ScanParams

    target, report = open_target(create=True)
    out.print(f"[bold]database[/]: {target.describe()} — {report.variant} storage")
    src = data or get_settings().data_dir
    with console.status(f"ingesting {src} …"):
        reports = ingest_files(target, src)
    print_ingest(reports)
    r = refresh(target, None, local=False)
    out.print(f"features for {r.as_of}: {r.rows_written:,} symbols, "
              f"{r.timings['total_s']:.2f} s")
    outcome = scan_and_show(target, ScanParams(top=top))
    out.print(
        f"\n[bold]All {len(outcome.results):,} ranked results of run {outcome.run_id}[/] are in "
        f"{target.describe()}:\n"
        f"  SELECT * FROM {target.schema}.scan_results WHERE run_id = {outcome.run_id} "
        "ORDER BY rank;\n"
        f"  (or: SELECT * FROM {target.schema}.latest_scan_results ORDER BY rank;)")
