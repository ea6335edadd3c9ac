"""Prefect flows for the scheduled and UI-triggered jobs (thin wrappers over technic).

Every flow validates its parameters before touching anything (a bad value from the UI fails
the run with a readable message and writes nothing), checks the NYSE calendar when it is a
scheduled market job (holidays and half days), and reports what it did as Prefect artifacts.
Each also runs without a Prefect server (``python -c 'from flows.jobs import scan; scan()'``).
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from technic.calendar import should_run
from technic.config import get_settings
from technic.store.db import DatabaseTarget

#: Tag of the database-heavy tasks (ingest, feature refresh). The deployment set-up
#: (``python -m flows.bootstrap``, run by ``make up``) puts a concurrency limit on it, so at most
#: that many of these tasks write to PostgreSQL at once, whatever the number of flow runs.
DATABASE_TAG = "database"


def _target() -> DatabaseTarget:
    from technic.store.db import get_engine, resolve_target
    from technic.store.schema import init_db

    target = resolve_target()
    init_db(get_engine(target), target.schema)
    return target


def skip_scheduled(job: str) -> bool:
    """True when this is a scheduled deployment run with no market work to do (holiday,
    before a half day's close, outside the session); ad-hoc runs are never skipped."""
    from prefect.runtime import deployment, flow_run

    if deployment.id is None:
        return False
    when = pd.Timestamp(flow_run.scheduled_start_time or pd.Timestamp.now(tz="UTC"))
    if when.tzinfo is None:
        when = when.tz_localize("UTC")
    if should_run(job, when):
        return False
    get_run_logger().info("no %s work at %s (NYSE calendar): skipped", job, when)
    return True


@task(name="ingest", retries=3, retry_delay_seconds=[10, 60, 300], tags=[DATABASE_TAG])
def ingest_task(path: str | None) -> list[dict]:
    """Ingest files (idempotent, so retries are safe); returns each run's counts."""
    from technic.ingest import ingest_files

    return [r.as_dict() for r in ingest_files(_target(), path or get_settings().data_dir)]


@task(name="refresh-features", retries=1, retry_delay_seconds=30, tags=[DATABASE_TAG])
def refresh_task(as_of: str | None, changed_only: bool, use_dask: bool = True,
                 incremental: bool = False,
                 use_gpu: bool = False) -> dict:
    """Refresh features (on Dask unless ``use_dask`` is False; ``incremental``: from the cached
    bar window, see :mod:`technic.incremental`); returns the resolved date and counts.
    ``use_gpu``: the GPU kernels on the Dask workers with the ``GPU`` resource (CPU, with a
    warning, when none has it)."""
    from contextlib import nullcontext

    from technic.compute import dask_client
    from technic.refresh import refresh_features

    s = get_settings()
    if incremental:
        from technic.incremental import refresh_incremental

        rep, _ = refresh_incremental(_target(), dt.date.fromisoformat(as_of) if as_of else None,
                                     lookback_bars=s.lookback_bars, redis_url=s.redis_url)
        return {"as_of": rep.as_of.isoformat(), "symbols": rep.symbols, "mode": rep.mode,
                "timings_s": rep.timings}
    with dask_client(s) if use_dask else nullcontext() as client:
        rep, _ = refresh_features(_target(), dt.date.fromisoformat(as_of) if as_of else None,
                                  lookback_bars=s.lookback_bars, chunk_size=s.chunk_size,
                                  client=client, only_changed=changed_only,
                                  use_cache=bool(s.redis_url), redis_url=s.redis_url,
                                  use_gpu=use_gpu)
    return {"as_of": rep.as_of.isoformat(), "symbols": rep.symbols, "timings_s": rep.timings}


def check_sectors(target: DatabaseTarget, sectors: list[str] | None) -> None:
    """Reject sectors that no symbol has (a typo would otherwise scan an empty universe).

    Compared case-insensitively, like the universe filter. Skipped while ``symbols`` is empty
    (a first run that ingests the reference data before it scans).

    Raises:
        ValueError: a sector is unknown; the message lists the known ones.
    """
    if not sectors:
        return
    from sqlalchemy import text

    from technic.store.db import get_engine

    with get_engine(target).connect() as conn:
        known = sorted(r[0] for r in conn.execute(text(
            "SELECT DISTINCT sector FROM symbols WHERE sector IS NOT NULL")))
    if not known:
        return
    lower = {k.lower() for k in known}
    unknown = [s for s in sectors if s.lower() not in lower]
    if unknown:
        raise ValueError(f"unknown sector(s) {', '.join(map(repr, unknown))}; known sectors: "
                         f"{', '.join(known)}")


def _cell(value: object) -> object:
    """A table-artifact cell: floats to 2 decimals (readable in the UI), NaN as None."""
    if isinstance(value, float):
        return None if value != value else round(value, 2)
    return value


def _report_scan(out, top: int, schema: str) -> None:
    rows = out.results.head(top)
    cols = ["rank", "symbol", "sector", "close", "tech_rating", "trend_score",
            "momentum_score", "volatility_score", "volume_score"]
    create_table_artifact(
        key="scan-top", description=f"Top {top} of scan run {out.run_id} ({out.as_of})",
        table=[{k: _cell(v) for k, v in r.items()} for r in rows[cols].to_dict(orient="records")])
    drops = "\n".join(f"| {k.removeprefix('dropped_')} | {v:,} |"
                      for k, v in out.counts.items() if k.startswith("dropped_"))
    timings = "\n".join(f"| {k} | {v:.3f} |" for k, v in out.timings_s.items())
    create_markdown_artifact(key="scan-summary", description="scan counts and timings",
                             markdown=f"""# Scan run {out.run_id} — as of {out.as_of}

{out.counts['passed']:,} of {out.counts['input']:,} symbols passed the universe filter.

| filter rule | dropped |
| --- | --- |
{drops}

| stage | seconds |
| --- | --- |
{timings}

Cache: `{out.cache}`

All results:

```sql
SELECT * FROM {schema}.scan_results WHERE run_id = {out.run_id} ORDER BY rank;
```
""")


@flow(name="scan", log_prints=True)
def scan(top: int = 25, as_of: str | None = None, min_price: float = 5.0,
         min_dollar_volume: float = 500_000.0, sectors: list[str] | None = None,
         all_tickers: bool = False, keep_leveraged: bool = False) -> dict:
    """Scan the feature store with these parameters and store the ranked run (UI-triggered).

    Args:
        top: rows in the result artifacts (every passing symbol is stored), >= 1.
        as_of: ISO date; default the latest date with features.
        min_price: universe filter, USD (>= 0).
        min_dollar_volume: universe filter, 20-day average dollar volume in USD (>= 0).
        sectors: keep only these sectors (case-insensitive; each must exist in ``symbols``).
        all_tickers: keep tickers that are not plain common-stock symbols.
        keep_leveraged: keep leveraged and inverse ETFs.

    Raises:
        ValueError: a parameter is invalid (nothing is written).
    """
    from technic.scan import ScanParams, run_scan
    from technic.universe import UniverseRules

    params = ScanParams(
        top=top, as_of=dt.date.fromisoformat(as_of) if as_of else None,
        rules=UniverseRules(min_price=min_price, min_dollar_volume=min_dollar_volume,
                            valid_tickers=not all_tickers,
                            exclude_leveraged_etfs=not keep_leveraged,
                            sectors=tuple(sectors or ())))
    target = _target()
    check_sectors(target, sectors)
    out = run_scan(target, params)
    _report_scan(out, top, target.schema)
    return out.to_json(top)


@flow(name="ingest-daily")
def ingest_daily(path: str | None = None, force: bool = False) -> list[dict]:
    """End-of-day ingest after the close; skipped on holidays unless ``force``."""
    if not force and skip_scheduled("eod"):
        return []
    return ingest_task(path)


@flow(name="refresh-features")
def refresh_features_flow(as_of: str | None = None, changed_only: bool = False,
                          use_gpu: bool = False) -> dict:
    """Refresh the feature store for a date (default: the latest with bars); ``use_gpu``: on
    the Dask workers that declare the ``GPU`` resource (CPU with a warning when none does)."""
    if as_of:
        dt.date.fromisoformat(as_of)  # validate before work
    return refresh_task(as_of, changed_only, use_gpu=use_gpu)


@flow(name="intraday-refresh")
def intraday_refresh(path: str, top: int = 25, force: bool = False) -> dict | None:
    """Every 5 minutes in the session: ingest the latest intraday file, recompute only the
    symbols whose bars changed (incremental refresh from the cached window), scan. Skipped
    outside the regular session unless ``force``."""
    if not force and skip_scheduled("intraday"):
        return None
    ingest_task(path)
    refreshed = refresh_task(None, False, incremental=True)
    return scan(top=top, as_of=refreshed["as_of"])


@flow(name="backfill")
def backfill(start: str, end: str | None = None) -> dict:
    """Feature history for ``[start, end]`` (training data, evaluation)."""
    from technic.refresh import backfill_features

    s_date = dt.date.fromisoformat(start)
    e_date = dt.date.fromisoformat(end) if end else None
    rep = backfill_features(_target(), s_date, e_date, lookback_bars=get_settings().lookback_bars)
    return {"start": start, "end": rep.as_of.isoformat(), "rows": rep.rows_written}


@flow(name="gap-check")
def gap_check(top: int = 20) -> dict:
    """Weekly data-quality check: freshness, rejects, gaps (also a Markdown artifact)."""
    from technic.store.quality import ingest_status

    st = ingest_status(_target(), top)
    create_markdown_artifact(key="gap-check", markdown="\n".join(
        ["# Data quality", "", "| source | last date | rows | symbols |",
         "| --- | --- | --- | --- |"]
        + [f"| {r['source']} | {r['last_date']} | {r['rows']:,} | {r['symbols']:,} |"
           for r in st.sources]
        + ["", f"Missing symbol-sessions: {st.gaps_total:,}", "", "| symbol | gaps |",
           "| --- | --- |"] + [f"| {g['symbol']} | {g['gaps']} |" for g in st.gaps_top]))
    return st.as_dict()


@flow(name="train-models")
def train_models_flow(start: str, end: str, out_dir: str = "models", seed: int = 0) -> dict:
    """Retrain the XGBoost alpha models on stored feature history (walk-forward metrics in
    ``<out_dir>/metrics.json``); returns the summary metrics per horizon."""
    from technic.ml.train import train_models

    metrics = train_models(_target(), dt.date.fromisoformat(start), dt.date.fromisoformat(end),
                           out_dir, seed)
    return {h: m["summary"] for h, m in metrics["horizons"].items()}
