"""XGBoost alpha models: point-in-time data set, purged walk-forward folds, artifacts, inference."""

from __future__ import annotations

import datetime as dt
import json
import logging

import numpy as np
import pandas as pd
import pytest

from technic.jobs.ingest import ingest_files
from technic.jobs.refresh import backfill_features
from technic.ml.dataset import MODEL_FEATURES, RAW_INPUTS, build_dataset, model_features
from technic.ml.inference import clear_cache, predict_alpha
from technic.ml.train import Fold, fit, make_folds, predict, train_mask, train_models
from technic.store.features import read_features
from tests.conftest import BUNDLED

START, CUT, END = dt.date(2025, 4, 1), dt.date(2025, 5, 15), dt.date(2025, 6, 30)


@pytest.fixture(scope="module")
def ml_target(db_url):
    from tests.conftest import make_target

    t = make_target(db_url, "ml")
    ingest_files(t, BUNDLED)
    backfill_features(t, START, END)
    return t


@pytest.fixture(scope="module")
def dataset(ml_target) -> pd.DataFrame:
    return build_dataset(ml_target, START, END)


def test_labels_use_later_closes_and_features_ignore_later_bars(ml_target, dataset, db_url,
                                                                tmp_path):
    from tests.conftest import make_target

    bars = pd.read_parquet(BUNDLED / "bars_daily.parquet")
    bars["date"] = pd.to_datetime(bars["date"])
    # labels: by hand from the closes after the date, own bars
    a = bars[bars["symbol"] == "AAPL"].sort_values("date").reset_index(drop=True)
    i = int(a.index[a["date"] == pd.Timestamp("2025-04-10")][0])
    row = dataset[(dataset["symbol"] == "AAPL") & (dataset["date"] == a["date"][i])].iloc[0]
    assert row["fwd_5"] == pytest.approx(a["close"][i + 5] / a["close"][i] - 1, rel=1e-12)
    assert row["fwd_10"] == pytest.approx(a["close"][i + 10] / a["close"][i] - 1, rel=1e-12)
    assert row["label_end_5"] == a["date"][i + 5]
    for h in (5, 10):
        ok = dataset[f"label_end_{h}"].notna()
        assert (dataset.loc[ok, f"label_end_{h}"] > dataset.loc[ok, "date"]).all()
        assert dataset.loc[ok, f"label_end_{h}"].max() <= pd.Timestamp(END)
        # the last h dates have no complete window, so no label
        last = np.sort(dataset["date"].unique())[-h:]
        assert dataset.loc[dataset["date"].isin(last), f"fwd_{h}"].isna().all()
    # a store that never saw the bars after CUT (150 symbols: every input is per symbol):
    # same features up to CUT, labels end by CUT
    src = tmp_path / "cut"
    src.mkdir()
    some = sorted(bars["symbol"].unique())[::6][:150]
    keep = bars["symbol"].isin(some) & (bars["date"] <= pd.Timestamp(CUT))
    bars[keep].assign(date=lambda d: d["date"].dt.date).to_parquet(src / "bars_daily.parquet")
    uni = pd.read_parquet(BUNDLED / "universe.parquet")
    uni[uni["symbol"].isin(some)].to_parquet(src / "universe.parquet")
    t_cut = make_target(db_url, "ml_cut")
    ingest_files(t_cut, src)
    backfill_features(t_cut, START, CUT)
    cut = build_dataset(t_cut, START, CUT)
    full = dataset[(dataset["date"] <= pd.Timestamp(CUT)) & dataset["symbol"].isin(some)]
    assert len(cut) == len(full) > 1000
    merged = full.merge(cut, on=["symbol", "date"], suffixes=("", "_cut"))
    assert len(merged) == len(full)
    for c in MODEL_FEATURES:
        np.testing.assert_allclose(merged[c], merged[c + "_cut"], rtol=1e-6, equal_nan=True)
    for h in (5, 10):
        assert (cut[f"label_end_{h}"].dropna() <= pd.Timestamp(CUT)).all()
        both = merged[merged[f"fwd_{h}_cut"].notna()]
        assert len(both) > 0
        np.testing.assert_allclose(both[f"fwd_{h}"], both[f"fwd_{h}_cut"], rtol=1e-12)
        assert merged.loc[merged[f"label_end_{h}"] > pd.Timestamp(CUT), f"fwd_{h}_cut"
                          ].isna().all()


