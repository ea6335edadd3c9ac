"""Ingest jobs: read a provider's rows, validate them, store them, log the run.

This is the one place that ties providers, validation and the store together; the CLI, the
Prefect flows and the benchmarks call these functions.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from technic.calendar import is_session, session_close, sessions
from technic.jobs.runs import count_rejects, error_text, ingest_run
from technic.providers import files as files_provider
from technic.providers.synthetic import generate_bars
from technic.store import ingest as store_ingest
from technic.store.catalog import finished_ingest_paths, latest_intraday_start
from technic.store.db import DatabaseTarget
from technic.store.ingest import IngestReport
from technic.validation import PriceBasis, validate_bars, validate_universe

log = logging.getLogger(__name__)

#: Polygon ``adjusted=true``: split-adjusted as of each request (not dividend-adjusted).
POLYGON_ADJUSTED = PriceBasis(split_adjusted=True, dividend_adjusted=False, vendor="Polygon",
                              note="grouped daily, adjusted=true (splits as of the request)")
#: Polygon ``adjusted=false``: raw prices; splits arrive via ``technic ingest splits``.
POLYGON_UNADJUSTED = PriceBasis(split_adjusted=False, dividend_adjusted=False,
                                vendor="Polygon", note="grouped daily, adjusted=false")


def record_failed_run(target: DatabaseTarget, source: str, path: str | None,
                      error: BaseException) -> IngestReport:
    """An ``ingest_runs`` row with status ``failed`` for an ingest that could not even start
    (e.g. its file is missing or unreadable)."""
    run_id = store_ingest.start_run(target, source, path)
    report = IngestReport(run_id=run_id, source=source, path=path)
    store_ingest.finish_run(target, report, error=error_text(error))
    return report


def _run(target: DatabaseTarget, source: str, path: str | None, read,
         bar_source: str | None = None, basis: PriceBasis | None = None) -> IngestReport:
    """One ingest run: ``read()`` → ``(bars | None, universe | None[, pre_rejects])``, where
    ``pre_rejects`` (``row``, ``reason``) are input rows the reader could not even split
    (ragged CSV lines); validate; store; log the run (failed with the error on any
    exception, which is re-raised)."""
    with ingest_run(target, source, path, bar_source=bar_source, basis=basis) as report:
        t = time.perf_counter()
        raw, universe, *extra = read()
        report.timings["read_s"] = round(time.perf_counter() - t, 4)
        t = time.perf_counter()
        good = None
        parts = [x for x in extra if x is not None and len(x)]
        report.rows_read = sum(len(x) for x in parts)
        if raw is not None:
            report.rows_read += len(raw)
            v = validate_bars(raw)
            good = v.table
            parts.append(v.rejects)
        if universe is not None:
            report.rows_read += len(universe)
            universe, u_rejects = validate_universe(universe)
            parts.append(u_rejects)
        rejects = pd.concat(parts, ignore_index=True) if parts else None
        if rejects is not None:
            count_rejects(report, rejects)
        report.timings["validate_s"] = round(time.perf_counter() - t, 4)
        store_ingest.write_ingest(target, report, good, rejects, universe)
    return report


def _read_bars(p: Path) -> tuple:
    table, bad_lines = files_provider.read_bars_file(p)
    return table, None, bad_lines


def ingest_files(target: DatabaseTarget, path: str | Path, *, source: str | None = None,
                 basis: PriceBasis | None = None) -> list[IngestReport]:
    """Ingest the universe, bars and option-chain files found at ``path`` (see
    ``files.discover``; option chains: :func:`technic.jobs.options.ingest_option_files`).

    Bars are stored with the file's source tag and price basis (``files.bar_source``: e.g.
    ``bars_daily_2026.parquet`` and ``bars_5min.parquet`` → ``stooq-5min``, split-adjusted
    as of 2026-06-22, dividends not adjusted), recorded in ``bar_sources``.

    Args:
        source, basis: override the tag / basis of every bars file.

    Returns one report per file ingested (universe first). Bad rows (ragged CSV lines
    included) are rejected and counted, never fatal.

    Raises:
        technic.providers.files.InputFileError: the path is missing or holds nothing
            loadable, or a file is unreadable (empty, corrupt, truncated); the attempt is an
            ``ingest_runs`` row with status ``failed`` and the reason. Files before it stay
            stored.
        technic.store.ingest.BasisConflictError: the tag is recorded with another basis.
    """
    try:
        fs = files_provider.discover(path)
    except files_provider.InputFileError as e:
        record_failed_run(target, "files", str(path), e)
        raise
    reports = []
    if fs.universe is not None:
        uni = fs.universe
        reports.append(_run(target, "files", str(uni),
                            lambda: (None, *files_provider.read_universe_file(uni))))
    for bars_path in fs.bars:
        try:
            tag, known = files_provider.bar_source(bars_path)
        except files_provider.InputFileError as e:
            record_failed_run(target, "files", str(bars_path), e)
            raise
        rep = _run(target, "files", str(bars_path),
                   lambda p=bars_path: _read_bars(p),
                   bar_source=source or tag, basis=basis or known)
        reports.append(rep)
        if rep.rows_inserted and files_provider.time_column_of(bars_path) == "date":
            mixed = store_ingest.conflicting_daily_sources(target, source or tag)
            if mixed:
                log.warning(
                    "bars_daily now holds %r next to %s on another price basis: feature "
                    "windows crossing them splice two bases (see `technic ingest status`); "
                    "load each basis into its own schema (TECHNIC_DB_SCHEMA) to keep them "
                    "apart", source or tag, ", ".join(repr(m) for m in mixed))
    if fs.fundamentals is not None:
        fund = fs.fundamentals
        reports.append(run_fundamentals(
            target, "files", str(fund), lambda: files_provider.read_fundamentals_file(fund)))
    if fs.options:  # option chains, then their metrics (technic.jobs.options)
        from technic.jobs.options import ingest_option_files

        reports += ingest_option_files(target, fs.options)
    return reports


def run_fundamentals(target: DatabaseTarget, source: str, path: str,
                     read: Callable[[], tuple[pd.DataFrame, pd.DataFrame | None]],
                     now: dt.datetime | None = None) -> IngestReport:
    """One fundamentals ingest run: ``read()`` → ``(rows, pre_rejects)``, validate
    (:func:`technic.validation.validate_fundamentals`), upsert into ``fundamentals``
    (:func:`technic.store.fundamentals.write_fundamentals`, stored with ``source``), log the
    run in ``ingest_runs`` (failed with the error on any exception, which is re-raised).

    Args:
        source: ``ingest_runs.source`` and ``fundamentals.source`` (``files``, ``polygon``).
        path: ``ingest_runs.path`` (the file, or a description of the request).
        now: the validation clock (tests).

    Returns:
        The run's report: rows read / inserted / updated / unchanged / rejected by reason.
    """
    from technic.store.fundamentals import write_fundamentals
    from technic.validation import validate_fundamentals

    with ingest_run(target, source, path) as report:
        t = time.perf_counter()
        raw, pre = read()
        report.timings["read_s"] = round(time.perf_counter() - t, 4)
        t = time.perf_counter()
        good, rejects = validate_fundamentals(raw, now=now)
        if pre is not None and len(pre):
            rejects = pd.concat([pre, rejects], ignore_index=True)
        report.rows_read = len(raw) + (0 if pre is None else len(pre))
        count_rejects(report, rejects)
        report.timings["validate_s"] = round(time.perf_counter() - t, 4)
        write_fundamentals(target, report, good, rejects, source)
    return report


def ingest_polygon_financials(target: DatabaseTarget, client, symbols: list[str], *,
                              start: dt.date | None = None, end: dt.date | None = None
                              ) -> list[IngestReport]:
    """Quarterly fundamentals from Polygon's ``vX/reference/financials`` into
    ``fundamentals`` (source ``polygon``), one ingest run per symbol.

    Args:
        client: a :class:`technic.providers.polygon.PolygonClient`.
        symbols: tickers to request.
        start, end: filing-date range (inclusive; None = open).

    Returns:
        One report per symbol.

    Raises:
        technic.providers.polygon.PolygonError: the API failed after its retries (symbols
            stored before it stay stored).
    """
    reports = []
    for sym in symbols:
        path = (f"polygon:financials/{sym}?filing_date.gte={start or ''}"
                f"&filing_date.lte={end or ''}")
        def read(s: str = sym) -> tuple[pd.DataFrame, pd.DataFrame | None]:
            return client.financials(s, filed_from=start, filed_to=end), None

        reports.append(run_fundamentals(target, "polygon", path, read))
    return reports


def build_partial_daily(target: DatabaseTarget, when: dt.datetime | pd.Timestamp
                        ) -> IngestReport:
    """Today's partial daily bars from the intraday bars stored up to ``when``.

    Aggregates the regular-session bars of the NYSE session containing ``when`` (bar starts
    from the open up to, not including, ``when``; capped at the close, 13:00 ET on half
    days) into ``bars_daily`` rows with source ``intraday-partial``, so a feature refresh and
    a scan as of that session date see the day so far. A complete end-of-day bar ingested
    later replaces them; they never replace one. Logged as an ingest run (source
    ``intraday-partial``) with ``changed_from``/``changed_to`` = the session date.

    Args:
        when: tz-aware time (naive = UTC).

    Raises:
        ValueError: ``when`` is not inside a session (before the open or on a holiday).
    """
    ts = pd.Timestamp(when)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    day = ts.tz_convert("America/New_York").date()
    if not is_session(day):
        raise ValueError(f"{day} is not an NYSE session")
    opens, closes = session_bounds(day)
    if ts <= opens:
        raise ValueError(f"{ts} is not after the open of {day} ({opens})")
    until = min(ts, closes)
    path = f"bars_intraday:{day.isoformat()}<{until.isoformat()}"
    run_id = store_ingest.start_run(target, store_ingest.PARTIAL_SOURCE, path)
    report = IngestReport(run_id=run_id, source=store_ingest.PARTIAL_SOURCE, path=path)
    try:
        store_ingest.write_partial_daily(target, report, day, opens.to_pydatetime(),
                                         until.to_pydatetime())
    except Exception as e:
        store_ingest.finish_run(target, report, error=f"{type(e).__name__}: {e}")
        raise
    store_ingest.finish_run(target, report)
    return report


def session_bounds(day: dt.date) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Open and close (UTC) of the NYSE session ``day``."""
    import exchange_calendars as xc

    cal = xc.get_calendar("XNYS")
    return cal.session_open(pd.Timestamp(day)), session_close(day)


