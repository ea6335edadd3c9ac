"""GPU feature-set benchmark: the numba.cuda twins vs the 2-core CPU path, same run.

Data: synthetic bars from ``technic.providers.synthetic.generate_bars`` (seed 42), by default
50,000 symbols × 504 days, pivoted to time-major ``(T, N)`` panels. Measured (median of
``--repeat``, after one warm-up call that pays the CUDA JIT compile, reported separately):

* ``cpu_1t``: ``technic.features.feature_arrays(p)`` (numba CPU kernels) on one thread;
* ``cpu_2t``: the same on 2 cores: the symbols split in two halves computed by two threads
  (the kernels release the GIL), i.e. what two Dask worker processes on 2 cores do;
* ``gpu_compute``: ``technic.features.plans.device_series`` (every indicator series of the
  registry) with the inputs already on the device, synchronized (kernels only: the figure
  issue 7 asks to be ≥ 20× ``cpu_2t``);
* ``gpu_e2e``: ``feature_arrays(p, device="gpu")``: inputs copied in, every indicator
  series ``(T, N)`` copied back to the host and the features derived there;
* ``gpu_asof`` / ``cpu_asof_2t``: ``compute_features`` for the last date (what a refresh
  chunk does): on the GPU only that row is copied back.

Also the largest relative GPU-vs-CPU difference over every feature (must be ≤ 1e-9), the peak
RSS of this process and the device's name. Prints a table and, last, one JSON line. Exits
with status 2 and a clear message when numba.cuda finds no GPU (``--allow-simulator`` runs
small sizes under ``NUMBA_ENABLE_CUDASIM=1``, to check the script itself).

    python benchmarks/gpu.py [--symbols 50000] [--days 504] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        res = fn()
        times.append(time.perf_counter() - t0)
        del res
    return statistics.median(times)


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _panel(n_symbols: int, n_days: int):
    import pyarrow as pa

    from technic.panel import Panel
    from technic.providers.synthetic import generate_bars

    bars, _ = generate_bars(n_symbols, n_days, seed=42)
    p = Panel.from_arrow(pa.Table.from_pandas(bars, preserve_index=False))
    del bars
    return p


def _halves(p):
    from technic.panel import FIELDS, Panel

    mid = p.shape[1] // 2
    return [Panel(p.dates, p.symbols[s], *(np.ascontiguousarray(getattr(p, f)[:, s])
                                           for f in FIELDS))
            for s in (slice(0, mid), slice(mid, None))]


def _max_rel_diff(gpu: dict, cpu: dict) -> float:
    worst = 0.0
    for k, b in cpu.items():
        a = gpu[k]
        if not np.array_equal(np.isnan(a), np.isnan(b)):
            return float("inf")
        m = ~np.isnan(b) & (a != b)
        if m.any():
            worst = max(worst, float((np.abs(a[m] - b[m]) / np.abs(b[m])).max()))
    return worst


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--symbols", type=int, default=50_000)
    ap.add_argument("--days", type=int, default=504)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--allow-simulator", action="store_true",
                    help="accept numba's CUDA simulator (for checking this script only)")
    a = ap.parse_args()

    from technic.indicators import gpu

    if not gpu.is_available() or (gpu.SIMULATOR and not a.allow_simulator):
        print("benchmarks/gpu.py: no CUDA GPU available (numba.cuda.is_available() is False"
              + ("; the CUDA simulator is on" if gpu.SIMULATOR else "")
              + "): nothing measured. Run it on a machine with an NVIDIA GPU and a CUDA "
              "driver.", file=sys.stderr)
        print(json.dumps({"benchmark": "gpu", "available": False}))
        return 2

    from numba import cuda

    from technic.features import compute_features, feature_arrays
    from technic.features.plans import device_series

    if gpu.SIMULATOR:
        device_name = "numba CUDA simulator"
    else:
        name = cuda.get_current_device().name
        device_name = name.decode() if isinstance(name, bytes) else str(name)
    t0 = time.perf_counter()
    p = _panel(a.symbols, a.days)
    gen_s = time.perf_counter() - t0
    t_len, n = p.shape
    last = [p.dates[-1]]
    halves = _halves(p)
    pool = ThreadPoolExecutor(2)

    def cpu_2t():
        return list(pool.map(feature_arrays, halves))

    def cpu_asof_2t():
        return list(pool.map(lambda q: compute_features(q, last), halves))

    # warm-ups: numba CPU cache load, CUDA JIT compile (timed)
    feature_arrays(halves[0].tail(260))
    t0 = time.perf_counter()
    feature_arrays(p.tail(260), device="gpu")
    compile_s = time.perf_counter() - t0

    d_in = [cuda.to_device(np.ascontiguousarray(x)) for x in (p.close, p.high, p.low, p.volume)]

    def gpu_compute():
        out = device_series(*d_in)
        cuda.synchronize()
        return out

    res = {
        "cpu_1t_s": _median_time(lambda: feature_arrays(p), a.repeat),
        "cpu_2t_s": _median_time(cpu_2t, a.repeat),
        "gpu_compute_s": _median_time(gpu_compute, a.repeat),
        "gpu_e2e_s": _median_time(lambda: feature_arrays(p, device="gpu"), a.repeat),
        "cpu_asof_2t_s": _median_time(cpu_asof_2t, a.repeat),
        "gpu_asof_s": _median_time(lambda: compute_features(p, last, device="gpu"), a.repeat),
    }
    max_rel = _max_rel_diff(feature_arrays(p, device="gpu"), feature_arrays(p))
    res = {k: round(v, 4) for k, v in res.items()}
    speed = {
        "speedup_compute_vs_cpu_2t": round(res["cpu_2t_s"] / res["gpu_compute_s"], 1),
        "speedup_e2e_vs_cpu_2t": round(res["cpu_2t_s"] / res["gpu_e2e_s"], 1),
        "speedup_asof_vs_cpu_2t": round(res["cpu_asof_2t_s"] / res["gpu_asof_s"], 1),
    }
    print(f"GPU feature set, synthetic {n:,} symbols x {t_len} days, median of {a.repeat}, "
          f"device {device_name}{' (simulator)' if gpu.SIMULATOR else ''}")
    print(f"{'path':<46}{'seconds':>10}{'vs cpu 2 cores':>16}")
    print("-" * 72)
    rows = [("CPU, 1 thread (feature_arrays)", res["cpu_1t_s"]),
            ("CPU, 2 cores (two halves, 2 threads)", res["cpu_2t_s"]),
            ("GPU kernels, data on device", res["gpu_compute_s"]),
            ("GPU end to end (copy in, all outputs back)", res["gpu_e2e_s"]),
            ("CPU as-of rows, 2 cores (compute_features)", res["cpu_asof_2t_s"]),
            ("GPU as-of rows (copy in, one row back)", res["gpu_asof_s"])]
    for name, s in rows:
        base = res["cpu_asof_2t_s"] if "as-of" in name else res["cpu_2t_s"]
        print(f"{name:<46}{s:>10.3f}{base / s:>15.1f}x")
    print(f"CUDA JIT compile (first call): {compile_s:.2f} s; max relative GPU-CPU difference: "
          f"{max_rel:.2e}; data generation {gen_s:.1f} s; peak RSS {_peak_rss_mib():,.0f} MiB")
    print(json.dumps({"benchmark": "gpu", "available": True, "device": device_name,
                      "simulator": gpu.SIMULATOR, "T": t_len, "N": n, "repeat": a.repeat,
                      **res, **speed, "cuda_compile_s": round(compile_s, 2),
                      "max_rel_diff": max_rel, "peak_rss_mib": round(_peak_rss_mib())}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
