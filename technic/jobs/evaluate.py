"""Point-in-time evaluation of ranking scores against forward returns.

For every date of a range, the scan's own steps are replayed on that date's stored features
(universe filter with the default rules, then the scores), and compared with each symbol's
forward return over the next ``h`` of its own bars (``close[t+h] / close[t] − 1``, fraction).

Scores evaluated (docs/scoring.md): TechRating, ICS, MERIT and — only on the out-of-sample
dates of their walk-forward folds (``oos_alpha.parquet`` written by ``technic train``) — the
XGBoost alphas ``alpha_5d``/``alpha_10d``. The alphas of the shipped final models are never
used here: they were fit on the whole history, so every past date is in-sample for them. MERIT
uses the out-of-sample alphas where they exist; on other dates it is evaluated without its alpha
part (weights spread over TechRating and ICS, as in a scan without models). The regime of each
date is computed as in the scan (:mod:`technic.scoring.regime`, index from ``market_daily``).

Reported per score and horizon:

* mean RankIC — the per-date Spearman correlation of score and forward return — with its
  standard deviation, ICIR (mean / std) and t-statistic. Forward windows of consecutive dates
  overlap, which inflates a naive t; the t reported uses every ``h``-th date only
  (non-overlapping windows).
* mean forward return per score decile (1 = lowest score, 10 = highest), fractions;
* top-decile hit rate: share of top-decile symbols whose forward return beats that date's
  median forward return;
* turnover of the top 50: share of names replaced from one date to the next.

Only dates whose forward window is complete are evaluated. No transaction costs, no
survivorship correction (the data have survivorship bias: see technic/data/README.md). Each
date is scored as a scan of it is: membership from the bars that existed, the fundamentals
public on it (ICS size from the diluted shares of the latest public quarter, else today's
market-cap snapshot re-priced to the date).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from technic.ml.dataset import forward_labels
from technic.scoring.fundamentals import pit_state_asof, pit_state_events
from technic.scoring.protocol import Split, locked_split
from technic.scoring.rank import add_merit, score_frame
from technic.scoring.regime import breadth, classify, index_series
from technic.scoring.stats import rank_ic
from technic.store.db import DatabaseTarget
from technic.store.history import read_closes, read_feature_history, read_trading_dates
from technic.universe import UniverseRules

SCORE_INPUTS = ("close", "sma_20", "sma_50", "sma_200", "adx_14", "dist_52w_high", "ret_12_1",
                "ret_126d", "ret_63d", "ret_21d", "macd_hist", "realized_vol_60", "natr_14",
                "obv_trend_20", "rel_volume_20", "dollar_volume_20", "trend_r2_63")

#: Scores the evaluation reports, in report order.
SCORES: tuple[str, ...] = ("tech_rating", "ics", "merit", "alpha_5d", "alpha_10d")
#: Display names.
SCORE_NAMES: dict[str, str] = {"tech_rating": "TechRating", "ics": "ICS", "merit": "MERIT",
                               "alpha_5d": "alpha_5d (OOS)", "alpha_10d": "alpha_10d (OOS)"}


@dataclass
class HorizonReport:
    """Evaluation of one score over one forward horizon (``h`` bars)."""

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
    score: str = "tech_rating"


def load_history(target: DatabaseTarget, start: dt.date, end: dt.date,
                 horizons: tuple[int, ...], model_inputs: bool = False) -> pd.DataFrame:
    """Stored features of ``[start, end]`` joined with reference data and forward returns
    ``fwd_<h>`` (fractions; NaN where the window runs past the stored bars); with
    ``model_inputs`` also the alpha models' raw inputs."""
    from technic.ml.dataset import RAW_INPUTS

    cols = SCORE_INPUTS + tuple(c for c in RAW_INPUTS if c not in SCORE_INPUTS) \
        if model_inputs else SCORE_INPUTS
    # ordered by date, symbol: seeded shuffles are reproducible
    feats = read_feature_history(target, start, end, cols)
    bars = read_closes(target, start)
    labels = forward_labels(bars, horizons)[["symbol", "date", *(f"fwd_{h}" for h in horizons)]]
    return feats.merge(labels, on=["symbol", "date"], how="left")


