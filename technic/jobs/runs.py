"""One logged ingest run, shared by every ingest job (bars, universe, fundamentals, option
chains): the ``ingest_runs`` row is started, filled by the job, and finished — failed with
the error on any exception — with its rejects counted by reason."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import pandas as pd

from technic.providers import files as files_provider
from technic.store import ingest as store_ingest
from technic.store.db import DatabaseTarget
from technic.store.ingest import IngestReport

log = logging.getLogger("technic.jobs.ingest")


def error_text(e: BaseException) -> str:
    """``Type: message`` of an error, for ``ingest_runs.error`` (an InputFileError's message
    already names the file and the reason)."""
    if isinstance(e, files_provider.InputFileError):
        return str(e)
    return f"{type(e).__name__}: {e}"


def _fail_run(target: DatabaseTarget, report: IngestReport, e: BaseException) -> None:
    """Mark the run failed; if even that fails (the database is gone), its run lock is freed
    and the next run or ``ingest status`` marks it orphaned."""
    try:
        store_ingest.finish_run(target, report, error=error_text(e))
    except Exception as e2:
        log.warning("ingest run %d: could not be marked failed (%s)", report.run_id,
                    str(e2).splitlines()[0] if str(e2) else type(e2).__name__)


@contextmanager
def ingest_run(target: DatabaseTarget, source: str, path: str | None, what: str = "row",
               **fields) -> Iterator[IngestReport]:
    """One logged ingest run: start its ``ingest_runs`` row, yield its report for the body to
    fill and store, then finish the run — failed with the error on any exception (which is
    re-raised, see :func:`_fail_run`) — and log its rejects by reason.

    Args:
        source, path: ``ingest_runs.source`` and ``.path``.
        what: what a rejected row is, for the log ("row", "option row").
        fields: further :class:`IngestReport` fields (``bar_source``, ``basis``).
    """
    run_id = store_ingest.start_run(target, source, path)
    report = IngestReport(run_id=run_id, source=source, path=path, **fields)
    try:
        yield report
    except Exception as e:
        _fail_run(target, report, e)
        raise
    store_ingest.finish_run(target, report)
    for reason, n in report.rejects_by_reason.items():
        log.warning("ingest run %d: rejected %d %s(s): %s", run_id, n, what, reason)


def count_rejects(report: IngestReport, rejects: pd.DataFrame) -> None:
    """Set the report's reject count and counts by ``reason`` from the rejected rows."""
    report.rows_rejected = len(rejects)
    report.rejects_by_reason = {str(k): int(n) for k, n in
                                rejects["reason"].value_counts().items()}
