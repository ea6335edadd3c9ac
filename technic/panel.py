"""The ``Panel``: a block of daily OHLCV bars for many symbols on a shared date axis.

``open/high/low/close/volume`` are ``(T, N) float64`` arrays, time-major (row = trading date,
column = symbol), NaN where a symbol has no bar that day (not yet listed, delisted, or a day
without trades). Prices are in quote currency (USD) per share, volume in shares.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

FIELDS = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True)
class Panel:
    """Daily bars for ``N`` symbols over ``T`` dates.

    Attributes:
        dates: ``(T,) datetime64[D]``, strictly increasing.
        symbols: ``(N,) object`` (str), sorted.
        open, high, low, close: ``(T, N) float64`` prices, NaN where no bar.
        volume: ``(T, N) float64`` shares, NaN where no bar.
    """

    dates: np.ndarray
    symbols: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        """``(T, N)``."""
        return self.close.shape

    def tail(self, n: int) -> Panel:
        """The last ``n`` dates (all symbols)."""
        s = slice(max(0, len(self.dates) - n), None)
        return Panel(self.dates[s], self.symbols, *(getattr(self, f)[s] for f in FIELDS))

    @classmethod
    def from_arrow(cls, table: pa.Table) -> Panel:
        """Pivot long bars (``symbol, date, open, high, low, close, volume``) into a panel.

        Raises:
            ValueError: a required column is missing or a (symbol, date) pair repeats.
        """
        missing = [c for c in ("symbol", "date", *FIELDS) if c not in table.column_names]
        if missing:
            raise ValueError(f"bars table lacks column(s): {', '.join(missing)}")
        # Hash-encode symbols in Arrow (sorting millions of Python strings is slow), then
        # sort only the N distinct symbols.
        enc = pc.dictionary_encode(table.column("symbol").combine_chunks())
        names = enc.dictionary.to_numpy(zero_copy_only=False).astype(object)
        order = np.argsort(names, kind="stable")
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order))
        symbols = names[order]
        col = rank[enc.indices.to_numpy(zero_copy_only=False)]
        # Dates are day numbers: a counting pass finds the distinct ones in O(rows).
        days = table.column("date").to_numpy(zero_copy_only=False) \
            .astype("datetime64[D]").astype(np.int64)
        if len(days):
            lo = days.min()
            present = np.bincount(days - lo) > 0
            day_index = np.cumsum(present) - 1
            dates = (np.flatnonzero(present) + lo).astype("datetime64[D]")
            row = day_index[days - lo]
        else:
            dates, row = np.array([], dtype="datetime64[D]"), days
        t, n = len(dates), len(symbols)
        if len(col) and np.bincount(row * n + col, minlength=t * n).max() > 1:
            raise ValueError("bars table has repeated (symbol, date) pairs")
        arrays = {}
        for f in FIELDS:
            a = np.full((t, n), np.nan)
            a[row, col] = table.column(f).to_numpy(zero_copy_only=False).astype(np.float64)
            arrays[f] = a
        return cls(dates=dates, symbols=symbols.astype(object), **arrays)