def fundamental_events(target: DatabaseTarget) -> pd.DataFrame | None:
    """:func:`technic.scoring.fundamentals.pit_state_events` of every stored quarter (computed
    once per evaluation; :func:`_score_dates` takes each date's state from it), or None while
    ``fundamentals`` is empty (dates are then sized by the reference shares, as a scan is)."""
    from technic.store.fundamentals import read_fundamentals

    quarters = read_fundamentals(target, window_days=None)
    return None if quarters.empty else pit_state_events(quarters)


def _score_dates(hist: pd.DataFrame, rules: UniverseRules, caps: pd.DataFrame | None = None,
                 regimes: pd.Series | None = None, events: pd.DataFrame | None = None
                 ) -> pd.DataFrame:
    """Replay the scan's scores on every date (:mod:`technic.scoring.rank`, the scan's own
    path): the passing rows, in stored order, with ``score`` (= TechRating), the TechRating
    components, the factors, ``ics``, ``alpha_score``, ``merit``, ``regime`` and the alpha
    columns present in ``hist``. Dates with fewer than 20 passing symbols are skipped.

    ``events``: :func:`technic.scoring.fundamentals.pit_state_events` of the stored quarters
    (None: none stored). Given, each date is scored with the fundamentals public on it, as a
    scan of that date is (ICS size from the point-in-time diluted shares)."""
    out = []
    for date, day in hist.groupby("date", sort=True):
        day = day.reset_index(drop=True)
        fund = None if events is None else pit_state_asof(day[["symbol", "date"]], events)
        scored, counts = score_frame(day, rules, caps, fund, point_in_time=True)
        if counts["passed"] < 20:
            continue
        if regimes is not None and pd.Timestamp(date) in regimes.index:
            tr, pct = regimes.loc[pd.Timestamp(date)]
            label = classify(float(tr), breadth(scored), float(pct))
        else:
            label = "neutral"
        out.append(add_merit(scored.assign(score=scored["tech_rating"]), label))
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


@dataclass
class Evaluation:
    """All scores over a range: per period, score and horizon a :class:`HorizonReport`.

    Attributes:
        full: ``{score: [HorizonReport per horizon]}`` over every evaluated date (TechRating,
            ICS, MERIT; MERIT without alphas outside the out-of-sample dates).
        oos: the same for every score, restricted to the out-of-sample dates of the alpha
            models (empty without an ``oos_alpha.parquet``).
        oos_span: first and last out-of-sample date (None without).
        regimes: dates per regime label over the evaluated dates.
        regime_ic: mean RankIC per regime label, score and horizon (full period).
        split: the store's design / locked-test split (:mod:`technic.scoring.protocol`).
        protocol: per period (``design``, ``test``), score and horizon the
            :func:`period_stats` figures, with ``designed_on`` (:data:`DESIGNED_ON`) and the
            period's evaluated ``dates_span``.
        alpha_source: where the alphas came from (walk-forward models or a file).
    """

    start: dt.date
    end: dt.date
    horizons: tuple[int, ...]
    full: dict[str, list[HorizonReport]]
    oos: dict[str, list[HorizonReport]]
    oos_span: tuple[dt.date, dt.date] | None
    regimes: dict[str, int]
    regime_ic: pd.DataFrame
    split: Split | None = None
    protocol: pd.DataFrame = field(default_factory=pd.DataFrame)
    alpha_source: str = ""


def load_oos(path: str | Path | None) -> pd.DataFrame | None:
    """The walk-forward out-of-sample predictions (``technic.ml.train.write_oos``) or None
    when the file does not exist."""
    if path is None or not Path(path).is_file():
        return None
    df = pd.read_parquet(path)
    df["date"] = pd.to_datetime(df["date"])
    return df


