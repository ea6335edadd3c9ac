"""Statistics of a score's per-date evaluation series: Newey-West t, block-bootstrap CI,
decile spreads after costs. Pure numpy/pandas, no database.

Why these: a forward return over ``h`` bars taken on consecutive dates shares ``h − 1`` daily
returns with its neighbour, so a per-date series of ICs or spreads is autocorrelated (an MA(h−1)
under the null of no predictability) and the naive ``mean / (std / √n)`` overstates t. Taking
every ``h``-th date only throws data away and depends on the phase picked. Instead:

* :func:`newey_west_t` — Newey & West (1987) HAC standard error of the mean with the Bartlett
  kernel and ``lag = h`` (every autocovariance of an MA(h−1), lags 1 … h−1, keeps a positive
  weight ``1 − j/(h+1)``; the extra lag is a little conservative for scores whose day-to-day
  ranks are themselves persistent). Equal to ``statsmodels`` OLS on a constant with
  ``cov_type="HAC", cov_kwds={"maxlags": h, "use_correction": False}`` (tested).
* :func:`block_bootstrap_ci` — circular block bootstrap of the mean (Politis & Romano 1992)
  over dates, blocks of ``max(h, 5)`` dates, so the overlap stays inside blocks.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def newey_west_t(x: np.ndarray | pd.Series, lag: int) -> tuple[float, float, float]:
    """Mean, HAC standard error and t-statistic of a series.

    ``se² = (γ₀ + 2 Σ_{j=1..L} (1 − j/(L+1)) γ_j) / n`` with ``γ_j = Σ_t (x_t − x̄)(x_{t−j} −
    x̄) / n`` (Bartlett kernel, Newey & West 1987; no small-sample correction).

    Args:
        x: ``(n,)`` values in time order (NaN dropped first).
        lag: ``L`` ≥ 0 (0 = the ordinary i.i.d. standard error with ``ddof = 0``).

    Returns:
        ``(mean, se, t)``; NaN when fewer than 3 values or the variance is 0.
    """
    v = np.asarray(x, dtype=np.float64)
    v = v[np.isfinite(v)]
    n = len(v)
    if n < 3:
        return float("nan"), float("nan"), float("nan")
    m = float(v.mean())
    e = v - m
    s = float(e @ e) / n
    for j in range(1, min(int(lag), n - 1) + 1):
        s += 2.0 * (1.0 - j / (lag + 1.0)) * float(e[j:] @ e[:-j]) / n
    se = float(np.sqrt(s / n)) if s > 0 else float("nan")
    return m, se, (m / se if se == se and se > 0 else float("nan"))


def block_bootstrap_ci(x: np.ndarray | pd.Series, block: int, n_boot: int = 2000,
                       level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile confidence interval of the mean by a circular block bootstrap over dates.

    Args:
        x: ``(n,)`` per-date values in time order (NaN dropped first).
        block: block length in dates (≥ 1).
        n_boot: resamples. level: coverage in (0, 1). seed: RNG seed (reproducible).

    Returns:
        ``(lo, hi)``; NaN when fewer than 3 values.
    """
    v = np.asarray(x, dtype=np.float64)
    v = v[np.isfinite(v)]
    n = len(v)
    if n < 3:
        return float("nan"), float("nan")
    b = max(1, min(int(block), n))
    k = -(-n // b)
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, n, size=(n_boot, k))
    idx = (starts[:, :, None] + np.arange(b)[None, None, :]).reshape(n_boot, -1)[:, :n] % n
    means = v[idx].mean(axis=1)
    a = (1.0 - level) / 2.0
    lo, hi = np.quantile(means, [a, 1.0 - a])
    return float(lo), float(hi)


def rank_ic(dates: np.ndarray | pd.Series, score: np.ndarray | pd.Series,
            fwd: np.ndarray | pd.Series) -> pd.Series:
    """Per-date Spearman correlation of score and forward return (the Pearson correlation of
    the per-date average ranks), vectorised.

    Args:
        dates, score, fwd: ``(n,)`` aligned rows; rows with a NaN score or return are left out.

    Returns:
        RankIC per date (index ``date``, sorted); dates where either side is constant are
        dropped.
    """
    d = pd.DataFrame({"date": np.asarray(dates), "s": np.asarray(score, np.float64),
                      "f": np.asarray(fwd, np.float64)}).dropna()
    g = d.groupby("date")
    rs, rf = g["s"].rank(), g["f"].rank()
    x = rs - rs.groupby(d["date"]).transform("mean")
    y = rf - rf.groupby(d["date"]).transform("mean")
    num = (x * y).groupby(d["date"]).sum()
    den = np.sqrt((x * x).groupby(d["date"]).sum() * (y * y).groupby(d["date"]).sum())
    ic = (num / den).replace([np.inf, -np.inf], np.nan).dropna()
    ic.index.name = "date"
    return ic.sort_index()


