"""Ingest benchmark: technic's ingest against a plain COPY into the same table.

For the full real daily file (``../shared/data/bars_daily.parquet``), median of ``--repeat``
runs, each into a fresh schema of a throwaway database:

* ``copy_s`` — a plain binary COPY (ADBC, Arrow) of the already-validated rows straight into
  an empty ``bars_daily`` (same partitions, same primary key): the reference;
* ``ingest_s`` — ``technic.jobs.ingest``: read the file, validate every row, stage, update/insert,
  log the run (into an empty ``bars_daily``);
* ``reingest_s`` — the same file again (every row unchanged);
* ``one_day_s`` — one new market day (~7,600 rows) ingested into the full table.

Each timed load starts after a ``CHECKPOINT`` and the order of the plain COPY and the ingest
alternates between repeats, so neither pays for the other's WAL and dirty buffers.
``throughput_vs_copy`` is the ratio of the medians; ``paired_ratio_median`` the median of
each repeat's copy/ingest ratio (the two ran back to back, under the same load).

Prints a table and, last, one JSON line.

    python benchmarks/ingest.py [--repeat 3]
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
from technic.store.db import DatabaseTarget, adbc_connect, get_engine, libpq_uri  # noqa: E402
from technic.store.schema import ensure_partitions, init_db  # noqa: E402

SHARED = Path(os.environ.get("TECHNIC_SHARED_DATA", REPO.parent / "shared" / "data"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    import numpy as np
    import pandas as pd
    import psycopg

    from technic.jobs.ingest import ingest_files
    from technic.providers.files import read_bars_table
    from technic.store.ingest import _const_strings
    from technic.validation import validate_bars

    path = SHARED / "bars_daily.parquet"
    if not path.exists():
        sys.exit(f"{path} not found (set TECHNIC_SHARED_DATA)")
    valid = validate_bars(read_bars_table(path))
    good = valid.good
    arrow = valid.table.append_column("source", _const_strings("copy", valid.table.num_rows))
    years = np.unique(good["date"].to_numpy().astype("datetime64[Y]"))
    last = good[good["date"] == good["date"].max()].copy()
    last["date"] = (pd.Timestamp(good["date"].max()) + pd.offsets.BDay(1)).to_datetime64()
    day_file = Path(os.environ.get("TMPDIR", "/tmp")) / "technic_bench_one_day.parquet"
    last.to_parquet(day_file)
    res: dict[str, list[float]] = {"copy_s": [], "ingest_s": [], "reingest_s": [],
                                   "one_day_s": []}
    with throwaway_database() as url:
        def checkpoint() -> None:
            # Each timed load starts with no dirty buffers or pending WAL of the one before
            # (a plain COPY of 4.87 M rows writes ~1 GB of WAL: its checkpoint would land in
            # whatever runs next).
            with psycopg.connect(libpq_uri(url), autocommit=True) as c:
                c.execute("CHECKPOINT")

        def copy_ref(i: int) -> None:
            ref = DatabaseTarget(url, f"copy_{i}", "bench")
            init_db(get_engine(ref), ref.schema)
            with get_engine(ref).begin() as c:
                ensure_partitions(c, ref.schema, "bars_daily", years)
            checkpoint()
            with adbc_connect(ref) as conn, conn.cursor() as cur:
                t = time.perf_counter()
                cur.adbc_ingest("bars_daily", arrow, mode="append")
                conn.commit()
                res["copy_s"].append(time.perf_counter() - t)

        def ingest(i: int) -> DatabaseTarget:
            target = DatabaseTarget(url, f"ingest_{i}", "bench")
            init_db(get_engine(target), target.schema)
            checkpoint()
            t = time.perf_counter()
            rep = ingest_files(target, path)[0]
            res["ingest_s"].append(time.perf_counter() - t)
            print(f"run {i}: ingest {res['ingest_s'][-1]:.2f} s {rep.timings}", file=sys.stderr)
            return target

        for i in range(args.repeat):
            # alternate which goes first, so neither always meets the other's leftovers
            if i % 2 == 0:
                copy_ref(i)
                target = ingest(i)
            else:
                target = ingest(i)
                copy_ref(i)
            print(f"run {i}: copy {res['copy_s'][-1]:.2f} s, ratio "
                  f"{res['copy_s'][-1] / res['ingest_s'][-1]:.3f}", file=sys.stderr)
            checkpoint()
            t = time.perf_counter()
            ingest_files(target, path)
            res["reingest_s"].append(time.perf_counter() - t)
            checkpoint()
            t = time.perf_counter()
            day = ingest_files(target, day_file)[0]
            res["one_day_s"].append(time.perf_counter() - t)
            print(f"run {i}: one day {res['one_day_s'][-1]:.3f} s {day.timings}",
                  file=sys.stderr)
    med = {k: round(statistics.median(v), 4) for k, v in res.items()}
    med.update(rows=len(good), one_day_rows=len(last),
               ingest_rows_per_s=round(len(good) / med["ingest_s"]),
               copy_rows_per_s=round(len(good) / med["copy_s"]),
               throughput_vs_copy=round(med["copy_s"] / med["ingest_s"], 3),
               # each repeat's copy and ingest ran back to back under the same machine load:
               # the median of their ratios is less exposed to load swings between repeats
               paired_ratio_median=round(statistics.median(
                   c / g for c, g in zip(res["copy_s"], res["ingest_s"], strict=True)), 3))
    print(pd.Series(med).to_string())
    print(json.dumps({"benchmark": "ingest", "repeat": args.repeat, "results": med}))


if __name__ == "__main__":
    main()
