"""Indicator-engine benchmark: technic's numba kernels vs a plain TA-Lib per-symbol loop.

Data sets: synthetic 6,000 symbols × 504 days (``technic.providers.synthetic.generate_bars``,
seed 42, pivoted to ``(T, N)`` panels), the full real universe (``bars_daily.parquet`` pivoted
to ``(752, 8349)``), and with ``--big`` synthetic 50,000 × 504. For each:

* the "standard 16" (SMA 20/50/200, EMA 12/26, RSI 14, MACD 12/26/9, BBANDS 20/2, ATR 14,
  ADX 14, OBV, ROC 10, STOCH 14/3/3, WILLR 14, CCI 20, MFI 14) via ``technic.indicators``
  on the panels, and via ``talib`` called on each full column (no compress/scatter), in the
  same run, median of ``--repeat``; their ratio;
* the full set (the standard 16 plus the other 20 kernels) via technic;
* peak RSS of this process after the data set (``resource.getrusage``).

Numba compile cost is measured once, in fresh subprocesses: with ``NUMBA_CACHE_DIR`` pointed
at an empty temporary directory (cold: every kernel compiles) and again with that directory
warm (cache load only). Prints a table and, last, one JSON line with every figure.

    python benchmarks/indicators.py [--repeat 5] [--big] [--only synthetic|real]
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


def _synthetic_panels(n_symbols: int, n_days: int):
    import pyarrow as pa

    from technic.panel import Panel
    from technic.providers.synthetic import generate_bars

    bars, _ = generate_bars(n_symbols, n_days, seed=42)
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


def _bench_dataset(name: str, p, repeat: int, talib_mod) -> dict:
    from technic import indicators as ind

    args = (p.open, p.high, p.low, p.close, p.volume)
    _standard16_technic(ind, *args)  # warm-up (cache load, page faults)
    _rest_technic(ind, *args)
    t_std = _median_time(lambda: _standard16_technic(ind, *args), repeat)
    t_rest = _median_time(lambda: _rest_technic(ind, *args), repeat)
    row = {"dataset": name, "T": p.close.shape[0], "N": p.close.shape[1],
           "technic_std16_s": t_std, "technic_full36_s": t_std + t_rest,
           "technic_rest20_s": t_rest}
    if talib_mod is not None:
        t_ta = _median_time(lambda: _standard16_talib(talib_mod, *args), repeat)
        row["talib_loop_std16_s"] = t_ta
        row["speedup_std16"] = t_ta / t_std
    row["peak_rss_mib"] = _peak_rss_mib()
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--big", action="store_true", help="also synthetic 50,000 x 504")
    ap.add_argument("--only", choices=("synthetic", "real"))
    a = ap.parse_args()
    try:
        import talib
    except ImportError:  # pragma: no cover - TA-Lib is a dev dependency
        talib = None

    compile_info = _compile_times()
    rows = []
    if a.only in (None, "synthetic"):
        sizes = [(6000, 504)] + ([(50000, 504)] if a.big else [])
        for n_sym, n_days in sizes:
            p = _synthetic_panels(n_sym, n_days)
            rows.append(_bench_dataset(f"synthetic_{n_sym}x{n_days}", p, a.repeat, talib))
            del p
    if a.only in (None, "real") and (SHARED / "bars_daily.parquet").exists():
        p = _real_panels()
        rows.append(_bench_dataset("real_universe", p, a.repeat, talib))
        del p

    hdr = (f"{'dataset':<22}{'T x N':>13}{'technic 16':>12}{'talib loop':>12}{'ratio':>8}"
           f"{'full 36':>10}{'peak RSS':>11}")
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        ta = r.get("talib_loop_std16_s", float("nan"))
        sp = r.get("speedup_std16", float("nan"))
        print(f"{r['dataset']:<22}{r['T']:>6} x {r['N']:<5}{r['technic_std16_s']:>11.3f}s"
              f"{ta:>11.3f}s{sp:>7.2f}x{r['technic_full36_s']:>9.3f}s"
              f"{r['peak_rss_mib']:>8.0f} MiB")
    print(f"numba compile (empty cache): import {compile_info['cold_import_s']:.2f}s + first "
          f"calls {compile_info['cold_first_calls_s']:.2f}s; warm cache: import "
          f"{compile_info['warm_import_s']:.2f}s + first calls "
          f"{compile_info['warm_first_calls_s']:.2f}s")
    print(json.dumps({"benchmark": "indicators", "repeat": a.repeat, "datasets": rows,
                      "compile": compile_info}))


if __name__ == "__main__":
    main()
