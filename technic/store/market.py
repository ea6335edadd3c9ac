"""Market-wide history the regime needs, kept small: ``market_daily`` (migration 7).

``market_daily(date, n_symbols, ew_return, computed_at)`` holds one row per trading date: the
return of an equal-weighted, daily-rebalanced index of the universe's common stocks (mean of the
daily returns ``close / previous close − 1`` of every non-ETF symbol whose previous close is
≥ $5, each clipped to [−0.5, 1.0]; fraction). It is derived from ``bars_daily`` once and then
extended incrementally, so a scan reads ~300 small rows instead of a year of bars.

A date is recomputed when an ingest that finished after it was computed changed bars on or
before it (``ingest_runs.changed_from``, migration 5).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import sqlalchemy as sa

from technic.store.db import DatabaseTarget, get_engine

MIN_PREV_CLOSE = 5.0
RETURN_CLIP = (-0.5, 1.0)

_COMPUTE = f"""
WITH b AS (
  SELECT d.symbol, d.date, d.close,
         lag(d.close) OVER (PARTITION BY d.symbol ORDER BY d.date) AS prev
  FROM bars_daily d LEFT JOIN symbols s USING (symbol)
  WHERE d.date >= :lo AND d.date <= :hi AND s.is_etf IS NOT TRUE)
INSERT INTO market_daily (date, n_symbols, ew_return)
SELECT date, count(*),
       avg(LEAST(GREATEST(close / prev - 1, {RETURN_CLIP[0]}), {RETURN_CLIP[1]}))
FROM b WHERE date >= :first AND prev >= {MIN_PREV_CLOSE} GROUP BY date
ON CONFLICT (date) DO UPDATE SET n_symbols = EXCLUDED.n_symbols,
  ew_return = EXCLUDED.ew_return, computed_at = now()
