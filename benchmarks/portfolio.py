"""Portfolio and backtest benchmark (docs/portfolio.md, "Speed").

In a throwaway database (or ``--url``, a database that already holds the data): the bundled
real subset (1,000 symbols, ``technic/data``) is ingested, one year of feature history is
backfilled and the last date scanned. Then, each the median of ``--repeat`` runs in this
process:

* ``import_s`` — importing the optimisation library (skfolio, with cvxpy and scikit-learn),
  once, cold: what a fresh ``technic portfolio`` process pays on top;
* ``portfolio_<method>_s`` — ``build_portfolio`` for the top 50 of the run (read the run and
  the bars, Ledoit-Wolf, optimise, store), every method; target ≤ 1 s;
* ``optimize_<method>_s`` — the optimisation alone (same 50 names, returns in memory);
* ``backtest_1y_weekly_s`` — ``run_backtest`` over one year, weekly, top 50, HRP, 10 bps,
  stored (52 point-in-time scans, 52 optimisations, two simulated books); target ≤ 30 s;
  ``backtest_1y_weekly_equal_s`` the same with equal weights (the scans without optimiser);
* ``raw_bars_read_s`` — the reference in the same process: the backtest's year of bars read
  with ADBC, nothing else.

Prints a table and, last, one JSON line.

    python benchmarks/portfolio.py [--repeat 3] [--url postgresql+psycopg://…]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks._db import throwaway_database  # noqa: E402
from benchmarks._timing import med  # noqa: E402

END = dt.date(2025, 7, 8)
START = dt.date(2024, 7, 8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--url", help="use this database (data already loaded) instead of a "
                                  "throwaway one")
    args = ap.parse_args()
    t = time.perf_counter()
    import skfolio.optimization  # noqa: F401

    res: dict[str, float | int | str] = {"import_s": round(time.perf_counter() - t, 3)}
    from technic.jobs.ingest import ingest_files
    from technic.jobs.portfolio import BacktestParams, build_portfolio, run_backtest
    from technic.jobs.refresh import backfill_features
    from technic.jobs.scan import ScanParams, run_scan
    from technic.portfolio.weights import METHODS, PortfolioSpec, optimize
    from technic.store import portfolio as store
    from technic.store.db import DatabaseTarget, get_engine
    from technic.store.features import latest_feature_date
    from technic.store.schema import init_db

    with nullcontext(args.url) if args.url else throwaway_database() as url:
        target = DatabaseTarget(url=url, schema="technic", origin="benchmark")
        init_db(get_engine(target), target.schema)
        if not args.url:
            t = time.perf_counter()
            ingest_files(target, REPO / "technic" / "data")
            backfill_features(target, START - dt.timedelta(days=7), END)
            res["setup_s"] = round(time.perf_counter() - t, 1)
        day = latest_feature_date(target)
        run = run_scan(target, ScanParams(as_of=day))
        res["symbols_ranked"] = len(run.results)
        for m in METHODS:
            spec = PortfolioSpec(method=m, top=50, max_weight=0.05, sector_cap=0.3)
            build_portfolio(target, run.run_id, spec)  # first fit of each estimator
            res[f"portfolio_{m}_s"] = med(lambda s=spec: build_portfolio(target, run.run_id, s),
                                          args.repeat)
        top = run.results.head(50)
        lo = store.session_before(target, run.as_of, 126)
        bars = store.read_bars(target, lo, run.as_of, top["symbol"].tolist())
        rets = bars.pivot(index="date", columns="symbol", values="close")[
            top["symbol"].tolist()].pct_change(fill_method=None).iloc[1:]
        mu = top["alpha_5d"].fillna(0).to_numpy() / 5 + 1e-4
        for m in METHODS:
            res[f"optimize_{m}_s"] = med(lambda m=m: optimize(rets, top["sector"].tolist(), m,
                                                              0.05, 0.3, mu), args.repeat)
        res["raw_bars_read_s"] = med(lambda: store.read_bars(target, START - dt.timedelta(
            days=190), END), args.repeat)
        for key, method in (("backtest_1y_weekly_s", "hrp"),
                            ("backtest_1y_weekly_equal_s", "equal")):
            p = BacktestParams(START, END, PortfolioSpec(method=method, top=50), "weekly", 10)
            out = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                o = run_backtest(target, p)
                out.append(time.perf_counter() - t)
            res[key] = round(statistics.median(out), 3)
            res[key.replace("_s", "_rebalances")] = len(o.rebalances)
            res[key.replace("_s", "_stages")] = json.dumps(o.timings_s)
        res["backtest_over_raw_read"] = round(
            float(res["backtest_1y_weekly_s"]) / float(res["raw_bars_read_s"]), 1)
    w = max(len(k) for k in res)
    for k, v in res.items():
        print(f"{k:<{w}}  {v}")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
