"""Backtest arithmetic: rebalance schedules, a book traded at the next session's open with
proportional costs, and its metrics (docs/portfolio.md).

Conventions (all prices USD per share, returns fractions):

* **Signal and execution.** Weekly: the signal date is the last trading session of each
  calendar (ISO) week; monthly: the last session of each month. The portfolio chosen on the
  signal date's data (features and bars up to its close) is traded at the **open of the next
  session**. A rebalance whose execution session lies after the backtest's end is dropped.
* **Book.** The book starts as 1.0 in cash. At an execution session it is valued at the open
  (``V = cash + Σ shares·open``), the targets are ``w·V``, the traded notional is
  ``Σ|w·V − shares·open|`` and the cost ``cost_bps / 10,000 × traded notional`` (bps per side:
  a buy and a sell each pay it). The cost is taken from the book pro rata: the new holdings
  are ``w·(V − cost) / open``. A symbol with no bar on the execution session trades at its
  last close; one never traded before has no price and is left out (its weight is spread
  over the others pro rata).
* **Marking.** Every session the book is worth ``cash + Σ shares·close``; a symbol without a
  bar that day keeps its last close.
* **Turnover** of a rebalance: traded notional / ``V`` (two-sided: 1.0 for the first buy from
  cash, 2.0 for replacing every name).
* **Metrics** (:func:`metrics`, with empyrical-reloaded): daily returns of the equity curve;
  Sharpe = ``mean / std (ddof 1) × sqrt(252)`` with a risk-free rate of 0; annual return =
  compounded growth over ``sessions / 252`` years; maximum drawdown on the equity curve.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: Rebalance frequencies.
FREQUENCIES: tuple[str, ...] = ("weekly", "monthly")
#: Trading days per year (Sharpe, volatility and return annualisation).
PERIODS_PER_YEAR = 252


def signal_dates(sessions: Sequence[dt.date], frequency: str) -> list[dt.date]:
    """The last session of each ISO week (``weekly``) or month (``monthly``) in
    ``sessions`` (ascending trading dates), ascending.

    Raises:
        ValueError: an unknown frequency.
    """
    if frequency not in FREQUENCIES:
        raise ValueError(f"unknown rebalance frequency {frequency!r}; use one of "
                         f"{', '.join(FREQUENCIES)}")
    if not sessions:
        return []
    s = pd.Series(pd.to_datetime(list(sessions)))
    key = (s.dt.isocalendar().year * 100 + s.dt.isocalendar().week).to_numpy() \
        if frequency == "weekly" else (s.dt.year * 100 + s.dt.month).to_numpy()
    last = np.r_[key[1:] != key[:-1], True]
    return [d.date() for d in s[last]]


@dataclass
class Simulation:
    """A simulated book.

    Attributes:
        equity: ``(sessions,)`` book value at each close (start = 1.0), index = dates.
        turnover: per execution session, traded notional / pre-trade value.
        cost: per execution session, cost paid (fraction of the starting book).
        held: per execution session, the weights actually traded (symbols left out for
            want of a price removed and the rest renormalised).
    """

    equity: pd.Series
    turnover: pd.Series
    cost: pd.Series
    held: dict[pd.Timestamp, pd.Series]


def simulate(opens: pd.DataFrame, closes: pd.DataFrame,
             targets: dict[pd.Timestamp, pd.Series], cost_bps: float) -> Simulation:
    """Run a book through ``targets`` (see the module docstring for every convention).

    Args:
        opens, closes: ``(sessions, symbols)`` prices (NaN = no bar), same index (ascending
            sessions from the first execution session to the end) and columns; the first
            row's missing closes may be filled from earlier history by the caller.
        targets: ``{execution session: weights}`` (weights ≥ 0 summing to 1, index =
            symbols, a subset of the columns).
        cost_bps: cost per side in basis points of traded notional (≥ 0).

    Returns:
        The :class:`Simulation`.

    Raises:
        ValueError: negative costs; an execution session not in the index.
    """
    if cost_bps < 0:
        raise ValueError(f"cost-bps must be >= 0, got {cost_bps}")
    idx = closes.index
    missing = [d for d in targets if d not in idx]
    if missing:
        raise ValueError(f"execution session(s) without prices: {missing[:3]}")
    cols = closes.columns
    pos = {s: i for i, s in enumerate(cols)}
    cl = closes.ffill().to_numpy(np.float64)
    prev = np.vstack([np.full(len(cols), np.nan), cl[:-1]])
    op = opens.to_numpy(np.float64)
    op = np.where(np.isfinite(op), op, prev)
    c = cost_bps / 1e4
    shares = np.zeros(len(cols))
    cash = 1.0
    eq = np.empty(len(idx))
    turn, cost, held = {}, {}, {}
    exec_rows = {idx.get_loc(d): d for d in targets}
    for i in range(len(idx)):
        if i in exec_rows:
            d = exec_rows[i]
            w = targets[d]
            px = op[i]
            j = np.array([pos[s] for s in w.index], dtype=np.int64)
            ok = np.isfinite(px[j]) & (px[j] > 0)
            wv = np.where(ok, w.to_numpy(np.float64), 0.0)
            if wv.sum() <= 0:
                raise ValueError(f"no target of {d.date()} has a price")
            wv = wv / wv.sum()
            held_val = np.where(shares != 0, shares * np.nan_to_num(px), 0.0)
            value = cash + held_val.sum()
            tgt = np.zeros(len(cols))
            tgt[j] = wv * value
            traded = float(np.abs(tgt - held_val).sum())
            paid = c * traded
            post = value - paid
            shares = np.zeros(len(cols))
            shares[j[ok]] = wv[ok] * post / px[j[ok]]
            cash = 0.0
            turn[d] = traded / value if value > 0 else np.nan
            cost[d] = paid
            held[d] = pd.Series(wv[ok], index=w.index[ok], name="weight")
        eq[i] = cash + float(np.where(shares != 0, shares * np.nan_to_num(cl[i]), 0.0).sum())
    return Simulation(pd.Series(eq, index=idx, name="equity"),
                      pd.Series(turn, name="turnover", dtype=np.float64),
                      pd.Series(cost, name="cost", dtype=np.float64), held)


def drawdown(equity: pd.Series) -> pd.Series:
    """``equity / running maximum − 1`` (≤ 0, fraction), with the starting value 1.0
    counted as the first maximum."""
    peak = np.maximum.accumulate(np.maximum(equity.to_numpy(np.float64), 1.0))
    return pd.Series(equity.to_numpy() / peak - 1.0, index=equity.index, name="drawdown")


def daily_returns(equity: pd.Series) -> pd.Series:
    """Close-to-close returns of the curve, the first against the starting value 1.0."""
    prev = equity.shift(1).fillna(1.0)
    return (equity / prev - 1.0).rename("return")


def metrics(equity: pd.Series, turnover: pd.Series, cost: pd.Series) -> dict[str, float]:
    """Performance of one curve.

    Returns:
        ``total_return`` (fraction), ``annual_return`` (compounded, 252 sessions a year),
        ``annual_volatility`` (std × sqrt(252)), ``sharpe`` (annualised, risk-free 0, see the
        module docstring), ``max_drawdown`` (≤ 0), ``rebalances``, ``mean_turnover`` (per
        rebalance, two-sided), ``total_cost`` (fraction of the starting book), ``sessions``
        — computed with empyrical-reloaded.
    """
    import empyrical as ep

    r = daily_returns(equity)
    n = len(r)
    out = {
        "sessions": float(n),
        "total_return": float(equity.iloc[-1] - 1.0) if n else float("nan"),
        "annual_return": float(ep.annual_return(r, period="daily")) if n else float("nan"),
        "annual_volatility": float(ep.annual_volatility(r, period="daily")) if n > 1
        else float("nan"),
        "sharpe": float(ep.sharpe_ratio(r, risk_free=0.0, period="daily")) if n > 1
        else float("nan"),
        "max_drawdown": float(min(ep.max_drawdown(r), 0.0)) if n else float("nan"),
        "rebalances": float(len(turnover)),
        "mean_turnover": float(turnover.mean()) if len(turnover) else float("nan"),
        "total_cost": float(cost.sum()),
    }
    return out
