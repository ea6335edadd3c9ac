"""Prefect flows for portfolios and backtests (thin wrappers over :mod:`technic.jobs.portfolio`).

Like the flows of :mod:`flows.jobs`, each validates its parameters before touching anything
(a bad value from the UI fails the run with a one-line message and writes nothing), reports
what it did as Prefect artifacts, and also runs without a Prefect server
(``python -c 'from flows.portfolio import portfolio; portfolio(run_id=1)'``).
"""

from __future__ import annotations

import datetime as dt

from prefect import flow
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from flows.jobs import _cell, _target
from technic.portfolio.weights import PortfolioSpec


@flow(name="portfolio", log_prints=True)
def portfolio(run_id: int, top: int = 20, method: str = "hrp",
              max_weight: float | None = None, sector_cap: float | None = None,
              lookback: int = 126) -> dict:
    """Build and store the portfolio of a scan run's top names (``technic portfolio``).

    Args:
        run_id: the scan run (``scan_runs.run_id``).
        top: names to hold (>= 2). method: hrp | min-variance | max-sharpe | risk-parity |
            equal. max_weight, sector_cap: caps, fractions in (0, 1]. lookback: sessions of
            daily returns for the covariance.

    Returns:
        The ``--json`` object (portfolio id, parameters, summary, weights).

    Raises:
        ValueError: a parameter is invalid or the caps are infeasible (nothing is written).
        LookupError: no such finished run.
    """
    from technic.jobs.portfolio import build_portfolio

    spec = PortfolioSpec(method=method, top=top, max_weight=max_weight,
                         sector_cap=sector_cap, lookback=lookback)
    target = _target()
    o = build_portfolio(target, run_id, spec)
    create_table_artifact(
        key="portfolio-weights",
        description=f"Portfolio {o.portfolio_id}: {method} weights of scan run {run_id} "
                    f"({o.as_of})",
        table=[{k: _cell(v) for k, v in r.items()}
               for r in o.weights.assign(weight_pct=o.weights["weight"] * 100)
               .drop(columns="weight").to_dict(orient="records")])
    er = "" if o.expected_return_daily is None else \
        f"\nExpected return (alphas): {o.expected_return_daily:+.4%} per day."
    create_markdown_artifact(key="portfolio-summary", description="portfolio summary",
                             markdown=f"""# Portfolio {o.portfolio_id} — scan run {run_id} \
({o.as_of})

Method **{method}**, {len(o.weights)} names, max weight {max_weight or 1:g}, sector cap \
{sector_cap or 1:g}, lookback {lookback} sessions.

Ex-ante volatility {o.volatility_annual:.2%} a year; Ledoit-Wolf shrinkage {o.shrinkage:.3f}.{er}
{"Left out for want of history: " + ", ".join(o.skipped) if o.skipped else ""}

```sql
SELECT * FROM {target.schema}.portfolio_weights WHERE portfolio_id = {o.portfolio_id}
ORDER BY rank;
```
""")
    return o.to_json()


@flow(name="backtest", log_prints=True)
def backtest(start: dt.date, end: dt.date, top: int = 20, rebalance: str = "weekly",
             cost_bps: float = 10.0, method: str = "hrp", max_weight: float | None = None,
             sector_cap: float | None = None, lookback: int = 126) -> dict:
    """Backtest a portfolio method over point-in-time scans (``technic backtest``).

    Args:
        start, end: first and last date (inclusive; date pickers in the UI, ISO
            ``YYYY-MM-DD`` from Python or the API). rebalance: weekly | monthly. cost_bps:
            per side.
        top, method, max_weight, sector_cap, lookback: as :func:`portfolio`.

    Returns:
        Backtest id, parameters, metrics of the strategy and of the equal-weight universe.

    Raises:
        ValueError: a parameter is invalid (nothing is written).
        LookupError: no features stored for a signal date (run the backfill flow first).
    """
    from technic.jobs.portfolio import (
        BacktestParams,
        metrics_table,
        outcome_json,
        report_markdown,
        run_backtest,
    )

    params = BacktestParams(start, end, PortfolioSpec(method=method, top=top, max_weight=max_weight,
                                                sector_cap=sector_cap, lookback=lookback),
                            rebalance, cost_bps)
    o = run_backtest(_target(), params)
    create_table_artifact(
        key="backtest-metrics", description=f"Backtest {o.backtest_id}: strategy vs "
                                            "equal-weight universe",
        table=[{"metric": a, "strategy": b, "equal-weight universe": c}
               for a, b, c in metrics_table(o)])
    create_markdown_artifact(key="backtest-report", description="backtest report",
                             markdown=report_markdown(o))
    return outcome_json(o)
