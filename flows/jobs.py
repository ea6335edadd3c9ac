"""Prefect flows for the scheduled and UI-triggered jobs (thin wrappers over technic).

Every flow validates its parameters before touching anything (a bad value from the UI fails
the run with a readable message and writes nothing), checks the NYSE calendar when it is a
scheduled market job (holidays and half days), and reports what it did as Prefect artifacts.
Each also runs without a Prefect server (``python -c 'from flows.jobs import scan; scan()'``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.states import Completed, State

from technic.calendar import skip_reason
from technic.config import get_settings
from technic.jobs.ingest import check_partial_time, latest_intraday_time
from technic.jobs.scan import HEADLINE_COLUMNS, check_sectors
from technic.store.db import DatabaseTarget
from technic.universe import DEFAULT_RULES

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


#: Name of the final state of a scheduled run with nothing to do (its type is COMPLETED).
SKIPPED = "Skipped"


def _scheduled_run() -> Any:
    """The current flow run when a deployment's schedule created it, else None."""
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    fr = ctx.flow_run if ctx else None
    return fr if fr is not None and fr.auto_scheduled else None


def skip_scheduled(job: str, force: bool = False) -> State | None:
    """The final state of a flow run that a deployment's *schedule* created when the NYSE
    calendar leaves it no market work (holiday, before a half day's close, outside the
    session): ``Completed(name="Skipped")`` with the reason as its message; None (do the
    work) otherwise.

    Only runs created by a schedule (``auto_scheduled``) are ever skipped: a run started by
    hand (UI "Run", ``prefect deployment run``, the API, an automation) or called in Python
    always works, and ``force`` makes a scheduled run work too. The time judged is the run's
    scheduled time, so a late run is judged by when it was due.

    Args:
        job: ``"eod"`` or ``"intraday"`` (:func:`technic.calendar.skip_reason`).
        force: never skip.
    """
    fr = _scheduled_run()
    if force or fr is None:
        return None
    when = pd.Timestamp(fr.expected_start_time or pd.Timestamp.now(tz="UTC"))
    if when.tzinfo is None:
        when = when.tz_localize("UTC")
    why = skip_reason(job, when)
    if why is None:
        return None
    work = {"eod": "end-of-day", "intraday": "intraday"}.get(job, job)
    msg = (f"Skipped (NYSE calendar): scheduled for {why}; no {work} work. Run it by hand, "
           "or with force=true, to do it anyway.")
    get_run_logger().info(msg)
    return Completed(name=SKIPPED, message=msg)


def skip_unchanged(ingested: list[dict], force: bool = False) -> State | None:
    """The final state of a scheduled end-of-day run whose ingest brought no new data:
    ``Completed(name="Skipped")`` when this run was created by a schedule, ``force`` is
    off, no file of ``ingested`` (the ingest task's reports) inserted or updated a bar, the
    features of the latest bar date are stored and a scan of that date finished ``ok`` —
    a refresh and a scan would only repeat that run. None (go on) otherwise.
    """
    if force or _scheduled_run() is None:
        return None
    if any(r.get("changed_to") for r in ingested):  # the dates of inserted/updated bars
        return None
    from technic.store.bars import NoDataError, last_bar_date
    from technic.store.catalog import ok_scan_run_on
    from technic.store.features import latest_feature_date

    target = _target()
    try:
        day = last_bar_date(target)
    except NoDataError:
        return None
    run = ok_scan_run_on(target, day) if latest_feature_date(target) == day else None
    if run is None:
        return None
    msg = (f"Skipped (no new data): the ingest inserted or updated no bar; the features of "
           f"{day} and scan run {run} of that date are current. Run it by hand, or with "
           "force=true, to refresh and scan anyway.")
    get_run_logger().info(msg)
    return Completed(name=SKIPPED, message=msg)


