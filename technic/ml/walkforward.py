"""Walk-forward alpha models by half year, and which model a scan of a given date may use.

A scan of a past date must not use a model that saw that date: the shipped final models
(``models/alpha_<h>d.json``) were fit on every label up to their ``trained_through`` date, so
every earlier date is in-sample for them. :func:`train_yearly` fits one model per horizon at
each cut-off of a data set (:func:`half_year_cutoffs`: the end of every June and December;
the existing trainer, :func:`technic.ml.train.fit`, same fixed hyper-parameters), using
only rows whose label window ended on or before that date; the files go to
``models/walkforward/`` with an ``index.json`` of their facts and metrics.

:func:`choose_model` picks, for a scan date ``d``, the model with the latest ``trained_through
≤ d`` among the walk-forward models and the final ones: every label it was fit on ended on or
before ``d``'s close, so nothing after ``d`` shaped it. Its name is stored per row in
``scan_results.alpha_model`` (migration 19). No such model → no alpha (NULL), never a later one.
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

from technic.ml.dataset import MODEL_FEATURES, _targets
from technic.ml.train import NUM_ROUNDS, XGB_PARAMS, fit, predict, thin_dates
from technic.scoring.stats import rank_ic

log = logging.getLogger(__name__)

#: Sub-folder of the model folder holding the walk-forward models and their ``index.json``.
WALKFORWARD_DIR = "walkforward"
INDEX_FILE = "index.json"
#: Fewest dates with training rows before a cut-off for a model to be fit there.
MIN_TRAIN_DATES = 60


@dataclass(frozen=True)
class ModelChoice:
    """The model set a scan date uses.

    Attributes:
        name: stored in ``scan_results.alpha_model`` (``final`` or ``walkforward/<date>``).
        trained_through: the last label end (and bar) any of its training rows used.
        files: ``{horizon: path}`` of the boosters.
    """

    name: str
    trained_through: dt.date
    files: dict[int, Path]


def half_year_cutoffs(calendar: np.ndarray | pd.DatetimeIndex,
                      sample_dates: np.ndarray | pd.DatetimeIndex | None = None,
                      min_dates: int = MIN_TRAIN_DATES) -> list[dt.date]:
    """The last trading date of each June and December of a data set (its final date
    excluded: nothing after it to scan) with at least ``min_dates`` training dates
    (``sample_dates``, default the calendar) on or before it.

    Args:
        calendar: the data set's trading dates.
        sample_dates: the dates that have training rows.

    Returns:
        Cut-off dates, ascending.
    """
    cal = pd.DatetimeIndex(np.unique(pd.to_datetime(np.asarray(calendar))))
    have = cal if sample_dates is None else pd.DatetimeIndex(
        np.unique(pd.to_datetime(np.asarray(sample_dates))))
    out = []
    half = cal.year * 2 + (cal.month > 6)
    for _, grp in pd.Series(cal, index=cal).groupby(half):
        last = grp.iloc[-1]
        if last == cal[-1] or last.month not in (6, 12):
            continue
        if int((have <= last).sum()) >= min_dates:
            out.append(last.date())
    return out


def train_yearly(df: pd.DataFrame, cutoffs: list[dt.date], out_dir: str | Path,
                 data_label: str, horizons: tuple[int, ...] = (5, 10), seed: int = 0,
                 num_rounds: int = NUM_ROUNDS) -> list[dict]:
    """Fit one model per horizon and cut-off; write the boosters and update ``index.json``.

    Args:
        df: a training frame shaped like :func:`technic.ml.dataset.build_dataset`'s: ``date``,
            ``symbol``, the :data:`MODEL_FEATURES`, ``fwd_<h>`` and ``label_end_<h>`` (the
            ``target_<h>`` columns are (re)computed here); rows already universe-filtered.
        cutoffs: ``trained_through`` dates: a model uses only rows with
            ``label_end_<h> ≤ cutoff``.
        out_dir: the model folder; files go to ``<out_dir>/walkforward/``.
        data_label: which data the models were fit on (recorded in the index).
        horizons, seed, num_rounds: as :func:`technic.ml.train.train_models`.

    Returns:
        One record per model written (also in ``index.json``): file, horizon,
        trained_through, train rows/dates, and the out-of-sample mean RankIC over the dates
        after the cut-off up to the next one (labels complete), with its date count.
    """
    folder = Path(out_dir) / WALKFORWARD_DIR
    folder.mkdir(parents=True, exist_ok=True)
    df = df.copy()
    df["date"] = pd.to_datetime(df["date"])
    for h in horizons:
        df[f"target_{h}"] = _targets(df, h)
    records = []
    bounds = [*cutoffs, None]
    for i, cut in enumerate(cutoffs):
        c = pd.Timestamp(cut)
        nxt = bounds[i + 1]
        for h in horizons:
            t0 = time.perf_counter()
            end = pd.to_datetime(df[f"label_end_{h}"])
            train = df[end.notna() & (end <= c)]
            booster = fit(train, h, seed, num_rounds)
            name = f"alpha_{h}d_{cut}.json"
            booster.set_attr(horizon=str(h), seed=str(seed), trained_through=str(cut),
                             data=data_label, features=",".join(MODEL_FEATURES))
            booster.save_model(folder / name)
            test = df[(df["date"] > c) & ((df["date"] <= pd.Timestamp(nxt)) if nxt else True)
                      & df[f"fwd_{h}"].notna()]
            ic = rank_ic(test["date"].to_numpy(), predict(booster, test),
                         test[f"fwd_{h}"].to_numpy()) if len(test) else pd.Series(dtype=float)
            rec = {"file": name, "horizon": h, "trained_through": str(cut),
                   "data": data_label, "train_rows": int(len(train)),
                   "train_dates_used": int(thin_dates(train)["date"].nunique()),
                   "train_start": str(train["date"].min().date()),
                   "oos_start": str(test["date"].min().date()) if len(test) else None,
                   "oos_end": str(test["date"].max().date()) if len(test) else None,
                   "oos_dates": int(len(ic)),
                   "oos_mean_rank_ic": float(ic.mean()) if len(ic) else None,
                   "fit_s": round(time.perf_counter() - t0, 1)}
            log.info("walk-forward %s: %s", name, rec)
            records.append(rec)
    index_path = folder / INDEX_FILE
    old = json.loads(index_path.read_text())["models"] if index_path.is_file() else []
    keep = [r for r in old if r["file"] not in {x["file"] for x in records}]
    index_path.write_text(json.dumps(
        {"params": {**XGB_PARAMS}, "num_rounds": num_rounds, "seed": seed,
         "rule": "a model fit with rows whose label window ended on or before trained_through;"
                 " a scan of date d uses the latest trained_through <= d",
         "models": sorted(keep + records, key=lambda r: (r["trained_through"], r["horizon"]))},
        indent=2) + "\n")
    return records


def _final_trained_through(model_dir: Path) -> dt.date | None:
    """``trained_through`` of the final models: ``metrics.json``'s data end."""
    p = model_dir / "metrics.json"
    try:
        return dt.date.fromisoformat(json.loads(p.read_text())["data"]["end"])
    except (OSError, KeyError, ValueError, TypeError):
        return None


