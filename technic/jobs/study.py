"""The default-rank study: every candidate rank replayed point in time on the real bar files,
split into a design and a locked test period (:mod:`technic.scoring.protocol`), and the
default rank chosen from the design periods only.

Runs from the Parquet files (no database), one data set at a time — the 2022–25 bars and the
2014–16 bars are separate periods and are never joined into one series:

1. bars → :class:`technic.panel.Panel` → every feature (:func:`technic.features.compute.
   feature_arrays`, the same kernels the feature store is filled with; each value uses bars on
   or before its date);
2. per date, the scan's scoring path (:func:`technic.scoring.rank.score_frame`) on the rows of
   symbols **with a bar on that date** (point-in-time membership; today's ``active`` flag is
   not used), the regime from an equal-weighted index built from the same bars;
3. the XGBoost alphas from walk-forward models fit every half year on earlier labels only
   (:mod:`technic.ml.walkforward`, stored under ``models/walkforward/``); a date uses the
   latest model whose training labels ended on or before it;
4. risk: rolling 60-bar market beta and residual volatility against the equal-weighted index
   (:mod:`technic.scoring.risk`);
5. per candidate, period and horizon: mean RankIC, Newey-West t, block-bootstrap CI, spreads
   after costs, RankIC by year and by size tercile (:func:`technic.jobs.evaluate.period_stats`).

:func:`choose_default` applies the selection rule, written before any test figure was read.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from technic.features.compute import feature_arrays
from technic.ml.dataset import MODEL_FEATURES, RAW_INPUTS, model_features
from technic.ml.walkforward import available_models, half_year_cutoffs, train_yearly
from technic.panel import Panel
from technic.scoring.cross_section import percentile_rank
from technic.scoring.protocol import Split, locked_split
from technic.scoring.rank import add_merit, score_frame
from technic.scoring.regime import breadth, classify, index_series
from technic.scoring.risk import (
    alpha_per_risk,
    market_beta_residual_vol,
    own_bar_returns,
    per_unit_risk,
)
from technic.universe import UniverseRules

log = logging.getLogger(__name__)

HORIZONS: tuple[int, ...] = (5, 10)
COST_BPS = 10.0
#: Candidate ranks → how each is computed (all higher = better). Formulas: docs/scoring.md.
CANDIDATES: dict[str, str] = {
    "tech_rating": "TechRating",
    "ics": "ICS",
    "merit": "MERIT (regime weights, walk-forward alphas)",
    "alpha_5d": "alpha_5d (walk-forward)",
    "alpha_10d": "alpha_10d (walk-forward)",
    "alpha_score": "alpha: mean percentile of alpha_5d, alpha_10d",
    "ics_alpha": "blend 0.5 ICS + 0.5 alpha_score",
    "alpha_ir": "alpha_10d per unit of residual risk: α / (σ_resid √(10/252))",
    "tech_per_risk": "TechRating per unit of residual risk: z(TechRating) / (σ_resid / median)",
    "merit_per_risk": "MERIT per unit of residual risk: z(MERIT) / (σ_resid / median)",
    "low_resid_vol": "− residual volatility (risk only; a baseline)",
}
#: When each candidate's design (weights, inputs, hyper-parameters) was fixed, and on what
#: data. TechRating, ICS and MERIT were designed and revised on the 2022–25 real data
#: (docs/scoring.md), so only the 2014–16 locked test is clean for them.
DESIGNED_ON: dict[str, str] = {
    "tech_rating": "weights set and revised on 2023-10 … 2025-07 (2022–25 data)",
    "ics": "weights set and revised on 2023-10 … 2025-07 (2022–25 data)",
    "merit": "weights set on 2023-10 … 2025-07 (2022–25 data); alphas walk-forward",
    "alpha_5d": "hyper-parameters fixed on 2023-10 … 2025-07 folds; each model fit on labels "
                "before its use",
    "alpha_10d": "as alpha_5d",
    "alpha_score": "as alpha_5d",
    "ics_alpha": "ICS's and the alphas' designs; blend weight fixed a priori (0.5)",
    "alpha_ir": "as alpha_10d; risk formula a priori",
    "tech_per_risk": "as TechRating; risk formula a priori",
    "merit_per_risk": "as MERIT; risk formula a priori",
    "low_resid_vol": "a priori (60-bar window)",
}
#: Candidates a scan can compute from one date's feature rows (the default must be one).
SCAN_READY = ("tech_rating", "ics", "merit", "alpha_5d", "alpha_10d", "alpha_score",
              "ics_alpha")


@dataclass(frozen=True)
class DataSet:
    """One bar file studied on its own: ``name``, the bars, the optional reference rows."""

    name: str
    bars: Path
    universe: Path | None = None


def real_data_sets(data_dir: str | Path) -> list[DataSet]:
    """The two real bar sets of ``../shared/data`` (missing files are left out)."""
    d = Path(data_dir)
    out = []
    if (d / "bars_daily.parquet").is_file():
        out.append(DataSet("2022-25", d / "bars_daily.parquet", d / "universe.parquet"))
    if (d / "bars_daily_2014_2016.parquet").is_file():
        out.append(DataSet("2014-16", d / "bars_daily_2014_2016.parquet"))
    return out


def ew_market_returns(close: np.ndarray, exclude: np.ndarray | None = None,
                      min_prev_close: float = 5.0,
                      clip: tuple[float, float] = (-0.5, 1.0)) -> np.ndarray:
    """The regime's equal-weighted index (as ``market_daily``, technic/store/market.py) from a
    close panel: per date the mean of ``close / previous own close − 1`` over symbols whose
    previous close is ≥ ``min_prev_close``, each clipped to ``clip``.

    Returns:
        ``(T,) float64`` fractions; NaN on the first date (and dates with no symbol).
    """
    c = pd.DataFrame(close)
    prev = c.ffill().shift(1)
    r = (c / prev - 1.0).clip(*clip)
    r = r.where(c.notna() & (prev >= min_prev_close))
    if exclude is not None:
        r.loc[:, np.asarray(exclude, bool)] = np.nan
    return r.mean(axis=1).to_numpy(np.float64)


def forward_returns(close: np.ndarray, h: int) -> np.ndarray:
    """``close[t+h] / close[t] − 1`` over each symbol's own next ``h`` bars, ``(T, N)``;
    NaN where fewer than ``h`` later bars exist."""
    out = np.full(close.shape, np.nan)
    for j in range(close.shape[1]):
        idx = np.flatnonzero(np.isfinite(close[:, j]))
        if len(idx) > h:
            c = close[idx, j]
            out[idx[:-h], j] = c[h:] / c[:-h] - 1.0
    return out


def _label_end(close: np.ndarray, dates: np.ndarray, h: int) -> np.ndarray:
    out = np.full(close.shape, np.datetime64("NaT"), dtype="datetime64[D]")
    for j in range(close.shape[1]):
        idx = np.flatnonzero(np.isfinite(close[:, j]))
        if len(idx) > h:
            out[idx[:-h], j] = dates[idx[h:]]
    return out


@dataclass
class StudyData:
    """The scored history of one data set: ``rows`` (one per date and passing symbol) and
    its split."""

    name: str
    split: Split
    rows: pd.DataFrame
    models: list[dict] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)


def _reference(ds: DataSet, symbols: np.ndarray) -> pd.DataFrame:
    cols = ["name", "sector", "security_type", "is_etf", "active", "market_cap"]
    if ds.universe is None:
        ref = pd.DataFrame(index=symbols, columns=cols, dtype=object)
        ref["market_cap"] = np.nan
        return ref
    u = pq.read_table(ds.universe, columns=["symbol", *cols]).to_pandas().set_index("symbol")
    return u.reindex(symbols)


def score_history(ds: DataSet, model_dir: str | Path, train: bool = True,
                  rules: UniverseRules | None = None) -> StudyData:
    """Replay the scan on every date of a data set with 252 bars of history before it
    (module docstring). Walk-forward models are fit (``train=True``) at each year end and
    written to ``<model_dir>/walkforward/``; otherwise the stored ones are used.

    Returns:
        :class:`StudyData`; ``rows`` columns: ``date, symbol`` the candidate scores of
        :data:`CANDIDATES`, ``fwd_<h>``, ``dollar_volume_20``, ``regime``, ``period``.
    """
    rules = rules or UniverseRules()
    t0 = time.perf_counter()
    p = Panel.from_arrow(pq.read_table(ds.bars))
    dates = p.dates.astype("datetime64[D]")
    split = locked_split(dates, max(HORIZONS))
    ref = _reference(ds, p.symbols)
    feats = feature_arrays(p)
    timings = {"features": round(time.perf_counter() - t0, 1)}
    is_etf = (ref["is_etf"].astype(object) == True).to_numpy()  # noqa: E712
    mret = ew_market_returns(p.close, is_etf)
    idx = index_series(pd.Series(mret[1:], index=pd.to_datetime(dates[1:])))
    beta, resid = market_beta_residual_vol(own_bar_returns(p.close), mret, 60, 40)
    fwd = {h: forward_returns(p.close, h) for h in HORIZONS}
    lend = {h: _label_end(p.close, dates, h) for h in HORIZONS}
    caps = None
    if ref["market_cap"].notna().any():
        last_close = pd.DataFrame(p.close).ffill().iloc[-1].to_numpy()
        caps = pd.DataFrame({"symbol": p.symbols,
                             "market_cap": ref["market_cap"].to_numpy(np.float64),
                             "ref_close": last_close}).dropna(subset=["market_cap"])
    wanted = sorted(set(RAW_INPUTS) | {"trend_r2_63", "sma_20", "sma_50", "sma_200"}
                    | {"close", "dollar_volume_20"})
    ref_cols = ref[["name", "sector", "security_type", "is_etf", "active"]].reset_index(
        drop=True)
    days = []
    first = 252
    for t in range(first, len(dates)):
        has = np.isfinite(p.close[t])
        if has.sum() < 20:
            continue
        cols = np.flatnonzero(has)
        day = pd.DataFrame({c: feats[c][t, cols] for c in wanted})
        day.insert(0, "symbol", p.symbols[cols])
        day = pd.concat([day, ref_cols.iloc[cols].reset_index(drop=True)], axis=1)
        scored, counts = score_frame(day, rules, caps, point_in_time=True)
        if counts["passed"] < 20:
            continue
        pos = pd.Index(p.symbols).get_indexer(scored["symbol"])
        scored["date"] = pd.Timestamp(dates[t])
        for h in HORIZONS:
            scored[f"fwd_{h}"] = fwd[h][t, pos]
            scored[f"label_end_{h}"] = lend[h][t, pos]
        scored["beta"] = beta[t, pos]
        scored["resid_vol"] = resid[t, pos]
        ts = pd.Timestamp(dates[t])
        if ts in idx.index:
            tr, pct = idx.loc[ts, ["trend_ratio", "vol_percentile"]]
            scored["regime"] = classify(float(tr), breadth(scored), float(pct))
        else:
            scored["regime"] = "neutral"
        mf = model_features(scored)
        keep = ["date", "symbol", "tech_rating", "ics", "regime", "dollar_volume_20",
                "beta", "resid_vol",
                *(f"fwd_{h}" for h in HORIZONS), *(f"label_end_{h}" for h in HORIZONS)]
        days.append(pd.concat([scored[keep].reset_index(drop=True),
                               mf.reset_index(drop=True)], axis=1))
    rows = pd.concat(days, ignore_index=True)
    timings["score"] = round(time.perf_counter() - t0 - timings["features"], 1)
    del feats
    t1 = time.perf_counter()
    records: list[dict] = []
    if train:
        cut = half_year_cutoffs(dates, rows["date"].to_numpy())
        records = train_yearly(rows, cut, model_dir, f"{ds.name} ({ds.bars.name})")
    timings["train"] = round(time.perf_counter() - t1, 1)
    rows = add_alphas(rows, model_dir, ds_dates=dates)
    rows = add_candidates(rows)
    rows["period"] = split.period(rows["date"].to_numpy())
    timings["total"] = round(time.perf_counter() - t0, 1)
    return StudyData(ds.name, split, rows.drop(columns=list(MODEL_FEATURES)), records,
                     timings)


def add_alphas(rows: pd.DataFrame, model_dir: str | Path, ds_dates: np.ndarray) -> pd.DataFrame:
    """``alpha_5d``, ``alpha_10d`` and ``alpha_model`` per row from the walk-forward models
    whose ``trained_through`` lies inside this data set and on or before the row's date (the
    final models and another data set's models never score these dates)."""
    from technic.ml.inference import load_booster
    from technic.ml.train import predict

    lo, hi = pd.Timestamp(ds_dates[0]).date(), pd.Timestamp(ds_dates[-1]).date()
    models = [m for m in available_models(model_dir) if m.name != "final"
              and lo <= m.trained_through < hi]
    rows = rows.copy()
    for h in HORIZONS:
        rows[f"alpha_{h}d"] = np.nan
    rows["alpha_model"] = None
    d = rows["date"].dt.date
    for i, m in enumerate(models):
        nxt = models[i + 1].trained_through if i + 1 < len(models) else None
        sel = (d > m.trained_through) & ((d <= nxt) if nxt else True)
        if not sel.any():
            continue
        for h in HORIZONS:
            rows.loc[sel, f"alpha_{h}d"] = predict(load_booster(m.files[h]), rows[sel])
        rows.loc[sel, "alpha_model"] = m.name
    return rows