def evaluate(target: DatabaseTarget, start: dt.date, end: dt.date,
             horizons: tuple[int, ...] = (5, 10), rules: UniverseRules | None = None,
             oos_path: str | Path | None = None, shuffle_seed: int | None = None,
             model_dir: str | Path | None = None, cost_bps: float = 10.0) -> Evaluation:
    """Evaluate TechRating, ICS, MERIT and the out-of-sample alphas over ``[start, end]``.

    Args:
        target: the store (features, bars, symbols; ``market_daily`` is brought up to date).
        start, end: scan dates, inclusive.
        horizons: forward horizons in own bars.
        rules: universe filter (default rules when None).
        oos_path: ``oos_alpha.parquet`` of ``technic train``; None (or missing) → the
            alphas of the walk-forward models of ``model_dir``, each date scored by the
            latest model trained on or before it (:func:`walkforward_alphas`).
        model_dir: the model folder (default: the settings' ``model_dir``).
        cost_bps: cost per side of the spreads after costs.
        shuffle_seed: when given, every date's forward returns are permuted across its
            symbols before scoring (a leakage check: every IC must then vanish).

    Returns:
        The :class:`Evaluation`.

    Raises:
        LookupError: no feature history in the range.
    """
    from technic.store.market import market_caps, market_returns

    oos = load_oos(oos_path)
    hist = load_history(target, start, end, horizons, model_inputs=oos is None)
    if hist.empty:
        raise LookupError(f"no stored features between {start} and {end}; run "
                          "`technic features backfill` first")
    hist["date"] = pd.to_datetime(hist["date"])
    if oos is not None:
        cols = [c for c in oos.columns if c.startswith("alpha_")]
        hist = hist.merge(oos[["date", "symbol", *cols]], on=["date", "symbol"], how="left")
        source = f"out-of-sample fold predictions {oos_path}"
    else:
        hist = walkforward_alphas(hist, model_dir)
        source = "walk-forward models (technic.ml.walkforward.choose_model per date)"
    if shuffle_seed is not None:
        rng = np.random.default_rng(shuffle_seed)
        for h in horizons:
            v = hist[f"fwd_{h}"].to_numpy().copy()
            for idx in hist.groupby("date").indices.values():
                v[idx] = v[rng.permutation(idx)]
            hist[f"fwd_{h}"] = v
    idx = index_series(market_returns(target, end, last_n=None))
    regimes = idx[["trend_ratio", "vol_percentile"]]
    scored = _score_dates(hist, rules or UniverseRules(), market_caps(target), regimes,
                          fundamental_events(target))
    full = {s: [_horizon(scored, h, s) for h in horizons]
            for s in ("tech_rating", "ics", "merit")}
    oos_rep: dict[str, list[HorizonReport]] = {}
    span = None
    alpha_cols = [c for c in ("alpha_5d", "alpha_10d") if c in scored.columns]
    if alpha_cols:
        has = scored.groupby("date")[alpha_cols].transform(lambda x: x.notna().any())
        sub = scored[has.all(axis=1)]
        if not sub.empty:
            span = (sub["date"].min().date(), sub["date"].max().date())
            oos_rep = {s: [_horizon(sub, h, s) for h in horizons]
                       for s in ("tech_rating", "ics", "merit", *alpha_cols)}
    per_date = scored.groupby("date")["regime"].first()
    rows = []
    for s, reps in full.items():
        for r in reps:
            j = r.ic_series.to_frame("ic").join(per_date)
            for label, v in j.groupby("regime")["ic"]:
                rows.append({"score": s, "horizon": r.horizon, "regime": label,
                             "dates": len(v), "mean_rank_ic": float(v.mean())})
    split = locked_split(read_trading_dates(target), max(horizons))
    return Evaluation(start, end, tuple(horizons), full, oos_rep, span,
                      {k: int(v) for k, v in per_date.value_counts().items()},
                      pd.DataFrame(rows), split,
                      protocol_table(scored, split, horizons, cost_bps), source)


