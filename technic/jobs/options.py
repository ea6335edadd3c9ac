"""Option jobs: ingest option-chain files or a Polygon snapshot (validate → ``option_chains``
→ ``ingest_runs``/``ingest_rejects``) and compute ``option_metrics`` for a range of sessions.

Called by ``technic ingest files`` (an option-chain file), ``technic options ...`` and the
scan (``--with-options`` reads what :func:`compute_option_metrics` stored).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from technic.jobs.runs import count_rejects, ingest_run
from technic.options.chains import validate_chains
from technic.options.greeks import fill_greeks
from technic.options.metrics import IV_RANK_LOOKBACK, RV_WINDOW, option_metrics
from technic.providers import files as files_provider
from technic.store.db import DatabaseTarget
from technic.store.history import read_closes
from technic.store.ingest import IngestReport
from technic.store.options import (
    chain_dates,
    read_iv_history,
    read_option_chains,
    write_option_chains,
    write_option_metrics,
)

log = logging.getLogger(__name__)


def _ingest_chains(target: DatabaseTarget, source: str, path: str, read,
                   chain_source: str) -> tuple[IngestReport, list[dt.date]]:
    """One option-chain ingest run: ``read()`` → ``(table, pre_rejects)``; validate; fill
    the greeks the source lacks (:func:`technic.options.greeks.fill_greeks`); store;
    log the run (failed with the error on any exception, which is re-raised). Returns the
    report and the first and last session of the valid rows (empty: none)."""
    with ingest_run(target, source, path, what="option row") as report:
        t = time.perf_counter()
        raw, pre = read()
        report.timings["read_s"] = round(time.perf_counter() - t, 4)
        t = time.perf_counter()
        good, rejects = validate_chains(raw)
        if pre is not None and len(pre):
            rejects = pd.concat([pre, rejects], ignore_index=True)
        report.rows_read = raw.num_rows + (0 if pre is None else len(pre))
        count_rejects(report, rejects)
        report.timings["validate_s"] = round(time.perf_counter() - t, 4)
        t = time.perf_counter()
        good, fill = fill_greeks(good)
        report.timings["greeks_s"] = round(time.perf_counter() - t, 4)
        log.info("ingest run %d: greeks computed for %d contract(s) (%d from an IV of the "
                 "session's price), %d without usable inputs", report.run_id, fill.rows_filled,
                 fill.iv_recomputed, fill.rows_unusable)
        write_option_chains(target, report, good, rejects, chain_source)
        days = [] if good.num_rows == 0 else [v.as_py() for v in pc.min_max(
            good["date"]).values()]
    return report, days


def ingest_option_files(target: DatabaseTarget, paths: Iterable[Path],
                        metrics: bool = True) -> list[IngestReport]:
    """Ingest option-chain files (each its own ``ingest_runs`` row, source ``options-files``,
    ``option_chains.source`` = ``files``), then compute ``option_metrics`` for the sessions
    they hold.

    Raises:
        technic.providers.files.InputFileError: a file is unreadable (its attempt is a
            failed ``ingest_runs`` row); files before it stay stored.
    """
    reports = []
    for p in paths:
        rep, days = _ingest_chains(target, "options-files", str(p),
                                   lambda p=p: files_provider.read_options_file(p), "files")
        reports.append(rep)
        if metrics and days:
            compute_option_metrics(target, days[0], days[-1])
    return reports


def ingest_option_snapshot(target: DatabaseTarget, client, underlyings: list[str],
                           session: dt.date | None = None) -> list[IngestReport]:
    """Ingest Polygon option-chain snapshots (one run per underlying, source
    ``options-polygon``; ``option_chains.source`` = ``polygon``) and compute the metrics of
    the session.

    Args:
        client: a :class:`technic.providers.polygon.PolygonClient`.
        session: the session the snapshot describes (default: today in New York).
    """
    from technic.calendar import today_new_york

    day = session or today_new_york()
    reports = []
    for u in underlyings:
        reports.append(_ingest_chains(
            target, "options-polygon", f"polygon:options-snapshot/{u}/{day.isoformat()}",
            lambda u=u: (pa.Table.from_pandas(client.option_chain_snapshot(u, session=day),
                                              preserve_index=False), None), "polygon")[0])
    compute_option_metrics(target, day, day)
    return reports


def compute_option_metrics(target: DatabaseTarget, start: dt.date | None = None,
                           end: dt.date | None = None) -> int:
    """Compute and store ``option_metrics`` for every stored chain session in
    ``start``–``end`` (None = open), one session batch at a time in date order so that IV
    rank sees the sessions computed before it.

    Reads the chains, the ``bars_daily`` closes of the 20-return window (realized vol) and
    up to 252 earlier sessions of ``option_metrics.atm_iv_30d`` (IV rank).

    Returns:
        Rows written (one per session and underlying).
    """
    days = chain_dates(target, start, end)
    if not days:
        return 0
    chains = read_option_chains(target, days[0], days[-1])
    lookback = days[0] - dt.timedelta(days=int(RV_WINDOW * 7 / 5) + 20)
    closes = read_closes(target, lookback, days[-1])
    history = read_iv_history(target, days[0], IV_RANK_LOOKBACK)
    t = time.perf_counter()
    m = option_metrics(chains, closes, history, assume_sorted=True)
    log.info("option metrics: %d chains in %.2f s", len(m), time.perf_counter() - t)
    return write_option_metrics(target, m)


def stored_chain_dates(target: DatabaseTarget) -> list[dt.date]:
    """Sessions with a stored chain (ascending)."""
    return chain_dates(target)


def option_metrics_for_scan(target: DatabaseTarget, day: dt.date) -> pd.DataFrame:
    """The ``option_metrics`` of session ``day`` as ``scan_results`` names them: ``symbol``
    and the ``opt_*`` columns of :data:`technic.store.migrations.OPTION_RESULT_COLUMNS`."""
    from technic.store.migrations import OPTION_RESULT_COLUMNS
    from technic.store.options import read_option_metrics

    m = read_option_metrics(target, day)
    out = pd.DataFrame({"symbol": m["underlying"] if len(m) else pd.Series(dtype=object)})
    for c in OPTION_RESULT_COLUMNS:
        src = c.removeprefix("opt_")
        out[c] = pd.to_numeric(m[src], errors="coerce").astype("float64") if len(m) \
            else pd.Series(dtype="float64")
    return out