def add_candidates(rows: pd.DataFrame) -> pd.DataFrame:
    """MERIT (with the walk-forward alphas) and the blended and risk-adjusted candidates of
    :data:`CANDIDATES`, per date."""
    out = []
    for _, day in rows.groupby("date", sort=True):
        day = day.reset_index(drop=True)
        label = str(day["regime"].iloc[0])
        day = add_merit(day, label)
        a = day["alpha_score"].to_numpy(np.float64)
        day["ics_alpha"] = 0.5 * day["ics"].to_numpy() + 0.5 * a
        rv = day["resid_vol"].to_numpy(np.float64)
        day["alpha_ir"] = alpha_per_risk(day["alpha_10d"].to_numpy(np.float64), rv, 10)
        day["tech_per_risk"] = per_unit_risk(day["tech_rating"].to_numpy(np.float64), rv)
        day["merit_per_risk"] = per_unit_risk(day["merit"].to_numpy(np.float64), rv)
        day["low_resid_vol"] = -rv
        # the size tercile (1 = smallest) by 20-bar dollar volume: a point-in-time size proxy
        pr = percentile_rank(day["dollar_volume_20"].to_numpy(np.float64), None)
        day["size_tercile"] = np.ceil(pr * 3).clip(1, 3)
        out.append(day)
    return pd.concat(out, ignore_index=True)