def transient(task: Any, task_run: Any, state: Any) -> bool:
    """Retry condition of the tasks: retry what a retry can fix (a dropped connection, a lock
    timeout, a worker lost), not bad input: a ``ValueError`` (an unusable file, a price-basis
    conflict, a time outside a session) or a ``LookupError`` (no bars for the date) fails at
    once instead of after minutes of back-off."""
    try:
        exc = state.result(raise_on_failure=False)
    except Exception:  # the result cannot be read: retry as before
        return True
    return not isinstance(exc, ValueError | LookupError)


#: Parameters of the cached tasks that change how the work runs, not what it stores.
_NOT_IN_KEY = frozenset({"use_dask", "use_gpu"})
#: A cached feature computation is reused for this long at most (then recomputed once).
CACHE_EXPIRATION = dt.timedelta(days=7)


def data_version(target: DatabaseTarget) -> dict:
    """What the stored bars are now, for cache keys: ``bars_version`` (the latest ingest run
    that changed bars, see :func:`technic.store.bars.bars_version`) and when that run
    finished (so a dropped and re-created schema, whose run ids start again, never matches
    the keys of the old one)."""
    from technic.store.bars import bars_version
    from technic.store.catalog import ingest_run_finished_at

    v = bars_version(target)
    done = ingest_run_finished_at(target, v)
    return {"bars_version": v, "finished_at": done.isoformat() if done else None}


def data_cache_key(context: Any, parameters: dict[str, Any]) -> str:
    """Prefect cache key of a feature computation: the database and schema, the task, its
    parameters (dates, mode; not where it runs), ``lookback_bars``, the feature code version
    and :func:`data_version`. A retried or re-triggered run with the same inputs over the same
    bars reuses the stored result; any ingest that changes bars (a new day, a partial bar, a
    split) changes the key, so the next run recomputes."""
    import technic
    from technic.features.registry import FEATURE_COLUMNS

    target = _target()
    parts = {"where": target.cache_namespace(), "task": context.task.name,
             "params": {k: v for k, v in sorted(parameters.items()) if k not in _NOT_IN_KEY},
             "lookback_bars": get_settings().lookback_bars, "technic": technic.__version__,
             "features": FEATURE_COLUMNS, "data": data_version(target)}
    blob = json.dumps(parts, sort_keys=True, default=str)
    return f"technic-{context.task.name}-{hashlib.sha256(blob.encode()).hexdigest()[:32]}"


#: Options of the tasks whose re-run over the same bars can be skipped: the result (a small
#: dict of dates and counts, JSON) is persisted in Prefect's result storage (default
#: ``$PREFECT_HOME/storage``, ``PREFECT_LOCAL_STORAGE_PATH``) under :func:`data_cache_key`.
CACHED = {"cache_key_fn": data_cache_key, "persist_result": True, "result_serializer": "json",
          "cache_expiration": CACHE_EXPIRATION}


@task(name="ingest", retries=3, retry_delay_seconds=[10, 60, 300], tags=[DATABASE_TAG],
      retry_condition_fn=transient)
def ingest_task(path: str | None) -> list[dict]:
    """Ingest files (idempotent, so retries are safe); returns each run's counts."""
    from technic.jobs.ingest import ingest_files

    return [r.as_dict() for r in ingest_files(_target(), path or get_settings().data_dir)]


def _utc(at: str) -> pd.Timestamp:
    """An ISO time parameter as a UTC timestamp (no zone = UTC).

    Raises:
        ValueError: not an ISO 8601 time.
    """
    try:
        ts = pd.Timestamp(at)
    except ValueError:
        raise ValueError(f"at: {at!r} is not an ISO 8601 time (e.g. 2026-06-22T18:00:00Z)") \
            from None
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


@task(name="partial-daily-bar", retries=2, retry_delay_seconds=[10, 60], tags=[DATABASE_TAG],
      retry_condition_fn=transient)
