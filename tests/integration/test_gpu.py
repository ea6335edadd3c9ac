"""GPU twins of the indicator kernels and GPU routing on Dask.

* Simulator: the numba.cuda kernels run in numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``
  must be set before numba is imported, so in a subprocess) on small panels with gaps and
  short histories, and must equal the CPU path to ≤ 1e-9 relative (bit for bit except the
  log returns of realized volatility).
* PTX: every kernel compiles for sm_90 with libNVVM (no GPU needed; skipped without NVVM),
  and kernels without a TA-Lib FMA contain no fused multiply-add.
* Real GPU: the same comparisons on a bigger panel; skipped when numba.cuda finds no device.
* Dask: a real ``LocalCluster`` of processes, one worker declaring ``GPU=1``: GPU chunks run
  only there; on a CPU-only cluster, one warning and the chunks run on the CPU, complete.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from technic import indicators as ind
from technic.compute import cuda_available, resolve_device, run_chunks
from technic.features import compute_features, feature_arrays
from technic.panel import Panel

REPO = Path(__file__).resolve().parents[2]
REL_TOL = 1e-9


# ---------------------------------------------------------------------------------------------
# Shared: a panel with gaps, late listings, early delistings and flat stretches.
# ---------------------------------------------------------------------------------------------


def make_panel(t_len: int, n: int, seed: int = 0) -> Panel:
    """Random-walk bars with every kind of gap the gap policy must handle."""
    rng = np.random.default_rng(seed)
    c = 50.0 * np.exp(np.cumsum(rng.normal(0, 0.02, (t_len, n)), axis=0))
    h = c * (1 + rng.uniform(0, 0.02, (t_len, n)))
    lo = c * (1 - rng.uniform(0, 0.02, (t_len, n)))
    o = c * (1 + rng.normal(0, 0.005, (t_len, n)))
    v = rng.integers(10_000, 1_000_000, (t_len, n)).astype(np.float64)
    if n >= 6:
        c[10:25, 5] = c[9, 5]  # unchanged closes: zero returns, RSI 0, flat windows
        h[10:25, 5] = lo[10:25, 5] = c[9, 5]
    for a in (o, h, lo, c, v):
        a[5:9, 1 % n] = np.nan  # mid-history vendor gap
        a[: t_len // 2, 2 % n] = np.nan  # listed late: short history
        if n >= 4:
            a[2 * t_len // 3:, 3] = np.nan  # delisted
            a[::4, 4 % n] = np.nan  # every 4th bar missing
        if n >= 8:
            a[:, 7] = np.nan  # never traded in the window
    dates = (np.datetime64("2024-01-01") + np.arange(t_len)).astype("datetime64[D]")
    return Panel(dates, np.array([f"S{i:03d}" for i in range(n)], dtype=object), o, h, lo, c, v)


def compare(got, want) -> float:
    """Max relative difference of two arrays; AssertionError when the NaN masks differ."""
    a, b = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert a.shape == b.shape
    na, nb = np.isnan(a), np.isnan(b)
    assert np.array_equal(na, nb), f"NaN masks differ at {np.argwhere(na != nb)[:5].tolist()}"
    if not (~nb).any():
        return 0.0
    x, y = a[~na], b[~nb]
    same = (x == y) | (np.isinf(x) & (x == y))
    diff = np.where(same, 0.0, np.abs(x - y) / np.maximum(np.abs(y), 1e-300))
    return float(diff.max())


def kernel_cases(p: Panel):
    """``(name, gpu result, cpu result)`` for every GPU twin, on small periods."""
    from technic.indicators import gpu

    c, h, lo, v = p.close, p.high, p.low, p.volume
    cases = [
        ("sma", gpu.sma(c, 5), ind.sma(c, 5)),
        ("sma_1d", gpu.sma(c[:, 0], 3), ind.sma(c[:, 0], 3)),
        ("ema", gpu.ema(c, 5), ind.ema(c, 5)),
        ("ema_1", gpu.ema(c, 1), ind.ema(c, 1)),
        ("rsi", gpu.rsi(c, 5), ind.rsi(c, 5)),
        ("atr", gpu.atr(h, lo, c, 5), ind.atr(h, lo, c, 5)),
        ("adx", gpu.adx(h, lo, c, 4), ind.adx(h, lo, c, 4)),
        ("obv", gpu.obv(c, v), ind.obv(c, v)),
        ("roc", gpu.roc(c, 4), ind.roc(c, 4)),
        ("lag", gpu.lag(c, 4), ind.lag(c, 4)),
        ("lag_0", gpu.lag(c, 0), ind.lag(c, 0)),
        ("realized_vol", gpu.realized_vol(c, 5), ind.realized_vol(c, 5)),
        ("rolling_max", gpu.rolling_max(h, 7), ind.rolling_max(h, 7)),
        ("rolling_min", gpu.rolling_min(lo, 7), ind.rolling_min(lo, 7)),
        ("rolling_max_1", gpu.rolling_max(h, 1), ind.rolling_max(h, 1)),
        ("willr", gpu.willr(h, lo, c, 5), ind.willr(h, lo, c, 5)),
        ("cci", gpu.cci(h, lo, c, 5), ind.cci(h, lo, c, 5)),
        ("mfi", gpu.mfi(h, lo, c, v, 5), ind.mfi(h, lo, c, v, 5)),
        ("linreg_r2", gpu.linreg_r2(c, 5), ind.linreg_r2(c, 5)),
        ("linreg_r2_2", gpu.linreg_r2(c, 2), ind.linreg_r2(c, 2)),
        ("linreg_r2_1d", gpu.linreg_r2(c[:, 1], 7), ind.linreg_r2(c[:, 1], 7)),
    ]
    for tag, g, w in (("macd", gpu.macd(c, 3, 6, 4), ind.macd(c, 3, 6, 4)),
                      ("bbands", gpu.bbands(c, 5, 2.0), ind.bbands(c, 5, 2.0)),
                      ("bbands_1", gpu.bbands(c, 1, 2.0), ind.bbands(c, 1, 2.0)),
                      ("stoch", gpu.stoch(h, lo, c, 5, 3, 3), ind.stoch(h, lo, c, 5, 3, 3))):
        cases += [(f"{tag}[{i}]", a, b) for i, (a, b) in enumerate(zip(g, w, strict=True))]
    return cases


def parity_report(panels: list[tuple[int, int]]) -> dict:
    """Max relative GPU-vs-CPU difference per kernel and per feature (host-side check)."""
    kernels: dict[str, float] = {}
    features: dict[str, float] = {}
    rows_ok = True
    for i, (t_len, n) in enumerate(panels):
        p = make_panel(t_len, n, seed=i)
        for name, g, w in kernel_cases(p):
            kernels[name] = max(kernels.get(name, 0.0), compare(g, w))
        cpu, gpu = feature_arrays(p), feature_arrays(p, device="gpu")
        assert set(cpu) == set(gpu)
        for k in cpu:
            features[k] = max(features.get(k, 0.0), compare(gpu[k], cpu[k]))
        days = [p.dates[-1], p.dates[-3]]
        pd.testing.assert_frame_equal(compute_features(p, days, device="gpu"),
                                      compute_features(p, days), rtol=REL_TOL, atol=0)
    return {"kernels": kernels, "features": features, "rows_ok": rows_ok}


def _simulator_main() -> dict:
    """Run in a subprocess with NUMBA_ENABLE_CUDASIM=1 (see test_kernels_in_cuda_simulator)."""
    from technic.indicators import gpu

    assert gpu.SIMULATOR and gpu.is_available()
    with np.errstate(all="ignore"):
        # 60 x 8: every gap kind; 270 x 3: long enough for SMA 200 and the 252-bar features.
        return parity_report([(60, 8), (270, 3)])


# ---------------------------------------------------------------------------------------------
# (a) numba's CUDA simulator.
# ---------------------------------------------------------------------------------------------


def test_kernels_in_cuda_simulator():
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1", "PYTHONPATH": str(REPO)}
    code = ("import json, tests.integration.test_gpu as t; "
            "print('REPORT ' + json.dumps(t._simulator_main()))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("REPORT "))
    rep = json.loads(line[len("REPORT "):])
    bad = {k: d for part in ("kernels", "features") for k, d in rep[part].items()
           if d > REL_TOL}
    assert not bad, bad
    assert rep["rows_ok"]
    # Same arithmetic as the CPU: bit-identical except the log returns of realized vol.
    inexact = {k for part in ("kernels", "features") for k, d in rep[part].items() if d > 0}
    assert inexact <= {"realized_vol", "realized_vol_20", "realized_vol_60"}, inexact


# ---------------------------------------------------------------------------------------------
# PTX for a real GPU, without one (needs libNVVM from a CUDA toolkit).
# ---------------------------------------------------------------------------------------------


def _nvvm_available() -> bool:
    try:
        from numba.cuda.cudadrv import nvvm

        return bool(nvvm.is_available())
    except Exception:  # noqa: BLE001
        return False


@pytest.mark.skipif(not _nvvm_available(), reason="libNVVM (CUDA toolkit) not installed")
def test_kernels_compile_to_ptx_without_fused_products(monkeypatch):
    import types as pytypes

    import numba.cuda.dispatcher as cuda_dispatcher
    from numba import cuda, types

    from technic.indicators import gpu

    if gpu.SIMULATOR:
        pytest.skip("simulator enabled in this process")
    # Device functions ask the current device for its compute capability; there is none.
    monkeypatch.setattr(cuda_dispatcher, "get_current_device",
                        lambda: pytypes.SimpleNamespace(compute_capability=(9, 0)))
    a = types.float64[:, ::1]
    i, f, b = types.int64, types.float64, types.boolean
    sigs = {
        "_k_sma": (a, i, a, a), "_k_ema": (a, i, a), "_k_rsi": (a, i, a),
        "_k_macd": (a, i, i, i, a, a, a), "_k_bbands": (a, i, f, a, a, a, a),
        "_k_rvol": (a, i, f, a, a), "_k_roc": (a, i, a, a), "_k_lag": (a, i, a, a),
        "_k_extreme": (a, i, b, a, a), "_k_mul": (a, a, a), "_k_atr": (a, a, a, i, a),
        "_k_adx": (a, a, a, i, f, a), "_k_obv": (a, a, a),
        "_k_stoch": (a, a, a, i, i, i, a, a, a, a, a, a), "_k_willr": (a, a, a, i, a, a, a),
        "_k_cci": (a, a, a, i, a, a), "_k_mfi": (a, a, a, a, i, a, a, a),
        "_k_linreg_r2": (a, i, a, a),
    }
    kernels = [k for k in dir(gpu) if k.startswith("_k_")]
    assert sorted(kernels) == sorted(sigs)
    no_fma = {"_k_sma", "_k_rsi", "_k_bbands", "_k_roc", "_k_lag", "_k_extreme", "_k_mul",
              "_k_adx", "_k_obv", "_k_stoch", "_k_willr", "_k_cci", "_k_mfi", "_k_linreg_r2"}
    for name, sig in sigs.items():
        ptx, _ = cuda.compile_ptx(getattr(gpu, name).py_func, sig, cc=(9, 0))
        assert ".target sm_90" in ptx
        if name in no_fma:
            assert "fma.rn.f64" not in ptx, f"{name}: a product was fused into an FMA"
        else:
            assert "fma.rn.f64" in ptx, f"{name}: TA-Lib's FMA is missing"


# ---------------------------------------------------------------------------------------------
# (b) A real GPU.
# ---------------------------------------------------------------------------------------------


def _real_gpu() -> bool:
    if not cuda_available():
        return False
    from technic.indicators import gpu

    return not gpu.SIMULATOR


needs_gpu = pytest.mark.skipif(not _real_gpu(), reason="no CUDA GPU (numba.cuda.is_available())")


@needs_gpu
def test_gpu_kernels_equal_cpu_on_a_gpu():
    rep = parity_report([(60, 8), (520, 700)])
    bad = {k: d for part in ("kernels", "features") for k, d in rep[part].items()
           if d > REL_TOL}
    assert not bad, bad


@needs_gpu
def test_device_arrays_stay_on_the_device():
    from numba import cuda

    from technic.indicators import gpu

    p = make_panel(300, 64)
    d = cuda.to_device(np.ascontiguousarray(p.close))
    out = gpu.sma(d, 20)
    assert hasattr(out, "copy_to_host")  # a device array, not copied back
    assert compare(out.copy_to_host(), ind.sma(p.close, 20)) == 0.0
    from technic.features.plans import device_series

    dev = device_series(p.close, p.high, p.low, p.volume)
    assert compare(dev["rsi_14"].copy_to_host(), ind.rsi(p.close, 14)) == 0.0


def test_gpu_device_without_cuda_raises_cleanly():
    if cuda_available():
        pytest.skip("a CUDA device (or the simulator) is present")
    from technic.indicators import gpu

    with pytest.raises(gpu.GPUUnavailableError):
        feature_arrays(make_panel(30, 2), device="gpu")
    with pytest.raises(ValueError):
        feature_arrays(make_panel(30, 2), device="tpu")


def test_resolve_device_falls_back_with_one_warning(caplog, monkeypatch):
    import technic.compute as compute

    monkeypatch.setattr(compute, "_cuda_missing_warned", False)
    with caplog.at_level(logging.WARNING, logger="technic.compute"):
        assert resolve_device("gpu", probe=lambda: False) == "cpu"
        assert resolve_device("gpu", probe=lambda: False) == "cpu"
        assert resolve_device("gpu", probe=lambda: True) == "gpu"
        assert resolve_device("cpu", probe=lambda: True) == "cpu"
    assert sum("no usable device" in r.message for r in caplog.records) == 1
    with pytest.raises(ValueError):
        resolve_device("tpu")


# ---------------------------------------------------------------------------------------------
# Dask routing: where each chunk ran.
# ---------------------------------------------------------------------------------------------


def where_chunk(i: int, device: str = "cpu") -> dict:
    """A chunk that records where it ran, what it was asked for and what it computed on."""
    from distributed import get_worker

    used = resolve_device(device)
    p = make_panel(40, 3, seed=i)
    rows = compute_features(p, device=used)
    return {"i": i, "worker": get_worker().address, "asked": device, "used": used,
            "rsi": rows["rsi_14"].tolist()}


def _local_answer(i: int) -> list:
    return compute_features(make_panel(40, 3, seed=i))["rsi_14"].tolist()


@pytest.fixture(scope="module")
def gpu_cluster():
    """Two worker processes; the second declares ``GPU=1`` (it has no real GPU here)."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                           dashboard_address=":0", silence_logs=logging.WARNING)
    spec = copy.deepcopy(next(iter(cluster.new_worker_spec().values())))
    spec["options"]["resources"] = {"GPU": 1}
    cluster.worker_spec["gpu-worker"] = spec
    cluster.sync(cluster._correct_state)
    client = Client(cluster)
    client.wait_for_workers(2, timeout=120)
    yield client
    client.close()
    cluster.close()