def latest_intraday_time(target: DatabaseTarget) -> pd.Timestamp | None:
    """Just after the start of the latest stored intraday bar (UTC), so a partial daily bar
    built "as of" it includes that bar; None when ``bars_intraday`` is empty."""
    last = latest_intraday_start(target)
    return None if last is None else last + pd.Timedelta(microseconds=1)


def check_partial_time(when: pd.Timestamp) -> str | None:
    """Why a partial daily bar cannot be built as of ``when`` (None: it can): the session date
    must be an NYSE session and ``when`` after its open (see :func:`build_partial_daily`)."""
    day = when.tz_convert("America/New_York").date()
    if not is_session(day):
        return f"{day} is not an NYSE session"
    opens, _ = session_bounds(day)
    if when <= opens:
        return f"{when} is not after the open of {day} ({opens})"
    return None


def ingest_splits(target: DatabaseTarget, splits: pd.DataFrame, source: str = "manual",
                  as_of: dt.date | None = None) -> IngestReport:
    """Record splits and adjust stored bars that lack them (see
    :mod:`technic.store.actions`); logged as an ingest run with source
    ``corporate-actions``: ``rows_read`` = splits applied now, ``rows_updated`` = daily bars
    rewritten, ``changed_from``/``changed_to`` = their date range (history changed, so caches
    of bar windows covering it are invalid).

    Args:
        splits: ``symbol``, ``execution_date``/``ex_date``, ``split_from``, ``split_to``.
        source: provenance recorded with each split.
        as_of: apply splits with ex-date on or before it (default: today).
    """
    from technic.store.actions import apply_splits, record_splits

    run_id = store_ingest.start_run(target, "corporate-actions", f"splits:{source}")
    report = IngestReport(run_id=run_id, source="corporate-actions", path=f"splits:{source}")
    try:
        report.symbols_upserted = record_splits(target, splits, source)
        apply_splits(target, report, as_of)
    except Exception as e:
        store_ingest.finish_run(target, report, error=f"{type(e).__name__}: {e}")
        raise
    store_ingest.finish_run(target, report)
    return report