def deciles(dates: np.ndarray | pd.Series, score: np.ndarray | pd.Series) -> np.ndarray:
    """Per-date score decile 1..10 (10 = highest; ties by row order), ``(n,) float64``, NaN
    where the score is NaN."""
    s = pd.Series(np.asarray(score, np.float64))
    d = pd.Series(np.asarray(dates))
    first = s.groupby(d).rank(method="first")
    n = s.notna().groupby(d).transform("sum")
    return np.ceil(first / n * 10).clip(1, 10).to_numpy(np.float64)


def _turnover(members: pd.Series, lag: int) -> pd.Series:
    """One-way turnover per date: share of the date's names not held ``lag`` dates before."""
    sets = members.to_list()
    out = [np.nan] * len(sets)
    for i in range(lag, len(sets)):
        now, before = sets[i], sets[i - lag]
        out[i] = len(now - before) / len(now) if now else np.nan
    return pd.Series(out, index=members.index, dtype=np.float64)


def decile_spreads(dates: np.ndarray | pd.Series, symbols: np.ndarray | pd.Series,
                   score: np.ndarray | pd.Series, fwd: np.ndarray | pd.Series, horizon: int,
                   cost_bps: float) -> pd.DataFrame:
    """Per-date decile spreads of an ``h``-bar holding, gross and after costs.

    Portfolios (equal weight) are formed on every date and held ``h`` bars; they rebalance
    against the portfolio formed ``h`` dates earlier, so the one-way turnover ``τ`` of a leg is
    the share of its names on date ``t`` that were not in it on date ``t − h``. Cost model:
    ``cost_bps`` per side (basis points of the traded value), a full rebalance of a leg costs
    ``2 · τ · cost_bps / 10⁴`` (sell the leavers, buy the joiners). On the first ``h`` dates
    there is no earlier portfolio: ``τ = 1`` (bought from cash).

    * ``top_bottom`` = mean fwd of decile 10 − decile 1 (long/short);
      ``top_bottom_net`` = ``top_bottom − 2 c (τ_top + τ_bottom)``.
    * ``top_median`` = mean fwd of decile 10 − the date's median fwd (long-only against the
      typical name, which costs nothing to hold as a benchmark);
      ``top_median_net`` = ``top_median − 2 c τ_top``.

    Args:
        dates, symbols, score, fwd: ``(n,)`` aligned rows (fwd: fraction over ``h`` bars).
        horizon: ``h`` (the rebalance lag, in dates of the series).
        cost_bps: cost per side in basis points.

    Returns:
        Index ``date``; columns ``top_bottom, top_bottom_net, top_median, top_median_net,
        turnover_top, turnover_bottom`` (fractions).
    """
    d = pd.DataFrame({"date": np.asarray(dates), "symbol": np.asarray(symbols),
                      "s": np.asarray(score, np.float64),
                      "f": np.asarray(fwd, np.float64)}).dropna()
    d["dec"] = deciles(d["date"].to_numpy(), d["s"].to_numpy())
    g = d.groupby("date")
    top = d[d["dec"] == 10].groupby("date")
    bot = d[d["dec"] == 1].groupby("date")
    med = g["f"].median()
    out = pd.DataFrame({"top": top["f"].mean(), "bottom": bot["f"].mean(), "median": med})
    c = cost_bps / 1e4
    tt = _turnover(top["symbol"].apply(set).reindex(out.index, fill_value=set()), horizon)
    tb = _turnover(bot["symbol"].apply(set).reindex(out.index, fill_value=set()), horizon)
    tt, tb = tt.fillna(1.0), tb.fillna(1.0)
    res = pd.DataFrame({
        "top_bottom": out["top"] - out["bottom"],
        "top_median": out["top"] - out["median"]}, index=out.index)
    res["top_bottom_net"] = res["top_bottom"] - 2 * c * (tt + tb)
    res["top_median_net"] = res["top_median"] - 2 * c * tt
    res["turnover_top"], res["turnover_bottom"] = tt, tb
    res.index.name = "date"
    return res
