"""HTTP API benchmark (``technic serve``): read load on the latest scan, and concurrent
streamed scans checked against the CLI.

1. ``--clients`` (200) concurrent clients, each sending ``GET /v1/scans/latest?limit=100``
   back to back for ``--duration`` (30) seconds: requests/s, p50/p99/max latency, errors. The
   server is one uvicorn process (``technic serve``); the clients run in ``--client-procs``
   processes (asyncio + httpx) ON THE SAME MACHINE, so they share its cores with the server:
   on a 2-core machine the figures are a lower bound of what the server alone does.
2. ``--scans`` (20) scans started at once with ``POST /v1/scans``, each followed over its
   Server-Sent Events stream: all must complete, and every stream's rows must equal
   ``technic scan --json --top 100000`` (the CLI, run once afterwards on the same data).

Data: ``--database-url`` (a database that already holds ingested bars and features; a
default scan is run first if it has none), else a throwaway database with the bundled real
subset (1,000 symbols) ingested and refreshed here.

Prints a table and, last, one JSON line.

    nice -n 10 python benchmarks/http.py [--duration 30] [--clients 200] [--scans 20]
"""

from __future__ import annotations

import os.path
import sys  # noqa: I001 (first: the path fix below must precede `import httpx`)

# Run as a script, this file's folder is sys.path[0], and this file's name would shadow the
# standard library's `http` package (which httpx imports): drop that entry.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    sys.path.pop(0)

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import socket
import subprocess
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PATH = "/v1/scans/latest?limit=100"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _load_httpx(url: str, clients: int, duration: float
                      ) -> tuple[list[float], int, int]:
    """``clients`` concurrent loops of GET ``url`` with httpx for ``duration`` s: latencies
    (s) of the successful requests, the number of errors, and of bytes received."""
    lat: list[float] = []
    errors = 0
    nbytes = 0
    end = time.perf_counter() + duration
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        async def one() -> None:
            nonlocal errors, nbytes
            while time.perf_counter() < end:
                t = time.perf_counter()
                try:
                    r = await client.get(url)
                    if r.status_code == 200:
                        lat.append(time.perf_counter() - t)
                        nbytes += len(r.content)
                    else:
                        errors += 1
                except httpx.HTTPError:
                    errors += 1

        await asyncio.gather(*(one() for _ in range(clients)))
    return lat, errors, nbytes


async def _load_raw(url: str, clients: int, duration: float) -> tuple[list[float], int, int]:
    """The same load with a minimal HTTP/1.1 keep-alive client on asyncio streams (one
    connection per client; a response is read by its Content-Length, the only framing
    ``technic serve`` uses for JSON). It costs the machine far less CPU than httpx, so more
    of the shared cores go to the server."""
    u = httpx.URL(url)
    target = u.raw_path.decode()
    request = (f"GET {target} HTTP/1.1\r\nHost: {u.host}:{u.port}\r\n"
               "Accept: application/json\r\n\r\n").encode()
    lat: list[float] = []
    errors = 0
    nbytes = 0
    end = time.perf_counter() + duration

    async def one() -> None:
        nonlocal errors, nbytes
        reader, writer = await asyncio.open_connection(u.host, u.port)
        try:
            while time.perf_counter() < end:
                t = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.split(b"\r\n")
                length = next(int(v.split(b":", 1)[1]) for v in lines
                              if v.lower().startswith(b"content-length:"))
                body = await reader.readexactly(length)
                if lines[0].split()[1] == b"200":
                    lat.append(time.perf_counter() - t)
                    nbytes += len(body)
                else:
                    errors += 1
        except (OSError, asyncio.IncompleteReadError, StopIteration):
            errors += 1
        finally:
            writer.close()

    await asyncio.gather(*(one() for _ in range(clients)))
    return lat, errors, nbytes


def _load_proc(url: str, clients: int, duration: float, q, client: str) -> None:
    load = _load_raw if client == "raw" else _load_httpx
    lat, errors, nbytes = asyncio.run(load(url, clients, duration))
    q.put((lat, errors, nbytes))