def test_gpu_chunks_run_only_on_the_gpu_worker(gpu_cluster, caplog):
    client = gpu_cluster
    workers = client.scheduler_info(n_workers=-1)["workers"]
    gpu_addr = [a for a, w in workers.items() if w.get("resources", {}).get("GPU")]
    assert len(gpu_addr) == 1 and len(workers) == 2
    done = []
    with caplog.at_level(logging.WARNING, logger="technic.compute"):
        res = run_chunks(client, where_chunk, [(i,) for i in range(6)],
                         lambda d, t: done.append((d, t)), gpu=True)
    assert not [r for r in caplog.records if "no Dask worker" in r.message]
    assert [r["i"] for r in res] == list(range(6))
    assert {r["worker"] for r in res} == set(gpu_addr)
    assert all(r["asked"] == "gpu" for r in res)
    # No CUDA here: the GPU worker falls back to the CPU kernels (and logs it there).
    assert {r["used"] for r in res} == {"gpu" if _real_gpu() else "cpu"}
    for r in res:
        np.testing.assert_allclose(r["rsi"], _local_answer(r["i"]), rtol=REL_TOL)
    assert done[-1] == (6, 6)
    # Without gpu=True the chunks go anywhere and compute on the CPU.
    plain = run_chunks(client, where_chunk, [(i,) for i in range(4)])
    assert {r["used"] for r in plain} == {"cpu"}


