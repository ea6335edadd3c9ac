"""Daily pipeline flow: ingest files → refresh features → scan.

Runs in-process without a Prefect server (``python -m flows.daily_pipeline``); with
``PREFECT_API_URL`` set it reports to that server and its UI. Each task calls the same technic
function as the CLI, and passes only small values (dates, counts, run ids) between tasks.
"""

from __future__ import annotations

import datetime as dt

from prefect import flow, get_run_logger, task

from flows.jobs import skip_scheduled
from technic.config import get_settings
from technic.store.db import DatabaseTarget


@task(name="db-init")
def db_init_task() -> DatabaseTarget:
    """Resolve the database and create/migrate the schema."""
    from technic.store.db import get_engine, resolve_target
    from technic.store.schema import init_db

    target = resolve_target()
    init_db(get_engine(target), target.schema)
    return target


@task(name="ingest-files", retries=2, retry_delay_seconds=[5, 30])
def ingest_task(target: DatabaseTarget, data_path: str | None) -> dict:
    """Ingest a directory or file; returns counts (rows read/inserted/rejected per file)."""
    from technic.ingest import ingest_files

    reports = ingest_files(target, data_path or get_settings().data_dir)
    for r in reports:
        get_run_logger().info("ingest run %d %s: %d read, %d inserted, %d updated, %d rejected",
                              r.run_id, r.path, r.rows_read, r.rows_inserted, r.rows_updated,
                              r.rows_rejected)
    return {"runs": [r.run_id for r in reports],
            "rows_inserted": sum(r.rows_inserted for r in reports),
            "rows_rejected": sum(r.rows_rejected for r in reports)}


@task(name="refresh-features", retries=1, retry_delay_seconds=10)
def refresh_task(target: DatabaseTarget, as_of: dt.date | None, use_dask: bool) -> dict:
    """Refresh features_daily for the as-of date; returns the resolved date and counts."""
    from technic.compute import dask_client
    from technic.refresh import refresh_features

    s = get_settings()
    kwargs = dict(lookback_bars=s.lookback_bars, chunk_size=s.chunk_size)
    if use_dask:
        with dask_client(s) as client:
            report, _ = refresh_features(target, as_of, client=client, **kwargs)
    else:
        report, _ = refresh_features(target, as_of, **kwargs)
    return {"as_of": report.as_of.isoformat(), "rows_written": report.rows_written,
            "timings_s": report.timings}


@task(name="scan")
def scan_task(target: DatabaseTarget, as_of: str, top: int, min_price: float,
              min_dollar_volume: float, sectors: list[str]) -> dict:
    """Scan and store the ranked results; returns the run id, counts and the top rows."""
    from technic.scan import ScanParams, run_scan
    from technic.universe import UniverseRules

    params = ScanParams(top=top, as_of=dt.date.fromisoformat(as_of), rules=UniverseRules(
        min_price=min_price, min_dollar_volume=min_dollar_volume, sectors=tuple(sectors)))
    return run_scan(target, params).to_json(top)


@flow(name="daily-pipeline", log_prints=True)
def daily_pipeline(data_path: str | None = None, top: int = 25, as_of: str | None = None,
                   min_price: float = 5.0, min_dollar_volume: float = 500_000.0,
                   sectors: list[str] | None = None, use_dask: bool = True) -> dict:
    """Ingest → refresh features → scan. Parameters are validated before any work starts.

    Args:
        data_path: directory or file to ingest (default: the bundled real subset).
        top: rows returned in the summary (every passing symbol is stored), ≥ 1.
        as_of: ISO date to compute and scan; default the latest date with bars.
        min_price: universe filter, USD (≥ 0).
        min_dollar_volume: universe filter, 20-day average dollar volume in USD (≥ 0).
        sectors: keep only these sectors.
        use_dask: fan the refresh out over Dask (False: in-process).

    Returns:
        The scan summary ``{"run_id", "as_of", "counts", "timings_s", "results"}``.

    Raises:
        ValueError: a parameter is invalid (nothing is written).
    """
    from technic.scan import ScanParams
    from technic.universe import UniverseRules

    day = dt.date.fromisoformat(as_of) if as_of else None
    if skip_scheduled("eod"):  # a scheduled run on a holiday has nothing to do
        return {}
    ScanParams(top=top, as_of=day, rules=UniverseRules(  # validate before doing anything
        min_price=min_price, min_dollar_volume=min_dollar_volume, sectors=tuple(sectors or ())))
    target = db_init_task()
    ingest_task(target, data_path)
    refreshed = refresh_task(target, day, use_dask)
    return scan_task(target, refreshed["as_of"], top, min_price, min_dollar_volume,
                     list(sectors or []))


if __name__ == "__main__":  # pragma: no cover
    print(daily_pipeline())
