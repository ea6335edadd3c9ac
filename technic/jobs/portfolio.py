"""Portfolios from a scan's ranking, and backtests of them over point-in-time scans.

``build_portfolio`` (``technic portfolio``): the best ``top`` names of a stored scan run that
have enough price history, weighted by a method of :mod:`technic.portfolio.weights` from the
Ledoit-Wolf covariance of their daily returns over the ``lookback`` sessions up to the run's
as-of date (bars_daily; nothing after it), with the run's alphas as expected returns where the
method needs them; stored in ``portfolios`` / ``portfolio_weights``.

``run_backtest`` (``technic backtest``): at each rebalance signal date a point-in-time scan —
the stored features of that date through the scan's own scoring path
(:func:`technic.scoring.rank.rank_frame`, :func:`technic.jobs.scan.add_alpha`), no scan run
written — then the same portfolio construction on the bars up to that date, traded at the
next session's open with costs (:mod:`technic.portfolio.backtest`), against the equal-weight
portfolio of every symbol that passed the scan's universe filter, rebalanced on the same
sessions with the same costs. Stored in ``backtests`` / ``backtest_equity`` /
``backtest_holdings``. Conventions: docs/portfolio.md.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from technic.jobs.scan import add_alpha
from technic.portfolio.backtest import (
    FREQUENCIES,
    Simulation,
    drawdown,
    metrics,
    signal_dates,
    simulate,
)
from technic.portfolio.weights import (
    MIN_OBSERVATIONS,
    NEEDS_EXPECTED,
    PortfolioSpec,
    PortfolioWeights,
    expected_returns_from_alphas,
    optimize,
)
from technic.scoring.rank import rank_frame
from technic.store import portfolio as store
from technic.store.db import DatabaseTarget
from technic.store.features import read_features_arrow
from technic.store.market import market_caps
from technic.universe import UniverseRules

log = logging.getLogger(__name__)

__all__ = ["BacktestOutcome", "BacktestParams", "PortfolioOutcome", "build_portfolio",
           "choose_and_weight", "run_backtest", "write_backtest_report"]


def _candidates(top: int) -> int:
    """Ranked rows read per portfolio: the top ``top`` plus spares for names that lack
    history."""
    return 3 * top + 10


def _pivot(bars: pd.DataFrame, col: str) -> pd.DataFrame:
    """``(dates, symbols)`` of one bar column (NaN where a symbol had no bar)."""
    return bars.pivot(index="date", columns="symbol", values=col).sort_index()


def choose_and_weight(ranked: pd.DataFrame, closes: pd.DataFrame, spec: PortfolioSpec
                      ) -> tuple[pd.DataFrame, PortfolioWeights, list[str]]:
    """Pick the best ``spec.top`` ranked names with enough history and weight them.

    Args:
        ranked: rows ``rank, symbol, sector`` (+ ``alpha_5d, alpha_10d`` where the method
            needs expected returns), best first.
        closes: ``(sessions, symbols)`` daily closes (USD) ending on the as-of date,
            ``spec.lookback + 1`` rows (fewer at the start of the data).

    Returns:
        ``(chosen, weights, skipped)``: the chosen rows with ``weight`` (and per name
        ``volatility_annual``, ``expected_return_daily``), the :class:`PortfolioWeights`, and
        the better-ranked symbols left out for want of :data:`MIN_OBSERVATIONS` daily returns.

    Raises:
        ValueError: fewer than 2 names with history; as :func:`optimize`.
    """
    cols = [s for s in ranked["symbol"] if s in closes.columns]
    rets = closes[cols].pct_change(fill_method=None).iloc[1:]
    obs = rets.notna().sum() if cols else pd.Series(dtype=np.int64)
    ok = ranked["symbol"].map(lambda s: obs.get(s, 0) >= MIN_OBSERVATIONS)
    chosen = ranked[ok.to_numpy()].head(spec.top).reset_index(drop=True)
    skipped = ranked.loc[~ok.to_numpy(), "symbol"]
    if len(chosen):
        skipped = skipped[ranked.loc[~ok.to_numpy(), "rank"] < chosen["rank"].iloc[-1]]
    if len(chosen) < 2:
        raise ValueError(f"fewer than 2 of the ranked names have {MIN_OBSERVATIONS} daily "
                         f"returns in the {spec.lookback}-session lookback window")
    mu = None
    if spec.method in NEEDS_EXPECTED:
        mu = expected_returns_from_alphas(
            chosen.get("alpha_5d", pd.Series(np.nan, index=chosen.index)).to_numpy(),
            chosen.get("alpha_10d", pd.Series(np.nan, index=chosen.index)).to_numpy())
    pw = optimize(rets[chosen["symbol"].tolist()], chosen["sector"].tolist(), spec.method,
                  spec.max_weight, spec.sector_cap, mu)
    vol = np.sqrt(252.0 * np.diag(pw.covariance.to_numpy()))
    chosen = chosen.assign(weight=pw.weights.to_numpy(), volatility_annual=vol,
                           expected_return_daily=np.nan if mu is None else mu)
    return chosen, pw, skipped.tolist()


@dataclass
class PortfolioOutcome:
    """A stored portfolio (``portfolios.portfolio_id``) and its weights, best rank first."""

    portfolio_id: int
    run_id: int
    as_of: dt.date
    spec: PortfolioSpec
    weights: pd.DataFrame
    shrinkage: float
    volatility_annual: float
    expected_return_daily: float | None
    skipped: list[str]
    timings_s: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict:
        """The ``--json`` shape: ids, parameters, summary and ``weights`` rows."""
        rows = [{k: (None if isinstance(v, float) and not np.isfinite(v) else
                     (v.item() if isinstance(v, np.generic) else v)) for k, v in r.items()}
                for r in self.weights.to_dict(orient="records")]
        return {"portfolio_id": self.portfolio_id, "run_id": self.run_id,
                "as_of": self.as_of.isoformat(), **self.spec.as_json(),
                "shrinkage": self.shrinkage, "volatility_annual": self.volatility_annual,
                "expected_return_daily": self.expected_return_daily,
                "skipped": self.skipped, "timings_s": self.timings_s, "weights": rows}


def build_portfolio(target: DatabaseTarget, run_id: int, spec: PortfolioSpec
                    ) -> PortfolioOutcome:
    """Weights for the top names of scan run ``run_id``; stored (see the module docstring).

    Raises:
        LookupError: no such run, the run did not finish ``ok``, or it has no results.
        technic.portfolio.weights.InfeasibleCapsError: the caps cannot be met.
        ValueError: as :func:`choose_and_weight` (too little history, no alphas for
            max-sharpe, …).
    """
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    run = store.scan_run(target, run_id)
    if run is None:
        raise LookupError(f"no scan run {run_id}; see `SELECT run_id, as_of FROM scan_runs`")
    status, as_of = run
    if status != "ok" or as_of is None:
        raise LookupError(f"scan run {run_id} is {status!r}, not a finished ('ok') run")
    ranked = store.run_results(target, run_id, _candidates(spec.top))
    if ranked.empty:
        raise LookupError(f"scan run {run_id} has no results")
    start = store.session_before(target, as_of, spec.lookback) or as_of
    bars = store.read_bars(target, start, as_of, ranked["symbol"].tolist())
    timings["read"] = round(time.perf_counter() - t0, 4)
    t = time.perf_counter()
    chosen, pw, skipped = choose_and_weight(ranked, _pivot(bars, "close"), spec)
    timings["optimize"] = round(time.perf_counter() - t, 4)
    t = time.perf_counter()
    er = pw.expected_return_daily
    pid = store.save_portfolio(
        target, run_id, as_of, spec.as_json(),
        {"n_names": len(chosen), "shrinkage": pw.shrinkage,
         "volatility_annual": pw.volatility_annual, "expected_return_daily": er}, chosen)
    timings["write"] = round(time.perf_counter() - t, 4)
    timings["total"] = round(time.perf_counter() - t0, 4)
    log.info("portfolio %d: %d names of scan run %d (%s, %s)", pid, len(chosen), run_id,
             as_of, spec.method)
    return PortfolioOutcome(pid, run_id, as_of, spec,
                            chosen[["rank", "symbol", "sector", "weight", "volatility_annual",
                                    "expected_return_daily"]],
                            pw.shrinkage, pw.volatility_annual, er, skipped, timings)


@dataclass(frozen=True)
class BacktestParams:
    """Parameters of a backtest (validated on construction; one-line ``ValueError``\\s).

    Attributes:
        start, end: first and last session of the backtest (inclusive).
        spec: the portfolio construction (method, top, caps, lookback).
        rebalance: ``weekly`` or ``monthly`` (:func:`technic.portfolio.backtest.signal_dates`).
        cost_bps: cost per side, basis points of traded notional, in [0, 1000].
        store: write the result to ``backtests`` etc.
    """

    start: dt.date
    end: dt.date
    spec: PortfolioSpec = field(default_factory=PortfolioSpec)
    rebalance: str = "weekly"
    cost_bps: float = 10.0
    store: bool = True

    def __post_init__(self) -> None:
        if self.start > self.end:
            raise ValueError(f"start {self.start} is after end {self.end}")
        if self.rebalance not in FREQUENCIES:
            raise ValueError(f"unknown rebalance frequency {self.rebalance!r}; use one of "
                             f"{', '.join(FREQUENCIES)}")
        if not (0 <= self.cost_bps <= 1000):
            raise ValueError(f"cost-bps must be between 0 and 1000, got {self.cost_bps}")

    def as_json(self) -> dict:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(),
                **self.spec.as_json(), "rebalance": self.rebalance, "cost_bps": self.cost_bps}


@dataclass
class BacktestOutcome:
    """A finished backtest.

    Attributes:
        backtest_id: ``backtests.backtest_id`` (None when not stored).
        equity: one row per session from the first execution to the end: ``date, equity,
            drawdown, benchmark_equity, benchmark_drawdown, turnover, cost,
            benchmark_turnover`` (the last three NaN outside execution sessions).
        holdings: ``signal_date, exec_date, symbol, rank, weight`` per rebalance.
        metrics, benchmark_metrics: :func:`technic.portfolio.backtest.metrics`.
        rebalances: ``(signal date, execution session)`` pairs.
    """

    backtest_id: int | None
    params: BacktestParams
    equity: pd.DataFrame
    holdings: pd.DataFrame
    metrics: dict[str, float]
    benchmark_metrics: dict[str, float]
    rebalances: list[tuple[dt.date, dt.date]]
    timings_s: dict[str, float] = field(default_factory=dict)


def _schedule(target: DatabaseTarget, p: BacktestParams) -> list[tuple[dt.date, dt.date]]:
    sess = store.sessions(target, p.start, p.end)
    if not sess:
        raise LookupError(f"no trading sessions with bars between {p.start} and {p.end}")
    sig = signal_dates(sess, p.rebalance)
    nxt = dict(zip(sess[:-1], sess[1:], strict=True))
    pairs = [(s, nxt[s]) for s in sig if s in nxt]
    if not pairs:
        raise ValueError(f"no {p.rebalance} rebalance between {p.start} and {p.end}: the "
                         "range must hold a signal session (last of its week/month) and the "
                         "session after it; widen --start/--end")
    return pairs


def run_backtest(target: DatabaseTarget, p: BacktestParams,
                 on_step: Callable[[int, int], None] | None = None) -> BacktestOutcome:
    """Backtest ``p`` (see the module docstring; conventions in
    :mod:`technic.portfolio.backtest`).

    Args:
        on_step: called with ``(done, total)`` rebalances (progress display).

    Raises:
        LookupError: no sessions in the range; a signal date without stored features (the
            message names the ``technic features backfill`` command to run).
        ValueError: no rebalance fits in the range; as :func:`choose_and_weight`.
    """
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    spec = p.spec
    pairs = _schedule(target, p)
    have = store.feature_dates(target, pairs[0][0], pairs[-1][0])
    missing = [s for s, _ in pairs if s not in have]
    if missing:
        raise LookupError(
            f"no stored features for {len(missing)} of {len(pairs)} signal dates "
            f"({missing[0]} … {missing[-1]}); run `technic features backfill --start "
            f"{missing[0]} --end {missing[-1]}` first")
    lo = store.session_before(target, pairs[0][0], spec.lookback) or pairs[0][0]
    bars = store.read_bars(target, lo, p.end)
    opens, closes = _pivot(bars, "open"), _pivot(bars, "close")
    caps = market_caps(target)
    timings["read_bars"] = round(time.perf_counter() - t0, 4)
    t_scan = t_opt = 0.0
    targets: dict[pd.Timestamp, pd.Series] = {}
    bench: dict[pd.Timestamp, pd.Series] = {}
    hold_rows = []
    for k, (sig, ex) in enumerate(pairs):
        t = time.perf_counter()
        feats = read_features_arrow(target, sig).to_pandas(date_as_object=True)
        ranked, _ = rank_frame(feats, UniverseRules(), caps, point_in_time=True)
        cand = ranked.head(_candidates(spec.top))
        if spec.method in NEEDS_EXPECTED:
            cand = add_alpha(cand, as_of=sig)  # the walk-forward model of that date
        t_scan += time.perf_counter() - t
        t = time.perf_counter()
        window = closes.loc[:pd.Timestamp(sig)].iloc[-(spec.lookback + 1):]
        chosen, _, _ = choose_and_weight(cand, window, spec)
        t_opt += time.perf_counter() - t
        exts = pd.Timestamp(ex)
        targets[exts] = pd.Series(chosen["weight"].to_numpy(), index=chosen["symbol"])
        uni = [s for s in ranked["symbol"] if s in closes.columns]
        bench[exts] = pd.Series(1.0 / len(uni), index=uni)
        hold_rows.append(chosen[["symbol", "rank", "weight"]].assign(signal_date=sig,
                                                                      exec_date=ex))
        if on_step:
            on_step(k + 1, len(pairs))
    timings["scans"] = round(t_scan, 4)
    timings["optimize"] = round(t_opt, 4)
    t = time.perf_counter()
    # prices from the first signal session (its close is the book's starting mark, 1.0 cash)
    first = pd.Timestamp(pairs[0][0])
    used = sorted(set().union(*(s.index for s in targets.values()),
                              *(s.index for s in bench.values())))
    op = opens.loc[first:, used]
    cl = closes[used].ffill().loc[first:]
    sim = simulate(op, cl, targets, p.cost_bps)
    bsim = simulate(op, cl, bench, p.cost_bps)
    timings["simulate"] = round(time.perf_counter() - t, 4)
    equity = _curve(sim, bsim, pd.Timestamp(pairs[0][1]))
    m = metrics(equity.set_index("date")["equity"], sim.turnover, sim.cost)
    bm = metrics(equity.set_index("date")["benchmark_equity"], bsim.turnover, bsim.cost)
    holdings = pd.concat(hold_rows, ignore_index=True)[
        ["signal_date", "exec_date", "symbol", "rank", "weight"]]
    # the weights actually traded (a name without a price on the execution session drops out)
    traded = pd.concat({d.date(): s for d, s in sim.held.items()}, names=["exec_date",
                                                                         "symbol"])
    holdings = holdings.merge(traded.rename("traded").reset_index(),
                              on=["exec_date", "symbol"], how="inner")
    holdings = holdings.assign(weight=holdings["traded"]).drop(columns="traded")
    bid = None
    if p.store:
        t = time.perf_counter()
        bid = store.save_backtest(target, p.as_json(), m, bm, equity, holdings)
        timings["write"] = round(time.perf_counter() - t, 4)
    timings["total"] = round(time.perf_counter() - t0, 4)
    log.info("backtest %s: %d rebalances %s … %s, %s", bid, len(pairs), pairs[0][1], p.end,
             spec.method)
    return BacktestOutcome(bid, p, equity, holdings, m, bm, pairs, timings)


def _curve(sim: Simulation, bsim: Simulation, first_exec: pd.Timestamp) -> pd.DataFrame:
    """The stored curve: sessions from the first execution on (the signal session before it
    only carried the starting cash)."""
    eq = sim.equity.loc[first_exec:]
    beq = bsim.equity.loc[first_exec:]
    return pd.DataFrame({
        "date": eq.index, "equity": eq.to_numpy(), "drawdown": drawdown(eq).to_numpy(),
        "benchmark_equity": beq.to_numpy(), "benchmark_drawdown": drawdown(beq).to_numpy(),
        "turnover": sim.turnover.reindex(eq.index).to_numpy(),
        "cost": sim.cost.reindex(eq.index).to_numpy(),
        "benchmark_turnover": bsim.turnover.reindex(eq.index).to_numpy()})


#: Rows of the metrics table: (key, label, format).
METRIC_ROWS: tuple[tuple[str, str, str], ...] = (
    ("total_return", "total return", "{:+.2%}"),
    ("annual_return", "annual return (252 sessions)", "{:+.2%}"),
    ("annual_volatility", "annual volatility", "{:.2%}"),
    ("sharpe", "Sharpe (daily, annualised √252, rf 0)", "{:+.2f}"),
    ("max_drawdown", "max drawdown", "{:.2%}"),
    ("rebalances", "rebalances", "{:.0f}"),
    ("mean_turnover", "mean turnover per rebalance (two-sided)", "{:.1%}"),
    ("total_cost", "costs paid (fraction of start)", "{:.3%}"),
)


def metrics_table(o: BacktestOutcome) -> list[tuple[str, str, str]]:
    """``(label, strategy, benchmark)`` rows, formatted."""
    def fmt(f: str, v: float) -> str:
        return "—" if v is None or not np.isfinite(v) else f.format(v)

    return [(label, fmt(f, o.metrics[k]), fmt(f, o.benchmark_metrics[k]))
            for k, label, f in METRIC_ROWS]


def report_markdown(o: BacktestOutcome) -> str:
    """The backtest as Markdown: parameters, the metrics table, the rebalances."""
    p = o.params
    rows = "\n".join(f"| {a} | {b} | {c} |" for a, b, c in metrics_table(o))
    per = o.holdings.groupby("exec_date").agg(names=("symbol", "size"),
                                              max_weight=("weight", "max"))
    turn = o.equity.set_index(o.equity["date"].dt.date)["turnover"]
    reb = "\n".join(f"| {ex} | {int(r.names)} | {r.max_weight:.1%} | "
                    f"{turn.get(ex, float('nan')):.1%} |" for ex, r in per.iterrows())
    bid = f" {o.backtest_id}" if o.backtest_id is not None else ""
    return f"""# Backtest{bid}: {p.spec.method}, top {p.spec.top}, {p.rebalance}, \
{p.cost_bps:g} bps

