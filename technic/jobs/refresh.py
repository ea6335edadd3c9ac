"""Feature refresh jobs: bars in the store → feature rows in ``features_daily``.

* :func:`refresh_features` — one date (the latest by default) for every symbol with a bar that
  day. Chunks run on Dask when a client is given, else in this process; both give identical
  rows. All rows are written in one transaction at the end, so a scan never sees a
  half-written refresh.
* :func:`backfill_features` — every date of a range (feature history for training and
  evaluation). Each chunk writes its own rows (one transaction per chunk).
* :func:`technic.incremental.refresh_incremental` — one new date from the cached bar window;
  :func:`refresh_incremental_here_or_on_cluster` picks where it runs.
* :func:`run_refresh` and :func:`run_backfill` — what the CLI and the flows call: the one
  place that turns their options (mode, ``--local``, ``--gpu``, the settings) into one of the
  above, run here or on Dask.

**Window and error bound.** Each date's features are computed from the last
``lookback_bars`` trading dates up to it (the same window for every symbol and chunk, see
:func:`technic.store.bars.window_start`). Recursive features (EMA, MACD, Wilder's RSI/ATR/ADX)
are seeded at the window start instead of the symbol's first bar; the seed's weight decays as
(1 − α)^k after k bars (α = 2/(n+1) for EMA, 1/n for Wilder). Measured on the bundled 1,000
real tickers, 300-bar windows against 504 bars of history (tests/integration/test_features.py): ADX
≤ 3.4e-8, other recursive features ≤ 1.2e-9, windowed features ≤ 4e-11 (running sums restart),
as relative errors (price-level features relative to the close). The tests hold them to 1e-7,
1e-8 and 1e-10. A backfill window is at least as long, so refresh and backfill agree to that
bound.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from technic.cache import get_cache
from technic.compute import (
    chunk_size_for,
    chunked,
    dashboard_link,
    dask_client,
    resolve_device,
    run_chunks,
    window_home,
)
from technic.config import Settings, get_settings
from technic.features import FEATURE_COLUMNS, compute_features
from technic.incremental import refresh_incremental
from technic.panel import FIELDS, Panel
from technic.store.bars import (
    bars_version,
    last_bar_date,
    load_panel,
    read_bars_arrow,
    symbols_with_bar,
    window_start,
)
from technic.store.db import DatabaseTarget
from technic.store.features import write_features
from technic.store.freshness import RefreshReport, stale_symbols, symbols_between

log = logging.getLogger(__name__)


def refresh_chunk(target: DatabaseTarget, symbols: list[str], start: dt.date,
                  as_of: dt.date, version: int | None = None,
                  redis_url: str | None = None, device: str = "cpu") -> pd.DataFrame:
    """Compute the as-of feature rows of one symbol chunk (runs on a Dask worker).

    Args:
        start: first date of the history window (:func:`window_start`).
        version: bars version at planning time; with it the chunk's bars go through the
            worker's cache (L1, and L2 Redis when ``redis_url`` is set).
        device: ``"cpu"`` or ``"gpu"`` (set by :func:`technic.compute.run_chunks` for a
            chunk routed to a worker with the ``GPU`` resource); a ``"gpu"`` chunk on a
            process without a usable CUDA device computes on the CPU, with one warning
            (:func:`technic.compute.resolve_device`). Both give the same rows (≤ 1e-9).

    Returns:
        Frame as :func:`technic.features.compute_features` (one row per symbol of the chunk
        that has a bar on ``as_of``).

    Raises:
        ValueError: an unknown ``device``.
    """
    dev = resolve_device(device)
    cache = (get_cache(redis_url, target.cache_namespace()) if version is not None else None)
    panel = load_panel(target, start, as_of, symbols, cache=cache, version=version)
    return compute_features(panel, dates=[np.datetime64(as_of, "D")], device=dev)


def backfill_chunk(target: DatabaseTarget, symbols: list[str], window: dt.date,
                   start: dt.date, end: dt.date) -> int:
    """Compute and store the features of one chunk for every date in ``[start, end]``.

    Returns:
        Rows written.
    """
    panel = load_panel(target, window, end, symbols)
    days = panel.dates[(panel.dates >= np.datetime64(start, "D"))
                       & (panel.dates <= np.datetime64(end, "D"))]
    if len(days) == 0:
        return 0
    return write_features(target, compute_features(panel, dates=list(days)))


def _local_chunks(bars: pa.Table, parts: list[list[str]], day: dt.date,
                  on_chunk_done: Callable[[int, int], None] | None) -> list[pd.DataFrame]:
    # One pivot of the whole window, then column slices per chunk: filtering the long table
    # once per chunk cost O(chunks x rows), quadratic in the universe (50,000 symbols: 50
    # scans of 15 M rows). Rows of dates on which a chunk has no bar are all-NaN for it and
    # skipped by every kernel (gap policy), so the values equal a per-chunk pivot's.
    panel = Panel.from_arrow(bars)
    pos = {s: i for i, s in enumerate(panel.symbols)}
    frames = []
    for i, part in enumerate(parts):
        cols = np.array([pos[s] for s in part if s in pos], dtype=np.int64)
        chunk = Panel(panel.dates, panel.symbols[cols],
                      *(getattr(panel, f)[:, cols] for f in FIELDS))
        frames.append(compute_features(chunk, dates=[np.datetime64(day, "D")]))
        if on_chunk_done:
            on_chunk_done(i + 1, len(parts))
    return frames


def refresh_features(
    target: DatabaseTarget,
    as_of: dt.date | None = None,
    *,
    lookback_bars: int = 300,
    chunk_size: int = 1000,
    client=None,
    on_chunk_done: Callable[[int, int], None] | None = None,
    write: bool = True,
    only_changed: bool = False,
    use_cache: bool = False,
    redis_url: str | None = None,
    use_gpu: bool = False,
) -> tuple[RefreshReport, pd.DataFrame]:
    """Refresh ``features_daily`` for ``as_of`` (default: the latest date with bars).

    Args:
        target: the store.
        as_of: date to compute; resolved to the last date with bars on or before it.
        lookback_bars: trading dates of history in each window (≥ 253 for every feature).
        chunk_size: at most this many symbols per task (with a client, smaller chunks so each
            worker gets at least two).
        client: a ``distributed.Client``; ``None`` runs every chunk in this process.
        on_chunk_done: called as ``(done, total)`` after each chunk (progress bars).
        write: store the rows (False: compute only, for comparisons).
        only_changed: recompute only symbols whose feature row for the date is missing or
            older than a bar of its window (e.g. after an intraday update of today's bar);
            the other rows stay as stored. Assumes ingests and refreshes of the same data do
            not overlap in time (the pipeline runs them in sequence).
        use_cache: read each chunk's bars through the worker's cache (keyed by the bars
            version, so an ingest invalidates it): repeated refreshes skip the database read.
        redis_url: the shared L2 cache for those bars (``TECHNIC_REDIS_URL``); None = L1 only.
        use_gpu: compute on the GPU kernels: chunks go to the Dask workers that declare the
            ``GPU`` resource (without a client: this process's GPU); when there is none, one
            warning and the CPU path (see :func:`technic.compute.run_chunks`). Same rows as
            the CPU path to ≤ 1e-9 relative.

    Returns:
        ``(report, rows)``; rows (only the recomputed ones) sorted by symbol.

    Raises:
        technic.store.bars.NoDataError: no bars on or before ``as_of``.
    """
    t0 = time.perf_counter()
    day = last_bar_date(target, as_of)
    start = window_start(target, day, lookback_bars)
    symbols = (stale_symbols(target, start, day) if only_changed
               else symbols_with_bar(target, day))
    parts = chunked(symbols, chunk_size_for(client, len(symbols), chunk_size))
    timings = {"plan_s": round(time.perf_counter() - t0, 4)}
    t = time.perf_counter()
    version = bars_version(target) if use_cache else None
    if client is None and not use_cache and not use_gpu:
        # In one process, one read of the whole window beats a query per chunk; chunks are
        # then cut from it in memory (same bars, so the same rows as the Dask path).
        frames = _local_chunks(read_bars_arrow(target, start, day), parts, day, on_chunk_done)
    else:
        frames = run_chunks(client, refresh_chunk,
                            [(target, p, start, day, version, redis_url) for p in parts],
                            on_chunk_done, gpu=use_gpu)
    rows = (pd.concat(frames, ignore_index=True) if frames else
            pd.DataFrame(columns=["symbol", "date", *FEATURE_COLUMNS, "n_bars"]))
    rows = rows.sort_values("symbol", kind="stable").reset_index(drop=True)
    timings["compute_s"] = round(time.perf_counter() - t, 4)
    t = time.perf_counter()
    written = write_features(target, rows) if write else 0
    timings["write_s"] = round(time.perf_counter() - t, 4)
    timings["total_s"] = round(time.perf_counter() - t0, 4)
    report = RefreshReport(as_of=day, symbols=len(symbols), chunks=len(parts),
                           rows_written=written, start=start, timings=timings)
    log.info("refreshed features for %s: %d symbols in %d chunks (%.2f s)", day, len(symbols),
             len(parts), timings["total_s"])
    return report, rows


def backfill_features(
    target: DatabaseTarget,
    start: dt.date,
    end: dt.date | None = None,
    *,
    lookback_bars: int = 300,
    chunk_size: int = 500,
    client=None,
    on_chunk_done: Callable[[int, int], None] | None = None,
) -> RefreshReport:
    """Compute and store features for every trading date in ``[start, end]``.

    Args:
        start: first date to compute.
        end: last date (default: the latest date with bars).
        lookback_bars: history before ``start`` included in each window (see the module
            docstring for the error bound of recursive indicators).
        chunk_size, client, on_chunk_done: as :func:`refresh_features`.

    Returns:
        The report (``as_of`` = ``end``, ``start`` = ``start``).

    Raises:
        ValueError: ``start`` after ``end``.
        technic.store.bars.NoDataError: no bars on or before ``end``.
    """
    t0 = time.perf_counter()
    end = last_bar_date(target, end)
    if start > end:
        raise ValueError(f"start {start} is after end {end}")
    window = window_start(target, start, lookback_bars)
    symbols = symbols_between(target, start, end)
    parts = chunked(symbols, chunk_size_for(client, len(symbols), chunk_size))
    counts = run_chunks(client, backfill_chunk,
                        [(target, p, window, start, end) for p in parts], on_chunk_done)
    report = RefreshReport(as_of=end, symbols=len(symbols), chunks=len(parts),
                           rows_written=int(sum(counts)), start=start,
                           timings={"total_s": round(time.perf_counter() - t0, 4)})
    log.info("backfilled %d feature rows for %s … %s", report.rows_written, start, end)
    return report


def _incremental_task(target: Any, as_of: Any, lookback_bars: int,
                      redis_url: str | None) -> tuple[Any, str]:
    from distributed import get_worker

    report, _ = refresh_incremental(target, as_of, lookback_bars=lookback_bars,
                                    redis_url=redis_url)
    return report, get_worker().address


def refresh_incremental_on(client: Any, target: Any, as_of: Any = None, *,
                           lookback_bars: int = 300,
                           redis_url: str | None = None) -> tuple[Any, str]:
    """Run :func:`technic.incremental.refresh_incremental` (rows written) on a long-lived
    worker of ``client``'s cluster rather than in this process.

    A scheduled refresh starts a new process each time, which must fetch the ~80 MB bar
    window from Redis (or rebuild it); a worker of an external cluster
    (``TECHNIC_DASK_ADDRESS``) outlives the runs and keeps the window in its process cache,
    so each new day reads only that day's bars. The task goes to
    :func:`technic.compute.window_home` (another worker if that one is gone: it then fetches
    the window from Redis, or rebuilds).

    Returns:
        ``(report, worker_address)``: the refresh's :class:`technic.store.freshness.RefreshReport`
        (``window_layer == "l1"`` when the worker still held the window).

    Raises:
        Whatever the refresh raises (e.g. :class:`technic.store.bars.NoDataError`),
        RuntimeError: the cluster has no worker.
    """
    home = window_home(client)
    fut = client.submit(_incremental_task, target, as_of, lookback_bars, redis_url,
                        workers=[home], allow_other_workers=True, pure=False)
    return fut.result()


def refresh_incremental_here_or_on_cluster(target: Any, as_of: Any = None, *,
                                           settings: Settings | None = None,
                                           local: bool = False) -> tuple[Any, str]:
    """The incremental refresh where its bar window lives longest: on a long-lived worker of
    ``TECHNIC_DASK_ADDRESS``'s cluster (:func:`refresh_incremental_on`), else (or with
    ``local``) in this process. Lookback and Redis URL come from the settings.

    Returns:
        ``(report, where)``: ``where`` is the worker address or ``"this process"``.

    Raises:
        Whatever the refresh raises; OSError: the scheduler cannot be reached.
    """
    s = settings or get_settings()
    if s.dask_address and not local:
        with dask_client(s) as client:
            return refresh_incremental_on(client, target, as_of, lookback_bars=s.lookback_bars,
                                          redis_url=s.redis_url)
    report, _ = refresh_incremental(target, as_of, lookback_bars=s.lookback_bars,
                                    redis_url=s.redis_url)
    return report, "this process"


def _tell_dashboard(client: Any, s: Settings,
                    on_dashboard: Callable[[str], None] | None) -> None:
    """Call ``on_dashboard`` with the dashboard URL of ``client``'s cluster, when there is a
    client, a callback and a dashboard (an external scheduler's, or the local cluster's
    unless ``TECHNIC_DASK_DASHBOARD`` is empty)."""
    if client is None or on_dashboard is None or not (s.dask_address or s.dask_dashboard):
        return
    link = dashboard_link(client)
    if link:
        on_dashboard(link)


#: The refresh modes of :func:`run_refresh`.
MODES = ("incremental", "full")


def refresh_mode(incremental: bool = True, changed_only: bool = False,
                 gpu: bool = False) -> str:
    """The mode the front ends' options select: ``"incremental"`` unless ``--full`` was asked
    for, or implied by ``changed_only`` or ``gpu`` (only the full refresh has those)."""
    return "incremental" if incremental and not changed_only and not gpu else "full"


def run_refresh(target: DatabaseTarget, as_of: dt.date | None = None, *,
                mode: str = "incremental", local: bool = False, changed_only: bool = False,
                gpu: bool = False, settings: Settings | None = None,
                on_chunk_done: Callable[[int, int], None] | None = None,
                on_dashboard: Callable[[str], None] | None = None,
                ) -> tuple[RefreshReport, str]:
    """Refresh ``features_daily`` for ``as_of`` the way the CLI and the flows ask for it.

    Args:
        target: the store.
        as_of: date to compute (default: the latest date with bars).
        mode: ``"incremental"`` (from the cached bar window, on a long-lived worker of
            ``TECHNIC_DASK_ADDRESS``'s cluster or in this process:
            :func:`refresh_incremental_here_or_on_cluster`) or ``"full"``
            (:func:`refresh_features` fanned out over Dask); see :func:`refresh_mode`.
        local: compute in this process (either mode) instead of on Dask.
        changed_only, gpu: as :func:`refresh_features`'s ``only_changed`` and ``use_gpu``
            (full mode only).
        settings: lookback, chunk size, Redis and Dask addresses (default: the environment).
        on_chunk_done: progress of a full refresh, ``(done, total)`` chunks.
        on_dashboard: called with the Dask dashboard's URL when a full refresh runs on a
            cluster with a dashboard (:func:`_tell_dashboard`).

    Returns:
        ``(report, where)``: ``where`` is ``"this process"``, a worker address, or
        ``"dask"`` (a full refresh fanned out over the cluster).

    Raises:
        ValueError: an unknown ``mode``; technic.store.bars.NoDataError: no bars on or before
        ``as_of``; OSError: ``TECHNIC_DASK_ADDRESS`` does not answer.
    """
    if mode not in MODES:
        raise ValueError(f"refresh mode must be one of {MODES}, got {mode!r}")
    s = settings or get_settings()
    if mode == "incremental":
        return refresh_incremental_here_or_on_cluster(target, as_of, settings=s, local=local)
    with nullcontext() if local else dask_client(s) as client:
        _tell_dashboard(client, s, on_dashboard)
        report, _ = refresh_features(target, as_of, lookback_bars=s.lookback_bars,
                                     chunk_size=s.chunk_size, client=client,
                                     on_chunk_done=on_chunk_done, only_changed=changed_only,
                                     use_cache=bool(s.redis_url), redis_url=s.redis_url,
                                     use_gpu=gpu)
    return report, "this process" if local else "dask"


def run_backfill(target: DatabaseTarget, start: dt.date, end: dt.date | None = None, *,
                 local: bool = False, settings: Settings | None = None,
                 on_chunk_done: Callable[[int, int], None] | None = None,
                 on_dashboard: Callable[[str], None] | None = None) -> RefreshReport:
    """:func:`backfill_features` with the settings' lookback and chunk size, on Dask
    (``TECHNIC_DASK_ADDRESS`` or a local cluster) or, with ``local``, in this process.
    ``on_dashboard`` is called with the Dask dashboard's URL (as :func:`run_refresh`).

    Raises:
        As :func:`backfill_features`; OSError: ``TECHNIC_DASK_ADDRESS`` does not answer.
    """
    s = settings or get_settings()
    with nullcontext() if local else dask_client(s) as client:
        _tell_dashboard(client, s, on_dashboard)
        return backfill_features(target, start, end, lookback_bars=s.lookback_bars,
                                 chunk_size=s.chunk_size, client=client,
                                 on_chunk_done=on_chunk_done)