"""


def update_market_daily(target: DatabaseTarget, until: dt.date) -> int:
    """Fill ``market_daily`` for every trading date ≤ ``until`` that is missing or stale.

    Stale = on or after the earliest ``changed_from`` of an ingest that finished after the
    latest ``computed_at``. The first call on a store reads every bar (≈ seconds for 5 M bars);
    later calls read the bars of the new dates and the one date before them.

    Returns:
        Number of dates (re)computed.
    """
    with get_engine(target).begin() as c:
        c.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('technic-market-daily'))"))
        last, stamp = c.execute(sa.text(
            "SELECT max(date), max(computed_at) FROM market_daily WHERE date <= :u"),
            {"u": until}).one()
        first = None if last is None else last + dt.timedelta(days=1)
        if stamp is not None:
            changed = c.execute(sa.text(
                "SELECT min(changed_from) FROM ingest_runs WHERE status = 'ok' AND "
                "finished_at > :s AND changed_from IS NOT NULL"), {"s": stamp}).scalar()
            if changed is not None and changed <= until:
                first = min(first, changed) if first else changed
        if first is None:  # nothing stored yet: from the first trading date
            first = c.execute(sa.text("SELECT min(date) FROM trading_dates")).scalar()
        if first is None or first > until:
            return 0
        # previous bars of symbols with a few missing sessions are inside the window too
        lo = c.execute(sa.text("SELECT min(date) FROM (SELECT date FROM trading_dates WHERE "
                               "date < :f ORDER BY date DESC LIMIT 10) t"),
                       {"f": first}).scalar() or first
        n = c.execute(sa.text("SELECT count(*) FROM trading_dates WHERE date >= :f AND "
                              "date <= :u"), {"f": first, "u": until}).scalar()
        if not n:
            return 0
        c.execute(sa.text(_COMPUTE), {"lo": lo, "hi": until, "first": first})
        return int(n)


def market_returns(target: DatabaseTarget, until: dt.date, last_n: int | None = 300,
                   update: bool = True) -> pd.Series:
    """The equal-weighted index's daily returns up to ``until`` (fraction, ascending dates).

    Args:
        until: last date (inclusive). last_n: at most this many most recent dates (None =
            all). update: first bring ``market_daily`` up to date (:func:`update_market_daily`);
            False (read-only scans): the stored rows when they reach ``until``'s trading
            date, else the same returns computed from the bars without writing them.
    """
    if update:
        update_market_daily(target, until)
    elif not _stored_through(target, until):
        return _computed_returns(target, until, last_n)
    lim = "" if last_n is None else f" LIMIT {int(last_n)}"
    # a pooled connection: a few hundred rows, where opening an ADBC connection costs ~50 ms
    with get_engine(target).connect() as c:
        rows = c.execute(sa.text("SELECT date, ew_return FROM market_daily WHERE date <= :u "
                                 f"ORDER BY date DESC{lim}"), {"u": until}).all()
    rows = list(reversed(rows))
    return pd.Series(np.array([r[1] for r in rows], dtype=np.float64),
                     index=pd.to_datetime([r[0] for r in rows]), name="ew_return")


def _stored_through(target: DatabaseTarget, until: dt.date) -> bool:
    """True when ``market_daily`` holds the last trading date on or before ``until``."""
    with get_engine(target).connect() as c:
        return bool(c.execute(sa.text(
            "SELECT EXISTS (SELECT 1 FROM market_daily WHERE date = (SELECT max(date) FROM "
            "trading_dates WHERE date <= :u))"), {"u": until}).scalar())


def _computed_returns(target: DatabaseTarget, until: dt.date, last_n: int | None) -> pd.Series:
    """The index returns of :func:`market_returns` computed from the bars without writing
    (read-only scans when ``market_daily`` is behind): same formula as ``_COMPUTE``."""
    n = 400 if last_n is None else int(last_n) + 10
    with get_engine(target).connect() as c:
        lo = c.execute(sa.text("SELECT min(date) FROM (SELECT date FROM trading_dates WHERE "
                               "date <= :u ORDER BY date DESC LIMIT :n) t"),
                       {"u": until, "n": n}).scalar()
        rows = [] if lo is None else c.execute(sa.text(f"""
            WITH b AS (
              SELECT d.symbol, d.date, d.close,
                     lag(d.close) OVER (PARTITION BY d.symbol ORDER BY d.date) AS prev
              FROM bars_daily d LEFT JOIN symbols s USING (symbol)
              WHERE d.date >= :lo AND d.date <= :u AND s.is_etf IS NOT TRUE)
            SELECT date, avg(LEAST(GREATEST(close / prev - 1, {RETURN_CLIP[0]}),
                                   {RETURN_CLIP[1]}))
            FROM b WHERE date > :lo AND prev >= {MIN_PREV_CLOSE} GROUP BY date
            ORDER BY date"""), {"lo": lo, "u": until}).all()
    if last_n is not None:
        rows = rows[-int(last_n):]
    return pd.Series(np.array([r[1] for r in rows], dtype=np.float64),
                     index=pd.to_datetime([r[0] for r in rows]), name="ew_return")


def market_caps(target: DatabaseTarget) -> pd.DataFrame:
    """Known market caps with the close of the latest stored feature date (the snapshot's
    reference price for :func:`technic.scoring.factors.point_in_time_market_cap`).

    Returns:
        ``symbol, market_cap (USD), ref_close (USD; NaN when the symbol has no feature row on
        the latest feature date)`` for every symbol with a positive ``market_cap``.
    """
    with get_engine(target).connect() as c:
        rows = c.execute(sa.text("""
            SELECT s.symbol, s.market_cap, f.close AS ref_close
            FROM symbols s LEFT JOIN features_daily f
              ON f.symbol = s.symbol AND f.date = (SELECT max(date) FROM features_daily)
            WHERE s.market_cap > 0""")).all()
    return pd.DataFrame({"symbol": [r[0] for r in rows],
                         "market_cap": np.array([r[1] for r in rows], dtype=np.float64),
                         "ref_close": np.array([np.nan if r[2] is None else r[2] for r in rows],
                                               dtype=np.float64)})