def partial_bar_task(at: str | None) -> dict | None:
    """Upsert the partial daily bars of the session containing ``at`` from the intraday bars
    stored before it (default: all stored bars of the latest session with intraday bars);
    returns the ingest run's counts, or None when there is no session to build (no intraday
    bars, or the latest are outside a session)."""
    from technic.jobs.ingest import build_partial_daily

    target = _target()
    when = _utc(at) if at else latest_intraday_time(target)
    if when is None:
        get_run_logger().info("no intraday bars stored: no partial daily bar")
        return None
    why = check_partial_time(when)
    if why is not None:
        if at:
            raise ValueError(f"at: {why}")
        get_run_logger().info("latest intraday bar: %s; no partial daily bar", why)
        return None
    return build_partial_daily(target, when).as_dict()


@task(name="refresh-features", retries=1, retry_delay_seconds=30, tags=[DATABASE_TAG],
      retry_condition_fn=transient, **CACHED)
def refresh_task(as_of: str | None, changed_only: bool, use_dask: bool = True,
                 incremental: bool = False,
                 use_gpu: bool = False) -> dict:
    """Refresh features (on Dask unless ``use_dask`` is False; ``incremental``: from the cached
    bar window, see :mod:`technic.incremental`); returns the resolved date and counts.
    ``use_gpu``: the GPU kernels on the Dask workers with the ``GPU`` resource (CPU, with a
    warning, when none has it).

    Cached (:data:`CACHED`): run again with the same arguments while the bars are unchanged,
    it returns the stored result without computing (state ``Cached``)."""
    from technic.jobs.refresh import refresh_mode, run_refresh

    mode = refresh_mode(incremental, changed_only, use_gpu)
    logger = get_run_logger()
    rep, where = run_refresh(_target(), dt.date.fromisoformat(as_of) if as_of else None,
                             mode=mode, local=not use_dask, changed_only=changed_only,
                             gpu=use_gpu,
                             on_dashboard=lambda url: logger.info("Dask dashboard: %s", url))
    if mode == "incremental":
        return {"as_of": rep.as_of.isoformat(), "symbols": rep.symbols, "mode": rep.mode,
                "window_layer": rep.window_layer, "ran_on": where, "timings_s": rep.timings}
    return {"as_of": rep.as_of.isoformat(), "symbols": rep.symbols, "timings_s": rep.timings}


#: Decimals shown per column in the table artifact (fractions need more than points).
_DIGITS = {"alpha_5d": 4, "alpha_10d": 4, "ret_12_1": 4, "dist_52w_high": 4,
           "dollar_volume_20": 0}


def _cell(value: object, digits: int = 2) -> object:
    """A table-artifact cell: floats rounded to ``digits`` (readable in the UI), NaN as None,
    numpy scalars as Python values."""
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float):
        return None if value != value else round(value, digits)
    return value