{p.start} … {p.end}; {len(o.rebalances)} rebalances (signal at the close of the last session of
each {'week' if p.rebalance == 'weekly' else 'month'}, traded at the next session's open);
lookback {p.spec.lookback} sessions; max weight {p.spec.max_weight or 1:g}, sector cap
{p.spec.sector_cap or 1:g}. Benchmark: equal weight over every symbol that passed the scan's
universe filter on each signal date, same sessions and costs.

| metric | strategy | equal-weight universe |
| --- | --- | --- |
{rows}

| execution session | names | largest weight | turnover |
| --- | --- | --- | --- |
{reb}
"""


def write_backtest_report(o: BacktestOutcome, report: str | Path) -> tuple[Path, Path]:
    """Write the Markdown report and, next to it, a PNG of both equity curves and their
    drawdowns (matplotlib, Agg). Returns ``(markdown path, png path)``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    md = Path(report)
    md.parent.mkdir(parents=True, exist_ok=True)
    png = md.with_suffix(".png")
    e = o.equity
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(10, 6), sharex=True,
                                 gridspec_kw={"height_ratios": [3, 1]})
    a1.plot(e["date"], e["equity"], label=f"{o.params.spec.method} top {o.params.spec.top}")
    a1.plot(e["date"], e["benchmark_equity"], label="equal-weight universe", alpha=0.8)
    a1.set_ylabel("equity (start = 1)")
    a1.legend(loc="upper left")
    a1.set_title(f"Backtest {o.params.start} … {o.params.end}, {o.params.rebalance}, "
                 f"{o.params.cost_bps:g} bps per side")
    a2.fill_between(e["date"], e["drawdown"], 0, alpha=0.5, label="strategy")
    a2.plot(e["date"], e["benchmark_drawdown"], color="C1", label="benchmark")
    a2.set_ylabel("drawdown")
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)
    md.write_text(report_markdown(o) + f"\n![equity and drawdown]({png.name})\n")
    return md, png


def outcome_json(o: BacktestOutcome) -> dict:
    """The ``--json`` shape of a backtest: id, parameters, metrics, rebalances, timings."""
    def clean(d: dict) -> dict:
        return {k: (None if isinstance(v, float) and not np.isfinite(v) else v)
                for k, v in d.items()}

    return {"backtest_id": o.backtest_id, **o.params.as_json(), "metrics": clean(o.metrics),
            "benchmark_metrics": clean(o.benchmark_metrics),
            "rebalances": [[s.isoformat(), e.isoformat()] for s, e in o.rebalances],
            "timings_s": o.timings_s}