def ingest_synthetic(target: DatabaseTarget, n_symbols: int, n_days: int,
                     seed: int = 0) -> IngestReport:
    """Generate and ingest synthetic bars.

    See :func:`technic.providers.synthetic.generate_bars` for the model and arguments.
    """
    def read() -> tuple[pd.DataFrame, pd.DataFrame]:
        return generate_bars(n_symbols, n_days, seed)
    return _run(target, "synthetic", f"synthetic://{n_symbols}x{n_days}?seed={seed}", read)


def _polygon_path(day: dt.date, adjusted: bool) -> str:
    return f"polygon:grouped/{day.isoformat()}?adjusted={str(adjusted).lower()}"


def completed_polygon_dates(target: DatabaseTarget, adjusted: bool) -> set[dt.date]:
    """Dates whose grouped-daily ingest already finished (``ingest_runs`` status ``ok``)."""
    paths = finished_ingest_paths(target, "polygon", "polygon:grouped/")
    suffix = f"?adjusted={str(adjusted).lower()}"
    return {dt.date.fromisoformat(p.split("/", 1)[1][:10]) for p in paths if p.endswith(suffix)}


def ingest_polygon(target: DatabaseTarget, client, start: dt.date, end: dt.date, *,
                   adjusted: bool = True,
                   on_date: Callable[[dt.date, IngestReport | None], None] | None = None,
                   ) -> list[IngestReport]:
    """Backfill daily bars from Polygon's grouped-daily endpoint, one session at a time.

    Resumable: every session is its own ingest run (one transaction) and sessions whose run
    already finished are skipped, so a killed backfill continues from the first session it
    had not completed and re-running a range is harmless. Holidays are never requested (NYSE
    calendar); a session with no results stores nothing.

    Args:
        client: a :class:`technic.providers.polygon.PolygonClient`.
        start, end: first and last date (inclusive).
        adjusted: request split-adjusted bars (recorded in each run's ``path``).
        on_date: called after each session as ``(date, report)`` (``report`` None = skipped).

    Returns:
        The reports of the sessions ingested now.

    Raises:
        ValueError: ``start`` after ``end``.
        technic.providers.polygon.PolygonError: the API failed after its retries; sessions
            stored before it stay stored.
    """
    done = completed_polygon_dates(target, adjusted)
    reports = []
    for day in sessions(start, end):
        if day in done:
            if on_date:
                on_date(day, None)
            continue
        rep = _run(target, "polygon", _polygon_path(day, adjusted),
                   lambda d=day: (client.grouped_daily(d, adjusted=adjusted)
                                  .drop(columns=["adjusted"], errors="ignore"), None),
                   bar_source="polygon" if adjusted else "polygon-unadjusted",
                   basis=POLYGON_ADJUSTED if adjusted else POLYGON_UNADJUSTED)
        reports.append(rep)
        if on_date:
            on_date(day, rep)
    return reports
