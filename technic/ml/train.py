"""Walk-forward training of the XGBoost alpha models, with purging and embargo.

One model per label horizon ``h`` (own bars): an XGBoost **regressor** (squared error) on the
per-date excess forward return ``target_<h>`` of :mod:`technic.ml.dataset`. A regressor rather
than a ``rank:pairwise`` ranker because its output is a return (fraction) that reads the same in
every scan and needs no query groups at inference, training costs one gradient per row rather
than per sampled pair, and the evaluation below is rank-based anyway (RankIC, decile spread).

Validation (López de Prado, *Advances in Financial Machine Learning*, Wiley 2018, ch. 7):

* folds: the last ``test_fraction`` of the dates whose labels are complete for every horizon is
  cut into ``n_folds`` contiguous test blocks; each fold trains on the dates before its block
  (expanding window) and is scored on the block;
* purge: a training row whose label window ``[date, label_end_<h>]`` overlaps the test block
  (or a test label window) is dropped, so no training target shares closes with a test target;
* embargo: ``h`` further trading dates next to the test block are left out. López de Prado
  places the embargo after a test block, where training data follow it; a walk-forward split has
  no training data there, so the gap is applied on the side where training data lie: every
  training label window ends at least ``h`` trading dates before the block (so the last training
  date is ``2h`` dates before it), which also blunts leakage through serially correlated
  features. :func:`train_mask` implements both sides.

Per fold and test date: IC (Pearson of prediction and forward return ``fwd_<h>``), RankIC
(Spearman, as the Pearson correlation of per-date ranks) and the top-minus-bottom decile spread
(mean ``fwd_<h>`` of the top prediction decile minus the bottom one, fraction); per fold their
means, standard deviations and IR = mean / std. The final model of each horizon is fit on every
row whose label window ends on or before the last date (labels never read bars after ``end``).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from technic.ml.dataset import FEATURE_DEFINITIONS, MODEL_FEATURES, build_dataset
from technic.store.db import DatabaseTarget
from technic.universe import UniverseRules

log = logging.getLogger(__name__)

#: Fixed hyper-parameters (not tuned on the test folds). Shallow, strongly regularised trees:
#: daily cross-sectional returns are mostly noise, and the files stay small.
XGB_PARAMS: dict[str, object] = {
    "objective": "reg:squarederror",
    "tree_method": "hist",
    "max_depth": 4,
    "learning_rate": 0.05,
    "min_child_weight": 1000.0,
    "subsample": 0.5,
    "colsample_bytree": 0.8,
    "reg_lambda": 10.0,
    "max_bin": 128,
    "nthread": 2,
}
NUM_ROUNDS = 100
#: Train on every ``TRAIN_DATE_STRIDE``-th date (counted back from the last training date).
#: Label windows of neighbouring dates overlap by ``(h - 1) / h``, so neighbouring dates are
#: near-duplicates (low "average uniqueness", López de Prado 2018, ch. 4); thinning them halves
#: the fitting cost at little loss of information.
TRAIN_DATE_STRIDE = 2


@dataclass(frozen=True)
class Fold:
    """One walk-forward fold: test block ``[test_start, test_end]`` (dates, inclusive)."""

    index: int
    test_start: pd.Timestamp
    test_end: pd.Timestamp


def make_folds(dates: np.ndarray, n_folds: int = 6, test_fraction: float = 0.5) -> list[Fold]:
    """Contiguous test blocks over the last ``test_fraction`` of ``dates``.

    Args:
        dates: the candidate dates (any order, duplicates allowed).
        n_folds: number of test blocks (≥ 1).
        test_fraction: share of the dates covered by the blocks, in (0, 1).

    Returns:
        ``n_folds`` folds in time order; the earlier blocks get one date fewer when the dates
        do not divide evenly.

    Raises:
        ValueError: bad arguments, or fewer dates than folds.
    """
    if n_folds < 1 or not 0 < test_fraction < 1:
        raise ValueError("need n_folds >= 1 and 0 < test_fraction < 1")
    u = np.unique(pd.to_datetime(dates))
    n_test = int(round(len(u) * test_fraction))
    if n_test < n_folds:
        raise ValueError(f"{len(u)} dates cannot make {n_folds} test folds")
    blocks = np.array_split(u[len(u) - n_test:], n_folds)
    return [Fold(i, pd.Timestamp(b[0]), pd.Timestamp(b[-1])) for i, b in enumerate(blocks)]


def train_mask(dates: pd.Series, label_end: pd.Series, fold: Fold, calendar: np.ndarray,
               embargo: int, after: bool = False) -> np.ndarray:
    """Rows usable for training when ``fold`` is the test block (purged and embargoed).

    Args:
        dates: row dates.
        label_end: row label-window end dates (NaT = no label: never trained on).
        fold: the test block.
        calendar: sorted unique trading dates of the data set.
        embargo: trading dates left out next to the test block.
        after: also allow rows after the test block (K-fold style); then the embargo is the
            ``embargo`` dates after the last test label end, as in López de Prado (2018,
            §7.4.2, ``PurgedKFold``). Without it
            (walk-forward), only rows before the block are candidates, and the embargo keeps
            ``embargo`` trading dates between the last training label end and the block.

    Returns:
        Boolean mask ``(len(dates),)``.
    """
    d = pd.to_datetime(dates).to_numpy()
    e = pd.to_datetime(label_end).to_numpy()
    a, b = np.datetime64(fold.test_start), np.datetime64(fold.test_end)
    cal = np.asarray(pd.to_datetime(calendar).to_numpy())
    has_label = ~np.isnat(e)
    before = d < a
    if after:
        # López de Prado's PurgedKFold: drop rows whose window overlaps the test labels'
        # span [a, last test label end], then ``embargo`` dates after that span
        test_rows = (d >= a) & (d <= b) & has_label
        span_end = e[test_rows].max() if test_rows.any() else b
        ok = before | (d > b)
        with np.errstate(invalid="ignore"):
            overlaps = (d <= span_end) & (e >= a)
        i_s = int(np.searchsorted(cal, span_end, side="right"))
        emb = cal[i_s:i_s + embargo]
    else:
        # walk-forward: label windows must end ``embargo`` trading dates before the block
        i_a = int(np.searchsorted(cal, a, side="left"))
        bound = cal[i_a - embargo] if i_a - embargo >= 0 else cal[0]
        ok = before
        with np.errstate(invalid="ignore"):
            overlaps = e >= bound
        emb = cal[:0]
    keep = ok & has_label & ~overlaps & ~np.isin(d, emb)
    return keep


def date_metrics(dates: pd.Series, pred: np.ndarray, fwd: np.ndarray,
                 target: np.ndarray | None = None) -> pd.DataFrame:
    """Per-date IC, RankIC and top-minus-bottom decile spread.

    Args:
        dates: row dates; pred: predictions; fwd: forward returns (fraction); target: the
            clipped excess returns (optional). Rows with a NaN prediction or return are
            ignored; dates with fewer than 20 rows are skipped.

    Returns:
        Index ``date``; columns ``ic``, ``rank_ic`` (correlations), ``spread`` (fraction),
        ``n`` (rows) and ``ic_target`` (Pearson with ``target``; NaN without it).
    """
    df = pd.DataFrame({"date": pd.to_datetime(dates).to_numpy(), "p": pred, "y": fwd,
                       "t": np.nan if target is None else target})
    df = df.dropna(subset=["p", "y"])
    rows = []
    for day, g in df.groupby("date", sort=True):
        if len(g) < 20:
            continue
        p, y = g["p"].to_numpy(), g["y"].to_numpy()
        rp, ry = g["p"].rank().to_numpy(), g["y"].rank().to_numpy()
        dec = np.ceil(g["p"].rank(method="first").to_numpy() / len(g) * 10).clip(1, 10)
        ic = np.corrcoef(p, y)[0, 1] if p.std() > 0 else np.nan
        ric = np.corrcoef(rp, ry)[0, 1] if rp.std() > 0 else np.nan
        t = g["t"].to_numpy()
        ok = np.isfinite(t)
        ict = np.corrcoef(p[ok], t[ok])[0, 1] if ok.sum() > 2 and p[ok].std() > 0 else np.nan
        rows.append((day, ic, ric, y[dec == 10].mean() - y[dec == 1].mean(), len(g), ict))
    return pd.DataFrame(rows, columns=["date", "ic", "rank_ic", "spread", "n", "ic_target"]
                        ).set_index("date")


def summarize(m: pd.DataFrame, horizon: int) -> dict[str, float]:
    """Means, standard deviations and IRs of :func:`date_metrics` rows; ``t_rank_ic`` uses
    every ``horizon``-th date only (non-overlapping label windows)."""
    def ir(x: pd.Series) -> float:
        s = x.std(ddof=1)
        return float(x.mean() / s) if len(x) > 1 and s > 0 else float("nan")

    every = m["rank_ic"].iloc[::horizon].dropna()
    t = float(every.mean() / every.std(ddof=1) * np.sqrt(len(every))) \
        if len(every) > 2 and every.std(ddof=1) > 0 else float("nan")
    return {"dates": int(len(m)), "mean_ic": float(m["ic"].mean()),
            "std_ic": float(m["ic"].std(ddof=1)), "icir": ir(m["ic"]),
            "mean_rank_ic": float(m["rank_ic"].mean()),
            "std_rank_ic": float(m["rank_ic"].std(ddof=1)), "rank_icir": ir(m["rank_ic"]),
            "t_rank_ic_nonoverlap": t, "mean_spread": float(m["spread"].mean()),
            "mean_ic_target": float(m["ic_target"].mean()),
            "share_dates_rank_ic_positive": float((m["rank_ic"] > 0).mean())}


def thin_dates(df: pd.DataFrame, stride: int = TRAIN_DATE_STRIDE) -> pd.DataFrame:
    """Rows of every ``stride``-th date of ``df``, counted back from its last date."""
    u = np.unique(df["date"].to_numpy())
    return df[df["date"].isin(u[::-1][::stride])] if stride > 1 else df


def fit(df: pd.DataFrame, horizon: int, seed: int = 0, num_rounds: int = NUM_ROUNDS,
        params: dict | None = None, stride: int = TRAIN_DATE_STRIDE):
    """Fit one booster on the rows of ``df`` with a target for ``horizon``, using every
    ``stride``-th date (see :data:`TRAIN_DATE_STRIDE`).

    Returns:
        ``xgboost.Booster`` (feature names = :data:`MODEL_FEATURES`).

    Raises:
        ValueError: no row has a target.
    """
    import xgboost as xgb

    d = thin_dates(df[df[f"target_{horizon}"].notna()], stride)
    if d.empty:
        raise ValueError(f"no rows with a {horizon}-bar target to train on")
    p = {**XGB_PARAMS, **(params or {}), "seed": seed}
    dm = xgb.QuantileDMatrix(d[list(MODEL_FEATURES)].to_numpy(np.float32),
                             label=d[f"target_{horizon}"].to_numpy(np.float32),
                             feature_names=list(MODEL_FEATURES), nthread=int(p["nthread"]),
                             max_bin=int(p["max_bin"]))
    return xgb.train(p, dm, num_boost_round=num_rounds)


def predict(booster, df: pd.DataFrame) -> np.ndarray:
    """Predictions of ``booster`` for the rows of ``df`` (float64, fraction)."""
    return booster.inplace_predict(df[list(MODEL_FEATURES)].to_numpy(np.float32)
                                   ).astype(np.float64)


def walk_forward(df: pd.DataFrame, horizons: tuple[int, ...] = (5, 10), seed: int = 0,
                 n_folds: int = 6, test_fraction: float = 0.5, num_rounds: int = NUM_ROUNDS,
                 params: dict | None = None, oos: dict | None = None) -> dict:
    """Purged, embargoed walk-forward evaluation of every horizon (see the module docstring).

    Args:
        df: a frame of :func:`technic.ml.dataset.build_dataset`.
        oos: when given, filled with ``{h: DataFrame(date, symbol, fold, alpha)}`` — every
            out-of-sample prediction (fraction) of the horizon's folds, for
            :func:`technic.jobs.evaluate.evaluate` (no in-sample date is ever scored).

    Returns:
        ``{"folds": [...], "horizons": {"<h>": {"folds": [...], "summary": {...}}}}`` — per
        fold the train/test dates, row counts and :func:`summarize` of its test dates; the
        summary pools every test date of the horizon.
    """
    max_h = max(horizons)
    labeled = df.loc[df[f"label_end_{max_h}"].notna(), "date"].to_numpy()
    folds = make_folds(labeled, n_folds, test_fraction)
    calendar = np.unique(df["date"].to_numpy())
    out: dict = {"folds": [{"fold": f.index, "test_start": str(f.test_start.date()),
                            "test_end": str(f.test_end.date())} for f in folds],
                 "horizons": {}}
    for h in horizons:
        per_fold, pooled = [], []
        for f in folds:
            t0 = time.perf_counter()
            mask = train_mask(df["date"], df[f"label_end_{h}"], f, calendar, embargo=h)
            tr = df[mask]
            te = df[(df["date"] >= f.test_start) & (df["date"] <= f.test_end)]
            booster = fit(tr, h, seed, num_rounds, params)
            pred = predict(booster, te)
            m = date_metrics(te["date"], pred, te[f"fwd_{h}"].to_numpy(),
                             te[f"target_{h}"].to_numpy())
            if oos is not None:
                oos.setdefault(h, []).append(pd.DataFrame(
                    {"date": te["date"].to_numpy(), "symbol": te["symbol"].to_numpy(),
                     "fold": np.int16(f.index), "alpha": pred}))
            pooled.append(m)
            rec = {"fold": f.index, "train_start": str(tr["date"].min().date()),
                   "train_end": str(tr["date"].max().date()),
                   "train_last_label_end": str(tr[f"label_end_{h}"].max().date()),
                   "train_rows": int(len(tr)),
                   "train_dates_used": int(thin_dates(tr)["date"].nunique()),
                   "test_start": str(f.test_start.date()),
                   "test_end": str(f.test_end.date()), "test_rows": int(m["n"].sum()),
                   **summarize(m, h), "fit_s": round(time.perf_counter() - t0, 2)}
            per_fold.append(rec)
            log.info("h=%d fold %d: train %s…%s (%d rows), test %s…%s: RankIC %+.4f, "
                     "IC %+.4f, spread %+.4f", h, f.index, rec["train_start"],
                     rec["train_end"], rec["train_rows"], rec["test_start"], rec["test_end"],
                     rec["mean_rank_ic"], rec["mean_ic"], rec["mean_spread"])
        out["horizons"][str(h)] = {"folds": per_fold,
                                   "summary": summarize(pd.concat(pooled), h)}
        if oos is not None and h in oos:
            oos[h] = pd.concat(oos[h], ignore_index=True)
    return out


#: File (in the model folder) with every walk-forward out-of-sample prediction.
OOS_FILE = "oos_alpha.parquet"


def write_oos(oos: dict, path: str | Path) -> Path:
    """Write the out-of-sample predictions of :func:`walk_forward` as one Parquet file:
    ``date, symbol, fold_<h>, alpha_<h>d`` per horizon (float32 fraction; NaN where a horizon
    has no test row for that date and symbol). Returns the path."""
    frames = [d.rename(columns={"alpha": f"alpha_{h}d", "fold": f"fold_{h}"})
              .set_index(["date", "symbol"]) for h, d in sorted(oos.items())]
    df = pd.concat(frames, axis=1).reset_index().sort_values(["date", "symbol"])
    for h in oos:
        df[f"alpha_{h}d"] = df[f"alpha_{h}d"].astype(np.float32)
    p = Path(path)
    df.to_parquet(p, index=False, compression="zstd")
    return p


def _importance(booster) -> dict[str, float]:
    gain = booster.get_score(importance_type="total_gain")
    total = sum(gain.values()) or 1.0
    return {k: round(v / total, 4) for k, v in sorted(gain.items(), key=lambda kv: -kv[1])}


def train_models(target: DatabaseTarget, start: dt.date, end: dt.date,
                 out_dir: str | Path = "models", seed: int = 0,
                 horizons: tuple[int, ...] = (5, 10), *, n_folds: int = 6,
                 test_fraction: float = 0.5, num_rounds: int = NUM_ROUNDS,
                 params: dict | None = None, rules: UniverseRules | None = None) -> dict:
    """Build the data set, run the walk-forward evaluation, fit the final models, write them.

    Writes to ``out_dir``: ``alpha_<h>d.json`` per horizon (XGBoost native JSON), ``metrics.json``
    (folds and summaries of every horizon, final-model facts), ``MODEL_CARD.md`` and
    ``oos_alpha.parquet`` (every out-of-sample fold prediction, :func:`write_oos`).

    Args:
        target: the store (read only).
        start, end: feature dates used, inclusive; no bar after ``end`` is read.
        out_dir: output folder (created).
        seed: XGBoost seed (row/column subsampling); results are reproducible for a seed and
            thread count.
        horizons: label horizons in own bars.
        n_folds, test_fraction, num_rounds, params, rules: see :func:`walk_forward`,
            :data:`XGB_PARAMS`, :class:`technic.universe.UniverseRules`.

    Returns:
        The metrics dictionary written to ``metrics.json``.

    Raises:
        LookupError: no stored features in the range.
        ValueError: too few dates for the folds.
    """
    import xgboost as xgb

    t0 = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    df = build_dataset(target, start, end, horizons, rules)
    t_data = time.perf_counter() - t0
    oos: dict = {}
    metrics = walk_forward(df, horizons, seed, n_folds, test_fraction, num_rounds, params, oos)
    write_oos(oos, out / OOS_FILE)
    final: dict = {}
    for h in horizons:
        booster = fit(df, h, seed, num_rounds, params)
        booster.set_attr(horizon=str(h), seed=str(seed), trained_through=str(end),
                         target=f"target_{h}: {h}-bar forward return minus the date's median "
                                "(1-99% clipped), fraction",
                         features=",".join(MODEL_FEATURES))
        path = out / f"alpha_{h}d.json"
        booster.save_model(path)
        rows = df[f"target_{h}"].notna()
        final[str(h)] = {"file": path.name, "bytes": path.stat().st_size,
                         "train_rows": int(rows.sum()),
                         "train_dates_used": int(thin_dates(df[rows])["date"].nunique()),
                         "train_start": str(df.loc[rows, "date"].min().date()),
                         "train_end": str(df.loc[rows, "date"].max().date()),
                         "last_label_end": str(df[f"label_end_{h}"].max().date()),
                         "importance_total_gain": _importance(booster)}
    metrics.update({
        "data": {"target": f"{target.schema} ({target.origin})", "start": str(start),
                 "end": str(end), "rows": int(len(df)), "dates": int(df["date"].nunique()),
                 "symbols": int(df["symbol"].nunique()),
                 "mean_symbols_per_date": round(float(df.groupby("date").size().mean()), 1)},
        "model": {"xgboost_version": xgb.__version__, "params": {**XGB_PARAMS, **(params or {})},
                  "num_rounds": num_rounds, "seed": seed, "features": list(MODEL_FEATURES),
                  "horizons": list(horizons), "n_folds": n_folds,
                  "test_fraction": test_fraction, "embargo_dates": "h (the horizon)"},
        "final": final,
        "timings_s": {"dataset": round(t_data, 1),
                      "total": round(time.perf_counter() - t0, 1)},
    })
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    (out / "MODEL_CARD.md").write_text(model_card(metrics))
    return metrics


def _pct(x: float) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{x:+.3%}"


def _num(x: float, fmt: str = "+.4f") -> str:
    return "n/a" if x is None or not np.isfinite(x) else format(x, fmt)


def model_card(metrics: dict) -> str:
    """The model card (Markdown) of a :func:`train_models` run, numbers as measured."""
    d, m = metrics["data"], metrics["model"]
    lines = [
        "# technic alpha models (XGBoost)", "",
        "Generated by `technic.ml.train.train_models`; numbers are as measured, not rounded up.",
        "", "## Data", "",
        f"* Store: `{d['target']}`, feature dates {d['start']} … {d['end']} "
        f"({d['dates']} trading dates, {d['rows']:,} rows, {d['symbols']:,} symbols, "
        f"{d['mean_symbols_per_date']:,} per date on average).",
        "* Universe: the scan's default filter on each date (`UniverseRules()`: ordinary "
        "listed shares, no leveraged/inverse ETFs, close ≥ $5, 20-bar mean dollar volume ≥ "
        "$500k).",
        "* Biases: today's reference data (`symbols`) decide the ticker rules; the bars carry "
        "survivorship bias. No transaction costs anywhere below.",
        "", "## Label", "",
        "* `fwd_h` = close[t+h] / close[t] − 1 over the symbol's own next h bars (fraction), "
        "h ∈ " + ", ".join(str(h) for h in m["horizons"]) + ".",
        "* Training target `target_h` = `fwd_h` clipped to the date's 1st–99th percentile, "
        "minus the date's median. The models therefore predict **excess forward return over "
        "the typical name of the date, as a fraction** (`alpha_5d`, `alpha_10d`). Rank them; "
        "their level is small and shrunk by regularisation.",
        "", "## Features", "",
        "Scale-free inputs derived row-wise from the stored `features_daily` row of the date "
        "(no price or volume levels, no cross-sectional ranks, nothing after the date):", "",
        "| feature | definition |", "| --- | --- |",
        *[f"| `{k}` | {v} |" for k, v in FEATURE_DEFINITIONS.items()],
        "", "## Model", "",
        f"* XGBoost {m['xgboost_version']} regressor, {m['num_rounds']} rounds, seed "
        f"{m['seed']}, parameters: `{json.dumps(m['params'])}`.",
        "* Regressor rather than `rank:pairwise`: its output is a return that reads the same in "
        "every scan, needs no query groups, and costs one gradient per row.",
        f"* Training uses every {TRAIN_DATE_STRIDE}nd date of its window (neighbouring dates "
        "share most of their label window, so they are near-duplicates; López de Prado 2018, "
        "ch. 4); evaluation uses every test date.",
        "", "## Walk-forward validation", "",
        f"{m['n_folds']} contiguous test folds over the last {m['test_fraction']:.0%} of the "
        "dates with complete labels; each fold trains on all earlier dates (expanding window).",
        "", "* **Purge**: training rows whose label window [date, label end] reaches into the "
        "test fold are dropped (López de Prado, *Advances in Financial Machine Learning*, "
        "2018, §7.4.1).",
        "* **Embargo**: a further h trading dates next to the test fold are dropped "
        "(§7.4.2; applied before the fold, the only side with training data in walk-forward): "
        "every training label window ends at least h trading dates before the fold starts, so "
        "the last training date is 2h trading dates before it.",
        "* Per test date: IC = Pearson(prediction, `fwd_h`), RankIC = Spearman, spread = mean "
        "`fwd_h` of the top prediction decile − bottom decile. IR = mean / std over the test "
        "dates; t uses every h-th date only (non-overlapping windows).",
        f"* Every out-of-sample prediction is kept in `{OOS_FILE}` (date, symbol, fold and "
        "prediction per horizon): `technic evaluate --oos` scores the alphas on those dates only "
        "(by default it uses the walk-forward models of `models/walkforward/`, "
        "docs/evaluation/README.md), "
        "never with the final models (in-sample on every past date).",
    ]
    for h, hm in metrics["horizons"].items():
        lines += ["", f"### {h}-bar horizon", "",
                  "| fold | train dates | train rows | test dates | n | mean IC | ICIR | "
                  "mean RankIC | RankICIR | top − bottom decile |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for f in hm["folds"]:
            lines.append(
                f"| {f['fold']} | {f['train_start']} … {f['train_end']} | "
                f"{f['train_rows']:,} | {f['test_start']} … {f['test_end']} | {f['dates']} | "
                f"{_num(f['mean_ic'])} | {_num(f['icir'], '+.3f')} | "
                f"{_num(f['mean_rank_ic'])} | {_num(f['rank_icir'], '+.3f')} | "
                f"{_pct(f['mean_spread'])} |")
        s = hm["summary"]
        lines.append(
            f"| **all** | | | pooled | {s['dates']} | {_num(s['mean_ic'])} | "
            f"{_num(s['icir'], '+.3f')} | {_num(s['mean_rank_ic'])} | "
            f"{_num(s['rank_icir'], '+.3f')} | {_pct(s['mean_spread'])} |")
        lines += ["", f"Pooled: RankIC t (non-overlapping) "
                  f"{_num(s['t_rank_ic_nonoverlap'], '+.2f')}, share of test dates with "
                  f"RankIC > 0: {s['share_dates_rank_ic_positive']:.1%}, mean IC against the "
                  f"clipped excess target {_num(s['mean_ic_target'])} (the raw-return IC is "
                  "driven by a few extreme returns; RankIC is the robust figure)."]
    lines += ["", "## Final models", ""]
    for f in metrics["final"].values():
        gains = list(f["importance_total_gain"].items())[:6]
        top = ", ".join(f"`{k}` {v:.1%}" for k, v in gains)
        lines.append(f"* `{f['file']}` ({f['bytes'] / 1e6:.2f} MB): {f['train_rows']:,} labelled "
                     f"rows, every {TRAIN_DATE_STRIDE}nd date used ({f['train_dates_used']} "
                     f"dates), {f['train_start']} … {f['train_end']} (last label end "
                     f"{f['last_label_end']}). Top gain: {top}.")
    lines += ["", "## Reproduce", "", "```",
              "technic ingest files ../shared/data",
              f"technic features backfill --start {d['start']}",
              f"technic train --start {d['start']} --end {d['end']} --out models "
              f"--seed {m['seed']}", "```", "",
              "or `technic.ml.train.train_models(target, start, end, 'models', seed)`. Same "
              "data, seed, thread count (2) and xgboost version give the same predictions "
              "(tested on a small store).",
              f"Run time: {metrics['timings_s']['total']} s (data set "
              f"{metrics['timings_s']['dataset']} s).", ""]
    return "\n".join(lines)
