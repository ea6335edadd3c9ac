"""Indicator-engine benchmark: technic's numba kernels vs a plain TA-Lib per-symbol loop.

Data sets: synthetic 6,000 symbols × 504 days (``technic.providers.synthetic.generate_bars``,
seed 42, pivoted to ``(T, N)`` panels), the full real universe (``bars_daily.parquet`` pivoted
to ``(752, 8349)``), and synthetic 50,000 × 504 processed in chunks of ``--chunk`` symbols
(5,000 by default; chunk k uses seed 42 + k), so that memory stays bounded the way the
feature refresh bounds it. For each:

* the "standard 16" (SMA 20/50/200, EMA 12/26, RSI 14, MACD 12/26/9, BBANDS 20/2, ATR 14,
  ADX 14, OBV, ROC 10, STOCH 14/3/3, WILLR 14, CCI 20, MFI 14) via ``technic.indicators``
  on the panels, and via ``talib`` called on each full column (no compress/scatter), in the
  same run, alternating, median of ``--repeat`` (for the chunked set: the sum over chunks of
  each chunk's median of ``--big-repeat``); their ratio in wall time and in CPU time (user +
  system of the process: the figure to trust on a busy machine);
* the full set (the standard 16 plus the other 20 kernels) via technic;
* peak RSS: each data set runs in its own fresh subprocess (``--child``), which reports its
  ``ru_maxrss`` after the imports and a warm-up on a tiny panel (``rss_base_mib``) and at the
  end (``peak_rss_mib``: data, panels, every output of one call set, TA-Lib's outputs).

Numba compile cost is measured once, in fresh subprocesses: with ``NUMBA_CACHE_DIR`` pointed
at an empty temporary directory (cold: every kernel compiles) and again with that directory
warm (cache load only). Prints a table and, last, one JSON line with every figure.

    python benchmarks/indicators.py [--repeat 5] [--big-repeat 1] [--chunk 5000] [--no-big]
                                    [--only synthetic|real|big]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SHARED = Path(os.environ.get("TECHNIC_SHARED_DATA", REPO.parent / "shared" / "data"))
#: Synthetic sets up to this many symbols run in one piece; larger ones in --chunk pieces.
_UNCHUNKED = 10_000


def _standard16_technic(ind, o, h, lo, c, v):
    return [ind.sma(c, 20), ind.sma(c, 50), ind.sma(c, 200), ind.ema(c, 12), ind.ema(c, 26),
            ind.rsi(c, 14), ind.macd(c, 12, 26, 9), ind.bbands(c, 20, 2.0),
            ind.atr(h, lo, c, 14), ind.adx(h, lo, c, 14), ind.obv(c, v), ind.roc(c, 10),
            ind.stoch(h, lo, c, 14, 3, 3), ind.willr(h, lo, c, 14), ind.cci(h, lo, c, 20),
            ind.mfi(h, lo, c, v, 14)]


def _rest_technic(ind, o, h, lo, c, v):
    return [ind.wma(c, 20), ind.dema(c, 20), ind.tema(c, 20), ind.natr(h, lo, c, 14),
            ind.stochrsi(c, 14, 5, 3), ind.aroon(h, lo, 14), ind.mom(c, 10),
            ind.linreg_slope(c, 14), ind.cmf(h, lo, c, v, 20), ind.rolling_vwap(h, lo, c, v, 20),
            ind.donchian(h, lo, 20), ind.keltner(h, lo, c, 20, 10, 2.0), ind.gap_pct(o, c),
            ind.rel_volume(v, 20), ind.dist_from_high(c, h, 252), ind.plus_di(h, lo, c, 14),
            ind.minus_di(h, lo, c, 14), ind.realized_vol(c, 20), ind.rolling_max(h, 252),
            ind.rolling_min(lo, 252)]


def _standard16_talib(ta, o, h, lo, c, v):
    out = []
    for j in range(c.shape[1]):
        cj, hj, lj, vj = c[:, j], h[:, j], lo[:, j], v[:, j]
        out.append((ta.SMA(cj, 20), ta.SMA(cj, 50), ta.SMA(cj, 200), ta.EMA(cj, 12),
                    ta.EMA(cj, 26), ta.RSI(cj, 14), ta.MACD(cj, 12, 26, 9),
                    ta.BBANDS(cj, 20, 2.0, 2.0, 0), ta.ATR(hj, lj, cj, 14),
                    ta.ADX(hj, lj, cj, 14), ta.OBV(cj, vj), ta.ROC(cj, 10),
                    ta.STOCH(hj, lj, cj, 14, 3, 0, 3, 0), ta.WILLR(hj, lj, cj, 14),
                    ta.CCI(hj, lj, cj, 20), ta.MFI(hj, lj, cj, vj, 14)))
    return out


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


def _synthetic_panels(n_symbols: int, n_days: int, seed: int = 42):
    import pyarrow as pa

    from technic.panel import Panel
    from technic.providers.synthetic import generate_bars

    bars, _ = generate_bars(n_symbols, n_days, seed=seed)
    p = Panel.from_arrow(pa.Table.from_pandas(bars, preserve_index=False))
    del bars
    return p


def _real_panels():
    import pyarrow.parquet as pq

    from technic.panel import Panel

    return Panel.from_arrow(pq.read_table(SHARED / "bars_daily.parquet"))


_COMPILE_SNIPPET = """
import time
t0 = time.perf_counter()
import numpy as np
from technic import indicators as ind
t1 = time.perf_counter()
rng = np.random.default_rng(0)
c = 50 + np.cumsum(rng.normal(0, 1, (300, 3)), axis=0)
h, lo, o, v = c + 1, c - 1, c + 0.5, np.full(c.shape, 1e5)
ind.sma(c, 20); ind.ema(c, 12); ind.rsi(c, 14); ind.macd(c); ind.bbands(c, 20, 2.0)
ind.atr(h, lo, c, 14); ind.adx(h, lo, c, 14); ind.obv(c, v); ind.roc(c, 10)
ind.stoch(h, lo, c); ind.willr(h, lo, c); ind.cci(h, lo, c); ind.mfi(h, lo, c, v)
ind.wma(c, 20); ind.dema(c, 20); ind.tema(c, 20); ind.natr(h, lo, c); ind.stochrsi(c)
ind.aroon(h, lo); ind.mom(c); ind.linreg_slope(c); ind.cmf(h, lo, c, v)
ind.rolling_vwap(h, lo, c, v); ind.donchian(h, lo); ind.keltner(h, lo, c); ind.gap_pct(o, c)
ind.rel_volume(v); ind.dist_from_high(c, h, 50); ind.plus_di(h, lo, c); ind.lag(c, 1)
ind.realized_vol(c, 20); ind.rolling_max(h, 20); ind.rolling_min(lo, 20)
t2 = time.perf_counter()
print(t1 - t0, t2 - t1)
"""


def _compile_times() -> dict[str, float]:
    """Import + first-call times in fresh interpreters: empty numba cache, then warm cache."""
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="numba-cache-") as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache, PYTHONPATH=str(REPO))
        for label in ("cold", "warm"):
            t0 = time.perf_counter()
            r = subprocess.run([sys.executable, "-c", _COMPILE_SNIPPET], env=env, cwd=REPO,
                               capture_output=True, text=True, check=True)
            wall = time.perf_counter() - t0
            imp, first = (float(x) for x in r.stdout.split())
            out[f"{label}_import_s"] = imp
            out[f"{label}_first_calls_s"] = first
            out[f"{label}_process_s"] = wall
    return out


def _time_dataset(p, repeat: int, talib_mod) -> dict:
    """Median times of the standard 16 (technic, TA-Lib loop) and of the other 20 on ``p``.

    The technic and TA-Lib runs of the standard 16 alternate (technic, TA-Lib, technic, ...)
    so that a change in the machine's load hits both; each is timed in wall seconds and in
    CPU seconds of this process (user + system, ``resource.getrusage``: less sensitive to
    other processes on a busy machine).
    """
    from technic import indicators as ind

    args = (p.open, p.high, p.low, p.close, p.volume)
    _standard16_technic(ind, *args)  # warm-up (cache load, page faults)
    _rest_technic(ind, *args)
    runs = {"technic": lambda: _standard16_technic(ind, *args)}
    if talib_mod is not None:
        runs["talib"] = lambda: _standard16_talib(talib_mod, *args)
    wall: dict[str, list[float]] = {k: [] for k in runs}
    cpu: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(repeat):
        for k, fn in runs.items():
            c0, t0 = _cpu_s(), time.perf_counter()
            res = fn()
            wall[k].append(time.perf_counter() - t0)
            cpu[k].append(_cpu_s() - c0)
            del res
    out = {"technic_std16_s": statistics.median(wall["technic"]),
           "technic_std16_cpu_s": statistics.median(cpu["technic"]),
           "technic_rest20_s": _median_time(lambda: _rest_technic(ind, *args), repeat)}
    if talib_mod is not None:
        out["talib_loop_std16_s"] = statistics.median(wall["talib"])
        out["talib_loop_std16_cpu_s"] = statistics.median(cpu["talib"])
    return out


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _warm_up() -> None:
    """Load every kernel used (numba cache) on a tiny panel, so the baseline RSS has them."""
    import numpy as np

    from technic import indicators as ind

    rng = np.random.default_rng(0)
    c = 50 + np.cumsum(rng.normal(0, 1, (300, 3)), axis=0)
    args = (c + 0.5, c + 1, c - 1, c, np.full(c.shape, 1e5))
    _standard16_technic(ind, *args)
    _rest_technic(ind, *args)


def _child(dataset: str, repeat: int, big_repeat: int, chunk: int) -> dict:
    """One data set in this (fresh) process: times and ``ru_maxrss`` (one JSON row)."""
    try:
        import talib
    except ImportError:  # pragma: no cover - TA-Lib is a dev dependency
        talib = None
    _warm_up()
    row: dict = {"dataset": dataset, "rss_base_mib": _peak_rss_mib()}
    if dataset == "real_universe":
        p = _real_panels()
        row.update(T=p.close.shape[0], N=p.close.shape[1], chunk_symbols=p.close.shape[1])
        row.update(_time_dataset(p, repeat, talib))
    else:
        n_sym, n_days = (int(x) for x in dataset.removeprefix("synthetic_").split("x"))
        big = n_sym > _UNCHUNKED
        step = min(chunk, n_sym) if big else n_sym
        row.update(T=n_days, N=n_sym, chunk_symbols=step)
        reps = big_repeat if big else repeat
        totals: dict[str, float] = {}
        for k, j0 in enumerate(range(0, n_sym, step)):
            p = _synthetic_panels(min(step, n_sym - j0), n_days, seed=42 + k)
            for key, val in _time_dataset(p, reps, talib).items():
                totals[key] = totals.get(key, 0.0) + val
            del p
        row.update(totals)
    row["technic_full36_s"] = row["technic_std16_s"] + row["technic_rest20_s"]
    if "talib_loop_std16_s" in row:
        row["speedup_std16"] = row["talib_loop_std16_s"] / row["technic_std16_s"]
        row["speedup_std16_cpu"] = row["talib_loop_std16_cpu_s"] / row["technic_std16_cpu_s"]
    row["peak_rss_mib"] = _peak_rss_mib()
    return row


def _run_child(dataset: str, a: argparse.Namespace) -> dict:
    """Run ``_child`` in a fresh interpreter (its own peak RSS) and return its JSON row."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", dataset,
           "--repeat", str(a.repeat), "--big-repeat", str(a.big_repeat), "--chunk", str(a.chunk)]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    r = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--big-repeat", type=int, default=1,
                    help="repeats per chunk of the chunked 50,000-symbol set")
    ap.add_argument("--chunk", type=int, default=5000, help="symbols per chunk of the big set")
    ap.add_argument("--no-big", action="store_true", help="skip synthetic 50,000 x 504")
    ap.add_argument("--only", choices=("synthetic", "real", "big"))
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(_child(a.child, a.repeat, a.big_repeat, a.chunk)))
        return

    compile_info = _compile_times()
    datasets = []
    if a.only in (None, "synthetic"):
        datasets.append("synthetic_6000x504")
    if a.only in (None, "real") and (SHARED / "bars_daily.parquet").exists():
        datasets.append("real_universe")
    if a.only == "big" or (a.only is None and not a.no_big):
        datasets.append("synthetic_50000x504")
    rows = [_run_child(ds, a) for ds in datasets]

    hdr = (f"{'dataset':<22}{'T x N':>13}{'chunk':>7}{'technic 16':>12}{'talib loop':>12}"
           f"{'ratio':>8}{'CPU ratio':>10}{'full 36':>10}{'base RSS':>11}{'peak RSS':>11}")
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        ta = r.get("talib_loop_std16_s", float("nan"))
        sp = r.get("speedup_std16", float("nan"))
        spc = r.get("speedup_std16_cpu", float("nan"))
        print(f"{r['dataset']:<22}{r['T']:>6} x {r['N']:<5}{r['chunk_symbols']:>7}"
              f"{r['technic_std16_s']:>11.3f}s{ta:>11.3f}s{sp:>7.2f}x{spc:>9.2f}x"
              f"{r['technic_full36_s']:>9.3f}s{r['rss_base_mib']:>7.0f} MiB"
              f"{r['peak_rss_mib']:>7.0f} MiB")
    print(f"numba compile (empty cache): import {compile_info['cold_import_s']:.2f}s + first "
          f"calls {compile_info['cold_first_calls_s']:.2f}s; warm cache: import "
          f"{compile_info['warm_import_s']:.2f}s + first calls "
          f"{compile_info['warm_first_calls_s']:.2f}s")
    print(json.dumps({"benchmark": "indicators", "repeat": a.repeat, "datasets": rows,
                      "compile": compile_info}))


if __name__ == "__main__":
    main()
