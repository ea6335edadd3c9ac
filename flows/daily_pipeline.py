"""Daily pipeline flow: ingest files → refresh features → scan.

Runs in-process without a Prefect server (``python -m flows.daily_pipeline``); with
``PREFECT_API_URL`` set it reports to that server and its UI. It composes the tasks and the
scan flow of :mod:`flows.jobs`, which call the same technic functions as the CLI and pass only
small values (dates, counts, run ids).
"""

from __future__ import annotations

import datetime as dt

from prefect import flow
from prefect.states import State

from flows.jobs import (
    _target,
    check_sectors,
    ingest_task,
    refresh_task,
    scan,
    skip_scheduled,
    skip_unchanged,
)
from technic.universe import DEFAULT_RULES


@flow(name="daily-pipeline", log_prints=True)
def daily_pipeline(data_path: str | None = None, top: int = 25, as_of: dt.date | None = None,
                   min_price: float = DEFAULT_RULES.min_price,
                   min_dollar_volume: float = DEFAULT_RULES.min_dollar_volume,
                   sectors: list[str] | None = None, use_dask: bool = True,
                   force: bool = False) -> dict | State:
    """Ingest → refresh features → scan. Parameters are validated before any work starts.

    Args:
        data_path: directory or file to ingest (default: the bundled real subset).
        top: rows returned in the summary (every passing symbol is stored), ≥ 1.
        as_of: date to compute and scan (a date picker in the UI, ``YYYY-MM-DD`` from the
            API); default the latest date with bars.
        min_price: universe filter, USD (≥ 0).
        min_dollar_volume: universe filter, 20-day average dollar volume in USD (≥ 0).
        sectors: keep only these sectors (the form offers those stored at deploy time).
        use_dask: fan the refresh out over Dask (False: in-process).
        force: do the work even in a run created by the schedule on a holiday, before the
            close, or with no new bars (a run started by hand always works).

    Returns:
        The scan summary ``{"run_id", "as_of", "counts", "timings_s", "results"}``; a
        scheduled run with nothing to do ends in the state ``Skipped`` (type Completed) whose
        message says why: no market work (holiday, before the close:
        :func:`flows.jobs.skip_scheduled`), or an ingest that brought no new bar while the
        latest date's features and scan are stored (:func:`flows.jobs.skip_unchanged`).

    Raises:
        ValueError: a parameter is invalid (nothing is written).
    """
    from technic.jobs.scan import ScanParams
    from technic.universe import UniverseRules

    ScanParams(top=top, as_of=as_of, rules=UniverseRules(  # validate before doing anything
        min_price=min_price, min_dollar_volume=min_dollar_volume, sectors=tuple(sectors or ())))
    if skipped := skip_scheduled("eod", force):  # scheduled on a holiday: nothing to do
        return skipped
    check_sectors(_target(), sectors)  # a typo fails now, not after the ingest and refresh
    ingested = ingest_task(data_path)
    if as_of is None and (unchanged := skip_unchanged(ingested, force)):
        return unchanged  # scheduled, and no new bars since the last good scan
    refreshed = refresh_task(as_of.isoformat() if as_of else None, False, use_dask)
    return scan(top=top, as_of=refreshed["as_of"], min_price=min_price,
                min_dollar_volume=min_dollar_volume, sectors=list(sectors or []))


if __name__ == "__main__":  # pragma: no cover
    print(daily_pipeline())
