"""What the HTTP API and its web page show about one symbol: its recent daily bars with chart
overlays (SMA, Bollinger Bands, RSI), its latest stored features and its ranks over time."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from technic.indicators import bbands, rsi, sma
from technic.store.browse import (
    symbol_bars,
    symbol_features,
    symbol_rank_history,
    symbol_reference,
)
from technic.store.db import DatabaseTarget
from technic.store.migrations import DEFAULT_PRESET

#: A symbol as the store spells it (upper case, CQS suffixes, at most 16 characters).
SYMBOL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9.\-_/]{0,15}$"
_SYMBOL = re.compile(SYMBOL_PATTERN)

#: Extra bars read before the shown window: SMA 50 is defined from the first shown bar, and
#: RSI's Wilder smoothing has settled close to the feature store's (300-bar lookback).
WARMUP_BARS = 250


class UnknownSymbolError(LookupError):
    """No such symbol in ``symbols``."""


@dataclass
class SymbolReport:
    """One symbol's chart data and scores.

    Attributes:
        reference: its ``symbols`` row.
        bars: columns ``date`` (ISO text), ``open, high, low, close`` (USD per share),
            ``volume`` (shares), oldest first, each a list of the same length T.
        overlays: ``sma_20, sma_50, bb_upper, bb_middle, bb_lower`` (USD; SMA and Bollinger
            Bands 20 bars, 2 standard deviations) and ``rsi_14`` (0–100), each a list of T
            values aligned with ``bars`` (None where undefined), computed from the stored bars
            with the project's indicator kernels (the same formulas as the feature store).
        features: the latest stored ``features_daily`` row (``date`` and every feature).
        ranks: the latest run of each scan date of the preset: ``as_of, run_id, rank,
            passed, tech_rating, merit, ics``, oldest first.
    """

    reference: dict[str, Any]
    bars: dict[str, list[Any]] = field(default_factory=dict)
    overlays: dict[str, list[float | None]] = field(default_factory=dict)
    features: dict[str, Any] | None = None
    ranks: list[dict[str, Any]] = field(default_factory=list)


def _json_floats(a: np.ndarray) -> list[float | None]:
    return [None if not math.isfinite(x) else float(x) for x in a.tolist()]


def symbol_report(target: DatabaseTarget, symbol: str, days: int = 250,
                  preset: str = DEFAULT_PRESET) -> SymbolReport:
    """Collect :class:`SymbolReport` for ``symbol``.

    Args:
        symbol: ticker (case-insensitive: looked up upper case).
        days: bars to show (≥ 1); :data:`WARMUP_BARS` more are read for the overlays.
        preset: the scan preset whose ranks are reported.

    Raises:
        ValueError: ``symbol`` is not a plausible ticker or ``days`` < 1.
        UnknownSymbolError: the store has no such symbol.
    """
    if not _SYMBOL.match(symbol):
        raise ValueError(f"symbol {symbol!r} is not a ticker")
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    symbol = symbol.upper()
    ref = symbol_reference(target, symbol)
    if ref is None:
        raise UnknownSymbolError(f"unknown symbol {symbol!r}")
    bars = symbol_bars(target, symbol, days + WARMUP_BARS)
    report = SymbolReport(reference=ref, features=symbol_features(target, symbol),
                          ranks=symbol_rank_history(target, symbol, preset))
    if bars.empty:
        return report
    close = bars["close"].to_numpy(dtype=np.float64)
    upper, middle, lower = bbands(close, 20, 2.0)
    overlays = {"sma_20": sma(close, 20), "sma_50": sma(close, 50), "bb_upper": upper,
                "bb_middle": middle, "bb_lower": lower, "rsi_14": rsi(close, 14)}
    shown = slice(max(0, len(bars) - days), None)
    b = bars.iloc[shown]
    report.bars = {"date": [d.isoformat() for d in b["date"]],
                   **{c: _json_floats(b[c].to_numpy(dtype=np.float64))
                      for c in ("open", "high", "low", "close", "volume")}}
    report.overlays = {k: _json_floats(np.asarray(v)[shown]) for k, v in overlays.items()}
    return report
