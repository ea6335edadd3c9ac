"""Pipeline benchmark: ingest vs plain COPY, feature refresh, scan — real and synthetic data.

For each data set (the full real universe from ../shared/data/bars_daily.parquet, and
synthetic 6,000 symbols × 504 days) it measures, median of ``--repeat`` runs, each in a fresh
schema of a throwaway database:

* ingest: ``technic.jobs.ingest`` (read + validate + stage + upsert), rows/s, and its ratio to a
  plain binary COPY (ADBC) of the same Arrow rows into an unindexed table in the same run;
* feature refresh for the last date: in-process and on a 2-worker Dask LocalCluster;
* scan (read features, filter, score, rank, write results).

Prints a table and, last, one JSON line with every figure.

    python benchmarks/pipeline.py [--repeat 3] [--only real|synthetic]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks._db import throwaway_database  # noqa: E402
from technic.config import Settings  # noqa: E402
from technic.store.db import DatabaseTarget, adbc_connect, get_engine  # noqa: E402
from technic.store.schema import init_db  # noqa: E402

SHARED = Path(os.environ.get("TECHNIC_SHARED_DATA", REPO.parent / "shared" / "data"))


def _median(xs):
    return round(statistics.median(xs), 4)


def bench_dataset(name: str, url: str, load, repeat: int) -> dict:
    from technic.compute import dask_client
    from technic.jobs.ingest import _run
    from technic.jobs.refresh import refresh_features
    from technic.jobs.scan import ScanParams, run_scan
    from technic.store.ingest import bars_to_arrow
    from technic.validation import validate_bars

    bars, universe = load()
    n_rows = len(bars)
    arrow = bars_to_arrow(validate_bars(bars).good)
    res: dict[str, list[float]] = {k: [] for k in
                                   ("ingest_s", "copy_s", "refresh_local_s", "refresh_dask_s",
                                    "scan_s")}
    last_target = None
    for i in range(repeat):
        target = DatabaseTarget(url, f"bench_{name}_{i}", "bench")
        init_db(get_engine(target), target.schema)
        # plain COPY reference: same rows, binary COPY into an unindexed table
        with adbc_connect(target) as conn, conn.cursor() as cur:
            cur.execute("CREATE TABLE copy_ref (symbol text, date date, open float8, "
                        "high float8, low float8, close float8, volume float8)")
            conn.commit()
            t = time.perf_counter()
            cur.adbc_ingest("copy_ref", arrow, mode="append")
            conn.commit()
            res["copy_s"].append(time.perf_counter() - t)
        t = time.perf_counter()
        _run(target, "bench", name, lambda: (bars, universe))
        res["ingest_s"].append(time.perf_counter() - t)
        last_target = target
    s = Settings(dask_workers=2)
    for _ in range(repeat):
        t = time.perf_counter()
        refresh_features(last_target, lookback_bars=300, chunk_size=1000)
        res["refresh_local_s"].append(time.perf_counter() - t)
    with dask_client(s) as client:
        refresh_features(last_target, lookback_bars=300, chunk_size=1000, client=client)  # warm
        for _ in range(repeat):
            t = time.perf_counter()
            refresh_features(last_target, lookback_bars=300, chunk_size=1000, client=client)
            res["refresh_dask_s"].append(time.perf_counter() - t)
    for _ in range(repeat):
        t = time.perf_counter()
        run_scan(last_target, ScanParams())
        res["scan_s"].append(time.perf_counter() - t)
    med = {k: _median(v) for k, v in res.items()}
    med.update(rows=n_rows, symbols=int(bars["symbol"].nunique()),
               ingest_rows_per_s=round(n_rows / med["ingest_s"]),
               copy_rows_per_s=round(n_rows / med["copy_s"]),
               ingest_over_copy=round(med["ingest_s"] / med["copy_s"], 2))
    return med


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", choices=("real", "synthetic"))
    args = ap.parse_args()

    import pandas as pd

    from technic.providers.files import read_bars, read_universe
    from technic.providers.synthetic import generate_bars

    results = {}
    with throwaway_database() as url:
        sets = {
            "real": lambda: (read_bars(SHARED / "bars_daily.parquet"),
                             read_universe(SHARED / "universe.parquet")),
            "synthetic": lambda: generate_bars(6000, 504, seed=42),
        }
        for name, load in sets.items():
            if args.only and args.only != name:
                continue
            if name == "real" and not (SHARED / "bars_daily.parquet").exists():
                print(f"skip real: {SHARED / 'bars_daily.parquet'} not found", file=sys.stderr)
                continue
            print(f"benchmarking {name} …", file=sys.stderr, flush=True)
            results[name] = bench_dataset(name, url, load, args.repeat)
    df = pd.DataFrame(results).T[["symbols", "rows", "ingest_s", "ingest_rows_per_s", "copy_s",
                                  "ingest_over_copy", "refresh_local_s", "refresh_dask_s",
                                  "scan_s"]]
    print(df.to_string())
    print(json.dumps({"benchmark": "pipeline", "repeat": args.repeat, "results": results}))


if __name__ == "__main__":
    main()
