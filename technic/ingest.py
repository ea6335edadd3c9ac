"""Ingest jobs: read a provider's rows, validate them, store them, log the run.

This is the one place that ties providers, validation and the store together; the CLI, the
Prefect flows and the benchmarks call these functions.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pandas as pd

from technic.providers import files as files_provider
from technic.providers.synthetic import generate_bars
from technic.store import ingest as store_ingest
from technic.store.db import DatabaseTarget
from technic.store.ingest import IngestReport
from technic.validation import validate_bars

log = logging.getLogger(__name__)


def _run(target: DatabaseTarget, source: str, path: str | None, read) -> IngestReport:
    run_id = store_ingest.start_run(target, source, path)
    report = IngestReport(run_id=run_id, source=source, path=path)
    try:
        t = time.perf_counter()
        raw, universe = read()
        report.timings["read_s"] = round(time.perf_counter() - t, 4)
        t = time.perf_counter()
        good = rejects = None
        if raw is not None:
            report.rows_read = len(raw)
            v = validate_bars(raw)
            good, rejects = v.good, v.rejects
            report.rows_rejected = len(rejects)
            report.rejects_by_reason = v.counts_by_reason()
        report.timings["validate_s"] = round(time.perf_counter() - t, 4)
        store_ingest.write_ingest(target, report, good, rejects, universe)
    except Exception as e:
        store_ingest.finish_run(target, report, error=f"{type(e).__name__}: {e}")
        raise
    store_ingest.finish_run(target, report)
    for reason, n in report.rejects_by_reason.items():
        log.warning("ingest run %d: rejected %d row(s): %s", run_id, n, reason)
    return report


def ingest_files(target: DatabaseTarget, path: str | Path) -> list[IngestReport]:
    """Ingest the universe and bars files found at ``path`` (see ``files.discover``).

    Returns one report per file ingested (universe first). Bad rows are rejected and
    counted, never fatal.

    Raises:
        technic.providers.files.InputFileError: the path holds nothing loadable.
    """
    fs = files_provider.discover(path)
    reports = []
    if fs.universe is not None:
        uni = fs.universe
        reports.append(_run(target, "files", str(uni),
                            lambda: (None, files_provider.read_universe(uni))))
    for bars_path in fs.bars:
        reports.append(_run(target, "files", str(bars_path),
                            lambda p=bars_path: (files_provider.read_bars(p), None)))
    return reports


def ingest_synthetic(target: DatabaseTarget, n_symbols: int, n_days: int,
                     seed: int = 0) -> IngestReport:
    """Generate and ingest synthetic bars.

    See :func:`technic.providers.synthetic.generate_bars` for the model and arguments.
    """
    def read() -> tuple[pd.DataFrame, pd.DataFrame]:
        return generate_bars(n_symbols, n_days, seed)
    return _run(target, "synthetic", f"synthetic://{n_symbols}x{n_days}?seed={seed}", read)
