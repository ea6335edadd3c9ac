"""Synthetic but realistic daily OHLCV for scale tests and benchmarks.

Closes follow geometric Brownian motion with a per-symbol drift and volatility (daily σ drawn
log-normally around 2%, so the cross-section has quiet and wild names); opens gap from the
previous close; highs and lows enclose open and close by a half-normal excursion; volume is
log-normal around a per-symbol level. Every bar passes :mod:`technic.validation`.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from technic.calendar import last_sessions

SECTORS = ("Technology", "Health Care", "Finance", "Consumer Discretionary", "Industrials",
           "Energy", "Utilities", "Real Estate", "Consumer Staples", "Basic Materials",
           "Telecommunications", "Miscellaneous")


def generate_bars(n_symbols: int, n_days: int, seed: int = 0,
                  end: str = "2025-07-09") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Generate ``n_symbols`` × ``n_days`` bars on the NYSE sessions ending at ``end``.

    Args:
        n_symbols: number of symbols (named ``SYN000001`` …), ≥ 1.
        n_days: bars per symbol (NYSE sessions), ≥ 2.
        seed: seed of the NumPy generator: the same arguments give identical output.
        end: last bar date (ISO 8601).

    Returns:
        ``(bars, universe)``: bars with ``symbol, date, open, high, low, close, volume`` (USD per
        share, shares; ``n_symbols * n_days`` rows, sorted by symbol then date) and a universe
        frame with one row per symbol (random sector, ``is_etf`` False, ``active`` True).

    Raises:
        ValueError: ``n_symbols < 1`` or ``n_days < 2``.
    """
    if n_symbols < 1 or n_days < 2:
        raise ValueError(f"need n_symbols >= 1 and n_days >= 2, got {n_symbols}, {n_days}")
    rng = np.random.default_rng(seed)
    dates = last_sessions(dt.date.fromisoformat(end), n_days)
    t, n = n_days, n_symbols
    sigma = np.exp(rng.normal(np.log(0.02), 0.4, n))          # daily volatility
    mu = rng.normal(0.0003, 0.0008, n)                          # daily drift
    p0 = np.exp(rng.uniform(np.log(3.0), np.log(500.0), n))     # first close, USD
    z = rng.standard_normal((t, n))
    logret = (mu - 0.5 * sigma**2) + sigma * z
    logret[0] = 0.0
    close = p0 * np.exp(np.cumsum(logret, axis=0))
    prev = np.vstack([close[:1], close[:-1]])
    open_ = prev * np.exp(0.3 * sigma * rng.standard_normal((t, n)))
    hi_ex = np.abs(rng.standard_normal((t, n))) * 0.5 * sigma
    lo_ex = np.abs(rng.standard_normal((t, n))) * 0.5 * sigma
    high = np.maximum(open_, close) * np.exp(hi_ex)
    low = np.minimum(open_, close) * np.exp(-lo_ex)
    vol_level = np.exp(rng.uniform(np.log(5e4), np.log(5e7), n))
    volume = np.round(vol_level * np.exp(0.5 * rng.standard_normal((t, n))))
    symbols = np.array([f"SYN{i:06d}" for i in range(n)], dtype=object)
    bars = pd.DataFrame({
        "symbol": np.repeat(symbols, t),
        "date": np.tile(dates, n),
        "open": open_.T.ravel(), "high": high.T.ravel(), "low": low.T.ravel(),
        "close": close.T.ravel(), "volume": volume.T.ravel(),
    })
    universe = pd.DataFrame({
        "symbol": symbols, "name": [f"Synthetic {s}" for s in symbols], "exchange": "SYNTH",
        "sector": rng.choice(np.array(SECTORS, dtype=object), n), "industry": None,
        "security_type": "common_or_other", "is_etf": False, "active": True,
        "market_cap": vol_level * p0 * 50.0,
    })
    return bars, universe
