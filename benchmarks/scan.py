"""Scan-path benchmark: feature-store scan, cold/warm refresh vs the raw bar read, one new
day, and 1 vs 2 Dask workers.

Data sets: the full real universe (``../shared/data/bars_daily.parquet``) and synthetic
symbols × 504 days (``--sizes``, default 6000). For each, in a throwaway database:

* ``scan_s`` — a scan from the feature store, results written (median of ``--repeat``);
* ``raw_read_s`` — the refresh's bars (its 300-day window, all symbols) read with ADBC into
  Arrow, nothing else (the reference, same run);
* ``refresh_cold_s`` — full refresh in this process, bars from PostgreSQL, rows not written;
  and its ratio to the raw read;
* ``refresh_full_write_s`` — the same with its rows written to ``features_daily`` (what an
  incremental refresh replaces: the same rows stored; the date's stored rows are deleted,
  untimed, before each run, so it writes them as a new date's, like the incremental one);
* ``refresh_warm_s`` — the same with the chunks' bars from Redis (L1 emptied, as in a fresh
  process) — needs ``TECHNIC_REDIS_URL`` or the local Redis at 127.0.0.1:6379 (the values
  carry their HMAC tags: ``TECHNIC_CACHE_SECRET``, a random one if unset);
* ``window_fetch_warm_s`` — the incremental refresh's cached bar window (the same 300 days,
  high/low/close/volume) fetched from Redis into a fresh process's empty L1, and its ratio to
  the raw read;
* one new trading day for every symbol (``--repeat`` days in a row): its ingest, then the
  incremental refresh (:mod:`technic.incremental`) and a scan — ``new_day_*_l1`` with the
  window in this process (a long-lived worker), ``new_day_*_l2`` with L1 emptied first (a new
  process, window from Redis); ``incremental_over_full`` = incremental refresh (rows
  written) / full refresh with rows written, ``incremental_over_cold`` the stricter ratio to
  the full refresh that writes nothing; ``new_day_refresh_s_worker`` — the same on one
  long-lived worker of a cluster, as the flows run it with ``TECHNIC_DASK_ADDRESS``
  (connecting a client included; skipped with ``--no-dask``);
* ``refresh_dask1_s`` / ``refresh_dask2_s`` — full refresh on a LocalCluster of 1 and 2 workers
  (skipped with ``--no-dask``);
* ``peak_rss_mb`` — this process's peak resident memory after the data set (monotonic: sizes
  run smallest first).

Prints a table and, last, one JSON line.

    python benchmarks/scan.py [--repeat 3] [--sizes 6000,20000,50000] [--no-real] [--no-dask]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import sqlalchemy as sa  # noqa: E402

from benchmarks._db import throwaway_database  # noqa: E402
from benchmarks._timing import med  # noqa: E402
from technic.config import Settings  # noqa: E402
from technic.store.db import DatabaseTarget, get_engine  # noqa: E402
from technic.store.schema import init_db  # noqa: E402

SHARED = Path(os.environ.get("TECHNIC_SHARED_DATA", REPO.parent / "shared" / "data"))
REDIS = os.environ.get("TECHNIC_REDIS_URL", "redis://127.0.0.1:6379/15")
# L2 runs only with an HMAC secret (technic/cache.py); the times below include the tags.
# Set before any settings are read, so this process and its Dask workers share it.
os.environ.setdefault("TECHNIC_CACHE_SECRET", "technic-benchmark-" + os.urandom(16).hex())


def bench(name: str, url: str, load, repeat: int, no_dask: bool = False) -> dict:
    import pandas as pd

    from technic import cache as cache_mod
    from technic.compute import dask_client
    from technic.jobs.ingest import _run
    from technic.jobs.refresh import refresh_features
    from technic.jobs.scan import ScanParams, run_scan
    from technic.store.bars import last_bar_date, read_bars_arrow, window_start

    target = DatabaseTarget(url, f"bench_{name}", "bench")
    init_db(get_engine(target), target.schema)
    bars, universe = load()
    _run(target, "bench", name, lambda: (bars, universe))
    day = last_bar_date(target)
    start = window_start(target, day, 300)
    refresh_features(target)  # compile + first write
    r: dict = {"symbols": int(bars["symbol"].nunique()), "rows": len(bars)}
    r["scan_s"] = med(lambda: run_scan(target, ScanParams(),
                                       cache=cache_mod.FrameCache(None)), repeat)
    r["raw_read_s"] = med(lambda: read_bars_arrow(target, start, day), repeat)
    r["refresh_cold_s"] = med(lambda: refresh_features(target, write=False), repeat)
    r["refresh_over_raw_read"] = round(r["refresh_cold_s"] / r["raw_read_s"], 2)
    # written as a new date's rows are (the day's stored rows deleted first, untimed)
    full = []
    for _ in range(repeat):
        with get_engine(target).begin() as c:
            c.execute(sa.text("DELETE FROM features_daily WHERE date = :d"), {"d": day})
        t = time.perf_counter()
        refresh_features(target)
        full.append(time.perf_counter() - t)
    r["refresh_full_write_s"] = round(statistics.median(full), 4)
    try:
        refresh_features(target, write=False, use_cache=True, redis_url=REDIS)  # fill Redis

        def warm():
            cache_mod._CACHES.clear()  # a fresh process: empty L1, warm Redis
            refresh_features(target, write=False, use_cache=True, redis_url=REDIS)

        r["refresh_warm_s"] = med(warm, repeat)
        r["warm_over_cold"] = round(r["refresh_warm_s"] / r["refresh_cold_s"], 2)
    except Exception as e:  # Redis not reachable
        r["refresh_warm_s"] = None
        print(f"warm refresh skipped: {e}", file=sys.stderr)

    from technic.incremental import _get_whole, refresh_incremental

    # the incremental refresh's window, cached in L1 and Redis by a first (rebuilding) run
    refresh_incremental(target, redis_url=REDIS)

    def window_fetch():
        cache_mod._CACHES.clear()
        w, layer = _get_whole(cache_mod.get_cache(REDIS, target.cache_namespace()), 300, day)
        assert w is not None and layer == "l2", layer

    try:
        r["window_fetch_warm_s"] = med(window_fetch, repeat)
        r["window_fetch_over_raw_read"] = round(r["window_fetch_warm_s"] / r["raw_read_s"], 3)
    except Exception as e:  # Redis not reachable
        print(f"window fetch skipped: {e}", file=sys.stderr)

    # new trading days for every symbol with a bar on the last day, one after another
    last = bars[pd.to_datetime(bars["date"]) == pd.Timestamp(day)].copy()

    def new_day(k: int) -> pd.DataFrame:
        nxt = last.copy()
        nxt["date"] = pd.Timestamp(day) + pd.offsets.BDay(k)
        for c in ("open", "high", "low", "close"):
            nxt[c] = last[c] * (1.0 + 0.001 * k)
        return nxt

    samples: dict[str, list[float]] = {}
    for i in range(2 * repeat):
        layer = "l1" if i % 2 == 0 else "l2"
        nxt = new_day(i + 1)
        t = time.perf_counter()
        _run(target, "bench", "new-day", lambda b=nxt: (b, None))
        samples.setdefault(f"new_day_ingest_s_{layer}", []).append(time.perf_counter() - t)
        if layer == "l2":
            cache_mod._CACHES.clear()  # a fresh process: empty L1, the window in Redis
        t = time.perf_counter()
        rep, _ = refresh_incremental(target, redis_url=REDIS)
        t_ref = time.perf_counter() - t
        run_scan(target, ScanParams(), cache=cache_mod.FrameCache(None))
        samples.setdefault(f"new_day_refresh_s_{layer}", []).append(t_ref)
        samples.setdefault(f"new_day_refresh_scan_s_{layer}", []).append(
            time.perf_counter() - t)
        # "append" from the window of the day before, unless the cache lost it
        r[f"new_day_mode_{layer}"] = rep.mode
        r[f"new_day_window_layer_{layer}"] = rep.window_layer
        r[f"new_day_timings_{layer}"] = rep.timings
        r["new_day_symbols_recomputed"] = rep.symbols
    for k, v in samples.items():
        r[k] = round(statistics.median(v), 4)
    for layer in ("l1", "l2"):
        r[f"new_day_total_s_{layer}"] = round(r[f"new_day_ingest_s_{layer}"]
                                              + r[f"new_day_refresh_scan_s_{layer}"], 4)
        r[f"incremental_over_full_{layer}"] = round(r[f"new_day_refresh_s_{layer}"]
                                                    / r["refresh_full_write_s"], 3)
        r[f"incremental_over_cold_{layer}"] = round(r[f"new_day_refresh_s_{layer}"]
                                                    / r["refresh_cold_s"], 3)
    if not no_dask:
        # The scheduled path with TECHNIC_DASK_ADDRESS: each run (a new process) connects to
        # the cluster and submits the refresh to the same long-lived worker, which holds the
        # window. Timed: connecting a client + the refresh on the worker.
        from distributed import Client, LocalCluster

        from technic.jobs.refresh import refresh_incremental_on

        with LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster:
            with Client(cluster.scheduler_address) as c:
                refresh_incremental_on(c, target, redis_url=REDIS)  # the worker gets its window
            ws = []
            for i in range(repeat):
                _run(target, "bench", "new-day", lambda b=new_day(2 * repeat + i + 1): (b, None))
                t = time.perf_counter()
                with Client(cluster.scheduler_address) as c:
                    rep, _ = refresh_incremental_on(c, target, redis_url=REDIS)
                ws.append(time.perf_counter() - t)
                r["new_day_window_layer_worker"] = rep.window_layer
            r["new_day_refresh_s_worker"] = round(statistics.median(ws), 4)
            r["incremental_over_full_worker"] = round(r["new_day_refresh_s_worker"]
                                                      / r["refresh_full_write_s"], 3)
        for n in (1, 2):
            with dask_client(Settings(dask_workers=n)) as client:
                refresh_features(target, write=False, client=client)  # warm the workers
                r[f"refresh_dask{n}_s"] = med(
                    lambda c=client: refresh_features(target, write=False, client=c), repeat)
    r["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sizes", default="6000", help="synthetic symbol counts, e.g. 6000,20000")
    ap.add_argument("--no-real", action="store_true")
    ap.add_argument("--no-dask", action="store_true", help="skip the 1 vs 2 worker runs")
    args = ap.parse_args()

    import pandas as pd

    from technic.providers.files import read_bars, read_universe
    from technic.providers.synthetic import generate_bars

    sets = {}
    if not args.no_real and (SHARED / "bars_daily.parquet").exists():
        sets["real"] = lambda: (read_bars(SHARED / "bars_daily.parquet"),
                                read_universe(SHARED / "universe.parquet"))
    for n in [int(x) for x in args.sizes.split(",") if x]:
        sets[f"synthetic_{n}"] = lambda n=n: generate_bars(n, 504, seed=42)
    results = {}
    with throwaway_database() as url:
        for name, load in sets.items():
            print(f"benchmarking {name} …", file=sys.stderr, flush=True)
            results[name] = bench(name, url, load, args.repeat, args.no_dask)
            print(json.dumps({name: results[name]}), file=sys.stderr, flush=True)
    print(pd.DataFrame(results).T.to_string())
    print(json.dumps({"benchmark": "scan", "repeat": args.repeat, "results": results}))


if __name__ == "__main__":
    main()