def test_model_features_are_row_wise_and_scale_free():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({c: rng.uniform(1, 100, 50) for c in RAW_INPUTS})
    full = model_features(df)
    part = model_features(df.iloc[10:20])
    pd.testing.assert_frame_equal(full.iloc[10:20], part)
    scaled = df.copy()
    for c in ("close", "sma_20", "sma_50", "sma_200", "macd", "macd_hist"):
        scaled[c] *= 7.0  # a price level change (e.g. a split) must not move the inputs
    pd.testing.assert_frame_equal(full, model_features(scaled), rtol=1e-5)
    with pytest.raises(KeyError, match="close"):
        model_features(df.drop(columns="close"))


def test_folds_are_purged_and_embargoed():
    cal = pd.bdate_range("2024-01-01", periods=120)
    dates = pd.Series(np.repeat(cal, 3))
    h = 5
    pos = np.repeat(np.arange(len(cal)), 3)
    label_end = pd.Series([cal[p + h] if p + h < len(cal) else pd.NaT for p in pos])
    folds = make_folds(dates.to_numpy(), n_folds=4, test_fraction=0.5)
    assert len(folds) == 4 and folds[-1].test_end == cal[-1]
    assert folds[0].test_start == cal[60]
    for f0, f1 in zip(folds, folds[1:], strict=False):
        assert f0.test_end < f1.test_start  # contiguous, non-overlapping blocks
    f = folds[1]
    m = train_mask(dates, label_end, f, cal.to_numpy(), embargo=h)
    tr_d, tr_e = dates[m], label_end[m]
    assert (tr_e < f.test_start).all()  # purge: no label window reaches the test block
    i_a = cal.get_loc(f.test_start)
    assert tr_d.max() == cal[i_a - 2 * h - 1]  # purge (h dates) + embargo (h dates)
    assert m.sum() == 3 * (i_a - 2 * h)
    # K-fold style: rows after the block are allowed past the embargo only
    fm = Fold(9, cal[50], cal[59])
    m2 = train_mask(dates, label_end, fm, cal.to_numpy(), embargo=h, after=True)
    kept = pd.DatetimeIndex(dates[m2].unique())
    # before: windows reaching cal[50] purged; after: test labels end at cal[64], then h
    # embargo dates
    assert not ((kept >= cal[50 - h]) & (kept <= cal[59 + 2 * h])).any()
    assert cal[59 + 2 * h + 1] in kept and cal[50 - h - 1] in kept
    assert not label_end[m2].isna().any()


