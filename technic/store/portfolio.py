"""Reads and writes of the portfolio and backtest jobs: a scan run's top names, windows of
daily bars, trading sessions, feature dates, and the ``portfolios`` / ``portfolio_weights``
(migration 23) and ``backtests`` / ``backtest_equity`` / ``backtest_holdings`` (migration 24)
rows. SQL only; the arithmetic is in :mod:`technic.portfolio`."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence

import numpy as np
import pandas as pd
import sqlalchemy as sa

from technic.store.db import DatabaseTarget, fetch_frame, get_engine


def scan_run(target: DatabaseTarget, run_id: int) -> tuple[str, dt.date | None] | None:
    """``(status, as_of)`` of scan run ``run_id``, or None when there is no such run."""
    with get_engine(target).connect() as c:
        row = c.execute(sa.text("SELECT status, as_of FROM scan_runs WHERE run_id = :r"),
                        {"r": run_id}).one_or_none()
    return None if row is None else (row[0], row[1])


def run_results(target: DatabaseTarget, run_id: int, limit: int) -> pd.DataFrame:
    """The best ``limit`` rows of a run: ``rank, symbol, sector, alpha_5d, alpha_10d``
    (alphas: fraction, NaN when NULL), ordered by rank."""
    with get_engine(target).connect() as c:
        rows = c.execute(sa.text(
            "SELECT rank, symbol, sector, alpha_5d, alpha_10d FROM scan_results "
            "WHERE run_id = :r ORDER BY rank LIMIT :n"), {"r": run_id, "n": int(limit)}).all()
    return pd.DataFrame({
        "rank": np.array([r[0] for r in rows], dtype=np.int64),
        "symbol": [r[1] for r in rows], "sector": [r[2] for r in rows],
        "alpha_5d": np.array([np.nan if r[3] is None else r[3] for r in rows], np.float64),
        "alpha_10d": np.array([np.nan if r[4] is None else r[4] for r in rows], np.float64)})


def sessions(target: DatabaseTarget, start: dt.date | None, end: dt.date | None
             ) -> list[dt.date]:
    """Trading dates with bars (``trading_dates``) in ``[start, end]`` (None = open),
    ascending."""
    with get_engine(target).connect() as c:
        rows = c.execute(sa.text(
            "SELECT date FROM trading_dates WHERE (CAST(:s AS date) IS NULL OR date >= :s) "
            "AND (CAST(:e AS date) IS NULL OR date <= :e) ORDER BY date"),
            {"s": start, "e": end}).all()
    return [r[0] for r in rows]


def session_before(target: DatabaseTarget, day: dt.date, n: int) -> dt.date | None:
    """The trading date ``n`` sessions before ``day`` (``n = 0``: the last session on or
    before ``day``); the first stored one when there are fewer; None when none."""
    with get_engine(target).connect() as c:
        row = c.execute(sa.text(
            "SELECT min(date) FROM (SELECT date FROM trading_dates WHERE date <= :d "
            "ORDER BY date DESC LIMIT :k) t"), {"d": day, "k": int(n) + 1}).scalar()
    return row


def feature_dates(target: DatabaseTarget, start: dt.date, end: dt.date) -> set[dt.date]:
    """Dates in ``[start, end]`` that hold ``features_daily`` rows."""
    with get_engine(target).connect() as c:
        rows = c.execute(sa.text(
            "SELECT DISTINCT date FROM features_daily WHERE date >= :s AND date <= :e"),
            {"s": start, "e": end}).all()
    return {r[0] for r in rows}


def read_bars(target: DatabaseTarget, start: dt.date, end: dt.date,
              symbols: Sequence[str] | None = None) -> pd.DataFrame:
    """Daily bars ``symbol, date, open, close`` (USD per share; ``date`` as ``datetime64``)
    of ``[start, end]``, for ``symbols`` (None = every symbol), ordered by symbol, date."""
    if symbols is None:
        return fetch_frame(target, "SELECT symbol, date, open, close FROM bars_daily "
                                   "WHERE date >= $1 AND date <= $2 ORDER BY symbol, date",
                           (start, end))
    if not symbols:
        return pd.DataFrame({"symbol": pd.Series(dtype=object),
                             "date": pd.Series(dtype="datetime64[ns]"),
                             "open": pd.Series(dtype=np.float64),
                             "close": pd.Series(dtype=np.float64)})
    return fetch_frame(target, "SELECT symbol, date, open, close FROM bars_daily "
                               "WHERE date >= $1 AND date <= $2 AND symbol = ANY($3) "
                               "ORDER BY symbol, date", (start, end, list(symbols)))


def save_portfolio(target: DatabaseTarget, run_id: int, as_of: dt.date, params: dict,
                   summary: dict, weights: pd.DataFrame) -> int:
    """Store one portfolio and its weights in one transaction; return ``portfolio_id``.

    Args:
        params: ``method, top, max_weight, sector_cap, lookback`` (also kept whole as JSON).
        summary: ``n_names, shrinkage, volatility_annual, expected_return_daily``.
        weights: ``symbol, rank, sector, weight, volatility_annual, expected_return_daily``.
    """
    def f(v: object) -> float | None:
        return None if v is None or not np.isfinite(float(v)) else float(v)  # type: ignore

    with get_engine(target).begin() as c:
        pid = c.execute(sa.text(
            "INSERT INTO portfolios (run_id, as_of, method, top_n, max_weight, sector_cap, "
            "lookback, n_names, shrinkage, volatility_annual, expected_return_daily, params) "
            "VALUES (:run, :as_of, :m, :top, :mw, :sc, :lb, :n, :sh, :vol, :er, "
            "CAST(:p AS jsonb)) RETURNING portfolio_id"),
            {"run": run_id, "as_of": as_of, "m": params["method"], "top": params["top"],
             "mw": params.get("max_weight"), "sc": params.get("sector_cap"),
             "lb": params["lookback"], "n": summary["n_names"], "sh": f(summary["shrinkage"]),
             "vol": f(summary["volatility_annual"]),
             "er": f(summary.get("expected_return_daily")),
             "p": json.dumps(params, default=str)}).scalar_one()
        c.execute(sa.text(
            "INSERT INTO portfolio_weights (portfolio_id, symbol, rank, sector, weight, "
            "volatility_annual, expected_return_daily) VALUES (:p, :s, :r, :sec, :w, :v, :e)"),
            [{"p": pid, "s": r.symbol, "r": int(r.rank),
              "sec": None if pd.isna(r.sector) else r.sector, "w": float(r.weight),
              "v": f(r.volatility_annual), "e": f(r.expected_return_daily)}
             for r in weights.itertuples(index=False)])
    return int(pid)


def read_portfolio_weights(target: DatabaseTarget, portfolio_id: int) -> pd.DataFrame:
    """Stored weights of one portfolio: ``symbol, rank, sector, weight``, by rank."""
    with get_engine(target).connect() as c:
        rows = c.execute(sa.text(
            "SELECT symbol, rank, sector, weight FROM portfolio_weights "
            "WHERE portfolio_id = :p ORDER BY rank"), {"p": portfolio_id}).all()
    return pd.DataFrame(rows, columns=["symbol", "rank", "sector", "weight"])


def save_backtest(target: DatabaseTarget, params: dict, metrics: dict,
                  benchmark_metrics: dict, equity: pd.DataFrame,
                  holdings: pd.DataFrame) -> int:
    """Store one backtest (in one transaction); return ``backtest_id``.

    Args:
        params: ``start, end, method, top, rebalance, cost_bps`` and the rest (JSON).
        metrics, benchmark_metrics: JSON-able dicts (NaN → null).
        equity: ``date, equity, drawdown, benchmark_equity, benchmark_drawdown, turnover,
            cost, benchmark_turnover`` (the last three NaN outside rebalance dates).
        holdings: ``signal_date, exec_date, symbol, rank, weight``.
    """
    def clean(d: dict) -> str:
        return json.dumps({k: (None if isinstance(v, float) and not np.isfinite(v) else v)
                           for k, v in d.items()}, default=str)

    def f(v: object) -> float | None:
        return None if v is None or not np.isfinite(float(v)) else float(v)  # type: ignore

    with get_engine(target).begin() as c:
        bid = c.execute(sa.text(
            "INSERT INTO backtests (start_date, end_date, method, top_n, rebalance, cost_bps, "
            "params, metrics, benchmark_metrics) VALUES (:s, :e, :m, :n, :r, :c, "
            "CAST(:p AS jsonb), CAST(:mx AS jsonb), CAST(:bx AS jsonb)) "
            "RETURNING backtest_id"),
            {"s": params["start"], "e": params["end"], "m": params["method"],
             "n": params["top"], "r": params["rebalance"], "c": params["cost_bps"],
             "p": clean(params), "mx": clean(metrics), "bx": clean(benchmark_metrics)}
        ).scalar_one()
        if len(equity):
            c.execute(sa.text(
                "INSERT INTO backtest_equity (backtest_id, date, equity, drawdown, "
                "benchmark_equity, benchmark_drawdown, turnover, cost, benchmark_turnover) "
                "VALUES (:b, :d, :eq, :dd, :beq, :bdd, :t, :c, :bt)"),
                [{"b": bid, "d": pd.Timestamp(r.date).date(), "eq": float(r.equity),
                  "dd": float(r.drawdown), "beq": float(r.benchmark_equity),
                  "bdd": float(r.benchmark_drawdown), "t": f(r.turnover), "c": f(r.cost),
                  "bt": f(r.benchmark_turnover)} for r in equity.itertuples(index=False)])
        if len(holdings):
            c.execute(sa.text(
                "INSERT INTO backtest_holdings (backtest_id, signal_date, exec_date, symbol, "
                "rank, weight) VALUES (:b, :sd, :ed, :s, :r, :w)"),
                [{"b": bid, "sd": pd.Timestamp(r.signal_date).date(),
                  "ed": pd.Timestamp(r.exec_date).date(), "s": r.symbol, "r": int(r.rank),
                  "w": float(r.weight)} for r in holdings.itertuples(index=False)])
    return int(bid)


def read_backtest_equity(target: DatabaseTarget, backtest_id: int) -> pd.DataFrame:
    """Stored daily curve of one backtest (``backtest_equity`` columns but the id), by
    date."""
    return fetch_frame(target, "SELECT date, equity, drawdown, benchmark_equity, "
                               "benchmark_drawdown, turnover, cost, benchmark_turnover "
                               "FROM backtest_equity WHERE backtest_id = $1 ORDER BY date",
                       (backtest_id,))
