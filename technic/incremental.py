"""Incremental feature refresh: one new day (or an intraday update of today's bar) without
re-reading or recomputing the whole history window.

A full refresh reads the last ``lookback_bars`` trading dates of bars for every symbol (the
window) and computes every feature over it. Nearly all of that work repeats the previous
day's. :func:`refresh_incremental` keeps the window itself in the cache (L1 in-process, L2
Redis as Arrow IPC — see :mod:`technic.cache`) under the key of its last date and then:

* **a new date** ``d`` after the cached window's last date ``p``: reads only the bars of
  ``d`` (one date, ~8,000 rows), shifts the window by one date, and computes each symbol's
  features at ``d`` only (:func:`technic.features.last_row_features`);
* **the same date again** (an intraday update of today's bar, or a re-run): re-reads ``d``'s
  bars, and recomputes and writes only the symbols whose bar changed (or is new) — the other
  rows stay as stored in ``features_daily``;
* otherwise — no cached window, the cache is older than ``p``, or an ingest since the cached
  window rewrote bars dated before ``d`` (``ingest_runs.changed_from``) — it **rebuilds**:
  one read of the whole window, every symbol computed, the window cached for next time.

**Equal to a full refresh, exactly.** The window is the same one a full refresh uses (the
last ``lookback_bars`` trading dates up to ``d``, :func:`technic.store.bars.window_start`),
and the last-row kernels run the same TA-Lib-order arithmetic over it, so every row is
bit-identical to :func:`technic.jobs.refresh.refresh_features` — recursive indicators (EMA, MACD,
Wilder's RSI/ATR/ADX) are recomputed over the trailing window, with the error bound of that
window documented in :mod:`technic.jobs.refresh` (ADX ≤ 1e-7, other recursive ≤ 1e-8 relative to a
504-bar history), not carried as state that would drift from it.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from technic.cache import FrameCache, get_cache
from technic.calendar import as_day
from technic.features import FEATURE_COLUMNS, last_row_features
from technic.store.bars import bars_version, last_bar_date, read_bars_arrow
from technic.store.db import DatabaseTarget, pooled_adbc
from technic.store.features import write_features
from technic.store.freshness import (
    RefreshReport,
    feature_rows_on,
    history_changed_before,
    trading_window,
)

log = logging.getLogger(__name__)

#: Fields kept in a window (open is not used by any feature).
WINDOW_FIELDS = ("high", "low", "close", "volume")
#: How long a cached window lives in Redis: long enough to span a weekend plus a holiday.
WINDOW_TTL_S = 5 * 24 * 3600


#: Spare date columns a window's ring buffer gets when it is (re)allocated: that many
#: appends write in place before the next copy.
RING_SPARE = 32


class _Ring:
    """``(N, capacity)`` buffers per field; windows are ``[:, lo:hi]`` views of them.
    ``claimed`` is the end of the furthest window built on it: only a window ending there may
    append in place (an older one — a branch — copies instead)."""

    def __init__(self, n: int, capacity: int) -> None:
        self.bufs = {f: np.empty((n, capacity)) for f in WINDOW_FIELDS}
        self.capacity = capacity
        self.claimed = 0


@dataclass
class BarWindow:
    """The bars of the last ``T`` trading dates for ``N`` symbols, symbol-major.

    Attributes:
        dates: ``(T,) datetime64[D]`` trading dates, increasing.
        symbols: ``(N,) object`` (str), sorted.
        high, low, close: ``(N, T) float64`` USD per share, NaN where no bar.
        volume: ``(N, T) float64`` shares, NaN where no bar.
        version: :func:`technic.store.bars.bars_version` read before the bars were.
        depth: dates appended since the window was last stored whole in L2 (see
            :func:`refresh_incremental`: in between, L2 receives only each date's column).
    """

    dates: np.ndarray
    symbols: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    version: int
    depth: int = 0
    #: The ring buffer the arrays are column ranges of (appends write in place), if any.
    ring: _Ring | None = field(default=None, repr=False, compare=False)
    span: tuple[int, int] = (0, 0)
    #: ``symbols`` as a fixed-width str array (lookups of a day's symbols), made once.
    symbols_str: np.ndarray | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_bars(cls, bars: pa.Table, dates: np.ndarray, version: int) -> BarWindow:
        """Pivot long bars (``symbol, date, high, low, close, volume``) onto ``dates``.

        Raises:
            ValueError: a bar is dated outside ``dates``.
        """
        enc = pc.dictionary_encode(bars.column("symbol").combine_chunks())
        names = enc.dictionary.to_numpy(zero_copy_only=False).astype(object)
        order = np.argsort(names, kind="stable")
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order))
        row = rank[enc.indices.to_numpy(zero_copy_only=False)]
        days = bars.column("date").to_numpy(zero_copy_only=False).astype("datetime64[D]")
        col = np.searchsorted(dates, days)
        if len(days) and (col.max() >= len(dates) or not np.array_equal(dates[col], days)):
            raise ValueError("bars dated outside the window's trading dates")
        n, t = len(names), len(dates)
        arrays = {}
        for f in WINDOW_FIELDS:
            a = np.full((n, t), np.nan)
            a[row, col] = bars.column(f).to_numpy(zero_copy_only=False).astype(np.float64)
            arrays[f] = a
        return cls(dates=dates, symbols=names[order], high=arrays["high"], low=arrays["low"],
                   close=arrays["close"], volume=arrays["volume"], version=version)

    def to_arrow(self) -> pa.Table:
        """As an Arrow table: ``symbol`` and one ``fixed_size_list<float64>[T]`` column per
        field; dates and version in the schema metadata (cache values are never pickled)."""
        t = len(self.dates)
        cols = {"symbol": pa.array(self.symbols.astype(str), pa.string())}
        for f in WINDOW_FIELDS:
            cols[f] = pa.FixedSizeListArray.from_arrays(
                pa.array(np.ascontiguousarray(getattr(self, f)).reshape(-1), pa.float64()), t)
        meta = {"dates": ",".join(str(d) for d in self.dates.astype("datetime64[D]")),
                "version": str(self.version), "depth": str(self.depth)}
        return pa.table(cols).replace_schema_metadata(meta)

    @classmethod
    def from_arrow(cls, table: pa.Table) -> BarWindow:
        """Inverse of :meth:`to_arrow`. The price arrays are copied once, straight into a
        ring buffer with ``RING_SPARE`` spare columns, so the dates appended next (the
        deltas a new process replays, then the new day) write in place.

        Raises:
            KeyError, ValueError: not a table written by :meth:`to_arrow`.
        """
        meta = table.schema.metadata
        dates = np.array(meta[b"dates"].decode().split(","), dtype="datetime64[D]")
        n, t = table.num_rows, len(dates)
        ring = _Ring(n, t + RING_SPARE)
        for f in WINDOW_FIELDS:
            row = 0
            for chunk in table.column(f).chunks:  # one chunk per cached part
                k = len(chunk)
                if chunk.null_count or getattr(chunk.type, "list_size", None) != t:
                    raise ValueError(f"cached window column {f!r} is not {t} dates per row")
                values = chunk.flatten()  # zero-copy view of this chunk's list values
                ring.bufs[f][row:row + k, :t] = \
                    values.to_numpy(zero_copy_only=False).reshape(k, t)
                row += k
            if row != n:
                raise ValueError(f"cached window column {f!r} has {row} rows, not {n}")
        ring.claimed = t
        arrays = {f: ring.bufs[f][:, :t] for f in WINDOW_FIELDS}
        return cls(dates=dates, symbols=table.column("symbol").to_numpy(zero_copy_only=False)
                   .astype(object), high=arrays["high"], low=arrays["low"],
                   close=arrays["close"], volume=arrays["volume"], version=int(meta[b"version"]),
                   depth=int(meta.get(b"depth", b"0")), ring=ring, span=(0, t))

    def last_column(self) -> pa.Table:
        """The last date's bars (symbols with a bar), ``symbol, high, low, close, volume``,
        with ``date``, ``prev`` (the date before it in the window), ``version`` and
        ``depth`` in the schema metadata: what L2 receives between whole-window copies."""
        has = np.isfinite(self.close[:, -1])
        cols = {"symbol": pa.array(self.symbols[has].astype(str), pa.string())}
        for f in WINDOW_FIELDS:
            cols[f] = pa.array(getattr(self, f)[has, -1], pa.float64())
        prev = str(self.dates[-2]) if len(self.dates) > 1 else ""
        return pa.table(cols).replace_schema_metadata(
            {"date": str(self.dates[-1]), "prev": prev, "version": str(self.version),
             "depth": str(self.depth)})

    def _day_columns(self, day_bars: pa.Table) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Symbols of ``day_bars`` merged into this window's (new ones appended, then all
        sorted) and the day's values aligned to them: ``(symbols, {field: (N',)})``."""
        syms = day_bars.column("symbol").to_numpy(zero_copy_only=False).astype(str)
        known = self._symbols_str()
        pos = np.searchsorted(known, syms)
        if len(known) and (pos < len(known)).all() and np.array_equal(known[pos], syms):
            merged = self.symbols  # no new symbol (the common case): no merge
        else:
            merged_str = np.union1d(known, syms)
            merged = merged_str.astype(object)
            pos = np.searchsorted(merged_str, syms)
        values = {}
        for f in WINDOW_FIELDS:
            v = np.full(len(merged), np.nan)
            v[pos] = day_bars.column(f).to_numpy(zero_copy_only=False).astype(np.float64)
            values[f] = v
        return merged, values

    def _symbols_str(self) -> np.ndarray:
        if self.symbols_str is None or len(self.symbols_str) != len(self.symbols):
            self.symbols_str = self.symbols.astype(str)
        return self.symbols_str

    def _widen(self, symbols: np.ndarray) -> dict[str, np.ndarray]:
        """This window's arrays re-indexed to ``symbols`` (a sorted superset), NaN rows for
        the new symbols."""
        if len(symbols) == len(self.symbols):
            return {f: getattr(self, f) for f in WINDOW_FIELDS}
        pos = np.searchsorted(symbols.astype(str), self.symbols.astype(str))
        out = {}
        for f in WINDOW_FIELDS:
            a = np.full((len(symbols), len(self.dates)), np.nan)
            a[pos] = getattr(self, f)
            out[f] = a
        return out

    def append(self, day: dt.date, day_bars: pa.Table, lookback: int,
               version: int) -> BarWindow:
        """The window one trading date later: ``day``'s bars added as the last date, the
        first date dropped once the window holds ``lookback`` dates.

        Writes in place into this window's ring buffer when it has a spare column and no
        other window was appended from it (else copies into a new ring with
        ``RING_SPARE`` spare columns); this window's own values are never changed."""
        symbols, values = self._day_columns(day_bars)
        keep = max(0, len(self.dates) + 1 - lookback)
        dates = np.append(self.dates[keep:], np.datetime64(day, "D"))
        ring, (lo, hi) = self.ring, self.span
        if (ring is not None and len(symbols) == len(self.symbols)
                and ring.claimed == hi and hi < ring.capacity):
            for f in WINDOW_FIELDS:
                ring.bufs[f][:, hi] = values[f]
            ring.claimed, lo, hi = hi + 1, lo + keep, hi + 1
        else:
            old = self._widen(symbols)
            t = len(dates)
            ring = _Ring(len(symbols), t + RING_SPARE)
            for f in WINDOW_FIELDS:
                ring.bufs[f][:, :t - 1] = old[f][:, keep:]
                ring.bufs[f][:, t - 1] = values[f]
            ring.claimed, lo, hi = t, 0, t
        arrays = {f: ring.bufs[f][:, lo:hi] for f in WINDOW_FIELDS}
        return BarWindow(dates=dates, symbols=symbols, high=arrays["high"], low=arrays["low"],
                         close=arrays["close"], volume=arrays["volume"], version=version,
                         ring=ring, span=(lo, hi), symbols_str=self.symbols_str
                         if symbols is self.symbols else None)

    def replace_last(self, day_bars: pa.Table, version: int) -> tuple[BarWindow, np.ndarray]:
        """This window with its last date's bars replaced by ``day_bars`` (an intraday update
        or re-ingest of that date).

        Returns:
            ``(window, changed)``: ``changed`` is a ``(N',) bool`` mask of symbols whose last
            bar differs (added, removed or any field changed).
        """
        symbols, values = self._day_columns(day_bars)
        old = self._widen(symbols)
        changed = np.zeros(len(symbols), dtype=bool)
        arrays = {}
        for f in WINDOW_FIELDS:
            a = old[f] if old[f] is not getattr(self, f) else old[f].copy()
            prev, new = a[:, -1], values[f]
            changed |= ~((prev == new) | (np.isnan(prev) & np.isnan(new)))
            a[:, -1] = new
            arrays[f] = a
        return (BarWindow(dates=self.dates, symbols=symbols, high=arrays["high"],
                          low=arrays["low"], close=arrays["close"], volume=arrays["volume"],
                          version=version), changed)


def window_features(w: BarWindow, rows: np.ndarray) -> pd.DataFrame:
    """Feature rows at the window's last date for the symbols ``rows`` (indices) that have a
    bar on it.

    Returns:
        Frame ``symbol, date, <FEATURE_COLUMNS>, n_bars`` as
        :func:`technic.features.compute_features` gives for the same window (same
        expressions, bit-identical values), sorted by symbol.
    """
    rows = rows[np.isfinite(w.close[rows, -1])] if len(rows) else rows
    f = last_row_features(w.high, w.low, w.close, w.volume, rows)  # the registry's plan
    data = {"symbol": w.symbols[rows], "date": np.repeat(w.dates[-1], len(rows))}
    data.update({k: f[k] for k in FEATURE_COLUMNS})
    data["n_bars"] = f["n_bars"].astype(np.int32)
    return pd.DataFrame(data)


def _key(lookback: int, day: np.datetime64 | dt.date) -> str:
    return f"window:{lookback}:{as_day(day)}"


def _local_key(lookback: int) -> str:
    # The latest window this process built (a BarWindow object, never serialised).
    return f"window-local:{lookback}"


def _delta_key(lookback: int, day: np.datetime64 | dt.date) -> str:
    return f"window-day:{lookback}:{as_day(day)}"


#: A whole window goes to L2 at least every this many appended dates; in between only the new
#: date's column does (~250 kB instead of ~80 MB for the full real universe).
REBASE_EVERY = 10


#: Symbols per Redis value of a whole window: ~3.8 MB at 300 dates. Parts of a few MB,
#: fetched on ``FETCH_THREADS`` connections at once, come ~3x faster than values of ~50 MB
#: (see :meth:`technic.cache.FrameCache.get_many`), and each stays far below the cache's
#: socket timeout.
PART_SYMBOLS = 400
#: Redis connections a whole window's parts are fetched (and stored) on at once.
FETCH_THREADS = 4


def _put_whole(cache: FrameCache, lookback: int, day, w: BarWindow) -> None:
    """A whole window to L2 as parts of ``PART_SYMBOLS`` symbols, then a small index entry
    naming them (written last: a reader never sees an index without its parts)."""
    table = w.to_arrow()
    n_parts = max(1, -(-table.num_rows // PART_SYMBOLS))
    cache.put_many([(f"{_key(lookback, day)}:part{i}", table.slice(i * PART_SYMBOLS,
                                                                    PART_SYMBOLS))
                    for i in range(n_parts)], ttl_s=WINDOW_TTL_S, l1=False,
                   threads=FETCH_THREADS)
    index = pa.table({"part": pa.array(range(n_parts), pa.int32())}).replace_schema_metadata(
        {**table.schema.metadata, "parts": str(n_parts)})
    cache.put(_key(lookback, day), index, ttl_s=WINDOW_TTL_S, l1=False)


def _get_whole(cache: FrameCache, lookback: int, day) -> tuple[BarWindow | None, str]:
    index, layer = cache.get(_key(lookback, day))
    if index is None:
        return None, layer
    keys = [f"{_key(lookback, day)}:part{i}"
            for i in range(int(index.schema.metadata[b"parts"]))]
    parts = [p for p, _ in cache.get_many(keys, l1=False, threads=FETCH_THREADS)]
    if any(p is None for p in parts):  # an expired or evicted piece: the window is unusable
        return None, "miss"
    table = pa.concat_tables(parts).replace_schema_metadata(index.schema.metadata)
    return BarWindow.from_arrow(table), layer


def _fetch_window(cache: FrameCache, lookback: int, days: list) -> tuple[BarWindow | None, str]:
    """The cached window ending on one of ``days`` (tried in order): a whole window from L1
    or L2, else a whole window from L2 plus the date columns appended since (at most
    ``REBASE_EVERY + 1``), replayed in order."""
    layer = "miss"
    for day in days:
        w, layer = _get_whole(cache, lookback, day)
        if w is not None:
            return w, layer
    for day in days:
        deltas, cur = [], day
        for _ in range(REBASE_EVERY + 1):
            delta, _ = cache.get(_delta_key(lookback, cur))
            if delta is None:
                break
            deltas.append(delta)
            cur = delta.schema.metadata[b"prev"].decode()
            if not cur:
                break
            w, _ = _get_whole(cache, lookback, cur)
            if w is not None:
                for d in reversed(deltas):
                    meta = d.schema.metadata
                    w = w.append(dt.date.fromisoformat(meta[b"date"].decode()), d, lookback,
                                 int(meta[b"version"]))
                    w.depth = int(meta[b"depth"])
                return w, "l2"
    return None, layer


def refresh_incremental(
    target: DatabaseTarget,
    as_of: dt.date | None = None,
    *,
    lookback_bars: int = 300,
    redis_url: str | None = None,
    cache: FrameCache | None = None,
    write: bool = True,
) -> tuple[RefreshReport, pd.DataFrame]:
    """Refresh ``features_daily`` for ``as_of`` (default: the latest date with bars), doing
    only the work that changed since the cached window (see the module docstring).

    Args:
        target: the store.
        as_of: date to compute; resolved to the last date with bars on or before it.
        lookback_bars: trading dates in the window (the same as a full refresh's).
        redis_url: the shared L2 cache (``TECHNIC_REDIS_URL``); None = in-process L1 only.
        cache: a cache to use instead of the process-wide one for ``redis_url``.
        write: store the rows (False: compute only).

    Returns:
        ``(report, rows)``: rows recomputed (sorted by symbol); ``report.timings`` holds
        per-stage seconds, ``report.mode`` is ``"append"``, ``"update"`` (same date
        re-read), ``"rebuild"`` or ``"unchanged"``, ``report.window_layer`` where the window
        came from. ``report.symbols`` counts the symbols recomputed.

    Raises:
        technic.store.bars.NoDataError: no bars on or before ``as_of``.
    """
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    day = last_bar_date(target, as_of)
    dates = trading_window(target, day, lookback_bars)
    version = bars_version(target)
    cache = cache or get_cache(redis_url, target.cache_namespace())
    timings["plan_s"] = round(time.perf_counter() - t0, 4)

    t = time.perf_counter()
    w, layer = None, "miss"
    local = cache.get_local(_local_key(lookback_bars))
    if isinstance(local, BarWindow) and local.dates[-1] in dates[-2:]:
        w, layer = local, "l1"
    else:
        try:
            w, layer = _fetch_window(cache, lookback_bars, list(dates[::-1][:2]))
        except (KeyError, ValueError, TypeError) as e:
            log.warning("ignoring unreadable cached window: %s", e)
    timings["window_fetch_s"] = round(time.perf_counter() - t, 4)

    t = time.perf_counter()
    with pooled_adbc(target) as conn:  # one connection for the read and the write
        mode, new = "rebuild", None
        rows_idx: np.ndarray  # symbols to recompute, set on every path below
        if w is not None and history_changed_before(target, w.version, day):
            log.info("bars before %s changed since the cached window: rebuilding it", day)
            w = None
        if w is not None:
            day_bars = read_bars_arrow(target, day, day, conn=conn)
            if w.dates[-1] == np.datetime64(day, "D"):
                new, changed = w.replace_last(day_bars, version)
                new.depth = w.depth
                mode, rows_idx = "update", np.flatnonzero(changed)
                if not changed.any():
                    if feature_rows_on(target, day) == int(np.isfinite(new.close[:, -1]).sum()):
                        mode = "unchanged"
                    else:  # rows missing from the store (e.g. an earlier compute-only run)
                        rows_idx = np.arange(len(new.symbols))
            else:
                new = w.append(day, day_bars, lookback_bars, version)
                new.depth = w.depth + 1
                mode, rows_idx = "append", np.arange(len(new.symbols))
            if not np.array_equal(new.dates, dates):  # trading dates were inserted meanwhile
                log.info("cached window's dates no longer match the store: rebuilding it")
                new, mode = None, "rebuild"
        if new is None:
            bars = read_bars_arrow(target, dates[0].item(), day, conn=conn)
            new = BarWindow.from_bars(bars, dates, version)
            rows_idx = np.arange(len(new.symbols))
        timings["read_s"] = round(time.perf_counter() - t, 4)

        t = time.perf_counter()
        rows = window_features(new, rows_idx)
        timings["compute_s"] = round(time.perf_counter() - t, 4)
        t = time.perf_counter()
        written = write_features(target, rows, conn=conn) if write and len(rows) else 0
        timings["write_s"] = round(time.perf_counter() - t, 4)
    t = time.perf_counter()
    if mode != "unchanged":
        whole = mode == "rebuild" or new.depth >= REBASE_EVERY
        if whole:
            new.depth = 0
        cache.put_local(_local_key(lookback_bars), new)
        if whole:
            _put_whole(cache, lookback_bars, day, new)
        else:
            cache.put(_delta_key(lookback_bars, day), new.last_column(), ttl_s=WINDOW_TTL_S,
                      l1=False)
    timings["window_store_s"] = round(time.perf_counter() - t, 4)
    timings["total_s"] = round(time.perf_counter() - t0, 4)
    report = RefreshReport(as_of=day, symbols=len(rows), chunks=1, rows_written=written,
                           start=dates[0].item(), timings=timings, mode=mode,
                           window_layer=layer)
    log.info("incremental refresh for %s (%s, window from %s): %d symbols in %.2f s", day,
             mode, layer, len(rows), timings["total_s"])
    return report, rows