#: When each score's design (weights, hyper-parameters) was fixed: every score is labelled
#: with it. Scores designed on dates inside a locked test period are not clean there.
DESIGNED_ON: dict[str, str] = {
    "tech_rating": "2023-10 … 2025-07 (real 2022–25 data; docs/scoring.md)",
    "ics": "2023-10 … 2025-07 (real 2022–25 data)",
    "merit": "2023-10 … 2025-07 (real 2022–25 data)",
    "alpha_5d": "hyper-parameters on 2023-10 … 2025-07 folds; fit walk-forward",
    "alpha_10d": "hyper-parameters on 2023-10 … 2025-07 folds; fit walk-forward",
}


def walkforward_alphas(hist: pd.DataFrame, model_dir: str | Path | None = None
                       ) -> pd.DataFrame:
    """``alpha_5d``, ``alpha_10d``, ``alpha_model`` for stored feature rows: each date's rows
    scored by the latest model trained on or before it (never a later one; none → NaN)."""
    from technic.config import get_settings
    from technic.ml.inference import predict_alpha
    from technic.ml.walkforward import choose_model

    folder = Path(model_dir) if model_dir is not None else get_settings().model_dir
    hist = hist.copy()
    hist["alpha_5d"], hist["alpha_10d"], hist["alpha_model"] = np.nan, np.nan, None
    for day, idx in hist.groupby("date").indices.items():
        choice = choose_model(pd.Timestamp(day).date(), folder)
        if choice is None:
            continue
        a = predict_alpha(hist.iloc[idx], folder, files=choice.files)
        for c in a.columns:
            hist.iloc[idx, hist.columns.get_loc(c)] = a[c].to_numpy()
        hist.iloc[idx, hist.columns.get_loc("alpha_model")] = choice.name
    return hist


def protocol_table(scored: pd.DataFrame, split: Split, horizons: tuple[int, ...],
                   cost_bps: float = 10.0) -> pd.DataFrame:
    """:func:`period_stats` of every score present, per period of ``split`` and horizon."""
    from technic.scoring.cross_section import percentile_rank

    d = scored.copy()
    d["period"] = split.period(d["date"].to_numpy())
    pr = d.groupby("date")["dollar_volume_20"].transform(
        lambda x: pd.Series(percentile_rank(x.to_numpy(np.float64), None), index=x.index))
    d["size_tercile"] = np.ceil(pr * 3).clip(1, 3)
    rows = []
    for period in ("design", "test"):
        p = d[d["period"] == period]
        if p.empty:
            continue
        span = f"{p['date'].min().date()} … {p['date'].max().date()}"
        for s in SCORES:
            if s not in p.columns or p[s].notna().sum() == 0:
                continue
            for h in horizons:
                rows.append({"period": period, "dates_span": span, "score": s, "horizon": h,
                             **period_stats(p, s, h, cost_bps, n_boot=500),
                             "designed_on": DESIGNED_ON.get(s, "")})
    return pd.DataFrame(rows)


def _horizon(scored: pd.DataFrame, h: int, score: str = "score") -> HorizonReport:
    col = f"fwd_{h}"
    d = scored.dropna(subset=[col, score]).copy()
    ic = rank_ic(d["date"], d[score], d[col])
    every_h = ic.iloc[::h]
    t_stat = float(every_h.mean() / every_h.std(ddof=1) * np.sqrt(len(every_h))) \
        if len(every_h) > 2 else float("nan")
    n = d.groupby("date")[score].transform("size")
    first = d.groupby("date")[score].rank(method="first")
    d["decile"] = np.ceil(first / n * 10).clip(1, 10)
    dec = d.groupby(["date", "decile"])[col].mean().groupby("decile").mean()
    med = d.groupby("date")[col].transform("median")
    top = d[d["decile"] == 10]
    hit = float((top[col] > med[top.index]).mean())
    tops = (d.sort_values(["date", score], ascending=[True, False])
            .groupby("date").head(50).groupby("date")["symbol"].apply(set))
    turns = [1 - len(a & b) / max(len(b), 1) for a, b in zip(tops.iloc[:-1], tops.iloc[1:],
                                                             strict=True)]
    return HorizonReport(
        horizon=h, dates=len(ic), mean_rank_ic=float(ic.mean()), std_rank_ic=float(ic.std()),
        icir=float(ic.mean() / ic.std()) if ic.std() > 0 else float("nan"),
        t_stat_nonoverlap=t_stat, decile_mean_return=[float(x) for x in dec.to_numpy()],
        top_minus_bottom=float(dec.iloc[-1] - dec.iloc[0]), top_decile_hit_rate=hit,
        top50_turnover=float(np.mean(turns)) if turns else float("nan"), ic_series=ic,
        score="tech_rating" if score == "score" else score)


