"""TimescaleDB against plain PostgreSQL, side by side on one server.

Both storage variants live in one throwaway database of a server that has ``timescaledb`` in
``shared_preload_libraries`` (``--url``, default ``TECHNIC_TEST_TIMESCALE_URL``): schemas
``ts_<i>`` (hypertables) and ``pg_<i>`` (native range partitions, ``init_db(timescale=False)``),
so the same binaries, settings and disk serve both. Per repeat, in alternating order, each
variant gets a fresh schema and:

* ``daily_ingest_s`` — ``technic.jobs.ingest`` of the full real daily file (4.87 M bars) into the
  empty table;
* ``five_min_ingest_s`` — the full real 5-minute file (4.52 M bars), roll-ups included
  (``five_min_rollups_s``: the continuous-aggregate refresh, resp. the materialized views).

Then, on the last repeat's pair of schemas (median of ``--repeat`` runs each):

* ``refresh_s`` — ``refresh_features`` of the latest date (300-bar windows, in process);
* ``scan_s`` — ``run_scan`` (top 25, no Redis);
* ``compress_s`` / ``*_compression_ratio`` — ``compress_chunk`` of every ``bars_daily``
  chunk before 2025 and every ``bars_intraday`` chunk before the last week (TimescaleDB only;
  ratio = bytes before / after, ``hypertable_compression_stats``);
* ``refresh_compressed_s`` / ``scan_compressed_s`` — the same on the compressed history;
* ``reingest_old_day_s`` — one unchanged 2023 day (~6,000 bars) ingested again, in a
  compressed chunk on TimescaleDB.

Each timed load starts after a ``CHECKPOINT``. Prints a table and, last, one JSON line.

    python benchmarks/timescale.py [--repeat 3] [--url postgresql+psycopg://…:5433/postgres]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks._db import throwaway_database  # noqa: E402
from technic.store.db import DatabaseTarget, get_engine, libpq_uri  # noqa: E402
from technic.store.schema import init_db  # noqa: E402

SHARED = Path(os.environ.get("TECHNIC_SHARED_DATA", REPO.parent / "shared" / "data"))


def _timed(fn, *args, **kw) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn(*args, **kw)
    return time.perf_counter() - t, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--url", default=os.environ.get("TECHNIC_TEST_TIMESCALE_URL"),
                    help="admin URL of a server with timescaledb preloaded")
    args = ap.parse_args()
    if not args.url:
        sys.exit("no TimescaleDB server: pass --url or set TECHNIC_TEST_TIMESCALE_URL")

    import pandas as pd
    import psycopg
    import pyarrow.parquet as pq
    import sqlalchemy as sa

    from technic.cache import FrameCache
    from technic.jobs.ingest import ingest_files
    from technic.jobs.refresh import refresh_features
    from technic.jobs.scan import ScanParams, run_scan

    daily, five = SHARED / "bars_daily.parquet", SHARED / "bars_5min.parquet"
    for p in (daily, five):
        if not p.exists():
            sys.exit(f"{p} not found (set TECHNIC_SHARED_DATA)")
    tmp = Path(tempfile.mkdtemp(prefix="technic_ts_bench_"))
    (tmp / "day").mkdir()
    pq.read_table(daily, filters=[("date", "=", pd.Timestamp("2023-06-01").date())]) \
        .to_pandas().to_parquet(tmp / "day" / "bars_daily.parquet")

    res: dict[str, dict[str, list[float]]] = {"timescaledb": {}, "native": {}}

    def add(variant: str, key: str, value: float) -> None:
        res[variant].setdefault(key, []).append(value)
        print(f"{variant:12s} {key:26s} {value:9.3f}", file=sys.stderr)

    with throwaway_database(args.url) as url:
        def checkpoint() -> None:
            with psycopg.connect(libpq_uri(url), autocommit=True) as c:
                c.execute("CHECKPOINT")

        last: dict[str, DatabaseTarget] = {}
        for i in range(args.repeat):
            order = ("timescaledb", "native") if i % 2 == 0 else ("native", "timescaledb")
            for variant in order:
                t = DatabaseTarget(url, f"{variant[:2]}_{i}", "bench")
                got = init_db(get_engine(t), t.schema, timescale=variant == "timescaledb")
                assert got.variant == variant, got
                checkpoint()
                s, reps = _timed(ingest_files, t, daily)
                add(variant, "daily_ingest_s", s)
                checkpoint()
                s, reps = _timed(ingest_files, t, five)
                add(variant, "five_min_ingest_s", s)
                add(variant, "five_min_rollups_s", reps[-1].timings.get("rollups_s", 0.0))
                last[variant] = t

        def refresh_and_scan(suffix: str) -> None:
            for variant, t in last.items():
                for _ in range(args.repeat):
                    s, _ = _timed(refresh_features, t, lookback_bars=300, chunk_size=1000)
                    add(variant, f"refresh{suffix}_s", s)
                    s, _ = _timed(run_scan, t, ScanParams(top=25), cache=FrameCache(None))
                    add(variant, f"scan{suffix}_s", s)

        refresh_and_scan("")
        ts = last["timescaledb"]
        with get_engine(ts).connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            t0 = time.perf_counter()
            for table, before in (("bars_daily", "DATE '2025-01-01'"),
                                  ("bars_intraday", "TIMESTAMPTZ '2026-06-18'")):
                for ch in c.execute(sa.text(f"SELECT show_chunks('{ts.schema}.{table}', "
                                            f"older_than => {before})")).scalars().all():
                    c.execute(sa.text(f"SELECT compress_chunk('{ch}')"))
                b, a = c.execute(sa.text(
                    "SELECT sum(before_compression_total_bytes), "
                    "sum(after_compression_total_bytes) FROM "
                    f"chunk_compression_stats('{ts.schema}.{table}') "
                    "WHERE compression_status = 'Compressed'")).one()
                add("timescaledb", f"{table}_compression_ratio", float(b) / float(a))
                add("timescaledb", f"{table}_compressed_mb_before", float(b) / 2**20)
                add("timescaledb", f"{table}_compressed_mb_after", float(a) / 2**20)
            add("timescaledb", "compress_s", time.perf_counter() - t0)
        refresh_and_scan("_compressed")
        for variant, t in last.items():
            for _ in range(args.repeat):
                s, reps = _timed(ingest_files, t, tmp / "day" / "bars_daily.parquet")
                assert reps[-1].rows_unchanged == reps[-1].rows_read, reps[-1]
                add(variant, "reingest_old_day_s", s)

    med = {v: {k: round(statistics.median(x), 3) for k, x in r.items()} for v, r in res.items()}
    table = pd.DataFrame(med)
    table["timescaledb / native"] = (table["timescaledb"] / table["native"]).round(2)
    print(table.to_string())
    print(json.dumps({"benchmark": "timescale", "repeat": args.repeat, "results": med}))


if __name__ == "__main__":
    main()
