"""Option-metrics benchmark: every chain of the real file (179 underlyings × 19 sessions,
``../shared/data/options.parquet``, 5.84 M valid contracts) through
:func:`technic.options.metrics.option_metrics`, with the daily closes of
``bars_daily_2026.parquet`` for realized volatility. Pure compute: the rows are read and
validated once, untimed.

* ``metrics_s`` — all metrics of all chains (median of ``--repeat``; goal ≤ 5 s), and
  ``metrics_cpu_s``, the CPU seconds this process spent on it (single-threaded NumPy: on a
  shared, loaded machine the wall-clock figure includes waiting for a core, the CPU figure
  does not);
* ``groupby_sum_s`` — the reference in the same process: a pandas ``groupby(date,
  underlying)`` sum of volume over the same rows (one plain pass per chain);
  ``metrics_over_groupby`` is their ratio (steadier than the absolute figure on a shared
  machine);
* ``greeks_s`` / ``greeks_cpu_s`` — :func:`technic.options.greeks.fill_greeks` over the
  whole file (gamma/theta/vega for every contract with a usable IV; what greeks add to an
  ingest before the larger COPY), median of ``--repeat``;
* with ``--ingest``: the whole file through ``ingest_files`` into a throwaway database
  (``ingest_first_s``: validate, greeks, COPY, metrics job; ``ingest_rerun_s``: the
  idempotent re-run, every row staged and compared) — once each; the same first load with
  the greeks step switched off (``ingest_first_nogreeks_s``, in its own throwaway
  database, run first) gives what greeks add end to end (compute + the three extra columns
  written).

Prints a table and, last, one JSON line.

    python benchmarks/options.py [--repeat 5] [--ingest]
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

import pyarrow.parquet as pq  # noqa: E402

from technic.options.chains import validate_chains  # noqa: E402
from technic.options.greeks import GreeksFill, fill_greeks  # noqa: E402
from technic.options.metrics import option_metrics  # noqa: E402

SHARED = Path(os.environ.get("TECHNIC_SHARED_DATA", REPO.parent / "shared" / "data"))


def _median(fn, repeat: int) -> tuple[float, float]:
    """Median wall-clock and CPU (this process: user + system) seconds of ``fn()``."""
    wall, cpu = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return statistics.median(wall), statistics.median(cpu)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--ingest", action="store_true", help="also time the full-file ingest")
    args = ap.parse_args()
    chains, _ = validate_chains(pq.read_table(SHARED / "options.parquet"))
    closes = pq.read_table(SHARED / "bars_daily_2026.parquet",
                           columns=["symbol", "date", "close"]).to_pandas()
    frame = chains.select(["date", "underlying", "volume"]).to_pandas()
    m = option_metrics(chains, closes)  # warm-up (imports, vollib)
    wall, cpu = _median(lambda: option_metrics(chains, closes), args.repeat)
    ref_wall, ref_cpu = _median(lambda: frame.groupby(["date", "underlying"])["volume"].sum(),
                                args.repeat)
    res: dict[str, float | int] = {
        "contracts": chains.num_rows, "chains": len(m),
        "underlyings": int(m["underlying"].nunique()), "sessions": int(m["date"].nunique()),
        "metrics_s": round(wall, 3), "metrics_cpu_s": round(cpu, 3),
        "groupby_sum_s": round(ref_wall, 3), "groupby_sum_cpu_s": round(ref_cpu, 3),
    }
    res["metrics_over_groupby"] = round(res["metrics_s"] / res["groupby_sum_s"], 1)
    _, fill = fill_greeks(chains)
    g_wall, g_cpu = _median(lambda: fill_greeks(chains), args.repeat)
    res.update({"greeks_rows": fill.rows_filled, "greeks_iv_recomputed": fill.iv_recomputed,
                "greeks_s": round(g_wall, 3), "greeks_cpu_s": round(g_cpu, 3)})
    if args.ingest:
        import technic.jobs.options as option_jobs
        from benchmarks._db import throwaway_database
        from technic.jobs.ingest import ingest_files
        from technic.store.db import DatabaseTarget, get_engine
        from technic.store.schema import init_db

        for greeks in (False, True):
            option_jobs.fill_greeks = fill_greeks if greeks else (  # type: ignore[assignment]
                lambda t, *a, **k: (t, GreeksFill()))
            with throwaway_database() as url:
                target = DatabaseTarget(url=url, schema="technic", origin="benchmark")
                init_db(get_engine(target), target.schema)
                ingest_files(target, SHARED / "bars_daily_2026.parquet")
                t = time.perf_counter()
                rep = ingest_files(target, SHARED / "options.parquet")[-1]
                if not greeks:
                    res["ingest_first_nogreeks_s"] = round(time.perf_counter() - t, 1)
                    res["copy_nogreeks_s"] = rep.timings.get("copy_s", 0.0)
                    continue
                res["ingest_first_s"] = round(time.perf_counter() - t, 1)
                res["copy_s"] = rep.timings.get("copy_s", 0.0)
                res["ingest_greeks_s"] = rep.timings.get("greeks_s", 0.0)
                t = time.perf_counter()
                ingest_files(target, SHARED / "options.parquet")
                res["ingest_rerun_s"] = round(time.perf_counter() - t, 1)
        option_jobs.fill_greeks = fill_greeks  # type: ignore[assignment]
    width = max(len(k) for k in res)
    for k, v in res.items():
        print(f"{k:<{width}}  {v}")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