def choose_default(table: pd.DataFrame) -> tuple[str, bool, str]:
    """The default rank from the DESIGN rows of :func:`technic.jobs.evaluate.period_stats`
    tables (columns ``data_set, period, score, horizon, mean_rank_ic, nw_t,
    top_median_net``). Written before any locked-test figure was computed; the test rows are
    never read here.

    Rule: a scan-ready candidate (:data:`SCAN_READY`) *clears the bar* when, in every data
    set's design period, at 5 or 10 bars, its mean RankIC > 0.02 with Newey-West t ≥ 2 and its
    top-decile-minus-median spread after 10 bps per side is > 0. Among those that clear, the
    highest mean Newey-West t (over data sets and horizons) wins. If none clears, the least
    harm: the candidate whose worst design-period mean top-decile-minus-median net spread
    (mean over horizons) is highest.

    Returns:
        ``(score, cleared, reason)``.

    Raises:
        ValueError: no design rows.
    """
    d = table[(table["period"] == "design") & table["score"].isin(SCAN_READY)]
    if d.empty:
        raise ValueError("no design-period rows to choose from")
    sets = sorted(d["data_set"].unique())
    cleared = []
    for s, g in d.groupby("score"):
        ok = len(g["data_set"].unique()) == len(sets) and all(
            ((x["mean_rank_ic"] > 0.02) & (x["nw_t"] >= 2) & (x["top_median_net"] > 0)).any()
            for _, x in g.groupby("data_set"))
        if ok:
            cleared.append((float(g["nw_t"].mean()), s))
    if cleared:
        t, s = max(cleared)
        return s, True, f"clears the bar in every design period; highest mean NW t ({t:+.2f})"
    worst = (d.groupby(["score", "data_set"])["top_median_net"].mean()
             .groupby("score").min())
    complete = d.groupby("score")["data_set"].nunique() == len(sets)
    worst = worst[complete[worst.index]]
    s = str(worst.idxmax())
    return s, False, ("nothing clears the bar in every design period; least harm: the "
                      f"highest worst-design-period top-decile-minus-median net spread "
                      f"({worst.max():+.3%} per holding period)")