def test_train_models_writes_artifacts(ml_target, dataset, tmp_path):
    m = train_models(ml_target, START, END, tmp_path, seed=3, n_folds=2, test_fraction=0.3,
                     num_rounds=8)
    for name in ("alpha_5d.json", "alpha_10d.json", "metrics.json", "MODEL_CARD.md"):
        assert (tmp_path / name).is_file()
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["model"]["seed"] == 3 and len(saved["horizons"]["10"]["folds"]) == 2
    cal = np.sort(dataset["date"].unique())
    for h in ("5", "10"):
        for f in m["horizons"][h]["folds"]:
            i_a = int(np.searchsorted(cal, np.datetime64(f["test_start"])))
            # purge + embargo: labels end h dates, training dates 2h dates, before the fold
            assert np.datetime64(f["train_last_label_end"]) < cal[i_a - int(h)]
            assert np.datetime64(f["train_end"]) <= cal[i_a - 2 * int(h) - 1]
            assert -1 <= f["mean_rank_ic"] <= 1 and np.isfinite(f["mean_spread"])
    card = (tmp_path / "MODEL_CARD.md").read_text()
    assert "Purge" in card and "Embargo" in card and "alpha_10d.json" in card
    # out-of-sample predictions: each row predicted by the one fold whose test block holds
    # its date, a fold that trained only on dates 2h before that block (no in-sample date)
    oos = pd.read_parquet(tmp_path / "oos_alpha.parquet")
    assert not oos.duplicated(["date", "symbol"]).any()
    for h in ("5", "10"):
        for f in m["horizons"][h]["folds"]:
            rows = oos[oos[f"fold_{h}"] == f["fold"]]
            assert len(rows) >= f["test_rows"] > 0
            d = pd.to_datetime(rows["date"])
            assert d.min() >= pd.Timestamp(f["test_start"])
            assert d.max() <= pd.Timestamp(f["test_end"])
            assert d.min() > pd.Timestamp(f["train_end"])
            assert pd.Timestamp(f["train_last_label_end"]) < d.min()
        assert oos[f"alpha_{h}d"].notna().sum() == sum(
            len(oos[oos[f"fold_{h}"] == f["fold"]]) for f in m["horizons"][h]["folds"])
    day = read_features(ml_target, dt.date(2025, 6, 2))
    clear_cache()
    pred = predict_alpha(day, tmp_path)
    assert list(pred.columns) == ["alpha_5d", "alpha_10d"] and len(pred) == len(day)
    assert pred["alpha_5d"].notna().all() and pred["alpha_5d"].std() > 0
    again = predict_alpha(day, tmp_path)  # cached booster, same numbers
    pd.testing.assert_frame_equal(pred, again)


def test_predictions_equal_after_save_and_load(ml_target, dataset, tmp_path):
    booster = fit(dataset, 5, seed=1, num_rounds=8)
    again = fit(dataset, 5, seed=1, num_rounds=8)
    day = read_features(ml_target, dt.date(2025, 6, 2))  # raw stored rows, as the scan has
    x = model_features(day)
    before = predict(booster, x)
    np.testing.assert_array_equal(predict(again, x), before)  # fixed seed → same model
    booster.save_model(tmp_path / "alpha_5d.json")
    clear_cache()
    after = predict_alpha(day, tmp_path, horizons=(5,))
    np.testing.assert_array_equal(after["alpha_5d"].to_numpy(), before)
    assert after.index.equals(day.index)


def test_missing_model_gives_nan_and_a_warning(tmp_path, caplog):
    rng = np.random.default_rng(1)
    df = pd.DataFrame({c: rng.uniform(1, 100, 5) for c in RAW_INPUTS}, index=[3, 4, 5, 6, 7])
    with caplog.at_level(logging.WARNING, logger="technic.ml.inference"):
        out = predict_alpha(df, tmp_path)
    assert list(out.columns) == ["alpha_5d", "alpha_10d"] and out.index.equals(df.index)
    assert out.isna().all().all()
    assert "alpha_5d" in caplog.text and "unavailable" in caplog.text
    with pytest.raises(ValueError, match="device"):
        predict_alpha(df, tmp_path, device="tpu")


def _xgboost_cuda() -> bool:
    try:
        import numba.cuda
        import xgboost

        return bool(numba.cuda.is_available()) and bool(
            xgboost.build_info().get("USE_CUDA"))
    except Exception:  # noqa: BLE001 - any failure means no usable GPU build here
        return False


@pytest.mark.skipif(not _xgboost_cuda(), reason="no CUDA GPU or xgboost built without CUDA "
                    "(xgboost-cpu); the GPU worker installs `xgboost`")
def test_cuda_predictions_equal_cpu_within_1e6(ml_target):
    # The committed models, applied on the GPU (device="cuda") and on the CPU.
    day = read_features(ml_target, dt.date(2025, 6, 2))
    clear_cache()
    cpu = predict_alpha(day, device="cpu")
    clear_cache()
    gpu = predict_alpha(day, device="cuda")
    assert cpu.notna().all().all()
    np.testing.assert_allclose(gpu.to_numpy(), cpu.to_numpy(), rtol=0, atol=1e-6)
