"""Feature refresh job: bars in the store → feature rows in ``features_daily``.

The universe of symbols with a bar on the as-of date is split into chunks; each chunk is one
task that loads its own panel (``lookback_bars`` trading days) from the store and computes the
feature set for the as-of date. Tasks run on Dask when a client is given, else in this
process; both paths give identical rows. All rows are written in one transaction at the end,
so a scan never sees a half-written refresh.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from technic.compute import chunked
from technic.features import compute_features
from technic.store.bars import last_bar_date, load_panel, symbols_with_bar
from technic.store.db import DatabaseTarget
from technic.store.features import write_features

log = logging.getLogger(__name__)


@dataclass
class RefreshReport:
    """What one refresh did."""

    as_of: dt.date
    symbols: int
    chunks: int
    rows_written: int
    timings: dict[str, float] = field(default_factory=dict)


def refresh_chunk(target: DatabaseTarget, symbols: list[str], as_of: dt.date,
                  lookback_bars: int) -> pd.DataFrame:
    """Compute the as-of feature rows of one symbol chunk (runs on a Dask worker).

    Returns:
        Frame as :func:`technic.features.compute_features` (one row per symbol of the chunk
        that has a bar on ``as_of``).
    """
    panel = load_panel(target, as_of, lookback_bars, symbols)
    return compute_features(panel)


def refresh_features(
    target: DatabaseTarget,
    as_of: dt.date | None = None,
    *,
    lookback_bars: int = 300,
    chunk_size: int = 1000,
    client=None,
    on_chunk_done: Callable[[int, int], None] | None = None,
    write: bool = True,
) -> tuple[RefreshReport, pd.DataFrame]:
    """Refresh ``features_daily`` for ``as_of`` (default: the latest date with bars).

    Args:
        target: the store.
        as_of: date to compute; resolved to the last date with bars on or before it.
        lookback_bars: trading days of history each chunk loads (≥ 253 for every feature).
        chunk_size: at most this many symbols per task (with a client, smaller chunks so each
            worker gets at least two).
        client: a ``distributed.Client``; ``None`` runs every chunk in this process.
        on_chunk_done: called as ``(done, total)`` after each chunk (progress bars).
        write: store the rows (False: compute only, for comparisons).

    Returns:
        ``(report, rows)``; rows sorted by symbol.

    Raises:
        technic.store.bars.NoDataError: no bars on or before ``as_of``.
    """
    t0 = time.perf_counter()
    day = last_bar_date(target, as_of)
    symbols = symbols_with_bar(target, day)
    if client is not None:
        # at least two tasks per worker, so every worker is busy and a slow chunk is not alone
        workers = max(1, len(client.scheduler_info().get("workers", {})))
        chunk_size = max(1, min(chunk_size, -(-len(symbols) // (2 * workers))))
    parts = chunked(symbols, chunk_size)
    timings = {"plan_s": round(time.perf_counter() - t0, 4)}
    t = time.perf_counter()
    frames: list[pd.DataFrame] = []
    if client is None:
        for i, part in enumerate(parts):
            frames.append(refresh_chunk(target, part, day, lookback_bars))
            if on_chunk_done:
                on_chunk_done(i + 1, len(parts))
    else:
        from distributed import as_completed

        futures = [client.submit(refresh_chunk, target, part, day, lookback_bars,
                                 key=f"refresh-{day}-{i}-{time.time_ns()}", pure=False)
                   for i, part in enumerate(parts)]
        for done, fut in enumerate(as_completed(futures), start=1):
            frames.append(fut.result())
            if on_chunk_done:
                on_chunk_done(done, len(parts))
    rows = (pd.concat(frames, ignore_index=True) if frames else compute_features_empty())
    rows = rows.sort_values("symbol", kind="stable").reset_index(drop=True)
    timings["compute_s"] = round(time.perf_counter() - t, 4)
    t = time.perf_counter()
    written = write_features(target, rows) if write else 0
    timings["write_s"] = round(time.perf_counter() - t, 4)
    timings["total_s"] = round(time.perf_counter() - t0, 4)
    report = RefreshReport(as_of=day, symbols=len(symbols), chunks=len(parts),
                           rows_written=written, timings=timings)
    log.info("refreshed features for %s: %d symbols in %d chunks (%.2f s)", day, len(symbols),
             len(parts), timings["total_s"])
    return report, rows


def compute_features_empty() -> pd.DataFrame:
    """An empty feature frame with the stored columns."""
    from technic.features import FEATURE_COLUMNS

    return pd.DataFrame(columns=["symbol", "date", *FEATURE_COLUMNS, "n_bars"])