def test_cpu_only_cluster_falls_back_with_one_warning(caplog):
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0", silence_logs=logging.WARNING) as cluster, \
            Client(cluster) as client:
        client.wait_for_workers(2, timeout=120)
        with caplog.at_level(logging.WARNING, logger="technic.compute"):
            res = run_chunks(client, where_chunk, [(i,) for i in range(5)], gpu=True)
    warnings = [r for r in caplog.records if "no Dask worker declares" in r.message]
    assert len(warnings) == 1
    assert [r["i"] for r in res] == list(range(5))
    assert {(r["asked"], r["used"]) for r in res} == {("cpu", "cpu")}
    for r in res:
        assert r["rsi"] == _local_answer(r["i"])


def test_refresh_with_use_gpu_equals_cpu_refresh(fresh_target, gpu_cluster):
    from technic.jobs.ingest import ingest_synthetic
    from technic.jobs.refresh import refresh_features

    ingest_synthetic(fresh_target, 40, 300, seed=3)
    _, cpu_rows = refresh_features(fresh_target, write=False, chunk_size=15)
    rep, gpu_rows = refresh_features(fresh_target, write=False, chunk_size=15,
                                     client=gpu_cluster, use_gpu=True)
    assert rep.symbols == 40 and len(gpu_rows) == 40
    pd.testing.assert_frame_equal(gpu_rows, cpu_rows, rtol=REL_TOL, atol=0)