def _mib(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB"


def cache_markdown(cache: dict) -> str:
    """The cache facts of a scan (``ScanOutcome.cache``, stored in ``scan_runs.cache``) as
    Markdown: which layer served the feature frame, its size, the shared cache's state, and
    each layer's counters for this scan."""
    if not cache:
        return "Cache: no cache information."
    served = {"l1": "L1 (this process's memory)", "l2": "L2 (Redis, shared)",
              "l3": "L3 (the database)"}.get(str(cache.get("features")),
                                            str(cache.get("features")))
    state = {"up": "up", "down": "down (skipped until it answers)",
             "disabled": "disabled (no TECHNIC_REDIS_URL or no TECHNIC_CACHE_SECRET)"}.get(
        str(cache.get("l2_state")), str(cache.get("l2_state")))
    lines = [f"Feature frame served from **{served}**, {_mib(int(cache.get('bytes') or 0))}; "
             f"shared cache (Redis): {state}.", "",
             "| layer | hits | misses | read | written | errors | rejected |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for layer in ("l1", "l2", "l3"):
        st = cache.get(layer) or {}
        lines.append(f"| {layer.upper()} | {st.get('hits', 0)} | {st.get('misses', 0)} | "
                     f"{_mib(int(st.get('bytes_read', 0)))} | "
                     f"{_mib(int(st.get('bytes_written', 0)))} | {st.get('errors', 0)} | "
                     f"{st.get('rejected', 0)} |")
    return "\n".join(lines)


def _report_scan(out, top: int, schema: str) -> None:
    rows = out.results.head(top)
    cols = [c for c in HEADLINE_COLUMNS if c in rows.columns]
    create_table_artifact(
        key="scan-top",
        description=f"Top {top} of scan run {out.run_id} ({out.as_of}): every score",
        table=[{k: _cell(v, _DIGITS.get(k, 2)) for k, v in r.items()}
               for r in rows[cols].to_dict(orient="records")])
    drops = "\n".join(f"| {k.removeprefix('dropped_')} | {v:,} |"
                      for k, v in out.counts.items() if k.startswith("dropped_"))
    timings = "\n".join(f"| {k} | {v:.3f} |" for k, v in out.timings_s.items())
    regime = rows["regime"].iloc[0] if "regime" in rows.columns and len(rows) else None
    create_markdown_artifact(key="scan-summary", description="scan counts, timings and cache",
                             markdown=f"""# Scan run {out.run_id} — as of {out.as_of}

{out.counts['passed']:,} of {out.counts['input']:,} symbols passed the universe filter.
Market regime: **{regime or 'n/a'}**.

| filter rule | dropped |
| --- | ---: |
{drops}

| stage | seconds |
| --- | ---: |
{timings}

## Cache

{cache_markdown(out.cache)}

All results:

```sql
SELECT * FROM {schema}.scan_results WHERE run_id = {out.run_id} ORDER BY rank;
```
""")


#: Task-run names of the stages of :func:`technic.jobs.scan.run_scan` (its ``on_stage``
#: names), as the flow-run page of a scan shows them.
SCAN_STAGES = {"read_features": "load-features", "filter_score_rank": "filter-score-rank",
               "regime": "regime", "alpha": "alpha-merit", "write_results": "write-results"}


def _stage_fn() -> None:
    """Stands for a stage of ``run_scan`` in the task runs of :class:`ScanStages`."""


class ScanStages:
    """``run_scan``'s ``on_stage`` callback that shows each stage of the scan as a task run
    of the current flow run (Running when the stage starts, Completed when the next starts,
    Failed with the error when the scan raises), so the flow-run page lists the stages with
    their durations. The stages run inside ``run_scan`` as before (one function, the same as
    the CLI); only their states are reported, through the Prefect API. A reporting error is
    logged and never fails the scan.

    Use as a context manager around ``run_scan``.
    """

    def __init__(self) -> None:
        from prefect.context import FlowRunContext

        ctx = FlowRunContext.get()
        self.flow_run_id = ctx.flow_run.id if ctx and ctx.flow_run else None
        self.current: Any = None
        self.client: Any = None

    def __enter__(self) -> ScanStages:
        if self.flow_run_id is not None:
            from prefect.client.orchestration import get_client

            self.client = get_client(sync_client=True)
            self.client.__enter__()
        return self

    def __call__(self, stage: str) -> None:
        from prefect.states import Running

        self._finish(Completed())
        if self.client is None:
            return
        name = SCAN_STAGES.get(stage, stage)
        try:
            self.current = self.client.create_task_run(
                task=task(_stage_fn, name=name), flow_run_id=self.flow_run_id,
                dynamic_key=name, name=name, state=Running())
        except Exception as e:  # noqa: BLE001 - display only
            get_run_logger().warning("could not report scan stage %s: %s", name, e)

    def _finish(self, state: State) -> None:
        if self.client is None or self.current is None:
            return
        run, self.current = self.current, None
        try:
            self.client.set_task_run_state(run.id, state, force=True)
        except Exception as e:  # noqa: BLE001 - display only
            get_run_logger().warning("could not report scan stage %s: %s", run.name, e)

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        from prefect.states import Failed

        self._finish(Completed() if exc is None else
                     Failed(message=f"{type(exc).__name__}: {exc}"))
        if self.client is not None:
            self.client.__exit__(None, None, None)


@flow(name="scan", log_prints=True)
def scan(top: int = 25, as_of: dt.date | None = None,
         min_price: float = DEFAULT_RULES.min_price,
         min_dollar_volume: float = DEFAULT_RULES.min_dollar_volume,
         sectors: list[str] | None = None,
         all_tickers: bool = False, keep_leveraged: bool = False,
         where: str | None = None, industries: list[str] | None = None,
         min_market_cap: float | None = None, preset: str | None = None,
         with_options: bool = False) -> dict:
    """Scan the feature store with these parameters and store the ranked run (UI-triggered).

    Args:
        top: rows in the result artifacts (every passing symbol is stored), >= 1.
        as_of: date to scan (a date picker in the UI; ISO ``YYYY-MM-DD`` from Python or the
            API); default the latest date with features.
        min_price: universe filter, USD (>= 0).
        min_dollar_volume: universe filter, 20-day average dollar volume in USD (>= 0).
        sectors: keep only these sectors (case-insensitive; each must exist in ``symbols``;
            the deployment's form offers the sectors stored when it was deployed).
        all_tickers: keep tickers that are not plain common-stock symbols.
        keep_leveraged: keep leveraged and inverse ETFs.
        where: a screen over any feature, reference or score column, applied after scoring
            (the language of ``technic scan --where``, docs/screens.md), e.g.
            ``rsi_14 < 30 and close > sma_200``.
        industries: keep only these industries (case-insensitive).
        min_market_cap: minimum market cap, USD.
        preset: a stored preset (``technic preset list``): its filters replace the ones
            above (``top`` and ``as_of`` still apply); the run is stored under its name.
        with_options: add the option metrics of the scan date (``opt_*`` columns).

    Raises:
        ValueError: a parameter is invalid, an unknown column in ``where``, or an unknown
            preset (nothing is written).
    """
    import dataclasses

    from technic.jobs.scan import ScanParams, resolve_preset, run_scan
    from technic.store.presets import PresetNotFound
    from technic.universe import UniverseRules

    target = _target()
    if preset is not None and preset.strip():
        try:
            params = resolve_preset(target, preset.strip(), as_of=as_of, top=top)
        except PresetNotFound as e:
            raise ValueError(str(e)) from None
        params = dataclasses.replace(params, with_options=with_options)
    else:
        params = ScanParams(
            top=top, as_of=as_of,
            rules=UniverseRules(min_price=min_price, min_dollar_volume=min_dollar_volume,
                                valid_tickers=not all_tickers,
                                exclude_leveraged_etfs=not keep_leveraged,
                                sectors=tuple(sectors or ())),
            where=where or None, industries=tuple(industries or ()),
            min_market_cap=min_market_cap, with_options=with_options)
    check_sectors(target, params.rules.sectors)
    with ScanStages() as on_stage:
        out = run_scan(target, params, on_stage=on_stage)
    for w in out.warnings:  # e.g. as_of after the last bar: the data are old
        get_run_logger().warning(w)
    _report_scan(out, top, target.schema)
    return out.to_json(top)


@flow(name="ingest-daily")
def ingest_daily(path: str | None = None, force: bool = False) -> list[dict] | State:
    """End-of-day ingest after the close. A scheduled run on a holiday (or before the close)
    ends ``Skipped`` with the reason (:func:`skip_scheduled`) unless ``force``."""
    if skipped := skip_scheduled("eod", force):
        return skipped
    return ingest_task(path)


@flow(name="ingest-intraday")
def ingest_intraday(path: str, at: str | None = None,
                    force: bool = False) -> dict | State:
    """Ingest an intraday bars file (e.g. ``bars_5min.parquet``) into ``bars_intraday``, which
    refreshes the 15-minute, hourly and daily roll-ups when bars changed, then build the
    partial daily bar of the session so far (source ``intraday-partial``, replaced by the
    end-of-day bar) so a feature refresh and a scan of that date see the day so far.

    Args:
        path: the intraday file (or a directory holding one).
        at: ISO time the partial bar is built as of (no zone = UTC): bars starting before it.
            Default: every stored bar of the latest session with intraday bars.
        force: work even when a scheduled run falls outside the regular session.

    Returns:
        ``{"ingest": [counts per file], "partial": counts or None}``; a scheduled run
        outside the session ends ``Skipped`` with the reason (:func:`skip_scheduled`).

    Raises:
        ValueError: ``at`` is malformed, not in a session or not after its open (checked
            before anything is written).
    """
    if at:
        why = check_partial_time(_utc(at))
        if why is not None:
            raise ValueError(f"at: {why}")
    if skipped := skip_scheduled("intraday", force):
        return skipped
    ingested = ingest_task(path)
    return {"ingest": ingested, "partial": partial_bar_task(at)}


@flow(name="refresh-features")
def refresh_features_flow(as_of: dt.date | None = None, changed_only: bool = False,
                          use_gpu: bool = False, use_dask: bool = True,
                          recompute: bool = False) -> dict:
    """Refresh the feature store for a date (default: the latest with bars); ``use_gpu``: on
    the Dask workers that declare the ``GPU`` resource (CPU with a warning when none does);
    ``use_dask`` False: in this process. A re-run over unchanged bars reuses the cached
    result unless ``recompute``. ``as_of`` is validated as a date before any work."""
    run = refresh_task.with_options(refresh_cache=True) if recompute else refresh_task
    return run(as_of.isoformat() if as_of else None, changed_only, use_dask=use_dask,
               use_gpu=use_gpu)


@flow(name="intraday-refresh")
def intraday_refresh(path: str, top: int = 25, force: bool = False,
                     at: str | None = None) -> dict | State:
    """Every 5 minutes in the session: :func:`ingest_intraday` (the latest intraday file, the
    roll-ups, the partial daily bar of the session so far), recompute only the symbols whose
    bars changed (incremental refresh from the cached window), scan that session. A
    scheduled run outside the regular session ends ``Skipped`` with the reason unless
    ``force`` (:func:`skip_scheduled`); a run started by hand always works."""
    if skipped := skip_scheduled("intraday", force):
        return skipped
    ingest_intraday(path, at=at, force=True)
    refreshed = refresh_task(None, False, incremental=True)
    return scan(top=top, as_of=refreshed["as_of"])


@task(name="backfill-features", retries=1, retry_delay_seconds=60, tags=[DATABASE_TAG],
      retry_condition_fn=transient, **CACHED)
def backfill_task(start: str, end: str | None) -> dict:
    """Feature history for ``[start, end]``; cached like :func:`refresh_task` (a retried
    nightly run over the same bars does not recompute)."""
    from technic.jobs.refresh import run_backfill

    e_date = dt.date.fromisoformat(end) if end else None
    rep = run_backfill(_target(), dt.date.fromisoformat(start), e_date, local=True)
    return {"start": start, "end": rep.as_of.isoformat(), "rows": rep.rows_written}


@flow(name="backfill")
def backfill(start: dt.date, end: dt.date | None = None) -> dict:
    """Feature history for ``[start, end]`` (training data, evaluation); dates validated
    before any work."""
    return backfill_task(start.isoformat(), end.isoformat() if end else None)


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
def train_models_flow(start: dt.date, end: dt.date, out_dir: str = "models",
                      seed: int = 0) -> dict:
    """Retrain the XGBoost alpha models on stored feature history (walk-forward metrics in
    ``<out_dir>/metrics.json``); returns the summary metrics per horizon."""
    from technic.ml.train import train_models

    metrics = train_models(_target(), start, end, out_dir, seed)
    return {h: m["summary"] for h, m in metrics["horizons"].items()}
