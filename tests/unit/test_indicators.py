"""Tests of ``technic.indicators``: TA-Lib parity on real bars, and the kernel policies.

Parity: ~210 real symbols (a seeded sample plus symbols with mid-history gaps, prices above
1e6 and below 0.01, and short histories) are pivoted into a ``(T, N)`` panel with NaN on
missing days; each kernel runs on the whole panel, and every column is compared with
``talib`` applied to that column's compressed series (its own bars only). The kernels
replay TA-Lib 0.8's arithmetic, so the observed error is 0; the bound checked is
``|ours - ta| <= 1e-9 * max(|ta|, floor)``.

Policies: gap rows are skipped (inserting NaN rows changes no other value), leading NaN
shifts the warm-up, 1-D input, shape and period errors, all-NaN columns.

The real data is ``$TECHNIC_SHARED_DATA/bars_daily.parquet`` (default ``<repo>/../shared/
data``); those tests are skipped when it is absent.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from technic import indicators as ind

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("TECHNIC_SHARED_DATA", REPO.parent / "shared" / "data"))
BARS = SHARED / "bars_daily.parquet"

SEED = 20250709
#: Back-adjusted closes above 1e6 (data README) and closes below 0.01.
EXTREME = ["ADTX", "ALLR", "CRKN", "EJH", "FMTOF", "MULN", "RNAZ", "SUNE", "VLCN", "WHLR",
           "XXII", "HYMCW", "HCTI", "FFAIW", "LGMK", "KTTAW", "DRMAW"]
RTOL = 1e-9
TINY = np.finfo(np.float64).tiny

Arrays = tuple[np.ndarray, ...]


def _tuple(x: np.ndarray | tuple[np.ndarray, ...]) -> Arrays:
    return x if isinstance(x, tuple) else (x,)


# ---------------------------------------------------------------------------------------------
# Real data
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real():
    """A ``Panel`` of ~210 real symbols (all 752 dates), NaN on days without a bar."""
    if not BARS.exists():
        pytest.skip(f"real data not found: {BARS} (set TECHNIC_SHARED_DATA)")
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from technic.panel import Panel

    keys = pq.read_table(BARS, columns=["symbol", "date"])
    calendar = np.sort(pc.unique(keys["date"]).to_numpy(zero_copy_only=False))
    stats = keys.group_by("symbol").aggregate(
        [("date", "min"), ("date", "max"), ("date", "count")]).sort_by("symbol")
    sym = np.array(stats["symbol"].to_pylist(), dtype=object)
    n_bars = stats["date_count"].to_numpy()
    first = np.searchsorted(calendar, stats["date_min"].to_numpy(zero_copy_only=False))
    last = np.searchsorted(calendar, stats["date_max"].to_numpy(zero_copy_only=False))
    gaps = (last - first + 1) - n_bars

    rng = np.random.default_rng(SEED)
    chosen = [s for s in EXTREME if s in set(sym)]
    gappy = sym[(gaps > 0) & (n_bars >= 60) & ~np.isin(sym, chosen)]
    chosen += sorted(rng.choice(gappy, 30, replace=False))
    short = sym[(n_bars >= 2) & (n_bars < 40)]
    chosen += sorted(rng.choice(short, 5, replace=False))
    rest = sym[(n_bars >= 60) & ~np.isin(sym, chosen)]
    chosen += sorted(rng.choice(rest, 160, replace=False))

    table = pq.read_table(BARS, filters=[("symbol", "in", chosen)])
    p = Panel.from_arrow(table)
    listed = ~np.isnan(p.close)
    first_bar = listed.argmax(axis=0)
    last_bar = len(listed) - 1 - listed[::-1].argmax(axis=0)
    has_gap = (last_bar - first_bar + 1) > listed.sum(axis=0)
    assert p.close.shape[1] >= 200
    assert has_gap.sum() >= 25, "the sample must exercise mid-history gaps"
    assert np.nanmax(p.close) > 1e6 and np.nanmin(p.close) < 0.01
    return p


def _parity(p, ours: Arrays, ref: Callable[..., Arrays], fields: tuple[str, ...],
            zero_crossing: bool = False) -> float:
    """Compare every column of ``ours`` with ``ref`` on the compressed series; max rel. err.

    ``zero_crossing``: outputs that pass through 0 (MACD family, ROC, OBV) get a floor on
    the error denominator of 1e-6 x the column's largest |reference|, i.e. an absolute
    tolerance of 1e-15 of the column's own scale; elsewhere the floor is the smallest
    normal double (exact agreement required where TA-Lib answers 0).
    """
    inputs = [getattr(p, f) for f in fields]
    valid = np.logical_and.reduce([~np.isnan(a) for a in inputs])
    worst = 0.0
    for j in range(valid.shape[1]):
        mask = valid[:, j]
        refs = _tuple(ref(*(np.ascontiguousarray(a[mask, j]) for a in inputs)))
        for q, (o, r) in enumerate(zip(ours, refs, strict=True)):
            where = f"{p.symbols[j]} output {q}"
            assert np.isnan(o[~mask, j]).all(), f"{where}: value on a gap row"
            got = o[mask, j]
            assert np.array_equal(np.isnan(got), np.isnan(r)), f"{where}: warm-up differs"
            ok = ~np.isnan(r)
            if not ok.any():
                continue
            rv, gv = r[ok], got[ok]
            floor = 1e-6 * np.abs(rv).max() if zero_crossing else TINY
            denom = np.maximum(np.abs(rv), floor)
            err = np.abs(gv - rv)
            bad = err > RTOL * denom
            assert not bad.any(), (
                f"{where}: |ours - talib| = {err[bad][0]:.3g} at {rv[bad][0]!r}")
            worst = max(worst, float((err / np.maximum(denom, TINY)).max()))
    return worst


PARITY = [
    # id, ours(panel) -> arrays, ref(talib, *compressed inputs) -> arrays, inputs, crosses 0
    ("sma20", lambda p: ind.sma(p.close, 20), lambda ta, c: ta.SMA(c, 20),
     ("close",), False),
    ("sma200", lambda p: ind.sma(p.close, 200), lambda ta, c: ta.SMA(c, 200),
     ("close",), False),
    ("ema12", lambda p: ind.ema(p.close, 12), lambda ta, c: ta.EMA(c, 12),
     ("close",), False),
    ("ema26", lambda p: ind.ema(p.close, 26), lambda ta, c: ta.EMA(c, 26),
     ("close",), False),
    ("rsi14", lambda p: ind.rsi(p.close, 14), lambda ta, c: ta.RSI(c, 14),
     ("close",), False),
    ("rsi2", lambda p: ind.rsi(p.close, 2), lambda ta, c: ta.RSI(c, 2),
     ("close",), False),
    ("macd", lambda p: ind.macd(p.close), lambda ta, c: ta.MACD(c, 12, 26, 9),
     ("close",), True),
    ("macd_5_35_5", lambda p: ind.macd(p.close, 5, 35, 5),
     lambda ta, c: ta.MACD(c, 5, 35, 5), ("close",), True),
    ("bbands", lambda p: ind.bbands(p.close, 20, 2.0),
     lambda ta, c: ta.BBANDS(c, 20, 2.0, 2.0, 0), ("close",), False),
    ("bbands_5_1.5", lambda p: ind.bbands(p.close, 5, 1.5),
     lambda ta, c: ta.BBANDS(c, 5, 1.5, 1.5, 0), ("close",), False),
    ("atr14", lambda p: ind.atr(p.high, p.low, p.close, 14),
     lambda ta, h, lo, c: ta.ATR(h, lo, c, 14), ("high", "low", "close"), False),
    ("atr1", lambda p: ind.atr(p.high, p.low, p.close, 1),
     lambda ta, h, lo, c: ta.ATR(h, lo, c, 1), ("high", "low", "close"), False),
    ("adx14", lambda p: ind.adx(p.high, p.low, p.close, 14),
     lambda ta, h, lo, c: ta.ADX(h, lo, c, 14), ("high", "low", "close"), False),
    ("plus_di14", lambda p: ind.plus_di(p.high, p.low, p.close, 14),
     lambda ta, h, lo, c: ta.PLUS_DI(h, lo, c, 14),
     ("high", "low", "close"), False),
    ("minus_di14", lambda p: ind.minus_di(p.high, p.low, p.close, 14),
     lambda ta, h, lo, c: ta.MINUS_DI(h, lo, c, 14),
     ("high", "low", "close"), False),
    ("obv", lambda p: ind.obv(p.close, p.volume),
     lambda ta, c, v: ta.OBV(c, v), ("close", "volume"), True),
    ("roc10", lambda p: ind.roc(p.close, 10), lambda ta, c: ta.ROC(c, 10),
     ("close",), True),
    ("max252", lambda p: ind.rolling_max(p.high, 252),
     lambda ta, h: ta.MAX(h, 252), ("high",), False),
    ("min252", lambda p: ind.rolling_min(p.low, 252),
     lambda ta, lo: ta.MIN(lo, 252), ("low",), False),
    ("wma10", lambda p: ind.wma(p.close, 10), lambda ta, c: ta.WMA(c, 10),
     ("close",), False),
    ("wma30", lambda p: ind.wma(p.close, 30), lambda ta, c: ta.WMA(c, 30),
     ("close",), False),
    ("dema10", lambda p: ind.dema(p.close, 10), lambda ta, c: ta.DEMA(c, 10),
     ("close",), False),
    ("tema10", lambda p: ind.tema(p.close, 10), lambda ta, c: ta.TEMA(c, 10),
     ("close",), False),
    ("natr14", lambda p: ind.natr(p.high, p.low, p.close, 14),
     lambda ta, h, lo, c: ta.NATR(h, lo, c, 14), ("high", "low", "close"), False),
    ("stoch", lambda p: ind.stoch(p.high, p.low, p.close),
     lambda ta, h, lo, c: ta.STOCH(h, lo, c, 14, 3, 0, 3, 0),
     ("high", "low", "close"), False),
    ("stoch_5_1_4", lambda p: ind.stoch(p.high, p.low, p.close, 5, 1, 4),
     lambda ta, h, lo, c: ta.STOCH(h, lo, c, 5, 1, 0, 4, 0),
     ("high", "low", "close"), False),
    ("stochrsi", lambda p: ind.stochrsi(p.close),
     lambda ta, c: ta.STOCHRSI(c, 14, 5, 3, 0), ("close",), False),
    ("willr14", lambda p: ind.willr(p.high, p.low, p.close, 14),
     lambda ta, h, lo, c: ta.WILLR(h, lo, c, 14), ("high", "low", "close"), False),
    ("cci20", lambda p: ind.cci(p.high, p.low, p.close, 20),
     lambda ta, h, lo, c: ta.CCI(h, lo, c, 20), ("high", "low", "close"), False),
    ("mfi14", lambda p: ind.mfi(p.high, p.low, p.close, p.volume, 14),
     lambda ta, h, lo, c, v: ta.MFI(h, lo, c, v, 14),
     ("high", "low", "close", "volume"), False),
    ("aroon14", lambda p: ind.aroon(p.high, p.low, 14),
     lambda ta, h, lo: ta.AROON(h, lo, 14), ("high", "low"), False),
    ("mom10", lambda p: ind.mom(p.close, 10), lambda ta, c: ta.MOM(c, 10),
     ("close",), False),
    ("linreg_slope14", lambda p: ind.linreg_slope(p.close, 14),
     lambda ta, c: ta.LINEARREG_SLOPE(c, 14), ("close",), False),
]


@pytest.mark.parametrize(("ours", "ref", "fields", "zc"), [s[1:] for s in PARITY],
                         ids=[s[0] for s in PARITY])
def test_talib_parity_real_data(real, ours, ref, fields, zc, record_property):
    talib = pytest.importorskip("talib")
    worst = _parity(real, _tuple(ours(real)), lambda *a: ref(talib, *a), fields,
                    zero_crossing=zc)
    record_property("max_rel_err", worst)


def _pandas_rolling(n: int, how: str) -> Callable[[np.ndarray], np.ndarray]:
    return lambda x: getattr(pd.Series(x).rolling(n), how)().to_numpy()


def _np_lag(k: int) -> Callable[[np.ndarray], np.ndarray]:
    def f(x):
        out = np.full_like(x, np.nan)
        if len(x) > k:
            out[k:] = x[:len(x) - k]
        return out
    return f


def _np_realized_vol(n: int) -> Callable[[np.ndarray], np.ndarray]:
    def f(c):
        out = np.full(len(c), np.nan)
        if len(c) > n:
            r = np.log(c[1:] / c[:-1])
            w = np.lib.stride_tricks.sliding_window_view(r, n)
            out[n:] = w.std(axis=1, ddof=1) * math.sqrt(252)
        return out
    return f


def _np_ema(x: np.ndarray, n: int) -> np.ndarray:
    """EMA seeded with the SMA of the first ``n`` values (plain loop, no FMA)."""
    out = np.full(len(x), np.nan)
    if len(x) >= n:
        k = 2.0 / (n + 1)
        prev = x[:n].mean()
        out[n - 1] = prev
        for i in range(n, len(x)):
            prev = prev + k * (x[i] - prev)
            out[i] = prev
    return out


def _np_atr(h: np.ndarray, lo: np.ndarray, c: np.ndarray, n: int) -> np.ndarray:
    """Wilder ATR seeded with the mean of the first ``n`` true ranges (plain loop)."""
    out = np.full(len(c), np.nan)
    if len(c) > n:
        pc = c[:-1]
        tr = np.maximum.reduce([h[1:] - lo[1:], np.abs(pc - h[1:]), np.abs(pc - lo[1:])])
        prev = tr[:n].mean()
        out[n] = prev
        for i in range(n + 1, len(c)):
            prev = (prev * (n - 1) + tr[i - 1]) / n
            out[i] = prev
    return out


def _pd_cmf(n: int):
    def f(h, lo, c, v):
        rng = h - lo
        mfv = np.where(rng == 0, 0.0, ((c - lo) - (h - c)) / np.where(rng == 0, 1.0, rng)) * v
        return (pd.Series(mfv).rolling(n).sum() / pd.Series(v).rolling(n).sum()).to_numpy()
    return f


def _pd_vwap(n: int):
    def f(h, lo, c, v):
        tp = (h + lo + c) / 3.0
        return (pd.Series(tp * v).rolling(n).sum() / pd.Series(v).rolling(n).sum()).to_numpy()
    return f


def _pd_donchian(n: int):
    def f(h, lo):
        up = pd.Series(h).rolling(n).max().to_numpy()
        dn = pd.Series(lo).rolling(n).min().to_numpy()
        return up, (up + dn) / 2.0, dn
    return f


def _np_keltner(n: int, atr_n: int, k: float):
    def f(h, lo, c):
        mid = _np_ema(c, n)
        a = _np_atr(h, lo, c, atr_n)
        mid[np.isnan(a)] = np.nan
        return mid + k * a, mid, mid - k * a
    return f


def _np_gap_pct(o, c):
    out = np.full(len(c), np.nan)
    out[1:] = 100.0 * (o[1:] / c[:-1] - 1.0)
    return out


def _pd_rel_volume(n: int):
    return lambda v: (v / pd.Series(v).rolling(n).mean().shift(1)).to_numpy()


def _pd_dist_from_high(n: int):
    return lambda c, h: c / pd.Series(h).rolling(n).max().to_numpy() - 1.0


HELPERS = [
    ("rolling_max20", lambda p: ind.rolling_max(p.high, 20), _pandas_rolling(20, "max"),
     ("high",)),
    ("rolling_min252", lambda p: ind.rolling_min(p.low, 252), _pandas_rolling(252, "min"),
     ("low",)),
    ("rolling_mean5", lambda p: ind.rolling_mean(p.volume, 5), _pandas_rolling(5, "mean"),
     ("volume",)),
    ("lag1", lambda p: ind.lag(p.close, 1), _np_lag(1), ("close",)),
    ("lag21", lambda p: ind.lag(p.close, 21), _np_lag(21), ("close",)),
    ("realized_vol20", lambda p: ind.realized_vol(p.close, 20), _np_realized_vol(20),
     ("close",)),
    ("realized_vol60", lambda p: ind.realized_vol(p.close, 60), _np_realized_vol(60),
     ("close",)),
    ("cmf20", lambda p: ind.cmf(p.high, p.low, p.close, p.volume, 20), _pd_cmf(20),
     ("high", "low", "close", "volume")),
    ("rolling_vwap20", lambda p: ind.rolling_vwap(p.high, p.low, p.close, p.volume, 20),
     _pd_vwap(20), ("high", "low", "close", "volume")),
    ("donchian20", lambda p: ind.donchian(p.high, p.low, 20), _pd_donchian(20),
     ("high", "low")),
    ("keltner", lambda p: ind.keltner(p.high, p.low, p.close, 20, 10, 2.0),
     _np_keltner(20, 10, 2.0), ("high", "low", "close")),
    ("keltner_5_30", lambda p: ind.keltner(p.high, p.low, p.close, 5, 30, 1.5),
     _np_keltner(5, 30, 1.5), ("high", "low", "close")),
    ("gap_pct", lambda p: ind.gap_pct(p.open, p.close), _np_gap_pct, ("open", "close")),
    ("rel_volume20", lambda p: ind.rel_volume(p.volume, 20), _pd_rel_volume(20),
     ("volume",)),
    ("dist_from_high252", lambda p: ind.dist_from_high(p.close, p.high, 252),
     _pd_dist_from_high(252), ("close", "high")),
]

#: Helpers whose output crosses 0 (CMF, gap): error floor 1e-6 x the column's scale.
ZERO_CROSSING_HELPERS = {"cmf20", "gap_pct"}


@pytest.mark.parametrize(("name", "ours", "ref", "fields"), HELPERS,
                         ids=[s[0] for s in HELPERS])
def test_helpers_match_pandas_numpy_real_data(real, name, ours, ref, fields, record_property):
    """Helpers without a TA-Lib twin against pandas/numpy on each compressed series.

    Rolling mean (pandas' running sum) and realized vol (numpy's two-pass std vs our
    shifted-sum rolling variance; pandas' rolling sums in CMF/VWAP/relative volume vs our
    per-window sums; FMA vs plain EMA/ATR steps in Keltner) differ in summation order, not in
    definition: 1e-9 rel.
    """
    worst = _parity(real, _tuple(ours(real)), ref, fields,
                    zero_crossing=name in ZERO_CROSSING_HELPERS)
    record_property("max_rel_err", worst)


# ---------------------------------------------------------------------------------------------
# Policies (synthetic data: no file needed)
# ---------------------------------------------------------------------------------------------


def _synthetic(t: int = 260, n: int = 5, seed: int = 7) -> dict[str, np.ndarray]:
    """Random-walk OHLCV ``(t, n)``. Column 2 is flat (equal OHLC, no move) over its first
    40 bars and again over bars 60-109: the zero branches of RSI, DI/ADX and the std."""
    rng = np.random.default_rng(seed)
    c = 50.0 * np.exp(np.cumsum(rng.normal(0, 0.02, (t, n)), axis=0))
    spread = np.abs(rng.normal(0, 0.01, (t, n))) * c
    h, lo = c + spread, c - spread
    if n > 2:
        for a, b in ((0, 40), (60, 110)):
            c[a:b, 2] = h[a:b, 2] = lo[a:b, 2] = c[max(a - 1, 0), 2]
    v = rng.integers(1_000, 1_000_000, (t, n)).astype(np.float64)
    o = np.clip(c * np.exp(rng.normal(0, 0.005, (t, n))), lo, h)
    return {"open": o, "high": h, "low": lo, "close": c, "volume": v}


#: kernel -> (call on a dict of OHLCV arrays, lookback in the symbol's bars)
KERNELS: dict[str, tuple[Callable[[dict], np.ndarray | tuple], int]] = {
    "sma": (lambda d: ind.sma(d["close"], 20), 19),
    "rolling_mean": (lambda d: ind.rolling_mean(d["volume"], 5), 4),
    "ema": (lambda d: ind.ema(d["close"], 12), 11),
    "rsi": (lambda d: ind.rsi(d["close"], 14), 14),
    "macd": (lambda d: ind.macd(d["close"], 12, 26, 9), 33),
    "bbands": (lambda d: ind.bbands(d["close"], 20, 2.0), 19),
    "atr": (lambda d: ind.atr(d["high"], d["low"], d["close"], 14), 14),
    "adx": (lambda d: ind.adx(d["high"], d["low"], d["close"], 14), 27),
    "plus_di": (lambda d: ind.plus_di(d["high"], d["low"], d["close"], 14), 14),
    "minus_di": (lambda d: ind.minus_di(d["high"], d["low"], d["close"], 14), 14),
    "obv": (lambda d: ind.obv(d["close"], d["volume"]), 0),
    "roc": (lambda d: ind.roc(d["close"], 10), 10),
    "rolling_max": (lambda d: ind.rolling_max(d["high"], 10), 9),
    "rolling_min": (lambda d: ind.rolling_min(d["low"], 10), 9),
    "lag": (lambda d: ind.lag(d["close"], 5), 5),
    "realized_vol": (lambda d: ind.realized_vol(d["close"], 20), 20),
    "wma": (lambda d: ind.wma(d["close"], 10), 9),
    "dema": (lambda d: ind.dema(d["close"], 10), 18),
    "tema": (lambda d: ind.tema(d["close"], 5), 12),
    "natr": (lambda d: ind.natr(d["high"], d["low"], d["close"], 14), 14),
    "stoch": (lambda d: ind.stoch(d["high"], d["low"], d["close"], 14, 3, 3), 17),
    "stochrsi": (lambda d: ind.stochrsi(d["close"], 14, 5, 3), 20),
    "willr": (lambda d: ind.willr(d["high"], d["low"], d["close"], 14), 13),
    "cci": (lambda d: ind.cci(d["high"], d["low"], d["close"], 20), 19),
    "mfi": (lambda d: ind.mfi(d["high"], d["low"], d["close"], d["volume"], 14), 14),
    "aroon": (lambda d: ind.aroon(d["high"], d["low"], 14), 14),
    "mom": (lambda d: ind.mom(d["close"], 10), 10),
    "linreg_slope": (lambda d: ind.linreg_slope(d["close"], 14), 13),
    "linreg_r2": (lambda d: ind.linreg_r2(d["volume"], 14), 13),  # close 2 is flat: NaN
    "cmf": (lambda d: ind.cmf(d["high"], d["low"], d["close"], d["volume"], 20), 19),
    "rolling_vwap": (lambda d: ind.rolling_vwap(d["high"], d["low"], d["close"],
                                                d["volume"], 20), 19),
    "donchian": (lambda d: ind.donchian(d["high"], d["low"], 20), 19),
    "keltner": (lambda d: ind.keltner(d["high"], d["low"], d["close"], 20, 10, 2.0), 19),
    "gap_pct": (lambda d: ind.gap_pct(d["open"], d["close"]), 1),
    "rel_volume": (lambda d: ind.rel_volume(d["volume"], 20), 20),
    "dist_from_high": (lambda d: ind.dist_from_high(d["close"], d["high"], 50), 49),
}
NAMES = sorted(KERNELS)


def _insert_gaps(d: dict[str, np.ndarray], n_gaps: int, seed: int = 3):
    """Each column gets ``n_gaps`` NaN rows (a missing bar: all fields) at its own random
    places, some leading; returns the gapped arrays and the (T', N) mask of kept rows."""
    rng = np.random.default_rng(seed)
    t, n = d["close"].shape
    t2 = t + n_gaps
    kept = np.ones((t2, n), dtype=bool)
    for j in range(n):
        lead = 3 if j == 0 else 0  # column 0: a symbol listed late, then gaps
        kept[:lead, j] = False
        kept[lead + rng.choice(t2 - lead, n_gaps - lead, replace=False), j] = False
    assert (kept.sum(axis=0) == t).all()
    out = {}
    for f, a in d.items():
        g = np.full((t2, n), np.nan)
        for j in range(n):
            g[kept[:, j], j] = a[:, j]
        out[f] = g
    return out, kept


@pytest.mark.parametrize("name", NAMES)
def test_gap_rows_are_skipped(name):
    """Inserting NaN rows leaves every other value bit-identical; gap rows are NaN."""
    fn, _ = KERNELS[name]
    d = _synthetic()
    base = _tuple(fn(d))
    gapped, kept = _insert_gaps(d, n_gaps=40)
    out = _tuple(fn(gapped))
    for b, o in zip(base, out, strict=True):
        assert o.shape == kept.shape
        for j in range(kept.shape[1]):
            np.testing.assert_array_equal(o[kept[:, j], j], b[:, j])
            assert np.isnan(o[~kept[:, j], j]).all()


MISSING_FIELD = {"obv": "volume", "mfi": "volume", "cmf": "volume", "rolling_vwap": "volume",
                 "gap_pct": "open", "dist_from_high": "close", "aroon": "low",
                 "donchian": "high"}


@pytest.mark.parametrize("name", ["atr", "adx", "plus_di", "obv", "natr", "stoch", "willr",
                                  "cci", "mfi", "aroon", "cmf", "rolling_vwap", "donchian",
                                  "keltner", "gap_pct", "dist_from_high"])
def test_row_with_one_missing_input_is_a_gap(name):
    """A row is a bar only where every needed input is present."""
    fn, _ = KERNELS[name]
    d = _synthetic()
    base = _tuple(fn(d))
    t = d["close"].shape[0]
    holes = np.array([40, 41, 150])
    d2 = {f: np.insert(a, holes, 123.0, axis=0) for f, a in d.items()}
    field = MISSING_FIELD.get(name, "low")
    d2[field][holes + np.arange(len(holes)), 1] = np.nan
    out = _tuple(fn(d2))
    kept = np.ones(t + len(holes), dtype=bool)
    kept[holes + np.arange(len(holes))] = False
    for b, o in zip(base, out, strict=True):
        np.testing.assert_array_equal(o[kept, 1], b[:, 1])
        assert np.isnan(o[~kept, 1]).all()


@pytest.mark.parametrize("name", NAMES)
def test_leading_nan_and_lookback(name):
    """Values start ``lookback`` bars after the symbol's first bar; earlier rows are NaN."""
    fn, lookback = KERNELS[name]
    d = _synthetic()
    lead = 17
    d = {f: np.vstack([np.full((lead, a.shape[1]), np.nan), a]) for f, a in d.items()}
    for o in _tuple(fn(d)):
        first = np.argmax(~np.isnan(o), axis=0)
        assert (first == lead + lookback).all()
        assert (~np.isnan(o[lead + lookback:])).all()


@pytest.mark.parametrize("name", NAMES)
def test_one_d_input(name):
    """A ``(T,)`` series returns ``(T,)``, equal to the 2-D result's column."""
    fn, _ = KERNELS[name]
    d = _synthetic()
    full = _tuple(fn(d))
    for j in (0, 2):
        one = _tuple(fn({f: a[:, j].copy() for f, a in d.items()}))
        for f_out, o in zip(full, one, strict=True):
            assert o.shape == (d["close"].shape[0],)
            np.testing.assert_array_equal(o, f_out[:, j])


@pytest.mark.parametrize("name", NAMES)
def test_all_nan_column_and_independence(name):
    """An all-NaN column gives all NaN and changes no other column."""
    fn, _ = KERNELS[name]
    d = _synthetic()
    base = _tuple(fn(d))
    d2 = {f: a.copy() for f, a in d.items()}
    for a in d2.values():
        a[:, 3] = np.nan
    for b, o in zip(base, _tuple(fn(d2)), strict=True):
        assert np.isnan(o[:, 3]).all()
        np.testing.assert_array_equal(np.delete(o, 3, axis=1), np.delete(b, 3, axis=1))


@pytest.mark.parametrize("name", NAMES)
def test_short_and_empty_inputs(name):
    """Fewer bars than the lookback give all NaN; empty panels keep their shape."""
    fn, lookback = KERNELS[name]
    d = _synthetic()
    short = {f: a[:lookback] for f, a in d.items()}
    for o in _tuple(fn(short)):
        assert o.shape == short["close"].shape and np.isnan(o).all()
    for shape in ((0, 3), (12, 0)):
        empty = {f: np.empty(shape) for f in d}
        for o in _tuple(fn(empty)):
            assert o.shape == shape and o.dtype == np.float64


def test_input_layouts_and_dtypes():
    """Non-contiguous, Fortran-ordered and integer inputs give the same values."""
    d = _synthetic(n=6)
    c = d["close"]
    np.testing.assert_array_equal(ind.sma(c[:, ::2], 7), ind.sma(c, 7)[:, ::2])
    np.testing.assert_array_equal(ind.sma(np.asfortranarray(c), 7), ind.sma(c, 7))
    vi = d["volume"].astype(np.int64)
    np.testing.assert_array_equal(ind.obv(c, vi), ind.obv(c, d["volume"]))
    np.testing.assert_array_equal(ind.sma(c.tolist(), 3), ind.sma(c, 3))


def _hlc(d):
    return d["high"], d["low"], d["close"]


def test_shape_mismatch_raises():
    d = _synthetic()
    h, lo, c = _hlc(d)
    for f in (ind.atr, ind.adx, ind.plus_di, ind.minus_di):
        with pytest.raises(ValueError, match="same shape"):
            f(h, lo[:-1], c)
        with pytest.raises(ValueError, match="same shape"):
            f(h[:, 0], lo, c)
    for f in (ind.natr, ind.stoch, ind.willr, ind.cci, ind.keltner):
        with pytest.raises(ValueError, match="same shape"):
            f(h, lo[:-1], c)
    for f in (ind.mfi, ind.cmf, ind.rolling_vwap):
        with pytest.raises(ValueError, match="same shape"):
            f(h, lo, c, d["volume"][:, :2])
    for f in (ind.aroon, ind.donchian, ind.gap_pct, ind.dist_from_high):
        with pytest.raises(ValueError, match="same shape"):
            f(h, lo[:, 1:])
    with pytest.raises(ValueError, match="same shape"):
        ind.obv(c, d["volume"][:, :2])
    with pytest.raises(ValueError, match=r"\(T,\) or \(T, N\)"):
        ind.sma(np.zeros((3, 4, 5)), 2)
    with pytest.raises(ValueError, match=r"\(T,\) or \(T, N\)"):
        ind.atr(np.zeros((2, 2, 2)), np.zeros((2, 2, 2)), np.zeros((2, 2, 2)))


PERIOD_CALLS: list[tuple[str, Callable[[dict, int], object]]] = [
    ("sma", lambda d, n: ind.sma(d["close"], n)),
    ("rolling_mean", lambda d, n: ind.rolling_mean(d["close"], n)),
    ("ema", lambda d, n: ind.ema(d["close"], n)),
    ("rsi", lambda d, n: ind.rsi(d["close"], n)),
    ("macd_fast", lambda d, n: ind.macd(d["close"], fast=n)),
    ("macd_slow", lambda d, n: ind.macd(d["close"], fast=n, slow=n)),
    ("macd_signal", lambda d, n: ind.macd(d["close"], signal=n)),
    ("bbands", lambda d, n: ind.bbands(d["close"], n)),
    ("atr", lambda d, n: ind.atr(*_hlc(d), n)),
    ("adx", lambda d, n: ind.adx(*_hlc(d), n)),
    ("plus_di", lambda d, n: ind.plus_di(*_hlc(d), n)),
    ("minus_di", lambda d, n: ind.minus_di(*_hlc(d), n)),
    ("roc", lambda d, n: ind.roc(d["close"], n)),
    ("rolling_max", lambda d, n: ind.rolling_max(d["close"], n)),
    ("rolling_min", lambda d, n: ind.rolling_min(d["close"], n)),
    ("realized_vol", lambda d, n: ind.realized_vol(d["close"], n)),
    ("wma", lambda d, n: ind.wma(d["close"], n)),
    ("dema", lambda d, n: ind.dema(d["close"], n)),
    ("tema", lambda d, n: ind.tema(d["close"], n)),
    ("natr", lambda d, n: ind.natr(*_hlc(d), n)),
    ("stoch_fastk", lambda d, n: ind.stoch(*_hlc(d), fastk=n)),
    ("stoch_slowk", lambda d, n: ind.stoch(*_hlc(d), slowk=n)),
    ("stoch_slowd", lambda d, n: ind.stoch(*_hlc(d), slowd=n)),
    ("stochrsi", lambda d, n: ind.stochrsi(d["close"], n)),
    ("stochrsi_fastk", lambda d, n: ind.stochrsi(d["close"], fastk=n)),
    ("stochrsi_fastd", lambda d, n: ind.stochrsi(d["close"], fastd=n)),
    ("willr", lambda d, n: ind.willr(*_hlc(d), n)),
    ("cci", lambda d, n: ind.cci(*_hlc(d), n)),
    ("mfi", lambda d, n: ind.mfi(*_hlc(d), d["volume"], n)),
    ("aroon", lambda d, n: ind.aroon(d["high"], d["low"], n)),
    ("mom", lambda d, n: ind.mom(d["close"], n)),
    ("linreg_slope", lambda d, n: ind.linreg_slope(d["close"], n)),
    ("linreg_r2", lambda d, n: ind.linreg_r2(d["close"], n)),
    ("cmf", lambda d, n: ind.cmf(*_hlc(d), d["volume"], n)),
    ("rolling_vwap", lambda d, n: ind.rolling_vwap(*_hlc(d), d["volume"], n)),
    ("donchian", lambda d, n: ind.donchian(d["high"], d["low"], n)),
    ("keltner_n", lambda d, n: ind.keltner(*_hlc(d), n=n)),
    ("keltner_atr_n", lambda d, n: ind.keltner(*_hlc(d), atr_n=n)),
    ("rel_volume", lambda d, n: ind.rel_volume(d["volume"], n)),
    ("dist_from_high", lambda d, n: ind.dist_from_high(d["close"], d["high"], n)),
]


@pytest.mark.parametrize(("name", "call"), PERIOD_CALLS, ids=[p[0] for p in PERIOD_CALLS])
def test_period_below_one_raises(name, call):
    d = _synthetic(t=40, n=2)
    for bad in (0, -3):
        with pytest.raises(ValueError, match=">= 1|>= 2"):
            call(d, bad)
    with pytest.raises(TypeError, match="integer"):
        call(d, 2.5)
    call(d, 2)  # the smallest period valid for every kernel


def test_other_parameter_errors():
    d = _synthetic(t=40, n=2)
    c = d["close"]
    with pytest.raises(ValueError, match=">= 2"):
        ind.realized_vol(c, 1)
    with pytest.raises(ValueError, match="periods_per_year"):
        ind.realized_vol(c, 5, periods_per_year=0)
    with pytest.raises(ValueError, match="must not exceed slow"):
        ind.macd(c, fast=26, slow=12)
    with pytest.raises(ValueError, match="k must be finite"):
        ind.bbands(c, 5, float("nan"))
    h, lo = d["high"], d["low"]
    with pytest.raises(ValueError, match="k must be finite"):
        ind.keltner(h, lo, c, 5, 5, float("inf"))
    with pytest.raises(ValueError, match=">= 2"):
        ind.natr(h, lo, c, 1)
    with pytest.raises(ValueError, match=">= 2"):
        ind.linreg_slope(c, 1)
    with pytest.raises(ValueError, match=">= 2"):
        ind.linreg_r2(c, 1)
    with pytest.raises(ValueError, match="k must be >= 0"):
        ind.lag(c, -1)
    np.testing.assert_array_equal(ind.lag(c, 0), c)


def test_known_values():
    """Hand-checkable values of the helpers and of the gap rule on a tiny series."""
    x = np.array([np.nan, 1.0, 3.0, np.nan, 2.0, 5.0, 4.0])
    np.testing.assert_array_equal(ind.sma(x, 2), [np.nan, np.nan, 2.0, np.nan, 2.5, 3.5, 4.5])
    np.testing.assert_array_equal(ind.lag(x, 1), [np.nan, np.nan, 1.0, np.nan, 3.0, 2.0, 5.0])
    np.testing.assert_array_equal(ind.rolling_max(x, 3),
                                  [np.nan, np.nan, np.nan, np.nan, 3.0, 5.0, 5.0])
    np.testing.assert_array_equal(ind.rolling_min(x, 3),
                                  [np.nan, np.nan, np.nan, np.nan, 1.0, 2.0, 2.0])
    np.testing.assert_allclose(ind.roc(x, 1)[[2, 4, 5]], [200.0, -100 / 3, 150.0])
    np.testing.assert_array_equal(ind.obv(x, np.ones(7)),
                                  [np.nan, 1.0, 2.0, np.nan, 1.0, 2.0, 1.0])
    flat = np.full(30, 7.25)
    assert (ind.realized_vol(flat, 20)[20:] == 0.0).all()
    rv = ind.realized_vol(np.array([1.0, 2.0, 1.0, 2.0]), 3, periods_per_year=1)
    np.testing.assert_allclose(rv[3], np.std(np.log([2.0, 0.5, 2.0]), ddof=1), rtol=1e-15)


@pytest.mark.parametrize("scale", [1e-9, 1.0, 1e7])
def test_talib_parity_flat_tiny_and_huge(scale):
    """Flat stretches (zero moves: RSI 0, std 0, DI 0) and prices far from 1 stay exact."""
    talib = pytest.importorskip("talib")
    d = {f: a * scale if f != "volume" else a for f, a in _synthetic(t=300, n=3).items()}
    h, lo, c = _hlc(d)
    checks = [
        (ind.rsi(c, 14), lambda j: talib.RSI(c[:, j], 14)),
        (ind.bbands(c, 20, 2.0), lambda j: talib.BBANDS(c[:, j], 20, 2.0, 2.0, 0)),
        (ind.adx(h, lo, c, 14), lambda j: talib.ADX(h[:, j], lo[:, j], c[:, j], 14)),
        (ind.plus_di(h, lo, c, 14), lambda j: talib.PLUS_DI(h[:, j], lo[:, j], c[:, j], 14)),
        (ind.minus_di(h, lo, c, 14),
         lambda j: talib.MINUS_DI(h[:, j], lo[:, j], c[:, j], 14)),
        (ind.atr(h, lo, c, 14), lambda j: talib.ATR(h[:, j], lo[:, j], c[:, j], 14)),
        (ind.macd(c), lambda j: talib.MACD(c[:, j], 12, 26, 9)),
        (ind.ema(c, 12), lambda j: talib.EMA(c[:, j], 12)),
        (ind.wma(c, 10), lambda j: talib.WMA(c[:, j], 10)),
        (ind.dema(c, 10), lambda j: talib.DEMA(c[:, j], 10)),
        (ind.tema(c, 10), lambda j: talib.TEMA(c[:, j], 10)),
        (ind.natr(h, lo, c, 14), lambda j: talib.NATR(h[:, j], lo[:, j], c[:, j], 14)),
        (ind.stoch(h, lo, c), lambda j: talib.STOCH(h[:, j], lo[:, j], c[:, j], 14, 3, 0, 3, 0)),
        (ind.stochrsi(c), lambda j: talib.STOCHRSI(c[:, j], 14, 5, 3, 0)),
        (ind.willr(h, lo, c, 14), lambda j: talib.WILLR(h[:, j], lo[:, j], c[:, j], 14)),
        (ind.cci(h, lo, c, 20), lambda j: talib.CCI(h[:, j], lo[:, j], c[:, j], 20)),
        (ind.mfi(h, lo, c, d["volume"], 14),
         lambda j: talib.MFI(h[:, j], lo[:, j], c[:, j], d["volume"][:, j], 14)),
        (ind.aroon(h, lo, 14), lambda j: talib.AROON(h[:, j], lo[:, j], 14)),
        (ind.mom(c, 10), lambda j: talib.MOM(c[:, j], 10)),
        (ind.linreg_slope(c, 14), lambda j: talib.LINEARREG_SLOPE(c[:, j], 14)),
    ]
    for ours, ref in checks:
        for j in range(c.shape[1]):
            for o, r in zip(_tuple(ours), _tuple(ref(j)), strict=True):
                np.testing.assert_array_equal(o[:, j], r)
    # Column 2's flat stretches really hit the zero branches.
    assert (ind.rsi(c, 14)[14:40, 2] == 0.0).all()
    assert (ind.plus_di(h, lo, c, 14)[14:40, 2] == 0.0).all()
    assert (ind.adx(h, lo, c, 14)[27:40, 2] == 0.0).all()
    up, mid, _ = ind.bbands(c, 20, 2.0)
    assert (up[79:110, 2] == mid[79:110, 2]).all()
    assert (ind.realized_vol(c, 20)[80:110, 2] == 0.0).all()
    assert (ind.stoch(h, lo, c)[0][17:40, 2] == 0.0).all()
    assert (ind.willr(h, lo, c, 14)[13:40, 2] == 0.0).all()
    assert (ind.cci(h, lo, c, 20)[19:40, 2] == 0.0).all()
    assert (ind.mfi(h, lo, c, d["volume"], 14)[14:40, 2] == 0.0).all()


def test_new_kernels_known_values():
    """Hand-checkable values of the new helpers and of the gap rule on a tiny series."""
    nan = np.nan
    o = np.array([nan, 10.0, 12.0, nan, 11.0, 9.0])
    c = np.array([nan, 11.0, 12.0, nan, 10.0, 9.9])
    np.testing.assert_allclose(ind.gap_pct(o, c), [nan, nan, 100 * (12 / 11 - 1), nan,
                                                   100 * (11 / 12 - 1), -10.0])
    v = np.array([nan, 100.0, 300.0, nan, 400.0, 100.0])
    np.testing.assert_array_equal(ind.rel_volume(v, 2), [nan, nan, nan, nan, 2.0, 100 / 350])
    h = np.array([nan, 12.0, 13.0, nan, 11.0, 10.0])
    np.testing.assert_allclose(ind.dist_from_high(c, h, 2),
                               [nan, nan, 12 / 13 - 1, nan, 10 / 13 - 1, 9.9 / 11 - 1])
    up, mid, dn = ind.donchian(h, c, 2)
    np.testing.assert_array_equal(up, [nan, nan, 13.0, nan, 13.0, 11.0])
    np.testing.assert_array_equal(dn, [nan, nan, 11.0, nan, 10.0, 9.9])
    np.testing.assert_array_equal(mid, (up + dn) / 2)
    lo = np.array([nan, 10.0, 11.0, nan, 9.0, 9.0])
    # CMF: MFV = ((c-l) - (h-c)) / (h-l) * v; the last bar has h != l.
    mfv = ((c - lo) - (h - c)) / (h - lo) * v
    np.testing.assert_allclose(ind.cmf(h, lo, c, v, 2)[[2, 4, 5]],
                               [(mfv[1] + mfv[2]) / 400, (mfv[2] + mfv[4]) / 700,
                                (mfv[4] + mfv[5]) / 500])
    flat = np.full(5, 3.0)
    np.testing.assert_array_equal(ind.cmf(flat, flat, flat, np.ones(5), 2)[1:], 0.0)
    tp = (h + lo + c) / 3
    np.testing.assert_allclose(ind.rolling_vwap(h, lo, c, v, 2)[5],
                               (tp[4] * 400 + tp[5] * 100) / 500)
    np.testing.assert_array_equal(ind.mom(c, 1), [nan, nan, 1.0, nan, -2.0, 9.9 - 10.0])


# ---------------------------------------------------------------------------------------------
# Time-major kernels: the branch-free regular-column kernels equal the ring kernels
# ---------------------------------------------------------------------------------------------


def _regular_panel(t: int = 420, n: int = 14, seed: int = 11) -> dict[str, np.ndarray]:
    """OHLCV whose columns are all regular (one run of bars): each is listed late and/or
    delisted early (leading / trailing NaN rows); column 2 has flat stretches, column 5
    zero volumes, column 6 highs and lows of ±0.0 / ±1.0 and closes of ±0.0 (ties of the
    window extremes, compared bit for bit)."""
    d = _synthetic(t=t, n=n, seed=seed)
    rng = np.random.default_rng(seed)
    d["volume"][rng.random(t) < 0.3, 5] = 0.0
    z = rng.choice(np.array([0.0, -0.0, 1.0, -1.0]), size=(t, 3))
    d["high"][:, 6], d["low"][:, 6] = np.maximum(z[:, 0], z[:, 1]), np.minimum(z[:, 0], z[:, 1])
    d["close"][:, 6] = np.copysign(0.0, z[:, 2])
    for j in range(n):
        a = 0 if j % 3 == 0 else int(rng.integers(1, 80))
        b = t if j % 4 == 0 else t - int(rng.integers(1, 80))
        for f in d:
            d[f][:a, j] = np.nan
            d[f][b:, j] = np.nan
    return d


RG_TWINS = [
    # rg kernel, ring kernel, inputs, parameter sets, number of outputs
    ("rg_sma", "tm_sma", ("close",), [(20,), (1,), (3,)], 1),
    ("rg_roc", "tm_roc", ("close",), [(10,), (1,), (3,)], 1),
    ("rg_bbands", "tm_bbands", ("close",), [(20, 2.0), (5, 1.5), (1, 1.0), (2, 3.0)], 3),
    ("rg_willr", "tm_willr", ("high", "low", "close"), [(14,), (1,), (5,)], 1),
    ("rg_stoch", "tm_stoch", ("high", "low", "close"), [(14, 3, 3), (5, 1, 4), (1, 1, 1),
                                                        (3, 5, 2)], 2),
    ("rg_mfi", "tm_mfi", ("high", "low", "close", "volume"), [(14,), (1,), (2,)], 1),
]


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal values, NaN where NaN, and the same sign bits (so -0.0 differs from 0.0)."""
    return np.array_equal(a, b, equal_nan=True) and np.array_equal(np.signbit(a),
                                                                   np.signbit(b))


def _irregular(lay: tuple[np.ndarray, ...]) -> np.ndarray:
    """The columns an ``rg_*`` kernel's returned layout (first row, last row, bar count)
    flags irregular: bars that do not fill the rows from the first to the last."""
    first, last, cnt = lay
    return (cnt > 0) & (cnt != last - first + 1)


@pytest.mark.parametrize(("rg", "tm", "fields", "params", "n_out"), RG_TWINS,
                         ids=[r[0] for r in RG_TWINS])
def test_regular_kernels_equal_ring_kernels(rg, tm, fields, params, n_out):
    """On regular columns each ``_rg.rg_*`` kernel is bit-identical to its ``tm_*`` ring
    twin (itself the time-major replay of the 1-D TA-Lib twin), whatever the periods."""
    from technic.indicators import _rg, _tm

    d = _regular_panel()
    ins = [np.ascontiguousarray(d[f]) for f in fields]
    for p in params:
        got = [np.empty(ins[0].shape) for _ in range(n_out)]
        want = [np.empty(ins[0].shape) for _ in range(n_out)]
        assert not _irregular(getattr(_rg, rg)(*ins, *p, *got)).any()
        getattr(_tm, tm)(*ins, *p, *want)
        for q in range(n_out):
            assert _same_bits(got[q], want[q]), f"{rg}{p} output {q}"


def test_bbands_reanchors_on_regular_columns():
    """The re-anchoring of the BBANDS variance (cancellation on a flat stretch, a departing
    outlier, every 32 n bars) runs on the vectorized path too, and matches TA-Lib."""
    talib = pytest.importorskip("talib")
    d = _regular_panel(t=700, n=8)
    c = d["close"]
    c[300, 1] *= 1e5  # an outlier that later leaves the window
    up, mid, lo = ind.bbands(c, 5, 2.0)
    for j in range(c.shape[1]):
        m = ~np.isnan(c[:, j])
        ref = talib.BBANDS(np.ascontiguousarray(c[m, j]), 5, 2.0, 2.0, 0)
        for o, r in zip((up, mid, lo), ref, strict=True):
            np.testing.assert_array_equal(o[m, j], r)


@pytest.mark.parametrize(("rg", "tm", "fields", "params", "n_out"), RG_TWINS,
                         ids=[r[0] for r in RG_TWINS])
def test_run_regular_compacts_irregular_columns(rg, tm, fields, params, n_out):
    """``_rg.run_regular`` on a panel mixing regular columns and columns with gaps (one
    input missing on some rows, whole bars missing on others; 9 of 14 columns irregular)
    equals the ring kernel on the whole panel, bit for bit, through the compaction."""
    from technic.indicators import _rg, _tm

    d = _regular_panel()
    rng = np.random.default_rng(5)
    for j in range(0, 14, 3):  # columns 0, 3, 6, 9, 12: gaps of whole bars
        rows = rng.choice(np.flatnonzero(~np.isnan(d["close"][:, j]))[1:-1], 25, replace=False)
        for f in d:
            d[f][rows, j] = np.nan
    for j in (1, 4, 7, 10):  # one input missing on a few rows
        f = fields[j % len(fields)]
        rows = rng.choice(np.flatnonzero(~np.isnan(d[f][:, j]))[1:-1], 5, replace=False)
        d[f][rows, j] = np.nan
    ins = tuple(np.ascontiguousarray(d[f]) for f in fields)
    ring = getattr(_tm, tm)
    for p in params:
        got = tuple(np.empty(ins[0].shape) for _ in range(n_out))
        want = tuple(np.empty(ins[0].shape) for _ in range(n_out))
        assert _irregular(getattr(_rg, rg)(*ins, *p, *got)).sum() == 9
        _rg.run_regular(getattr(_rg, rg), ins, p, got)
        ring(*ins, *p, *want)
        for q in range(n_out):
            assert _same_bits(got[q], want[q]), f"{rg}{p} output {q}"


# ---------------------------------------------------------------------------------------------
# linreg_r2: no TA-Lib function; an independent numpy reference (fit, then 1 - SSres/SStot).
# ---------------------------------------------------------------------------------------------


def _r2_reference(y: np.ndarray, n: int) -> np.ndarray:
    """R² of ``numpy.polyfit(k, window, 1)`` as ``1 - SS_res / SS_tot`` for every window of
    ``n`` own bars of a 1-D series (gaps skipped, scattered back); NaN when the window's
    closes are all equal (``SS_tot`` computed around numpy's rounded mean is then a few ulps,
    not 0, and ``1 - SS_res / SS_tot`` is garbage: -6.25 on column 2's flat stretch)."""
    out = np.full(len(y), np.nan)
    rows = np.flatnonzero(~np.isnan(y))
    own = y[rows]
    k = np.arange(n, dtype=np.float64)
    for i in range(n - 1, len(own)):
        w = own[i - n + 1: i + 1]
        if (w == w[0]).all():
            continue
        ss_tot = float(((w - w.mean()) ** 2).sum())
        fit = np.polyval(np.polyfit(k, w, 1), k)
        out[rows[i]] = 1.0 - float(((w - fit) ** 2).sum()) / ss_tot
    return out


def test_linreg_r2_equals_a_numpy_reference_on_gappy_short_and_flat_columns():
    d = _synthetic(t=200, n=5)
    c = d["close"].copy()
    c[50:57, 0] = np.nan  # mid-history gap
    c[:150, 1] = np.nan  # listed late: 50 bars, fewer than n = 63
    c[::3, 3] = np.nan  # every third bar missing
    c[:, 4] = np.nan  # never traded
    for n in (2, 5, 20, 63):
        got = ind.linreg_r2(c, n)
        for j in range(c.shape[1]):
            want = _r2_reference(c[:, j], n)
            np.testing.assert_array_equal(np.isnan(got[:, j]), np.isnan(want),
                                          err_msg=f"n={n} column {j}: NaN mask")
            np.testing.assert_allclose(got[:, j], want, rtol=0, atol=1e-10,
                                       err_msg=f"n={n} column {j}")
        assert ((got[~np.isnan(got)] >= 0.0) & (got[~np.isnan(got)] <= 1.0)).all()
        # 1-D input: the same column, shape (T,)
        np.testing.assert_array_equal(ind.linreg_r2(c[:, 0], n), got[:, 0])
    r = ind.linreg_r2(c, 63)
    assert np.isnan(r[:, 1]).all() and np.isnan(r[:, 4]).all()  # short / empty columns
    # column 2 is flat over bars 60-109: R² is NaN (0/0) exactly on the all-equal windows
    r = ind.linreg_r2(c, 20)
    assert np.isnan(r[60 + 19: 110, 2]).all() and np.isfinite(r[110, 2])
    # two bars: any two different closes lie on a line
    r2 = ind.linreg_r2(c[:, 0], 2)
    ok = np.isfinite(r2)
    assert ok.sum() > 100 and (r2[ok] == 1.0).all()


def test_linreg_r2_known_values_and_invariance():
    k = np.arange(30, dtype=np.float64)
    line = 12.5 - 0.37 * k  # a straight decline: R² 1 (the direction does not matter)
    np.testing.assert_allclose(ind.linreg_r2(line, 10)[9:], 1.0, rtol=0, atol=1e-14)
    assert np.isnan(ind.linreg_r2(np.full(30, 7.25), 10)).all()  # constant: 0/0 -> NaN
    # y = (k - 2)^2 over k = 0..4: y = 4, 1, 0, 1, 4; Sxy = 0 -> R² 0
    assert ind.linreg_r2(np.array([4.0, 1.0, 0.0, 1.0, 4.0]), 5)[4] == 0.0
    # y = 1, 2, 2: Sxy = 1, Sxx = 2, Syy = 2/3 -> R² = 1 / (4/3) = 0.75
    assert ind.linreg_r2(np.array([1.0, 2.0, 2.0]), 3)[2] == pytest.approx(0.75, abs=1e-15)
    # scale- and shift-invariant (prices from 1e-4 to 1e7)
    d = _synthetic(t=120, n=2)["close"]
    base = ind.linreg_r2(d, 30)
    for a, b in ((1e-6, 0.0), (1e5, 0.0), (1.0, 1e3)):
        np.testing.assert_allclose(ind.linreg_r2(a * d + b, 30), base, rtol=0, atol=1e-9)
    # a gap is skipped, not a step on the x axis: inserting NaN rows changes nothing else
    y = d[:, 0]
    gapped = np.insert(y, [10, 40, 40, 77], np.nan)
    got = ind.linreg_r2(gapped, 30)
    np.testing.assert_array_equal(got[~np.isnan(gapped)], ind.linreg_r2(y, 30))
    assert np.isnan(got[np.isnan(gapped)]).all()
    # ±inf is a value: the windows holding it are NaN, later ones are not
    z = y.copy()
    z[50] = np.inf
    r = ind.linreg_r2(z, 30)
    assert np.isnan(r[50:80]).all() and np.isfinite(r[80])


def test_linreg_r2_is_talib_correl_with_the_bar_index_squared():
    """TA-Lib has no R² of a regression on time, but ``CORREL(y, index, n) ** 2`` is the same
    quantity (TA-Lib's raw-sum arithmetic differs: agreement to 1e-9, not bit for bit)."""
    talib = pytest.importorskip("talib")
    c = _synthetic(t=300, n=4)["close"]
    idx = np.arange(c.shape[0], dtype=np.float64)
    for n in (14, 63):
        ours = ind.linreg_r2(c, n)
        for j in (0, 1, 3):  # column 2 has flat stretches, where CORREL gives 0 instead
            np.testing.assert_allclose(ours[:, j], talib.CORREL(c[:, j], idx, n) ** 2,
                                       rtol=0, atol=1e-9)



def test_last_row_extremes_equal_the_panel_ones_ties_and_signed_zeros_included():
    """The last-row path takes ``rolling_max`` / ``rolling_min`` over the last ``n`` own bars
    only; its values equal the panel kernels' (monotonic deque) at each symbol's last bar,
    bit for bit: ties, ``±0`` and gaps included."""
    from technic.indicators import lastrow

    rng = np.random.default_rng(3)
    n_sym, t = 60, 300
    c = np.abs(np.round(50 + np.cumsum(rng.normal(0, 1, (n_sym, t)), axis=1))) + 1
    h = c + rng.integers(0, 2, c.shape)
    lo = c - rng.integers(0, 2, c.shape)
    h[:10] = np.where(rng.random((10, t)) < 0.5, 0.0, -0.0)
    lo[:10] = np.where(rng.random((10, t)) < 0.5, 0.0, -0.0)
    v = rng.uniform(1e5, 1e6, c.shape)
    gap = rng.random(c.shape) < 0.05
    gap[20:25, 100:] = True  # five symbols end early, one with fewer than 252 bars
    for x in (h, lo, c, v):
        x[gap] = np.nan
    ops = np.array([[lastrow.OPS["rolling_max"], 0, -1, -1, -1, 252, 0, 0],
                    [lastrow.OPS["rolling_min"], 1, -1, -1, -1, 252, 0, 0]], np.int64)
    plan = lastrow.LastRowPlan(ops, np.zeros(2), np.array([[0, 0, 0], [1, 0, 0]], np.int64),
                               ("hi", "lo"))
    got, _ = lastrow.last_row_values(h, lo, c, v, plan)
    for q, (fn, x) in enumerate(((ind.rolling_max, h), (ind.rolling_min, lo))):
        full = fn(np.ascontiguousarray(x.T), 252)
        last = [np.flatnonzero(~np.isnan(x[j]))[-1] for j in range(n_sym)]
        want = full[last, np.arange(n_sym)]
        assert _same_bits(got[q], want)
        assert np.isnan(want).sum() >= 1 and np.isfinite(want).sum() >= 50


def test_last_row_realized_vols_share_log_returns_in_any_order():
    """Realized volatilities of one input share one pass of log returns in the last-row path;
    a longer window first (whose call leaves no returns when a symbol has too few bars)
    must not leave stale returns to a shorter one: each equals the panel kernel, bit for
    bit, for symbols with fewer bars than either window, between them, and more."""
    from technic.indicators import lastrow

    rng = np.random.default_rng(5)
    n_sym, t = 30, 120
    c = 50 + np.cumsum(rng.normal(0, 1, (n_sym, t)), axis=1)
    c[:10, :85] = np.nan  # 35 bars: between the two windows
    c[10:15, :105] = np.nan  # 15 bars: fewer than either
    h, lo, v = c + 1, c - 1, np.full(c.shape, 1e5)
    rv = lastrow.OPS["realized_vol"]
    ops = np.array([[rv, 2, -1, -1, -1, 60, 0, 0], [rv, 2, -1, -1, -1, 20, 0, 0],
                    [rv, 2, -1, -1, -1, 60, 0, 0]], np.int64)
    plan = lastrow.LastRowPlan(ops, np.zeros(3), np.array([[0, 0, 0], [1, 0, 0], [2, 0, 0]],
                                                          np.int64), ("a", "b", "c"))
    got, _ = lastrow.last_row_values(h, lo, c, v, plan)
    for q, n in enumerate((60, 20, 60)):
        want = ind.realized_vol(np.ascontiguousarray(c.T), n)[-1]
        assert _same_bits(got[q], want)
    assert np.isfinite(got[1]).sum() == 25 and np.isfinite(got[0]).sum() == 15


def test_a_zero_price_gives_ieee_values_not_an_error():
    # x / 0 is ±inf and 0 / 0 NaN in every kernel (error_model="numpy", as TA-Lib's C and
    # numpy): a zero price used to raise ZeroDivisionError in gap_pct and realized_vol, and a
    # SystemError out of the parallel last-row driver.
    from technic.features.plans import last_row_plan
    from technic.indicators.lastrow import last_row_values

    rng = np.random.default_rng(3)
    c = 50 + np.cumsum(rng.normal(0, 1, (80, 3)), axis=0)
    h, lo, o, v = c + 1, c - 1, c + 0.5, np.full(c.shape, 1e5)
    for a in (c, h, lo, o):
        a[40] = 0.0
    gap = ind.gap_pct(o, c)
    assert np.isinf(gap[41]).all() and np.isfinite(gap[39]).all()
    np.testing.assert_array_equal(ind.gap_pct(o[:, 1], c[:, 1]), gap[:, 1])
    rv = ind.realized_vol(c, 20)
    assert not np.isfinite(rv[40:60]).any() and np.isfinite(rv[30:40]).all()
    for a in (c, h, lo):
        a[-1] = 0.0
    vals, n_bars = last_row_values(h.T.copy(), lo.T.copy(), c.T.copy(), v.T.copy(),
                                   last_row_plan())
    assert vals.shape[1] == 3 and (n_bars == 80).all()
