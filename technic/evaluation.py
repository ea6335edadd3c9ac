"""Point-in-time evaluation of a ranking score against forward returns.

For every date of a range, the scan's own steps are replayed on that date's stored features
(universe filter with the default rules, then the score), and compared with each symbol's
forward return over the next ``h`` of its own bars (``close[t+h] / close[t] − 1``, fraction).
Reported per horizon:

* mean RankIC — the per-date Spearman correlation of score and forward return — with its
  standard deviation, ICIR (mean / std) and t-statistic. Forward windows of consecutive dates
  overlap, which inflates a naive t; the t reported uses every ``h``-th date only
  (non-overlapping windows).
* mean forward return per score decile (1 = lowest score, 10 = highest), fractions;
* top-decile hit rate: share of top-decile symbols whose forward return beats that date's
  median forward return;
* turnover of the top 50: share of names replaced from one date to the next.

Only dates whose forward window is complete are evaluated. No transaction costs, no
survivorship correction (the data have survivorship bias: see technic/data/README.md).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from technic.scoring.techrating import tech_rating
from technic.store.db import DatabaseTarget, fetch_frame
from technic.universe import UniverseRules, apply_rules

SCORE_INPUTS = ("close", "sma_50", "sma_200", "adx_14", "dist_52w_high", "ret_12_1",
                "ret_126d", "ret_63d", "macd_hist", "realized_vol_60", "natr_14",
                "obv_trend_20", "rel_volume_20", "dollar_volume_20")


@dataclass
class HorizonReport:
    """Evaluation of one forward horizon (``h`` bars)."""

    horizon: int
    dates: int
    mean_rank_ic: float
    std_rank_ic: float
    icir: float
    t_stat_nonoverlap: float
    decile_mean_return: list[float]
    top_minus_bottom: float
    top_decile_hit_rate: float
    top50_turnover: float
    ic_series: pd.Series = field(repr=False)


def forward_labels(bars: pd.DataFrame, horizons: tuple[int, ...]) -> pd.DataFrame:
    """Forward returns over each symbol's own next ``h`` bars.

    Args:
        bars: ``symbol, date, close`` (any order); every bar known up to the cut-off.

    Returns:
        ``symbol, date, fwd_<h>, label_end_<h>`` per bar and horizon: ``fwd_<h>`` =
        ``close[t+h] / close[t] − 1`` (fraction), ``label_end_<h>`` = date of bar ``t+h``;
        both NaN/NaT where fewer than ``h`` later bars exist.
    """
    b = bars.sort_values(["symbol", "date"], kind="mergesort").reset_index(drop=True)
    g = b.groupby("symbol", sort=False)
    out = b[["symbol", "date"]].copy()
    for h in horizons:
        with np.errstate(divide="ignore", invalid="ignore"):
            out[f"fwd_{h}"] = g["close"].shift(-h) / b["close"] - 1.0
        out[f"label_end_{h}"] = g["date"].shift(-h)
    return out


def load_history(target: DatabaseTarget, start: dt.date, end: dt.date,
                 horizons: tuple[int, ...]) -> pd.DataFrame:
    """Stored features of ``[start, end]`` joined with reference data and forward returns
    ``fwd_<h>`` (fractions; NaN where the window runs past the stored bars)."""
    feats = fetch_frame(target,
                   f"SELECT f.symbol, f.date, {', '.join('f.' + c for c in SCORE_INPUTS)}, "
                   "s.name, s.sector, s.security_type, s.is_etf, s.active "
                   "FROM features_daily f JOIN symbols s USING (symbol) "
                   "WHERE f.date >= $1 AND f.date <= $2", (start, end))
    bars = fetch_frame(target, "SELECT symbol, date, close FROM bars_daily WHERE date >= $1",
                       (start,))
    labels = forward_labels(bars, horizons)[["symbol", "date", *(f"fwd_{h}" for h in horizons)]]
    return feats.merge(labels, on=["symbol", "date"], how="left")


def _score_dates(hist: pd.DataFrame, rules: UniverseRules) -> pd.DataFrame:
    out = []
    for _, day in hist.groupby("date", sort=True):
        day = day.reset_index(drop=True)
        keep, _ = apply_rules(day, rules)
        if keep.sum() < 20:
            continue
        scored = day[keep].copy()
        scored["score"] = tech_rating(day, keep)["tech_rating"].to_numpy()[keep]
        out.append(scored)
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()


def evaluate_tech_rating(target: DatabaseTarget, start: dt.date, end: dt.date,
                         horizons: tuple[int, ...] = (5, 10),
                         rules: UniverseRules | None = None) -> list[HorizonReport]:
    """Evaluate TechRating over the stored feature history of ``[start, end]``.

    Raises:
        LookupError: no feature history in the range (run ``technic features backfill``).
    """
    hist = load_history(target, start, end, horizons)
    if hist.empty:
        raise LookupError(f"no stored features between {start} and {end}; run "
                          "`technic features backfill` first")
    scored = _score_dates(hist, rules or UniverseRules())
    return [_horizon(scored, h) for h in horizons]


def _horizon(scored: pd.DataFrame, h: int) -> HorizonReport:
    col = f"fwd_{h}"
    d = scored.dropna(subset=[col, "score"]).copy()
    d["r_score"] = d.groupby("date")["score"].rank()
    d["r_fwd"] = d.groupby("date")[col].rank()
    ic = d.groupby("date").apply(lambda x: np.corrcoef(x["r_score"], x["r_fwd"])[0, 1],
                                 include_groups=False).dropna()
    every_h = ic.iloc[::h]
    t_stat = float(every_h.mean() / every_h.std(ddof=1) * np.sqrt(len(every_h))) \
        if len(every_h) > 2 else float("nan")
    d["decile"] = d.groupby("date")["score"].transform(
        lambda s: np.ceil(s.rank(method="first") / len(s) * 10).clip(1, 10))
    dec = d.groupby(["date", "decile"])[col].mean().groupby("decile").mean()
    med = d.groupby("date")[col].transform("median")
    top = d[d["decile"] == 10]
    hit = float((top[col] > med[top.index]).mean())
    tops = (d.sort_values(["date", "score"], ascending=[True, False])
            .groupby("date").head(50).groupby("date")["symbol"].apply(set))
    turns = [1 - len(a & b) / max(len(b), 1) for a, b in zip(tops.iloc[:-1], tops.iloc[1:],
                                                             strict=True)]
    return HorizonReport(
        horizon=h, dates=len(ic), mean_rank_ic=float(ic.mean()), std_rank_ic=float(ic.std()),
        icir=float(ic.mean() / ic.std()) if ic.std() > 0 else float("nan"),
        t_stat_nonoverlap=t_stat, decile_mean_return=[float(x) for x in dec.to_numpy()],
        top_minus_bottom=float(dec.iloc[-1] - dec.iloc[0]), top_decile_hit_rate=hit,
        top50_turnover=float(np.mean(turns)) if turns else float("nan"), ic_series=ic)


def markdown_report(reports: list[HorizonReport], start: dt.date, end: dt.date,
                    universe: str) -> str:
    """The evaluation as a Markdown document (numbers as measured, no rounding up)."""
    lines = [f"# TechRating evaluation, {start} … {end}", "", f"Universe: {universe}. "
             "Point-in-time: each date uses only features stored for that date; forward "
             "returns over the symbol's next h bars. No costs; survivorship-biased data.", "",
             "| horizon | dates | mean RankIC | std | ICIR | t (non-overlapping) | "
             "top − bottom decile | top-decile hit rate | top-50 turnover |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in reports:
        lines.append(f"| {r.horizon} bars | {r.dates} | {r.mean_rank_ic:+.4f} | "
                     f"{r.std_rank_ic:.4f} | {r.icir:+.3f} | {r.t_stat_nonoverlap:+.2f} | "
                     f"{r.top_minus_bottom:+.4%} | {r.top_decile_hit_rate:.1%} | "
                     f"{r.top50_turnover:.1%} |")
    lines += ["", "Mean forward return by TechRating decile (1 = lowest):", "",
              "| decile | " + " | ".join(f"{r.horizon} bars" for r in reports) + " |",
              "| --- |" + " --- |" * len(reports)]
    for i in range(10):
        lines.append(f"| {i + 1} | " + " | ".join(
            f"{r.decile_mean_return[i]:+.3%}" if i < len(r.decile_mean_return) else "—"
            for r in reports) + " |")
    return "\n".join(lines) + "\n"


def ic_table(reports: list[HorizonReport]) -> pa.Table:
    """Per-date RankIC of every horizon as an Arrow table (``date``, ``ic_<h>``)."""
    df = pd.concat({f"ic_{r.horizon}": r.ic_series for r in reports}, axis=1)
    return pa.Table.from_pandas(df.reset_index(), preserve_index=False)