# ----------------------------------------------------------------------------- report
def common_dates(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows of the dates on which every candidate is defined (the alphas need a
    walk-forward model trained before the date), so candidates are compared on the same
    dates."""
    have = rows.groupby("date")["alpha_model"].transform(lambda s: s.notna().any())
    return rows[have.to_numpy(bool)]


def study_table(data: list[StudyData], cost_bps: float = COST_BPS, n_boot: int = 1000
                ) -> pd.DataFrame:
    """Per data set, period (design, test), candidate and horizon: the
    :func:`technic.jobs.evaluate.period_stats` figures on the common dates, with the period's
    dates and each candidate's "designed on" label."""
    from technic.jobs.evaluate import period_stats

    out = []
    for sd in data:
        rows = common_dates(sd.rows)
        for period in ("design", "test"):
            r = rows[rows["period"] == period]
            if r.empty:
                continue
            span = f"{r['date'].min().date()} … {r['date'].max().date()}"
            for s in CANDIDATES:
                for h in HORIZONS:
                    st = period_stats(r, s, h, cost_bps, n_boot)
                    out.append({"data_set": sd.name, "period": period, "dates_span": span,
                                "score": s, "horizon": h, **st,
                                "designed_on": DESIGNED_ON[s]})
    return pd.DataFrame(out)


def _f(x: float, fmt: str) -> str:
    return "—" if x is None or not np.isfinite(x) else format(x, fmt)


def _table_rows(t: pd.DataFrame) -> list[str]:
    lines = ["| score | RankIC 5 bars (NW t) [95 % CI] | RankIC 10 bars (NW t) [95 % CI] | "
             "top − bottom, net 10 bps (5 / 10 bars) | top − median, net 10 bps (5 / 10 "
             "bars) | top-decile turnover (5 / 10) |",
             "| --- | --- | --- | --- | --- | --- |"]
    for s in CANDIDATES:
        g = t[t["score"] == s].set_index("horizon")
        if g.empty:
            continue
        cells = []
        for h in HORIZONS:
            r = g.loc[h]
            cells.append(f"{_f(r.mean_rank_ic, '+.4f')} ({_f(r.nw_t, '+.2f')}) "
                         f"[{_f(r.ci_lo, '+.3f')}, {_f(r.ci_hi, '+.3f')}]")
        cells.append(" / ".join(_f(g.loc[h].top_bottom_net, "+.3%") for h in HORIZONS))
        cells.append(" / ".join(_f(g.loc[h].top_median_net, "+.3%") for h in HORIZONS))
        cells.append(" / ".join(_f(g.loc[h].turnover_top, ".0%") for h in HORIZONS))
        lines.append(f"| {CANDIDATES[s]} | " + " | ".join(cells) + " |")
    return lines


def write_plots(data: list[StudyData], table: pd.DataFrame, out_dir: Path) -> list[Path]:
    """PNGs: per data set the cumulative 10-bar RankIC of every candidate over design and
    test (a line marks the locked test start), and the design-vs-test RankIC bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from technic.scoring.stats import rank_ic

    files = []
    for sd in data:
        rows = common_dates(sd.rows)
        rows = rows[rows["period"] != ""]
        fig, ax = plt.subplots(figsize=(11, 4.8))
        for s in CANDIDATES:
            d = rows.dropna(subset=[s, "fwd_10"])
            if d.empty:
                continue
            ic = rank_ic(d["date"].to_numpy(), d[s].to_numpy(), d["fwd_10"].to_numpy())
            ax.plot(ic.index, ic.cumsum(), label=CANDIDATES[s].split(":")[0], lw=1.1)
        ax.axvline(pd.Timestamp(sd.split.test_start), color="black", ls="--", lw=0.8)
        ax.annotate(" locked test →", (pd.Timestamp(sd.split.test_start), ax.get_ylim()[1]),
                    va="top", fontsize=8)
        ax.axhline(0, color="black", lw=0.5)
        ax.set_title(f"{sd.name}: cumulative daily 10-bar RankIC (design | locked test)")
        ax.set_ylabel("sum of daily RankIC")
        ax.legend(fontsize=7, ncol=3)
        fig.tight_layout()
        f = out_dir / f"default_rank.{sd.name}.cum_ic.png"
        fig.savefig(f, dpi=100)
        plt.close(fig)
        files.append(f)
    fig, axes = plt.subplots(1, len(data), figsize=(6 * len(data), 4.8), squeeze=False)
    for ax, sd in zip(axes[0], data, strict=True):
        t = table[(table["data_set"] == sd.name) & (table["horizon"] == 10)]
        names = [s for s in CANDIDATES if s in set(t["score"])]
        x = np.arange(len(names))
        for k, period in enumerate(("design", "test")):
            v = t[t["period"] == period].set_index("score").reindex(names)
            ax.bar(x + (k - 0.5) * 0.4, v["mean_rank_ic"], 0.4, label=period,
                   yerr=[v["mean_rank_ic"] - v["ci_lo"], v["ci_hi"] - v["mean_rank_ic"]],
                   capsize=2)
        ax.set_xticks(x)
        ax.set_xticklabels(names, rotation=60, ha="right", fontsize=7)
        ax.axhline(0, color="black", lw=0.5)
        ax.set_title(f"{sd.name}: mean 10-bar RankIC, 95 % block-bootstrap CI")
        ax.legend(fontsize=8)
    fig.tight_layout()
    f = out_dir / "default_rank.design_vs_test.png"
    fig.savefig(f, dpi=100)
    plt.close(fig)
    files.append(f)
    return files


def study_report(data: list[StudyData], table: pd.DataFrame, choice: tuple[str, bool, str],
                 plots: list[Path]) -> str:
    """The study as Markdown (numbers as measured)."""
    score, cleared, reason = choice
    lines = ["# Default rank: design period vs locked test period", "",
             "Generated by `technic evaluate --write-docs` (technic/jobs/study.py); do not edit "
             "by hand. Protocol: docs/evaluation/README.md.", "",
             "## Data sets (never joined)", ""]
    for sd in data:
        sp = sd.split
        n = sd.rows.groupby("period")["date"].nunique()
        lines.append(f"* **{sd.name}**: bars {sp.data_start} … {sp.data_end}; scored dates "
                     f"(252 bars of history) from {sd.rows['date'].min().date()}; design "
                     f"{sp.design_start} … {sp.design_end} ({n.get('design', 0)} scored "
                     f"dates), purge {sp.max_horizon} bars, **locked test {sp.test_start} … "
                     f"{sp.test_end}** ({n.get('test', 0)} dates). Alpha models: " +
                     ", ".join(sorted(sd.rows["alpha_model"].dropna().unique())) +
                     " (walk-forward, `models/walkforward/`).")
    lines += ["", "Candidates are compared on the same dates: those with a walk-forward alpha "
              "model trained before them (the first half of each design period has none). "
              "Forward returns over each symbol's own next h bars; spreads per h-bar holding "
              "after 10 bps per side × turnover; NW t = Newey-West, Bartlett kernel, lag h; "
              "CI = 95 % circular block bootstrap over dates.", "",
              "## The choice (design periods only)", "",
              f"**Default rank: {CANDIDATES[score]}** (`{score}`) — {reason}.", ""]
    if not cleared:
        lines += ["No candidate clears the bar (RankIC > 0.02 with NW t ≥ 2 and a positive "
                  "top-decile-minus-median spread after costs, in every design period).", ""]
    for period, title in (("design", "Design period"), ("test", "Locked test period "
                                                                 "(reported once)")):
        for sd in data:
            t = table[(table["data_set"] == sd.name) & (table["period"] == period)]
            if t.empty:
                continue
            lines += [f"## {title}: {sd.name}, {t['dates_span'].iloc[0]} "
                      f"({int(t['dates'].max())} dates)", "", *_table_rows(t), ""]
    lines += ["## Locked-test RankIC (10 bars) by year and by size tercile", "",
              "Size tercile by 20-bar dollar volume on each date (1 = smallest): a point-in-"
              "time size proxy (2025 share counts would look ahead).", "",
              "| data set | score | by year | tercile 1 | tercile 2 | tercile 3 |",
              "| --- | --- | --- | --- | --- | --- |"]
    for r in table[(table["period"] == "test") & (table["horizon"] == 10)].itertuples():
        yrs = ", ".join(f"{y}: {v:+.4f}" for y, v in r.ic_by_year.items())
        sz = [r.ic_by_size.get(k, float("nan")) for k in (1, 2, 3)]
        lines.append(f"| {r.data_set} | {r.score} | {yrs} | " +
                     " | ".join(_f(v, "+.4f") for v in sz) + " |")
    lines += ["", "## Designed on", "", "| score | design fixed on |", "| --- | --- |",
              *[f"| {CANDIDATES[s]} | {DESIGNED_ON[s]} |" for s in CANDIDATES], "",
              "TechRating, ICS and MERIT were designed and revised on 2023–25 data, which "
              "includes the 2022–25 locked test: their 2022–25 test rows are not clean; the "
              "2014–16 locked test (2016) is clean for every candidate.", "",
              "## Limits", "",
              "* Survivorship: both bar files hold mostly tickers that still existed at the "
              "vendor's snapshot (2025-07 and 2020-01); names that died in between are missing, "
              "which flatters every long-only figure.",
              "* Point in time: membership = a bar on the date (today's `active` flag unused); "
              "the ICS size input re-prices the 2025 market-cap snapshot (2022–25 only; none "
              "for 2014–16); sectors are today's. Point-in-time shares from fundamentals are "
              "not used here.",
              "* The 2014–16 file has no reference data: no sectors, ETF flags or security "
              "types (the ticker-shape rule still applies).", ""]
    lines += ["## Plots", ""] + [f"![{p.stem}]({p.name})" for p in plots]
    return "\n".join(lines) + "\n"


def run_study(data_dir: str | Path, model_dir: str | Path, out_dir: str | Path,
              train: bool = True, cost_bps: float = COST_BPS) -> tuple[pd.DataFrame, tuple]:
    """Score every real data set, choose the default on the design periods, write
    ``default_rank.md``, its PNGs and ``default_rank.csv`` to ``out_dir``.

    Returns:
        ``(table, (score, cleared, reason))``.

    Raises:
        FileNotFoundError: no bar file in ``data_dir``.
    """
    sets = real_data_sets(data_dir)
    if not sets:
        raise FileNotFoundError(f"no bars_daily*.parquet in {data_dir}")
    data = [score_history(ds, model_dir, train) for ds in sets]
    return write_study(data, out_dir, cost_bps)


def write_study(data: list[StudyData], out_dir: str | Path, cost_bps: float = COST_BPS,
                table: pd.DataFrame | None = None) -> tuple[pd.DataFrame, tuple]:
    """The report files of :func:`run_study` from scored data sets (``table``: their
    :func:`study_table`, computed here when None)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if table is None:
        table = study_table(data, cost_bps)
    choice = choose_default(table[table["period"] == "design"])
    plots = write_plots(data, table, out)
    (out / "default_rank.md").write_text(study_report(data, table, choice, plots))
    table.drop(columns=["ic_by_year", "ic_by_size"]).to_csv(out / "default_rank.csv",
                                                            index=False)
    return table, choice