def _summary_rows(reports: dict[str, list[HorizonReport]]) -> list[str]:
    lines = ["| score | horizon | dates | mean RankIC | std | ICIR | t (non-overlapping) | "
             "top − bottom decile | top-decile hit rate | top-50 turnover |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for s, reps in reports.items():
        for r in reps:
            lines.append(f"| {SCORE_NAMES.get(s, s)} | {r.horizon} bars | {r.dates} | "
                         f"{r.mean_rank_ic:+.4f} | {r.std_rank_ic:.4f} | {r.icir:+.3f} | "
                         f"{r.t_stat_nonoverlap:+.2f} | {r.top_minus_bottom:+.3%} | "
                         f"{r.top_decile_hit_rate:.1%} | {r.top50_turnover:.1%} |")
    return lines


def protocol_rows(ev: Evaluation) -> list[str]:
    """The design vs locked-test tables of an :class:`Evaluation` (Markdown lines)."""
    if ev.split is None or ev.protocol.empty:
        return []
    sp = ev.split
    lines = ["## Design period vs locked test period", "",
             f"Locked test period of this store: **{sp.test_start} … {sp.test_end}** (its "
             f"last 12 months, technic/scoring/protocol.py); design period {sp.design_start} "
             f"… {sp.design_end} (purged {sp.max_horizon} bars). Alphas: {ev.alpha_source}. "
             "NW t: Newey-West, Bartlett kernel, lag h; CI: 95 % block bootstrap over dates; "
             "spreads per h-bar holding after 10 bps per side × turnover.", "",
             "| period | dates | score (designed on) | horizon | mean RankIC | NW t | 95 % CI | "
             "top − bottom net | top − median net | top-decile turnover |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in ev.protocol.itertuples():
        lines.append(f"| {r.period} | {r.dates_span} ({r.dates}) | "
                     f"{SCORE_NAMES.get(r.score, r.score)} ({r.designed_on}) | {r.horizon} bars"
                     f" | {r.mean_rank_ic:+.4f} | {r.nw_t:+.2f} | [{r.ci_lo:+.3f}, "
                     f"{r.ci_hi:+.3f}] | {r.top_bottom_net:+.3%} | {r.top_median_net:+.3%} | "
                     f"{r.turnover_top:.0%} |")
    lines += ["", "Mean RankIC by calendar year and by size tercile (20-bar dollar volume, "
              "1 = smallest):", "", "| period | score | horizon | by year | tercile 1 | "
              "tercile 2 | tercile 3 |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in ev.protocol.itertuples():
        yrs = ", ".join(f"{y}: {v:+.4f}" for y, v in r.ic_by_year.items())
        sz = " | ".join(f"{r.ic_by_size.get(k, float('nan')):+.4f}" for k in (1, 2, 3))
        lines.append(f"| {r.period} | {SCORE_NAMES.get(r.score, r.score)} | {r.horizon} bars | "
                     f"{yrs} | {sz} |")
    return [*lines, ""]


def _decile_rows(reports: dict[str, list[HorizonReport]], h_index: int) -> list[str]:
    names = [s for s in reports if len(reports[s]) > h_index]
    lines = ["| decile | " + " | ".join(SCORE_NAMES.get(s, s) for s in names) + " |",
             "| --- |" + " --- |" * len(names)]
    for i in range(10):
        cells = []
        for s in names:
            dm = reports[s][h_index].decile_mean_return
            cells.append(f"{dm[i]:+.3%}" if i < len(dm) else "—")
        lines.append(f"| {i + 1} | " + " | ".join(cells) + " |")
    return lines


def evaluation_report(ev: Evaluation, universe: str, plots: list[str] | None = None) -> str:
    """The full evaluation as Markdown (numbers as measured, no rounding up)."""
    lines = [f"# Score evaluation, {ev.start} … {ev.end}", "",
             f"Universe: {universe}; default scan filter on every date. Point-in-time: each "
             "date uses only features stored for that date; forward returns over the symbol's "
             "next h bars. No costs; survivorship-biased data; the ICS size input re-prices "
             "today's market-cap snapshot to each date.", ""]
    lines += protocol_rows(ev)
    if ev.oos and ev.oos_span is not None:
        a, b = ev.oos_span
        lines += [f"## Out of sample: every score on the same dates, {a} … {b}", "",
                  "Only the dates of the alpha models' walk-forward test folds (purged and "
                  "embargoed; models/MODEL_CARD.md): each alpha prediction comes from a model "
                  "that never saw that date or its label window. MERIT uses those "
                  "predictions.", "", *_summary_rows(ev.oos), ""]
        for i, h in enumerate(ev.horizons):
            lines += [f"Mean {h}-bar forward return by score decile (1 = lowest), "
                      "out-of-sample dates:", "", *_decile_rows(ev.oos, i), ""]
    else:
        lines += ["No out-of-sample alpha predictions (`oos_alpha.parquet`) were found: the "
                  "alphas are not evaluated (the shipped models are in-sample on every past "
                  "date).", ""]
    lines += ["## Full period (TechRating, ICS, MERIT)", "",
              "MERIT here uses the out-of-sample alphas where they exist and TechRating + ICS "
              "elsewhere.", "", *_summary_rows(ev.full), ""]
    for i, h in enumerate(ev.horizons):
        lines += [f"Mean {h}-bar forward return by score decile (1 = lowest), full period:", "",
                  *_decile_rows(ev.full, i), ""]
    lines += ["## Regimes", "", "Dates per regime label (technic/scoring/regime.py): " +
              ", ".join(f"{k} {v}" for k, v in sorted(ev.regimes.items())) + ".", "",
              "| score | horizon | regime | dates | mean RankIC |",
              "| --- | --- | --- | --- | --- |"]
    for r in ev.regime_ic.itertuples():
        lines.append(f"| {SCORE_NAMES.get(r.score, r.score)} | {r.horizon} bars | {r.regime} | "
                     f"{r.dates} | {r.mean_rank_ic:+.4f} |")
    if plots:
        lines += ["", "## Plots", ""] + [f"![{Path(p).stem}]({Path(p).name})" for p in plots]
    return "\n".join(lines) + "\n"


def write_plots(ev: Evaluation, prefix: str | Path) -> list[Path]:
    """PNG plots next to the report: per horizon the decile bars of every score (the
    out-of-sample comparison when there is one, else the full period) and the cumulative
    RankIC of every score.

    Args:
        prefix: path prefix; files are ``<prefix>.deciles_<h>.png`` and
            ``<prefix>.cum_ic.png``.

    Returns:
        The files written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    reports = ev.oos or ev.full
    period = (f"out of sample {ev.oos_span[0]} … {ev.oos_span[1]}"
              if ev.oos and ev.oos_span is not None else f"{ev.start} … {ev.end}")
    prefix = Path(prefix)
    files = []
    for i, h in enumerate(ev.horizons):
        fig, ax = plt.subplots(figsize=(10, 4.5))
        names = list(reports)
        width = 0.8 / len(names)
        for k, s in enumerate(names):
            dm = np.array(reports[s][i].decile_mean_return) * 100
            ax.bar(np.arange(1, len(dm) + 1) + (k - (len(names) - 1) / 2) * width, dm,
                   width, label=SCORE_NAMES.get(s, s))
        ax.axhline(0, color="black", lw=0.6)
        ax.set_xticks(range(1, 11))
        ax.set_xlabel("score decile (1 = lowest, 10 = highest)")
        ax.set_ylabel(f"mean {h}-bar forward return (%)")
        ax.set_title(f"Decile forward returns, {h} bars, {period}")
        ax.legend(fontsize=8, ncol=len(names))
        fig.tight_layout()
        f = prefix.with_name(f"{prefix.name}.deciles_{h}.png")
        fig.savefig(f, dpi=110)
        plt.close(fig)
        files.append(f)
    fig, axes = plt.subplots(1, len(ev.horizons), figsize=(12, 4.5), squeeze=False)
    for i, h in enumerate(ev.horizons):
        ax = axes[0, i]
        for s, reps in ev.full.items():
            ic = reps[i].ic_series
            ax.plot(ic.index, ic.cumsum(), label=SCORE_NAMES.get(s, s))
        for s in ("alpha_5d", "alpha_10d"):
            if s in ev.oos:
                ic = ev.oos[s][i].ic_series
                ax.plot(ic.index, ic.cumsum(), label=SCORE_NAMES[s], ls="--")
        ax.axhline(0, color="black", lw=0.6)
        ax.set_title(f"Cumulative RankIC, {h} bars (sum of daily RankIC)")
        ax.set_ylabel("cumulative RankIC")
        ax.legend(fontsize=8)
        ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    f = prefix.with_name(f"{prefix.name}.cum_ic.png")
    fig.savefig(f, dpi=110)
    plt.close(fig)
    files.append(f)
    return files


def write_evaluation(ev: Evaluation, report: str | Path, universe: str
                     ) -> tuple[list[Path], Path]:
    """Write the evaluation's files: the Markdown report at ``report``
    (:func:`evaluation_report`), the PNG plots next to it (:func:`write_plots`) and the
    per-date RankIC as Parquet (``<report>.ic.parquet``, :func:`ic_table`).

    Args:
        universe: how the report names the data (e.g. the database).

    Returns:
        ``(plots, ic_path)``.
    """
    import pyarrow.parquet as pq

    report = Path(report)
    report.parent.mkdir(parents=True, exist_ok=True)
    plots = write_plots(ev, report.with_suffix(""))
    report.write_text(evaluation_report(ev, universe, [str(p) for p in plots]))
    ic_path = report.with_suffix(".ic.parquet")
    pq.write_table(ic_table(ev), ic_path)
    return plots, ic_path


def markdown_report(reports: list[HorizonReport], start: dt.date, end: dt.date,
                    universe: str) -> str:
    """The TechRating-only evaluation as a Markdown document (numbers as measured)."""
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


def ic_table(reports: list[HorizonReport] | Evaluation) -> pa.Table:
    """Per-date RankIC as an Arrow table: ``date`` and ``ic_<h>`` (a TechRating report list),
    or ``<score>_ic_<h>`` for every score of an :class:`Evaluation` (full period, plus the
    out-of-sample alphas)."""
    if isinstance(reports, Evaluation):
        cols = {f"{s}_ic_{r.horizon}": r.ic_series for s, reps in reports.full.items()
                for r in reps}
        cols.update({f"{s}_ic_{r.horizon}": r.ic_series for s, reps in reports.oos.items()
                     if s.startswith("alpha_") for r in reps})
    else:
        cols = {f"ic_{r.horizon}": r.ic_series for r in reports}
    df = pd.concat(cols, axis=1)
    df.index.name = "date"
    return pa.Table.from_pandas(df.reset_index(), preserve_index=False)


# ----------------------------------------------------------------------------- protocol
#: Cost per side in basis points of the spreads reported after costs.
DEFAULT_COST_BPS = 10.0


def period_stats(rows: pd.DataFrame, score: str, h: int, cost_bps: float = DEFAULT_COST_BPS,
                 n_boot: int = 1000) -> dict:
    """One score over one period and horizon, by the protocol of docs/evaluation.

    Args:
        rows: scored rows of ONE period of ONE data set: ``date, symbol, <score>,
            fwd_<h>`` and optionally ``size_tercile`` (1 = smallest).
        score: the score column (higher = better). h: horizon in bars.
        cost_bps: cost per side, basis points (:func:`technic.scoring.stats.decile_spreads`).
        n_boot: bootstrap resamples of the CI.

    Returns:
        ``dates, mean_rank_ic, nw_t`` (Newey-West, Bartlett kernel, lag h), ``ci_lo, ci_hi``
        (95 % circular block bootstrap over dates, blocks of max(h, 5) dates), ``t_phase_mean``
        (the mean over the h phases of the every-h-th-date t), ``top_bottom``,
        ``top_bottom_net``, ``top_median``, ``top_median_net`` (mean per h-bar holding,
        fractions), ``top_median_net_t`` (NW t of the net spread), ``turnover_top`` (one-way
        per rebalance), ``ic_by_year`` and ``ic_by_size`` (mean RankIC per calendar year /
        size tercile). NaN-filled when the score is missing on every row.
    """
    from technic.scoring.stats import block_bootstrap_ci, decile_spreads, newey_west_t, rank_ic

    col = f"fwd_{h}"
    d = rows.dropna(subset=[score, col])
    nan = float("nan")
    if d.empty or d["date"].nunique() < 3:
        return {"dates": 0, "mean_rank_ic": nan, "nw_t": nan, "ci_lo": nan, "ci_hi": nan,
                "t_phase_mean": nan, "top_bottom": nan, "top_bottom_net": nan,
                "top_median": nan, "top_median_net": nan, "top_median_net_t": nan,
                "turnover_top": nan, "ic_by_year": {}, "ic_by_size": {}}
    ic = rank_ic(d["date"].to_numpy(), d[score].to_numpy(), d[col].to_numpy())
    m, _, t = newey_west_t(ic.to_numpy(), h)
    lo, hi = block_bootstrap_ci(ic.to_numpy(), max(h, 5), n_boot=n_boot)
    phases = []
    for k in range(h):
        e = ic.iloc[k::h]
        if len(e) > 2 and e.std(ddof=1) > 0:
            phases.append(float(e.mean() / e.std(ddof=1) * np.sqrt(len(e))))
    sp = decile_spreads(d["date"].to_numpy(), d["symbol"].to_numpy(), d[score].to_numpy(),
                        d[col].to_numpy(), h, cost_bps)
    by_size = {}
    if "size_tercile" in d.columns:
        for k, g in d.groupby("size_tercile"):
            by_size[int(k)] = float(rank_ic(g["date"].to_numpy(), g[score].to_numpy(),
                                            g[col].to_numpy()).mean())
    years = pd.to_datetime(ic.index).year
    return {"dates": int(len(ic)), "mean_rank_ic": m, "nw_t": t, "ci_lo": lo, "ci_hi": hi,
            "t_phase_mean": float(np.mean(phases)) if phases else nan,
            "top_bottom": float(sp["top_bottom"].mean()),
            "top_bottom_net": float(sp["top_bottom_net"].mean()),
            "top_median": float(sp["top_median"].mean()),
            "top_median_net": float(sp["top_median_net"].mean()),
            "top_median_net_t": newey_west_t(sp["top_median_net"].to_numpy(), h)[2],
            "turnover_top": float(sp["turnover_top"].iloc[h:].mean()),
            "ic_by_year": {int(y): float(v) for y, v in ic.groupby(years).mean().items()},
            "ic_by_size": by_size}