def read_load(base: str, clients: int, duration: float, procs: int, client: str) -> dict:
    """Run the read load (``clients`` split over ``procs`` processes) and summarise it."""
    httpx.get(base + PATH, timeout=60).raise_for_status()  # warm the page cache
    q: mp.Queue = mp.Queue()
    per = [clients // procs + (1 if i < clients % procs else 0) for i in range(procs)]
    ps = [mp.Process(target=_load_proc, args=(base + PATH, n, duration, q, client)) for n in per]
    t0 = time.perf_counter()
    for p in ps:
        p.start()
    parts = [q.get() for _ in ps]
    for p in ps:
        p.join()
    wall = time.perf_counter() - t0
    lat = np.array([x for part in parts for x in part[0]])
    errors = sum(part[1] for part in parts)
    return {"clients": clients, "client": client, "client_procs": procs,
            "duration_s": duration,
            "requests": int(lat.size), "errors": errors,
            "req_per_s": round(lat.size / duration, 1),
            "p50_ms": round(float(np.percentile(lat, 50)) * 1e3, 2),
            "p99_ms": round(float(np.percentile(lat, 99)) * 1e3, 2),
            "max_ms": round(float(lat.max()) * 1e3, 2),
            "mb_per_s": round(sum(part[2] for part in parts) / duration / 1e6, 1),
            "wall_s": round(wall, 2)}


async def _streamed_scans(base: str, key: str, n: int) -> tuple[list[list[dict]], float]:
    """Start ``n`` scans at once and read each one's event stream to its end."""
    async with httpx.AsyncClient(timeout=600) as client:
        async def one() -> list[dict]:
            r = await client.post(base + "/v1/scans", json={}, headers={"X-API-Key": key})
            r.raise_for_status()
            run_id = r.json()["run_id"]
            rows: list[dict] = []
            done = None
            event, data = None, []
            async with client.stream("GET", f"{base}/v1/scans/{run_id}/events",
                                     params={"chunk": 500}) as s:
                async for line in s.aiter_lines():
                    if line.startswith("event: "):
                        event = line[7:]
                    elif line.startswith("data: "):
                        data.append(line[6:])
                    elif line == "" and event:
                        d = json.loads("".join(data))
                        if event == "results":
                            rows += d["rows"]
                        elif event in ("done", "failed"):
                            done = (event, d)
                        event, data = None, []
            assert done is not None and done[0] == "done", done
            assert done[1]["results"] == len(rows)
            return rows

        t0 = time.perf_counter()
        out = await asyncio.gather(*(one() for _ in range(n)))
        return list(out), time.perf_counter() - t0


def streamed_scans(base: str, key: str, n: int, env: dict) -> dict:
    results, wall = asyncio.run(_streamed_scans(base, key, n))
    cli = subprocess.run([sys.executable, "-m", "technic.cli", "scan", "--json", "--top",
                          "100000"], env=env, capture_output=True, text=True, check=True)
    expected = json.loads(cli.stdout)["results"]
    equal = sum(rows == expected for rows in results)
    return {"scans": n, "completed": len(results), "equal_to_cli": equal,
            "rows_per_scan": len(expected), "all_done_s": round(wall, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--client-procs", type=int, default=1)
    ap.add_argument("--client", choices=("raw", "httpx"), default="raw",
                    help="load client: a minimal asyncio HTTP/1.1 client, or httpx")
    ap.add_argument("--scans", type=int, default=20, help="0: skip the streamed scans")
    ap.add_argument("--database-url", default=os.environ.get("TECHNIC_BENCH_DATABASE_URL"))
    args = ap.parse_args()

    from benchmarks._db import throwaway_database

    with ExitStack() as stack:
        url = args.database_url or stack.enter_context(throwaway_database())
        env = {**os.environ, "TECHNIC_DATABASE_URL": url, "TECHNIC_DB_SCHEMA": "technic",
               "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
        from technic.store.db import DatabaseTarget, get_engine
        from technic.store.schema import init_db

        target = DatabaseTarget(url, "technic", "benchmark")
        init_db(get_engine(target), target.schema)
        from technic.store.browse import latest_run_id

        if args.database_url is None:
            from technic.config import BUNDLED_DATA_DIR
            from technic.jobs.ingest import ingest_files
            from technic.jobs.refresh import refresh_features

            ingest_files(target, BUNDLED_DATA_DIR)
            refresh_features(target, lookback_bars=300, chunk_size=500)
        if latest_run_id(target) is None:
            from technic.jobs.scan import ScanParams, run_scan

            run_scan(target, ScanParams())
        key = "bench-" + os.urandom(8).hex()
        port = _free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "technic.cli", "serve", "--port", str(port)],
            env={**env, "TECHNIC_API_KEY": key}, stdout=subprocess.DEVNULL)
        stack.callback(server.wait, 60)
        stack.callback(server.terminate)
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                httpx.get(base + "/v1/health", timeout=2).raise_for_status()
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        load = read_load(base, args.clients, args.duration, args.client_procs, args.client)
        scans = streamed_scans(base, key, args.scans, env) if args.scans else None
    print(f"GET {PATH}: {load['clients']} clients ({load['client']}, "
          f"{load['client_procs']} client process(es) on this machine), "
          f"{load['duration_s']:.0f} s")
    print(f"  {load['requests']:,} requests, {load['errors']} errors, "
          f"{load['req_per_s']:,.1f} req/s, p50 {load['p50_ms']} ms, p99 {load['p99_ms']} ms, "
          f"max {load['max_ms']} ms, {load['mb_per_s']} MB/s")
    if scans:
        print(f"{scans['scans']} concurrent SSE scans: {scans['completed']} completed, "
              f"{scans['equal_to_cli']} equal to `technic scan --json` "
              f"({scans['rows_per_scan']} rows each), all done in {scans['all_done_s']} s")
    print(json.dumps({"cpus": os.cpu_count(), "load": load, "sse_scans": scans}))


if __name__ == "__main__":
    main()