def available_models(model_dir: str | Path, horizons: tuple[int, ...] = (5, 10)
                     ) -> list[ModelChoice]:
    """Every complete model set (a file for each horizon) of a model folder: the
    walk-forward ones of ``index.json`` and the final ones (``metrics.json``'s end), sorted
    by ``trained_through``."""
    folder = Path(model_dir)
    out = []
    idx = folder / WALKFORWARD_DIR / INDEX_FILE
    if idx.is_file():
        by_date: dict[str, dict[int, Path]] = {}
        for r in json.loads(idx.read_text())["models"]:
            by_date.setdefault(r["trained_through"], {})[int(r["horizon"])] = \
                folder / WALKFORWARD_DIR / r["file"]
        for d, files in by_date.items():
            if all(h in files and files[h].is_file() for h in horizons):
                out.append(ModelChoice(f"{WALKFORWARD_DIR}/{d}", dt.date.fromisoformat(d),
                                       {h: files[h] for h in horizons}))
    final = _final_trained_through(folder)
    files = {h: folder / f"alpha_{h}d.json" for h in horizons}
    if final is not None and all(p.is_file() for p in files.values()):
        out.append(ModelChoice("final", final, files))
    return sorted(out, key=lambda m: (m.trained_through, m.name == "final"))


def choose_model(as_of: dt.date, model_dir: str | Path,
                 horizons: tuple[int, ...] = (5, 10)) -> ModelChoice | None:
    """The model set for a scan of ``as_of``: the latest ``trained_through ≤ as_of`` (ties:
    the final models), or None when every model was trained on later labels."""
    ok = [m for m in available_models(model_dir, horizons) if m.trained_through <= as_of]
    return ok[-1] if ok else None
