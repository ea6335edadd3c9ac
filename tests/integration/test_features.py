"""Feature set: point-in-time correctness, the window error bound, history backfill."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import sqlalchemy as sa

from technic.features import FEATURE_COLUMNS, compute_features
from technic.jobs.ingest import ingest_files
from technic.jobs.refresh import backfill_features, refresh_features
from technic.panel import Panel
from technic.store.db import get_engine
from tests.conftest import BUNDLED

PRICE_LEVEL = {"sma_20", "sma_50", "sma_200", "ema_12", "ema_26", "macd", "macd_signal",
               "macd_hist", "bb_upper", "bb_middle", "bb_lower", "atr_14", "high_52w",
               "low_52w", "close"}
RECURSIVE = {"ema_12", "ema_26", "rsi_14", "macd", "macd_signal", "macd_hist", "atr_14",
             "natr_14", "adx_14", "obv_trend_20"}


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    b = pd.read_parquet(BUNDLED / "bars_daily.parquet")
    keep = sorted(b["symbol"].unique())[::5]  # 200 real tickers
    return b[b["symbol"].isin(keep)].reset_index(drop=True)


def _panel(df: pd.DataFrame) -> Panel:
    return Panel.from_arrow(pa.Table.from_pandas(df, preserve_index=False))


def test_features_use_only_bars_up_to_the_date(bars):
    d = np.datetime64("2025-01-15", "D")
    base = compute_features(_panel(bars), dates=[d])
    later = bars["date"].to_numpy().astype("datetime64[D]") > d
    changed = bars.copy()
    for c in ("open", "high", "low", "close"):
        changed.loc[later, c] *= 1.7
    changed.loc[later, "volume"] *= 3
    changed = changed.drop(changed.index[later][::3])  # and some later bars disappear
    again = compute_features(_panel(changed), dates=[d])
    pd.testing.assert_frame_equal(base, again, check_exact=True)


def test_window_error_bound_against_full_history(bars):
    """300-bar windows vs all 504 bars, at the last date (the bound documented in
    technic/refresh.py): price-level features relative to the close, others relative to
    max(|value|, 1)."""
    full = compute_features(_panel(bars)).set_index("symbol")
    dates = np.sort(bars["date"].unique())
    short = compute_features(_panel(bars[bars["date"] >= dates[-300]])).set_index("symbol")
    full = full.loc[short.index]
    long_hist = full["n_bars"].to_numpy() >= 300  # history beyond the window
    for c in FEATURE_COLUMNS:
        a, b = short[c].to_numpy(float), full[c].to_numpy(float)
        sel = np.isfinite(a) & np.isfinite(b) & long_hist
        scale = (full["close"].to_numpy(float)[sel] if c in PRICE_LEVEL
                 else np.maximum(np.abs(b[sel]), 1.0))
        err = np.abs(a[sel] - b[sel]) / np.maximum(np.abs(b[sel]), scale)
        bound = 1e-7 if c == "adx_14" else 1e-8 if c in RECURSIVE else 1e-10
        assert err.max(initial=0) <= bound, (c, err.max())


def test_backfill_writes_history_that_matches_refresh(fresh_target, bars, tmp_path):
    few = bars[bars["symbol"].isin(sorted(bars["symbol"].unique())[:30])]
    few.to_parquet(tmp_path / "bars_daily.parquet")
    ingest_files(fresh_target, tmp_path)
    r = backfill_features(fresh_target, dt.date(2025, 6, 2), dt.date(2025, 6, 13))
    d = pd.to_datetime(few["date"])
    in_range = few[(d >= "2025-06-02") & (d <= "2025-06-13")]
    assert r.rows_written == len(in_range)
    with get_engine(fresh_target).connect() as c:
        n = c.execute(sa.text("SELECT count(DISTINCT date) FROM features_daily")).scalar()
    assert n == in_range["date"].nunique() == 10
    # the latest backfilled date equals a refresh of that date (same 300-bar window)
    _, rows = refresh_features(fresh_target, dt.date(2025, 6, 13), write=False)
    with get_engine(fresh_target).connect() as c:
        stored = pd.read_sql(sa.text("SELECT * FROM features_daily WHERE date = '2025-06-13' "
                                     "ORDER BY symbol"), c)
    for col in ("sma_20", "rsi_14", "adx_14", "ret_126d", "dist_52w_high"):
        np.testing.assert_allclose(stored[col].to_numpy(float), rows[col].to_numpy(float),
                                   rtol=1e-8, equal_nan=True)
    with pytest.raises(ValueError, match="after"):
        backfill_features(fresh_target, dt.date(2025, 7, 1), dt.date(2025, 6, 1))


def test_changed_only_refresh_recomputes_just_the_updated_symbols(fresh_target, bars, tmp_path):
    few = bars[bars["symbol"].isin(sorted(bars["symbol"].unique())[:40])]
    few.to_parquet(tmp_path / "bars_daily.parquet")
    ingest_files(fresh_target, tmp_path)
    refresh_features(fresh_target)
    again, rows = refresh_features(fresh_target, only_changed=True)
    assert again.symbols == 0 and rows.empty  # nothing changed
    # an intraday-style update of today's bar for two symbols
    last = pd.to_datetime(few["date"]).max()
    upd = few[pd.to_datetime(few["date"]) == last].head(2).copy()
    upd["close"] = upd["high"]
    upd.to_parquet(tmp_path / "update.parquet")
    ingest_files(fresh_target, tmp_path / "update.parquet")
    inc, rows = refresh_features(fresh_target, only_changed=True)
    assert sorted(rows["symbol"]) == sorted(upd["symbol"]) and inc.symbols == 2
    _, full = refresh_features(fresh_target, write=False)
    with get_engine(fresh_target).connect() as c:
        stored = pd.read_sql(sa.text("SELECT * FROM features_daily ORDER BY symbol"), c)
    np.testing.assert_array_equal(stored["symbol"], full["symbol"])
    for col in FEATURE_COLUMNS:
        np.testing.assert_allclose(stored[col].to_numpy(float), full[col].to_numpy(float),
                                   rtol=0, atol=0, equal_nan=True)


def test_trend_r2_63_is_the_63_bar_regression_r2_and_no_model_input(bars):
    """``trend_r2_63`` (migration 9) is ``linreg_r2(close, 63)`` on the symbol's own bars, a
    fraction in [0, 1]; it is stored but not an input of the XGBoost models."""
    from technic import indicators as ind
    from technic.features import FEATURE_UNITS
    from technic.ml.dataset import MODEL_FEATURES, RAW_INPUTS, model_features
    from technic.store.migrations import MIGRATIONS, migration_sql

    p = _panel(bars)
    rows = compute_features(p)
    got = rows.set_index("symbol")["trend_r2_63"]
    want = ind.linreg_r2(p.close, 63)[-1]
    has = np.isfinite(p.close[-1])
    np.testing.assert_array_equal(got.loc[p.symbols[has]].to_numpy(float), want[has])
    ok = got.dropna()
    assert len(ok) > 100 and ((ok >= 0) & (ok <= 1)).all()
    # a window of 63 own bars: symbols with fewer bars have none
    assert rows.loc[rows["n_bars"] < 63, "trend_r2_63"].isna().all()
    # schema: added by migration 9, after migration 1's columns (migration 1's DDL unchanged)
    assert FEATURE_COLUMNS.index("trend_r2_63") == 35 and "trend_r2_63" in FEATURE_UNITS
    assert MIGRATIONS[8].version == 9 and "trend_r2_63" in MIGRATIONS[8].description
    v1 = "\n".join(MIGRATIONS[0].render("technic", False))  # type: ignore[operator]
    assert "trend_r2_63" not in v1
    assert ('ALTER TABLE "technic".features_daily ADD COLUMN IF NOT EXISTS trend_r2_63 '
            'double precision') in migration_sql("technic")
    # the models' inputs are an explicit list: the new column is not silently added
    assert "trend_r2_63" not in RAW_INPUTS and "trend_r2_63" not in MODEL_FEATURES
    assert tuple(model_features(rows).columns) == MODEL_FEATURES


def test_mfi_14_is_talib_mfi_on_each_symbols_own_bars(bars):
    """``mfi_14`` (migration 15, one registry entry): bit-identical to ``talib.MFI(h, l, c, v,
    14)`` on each real symbol's own bars, at every date, on the full panel, the GPU-free
    as-of rows and the incremental last-row path."""
    talib = pytest.importorskip("talib")
    from technic.features import feature_arrays, last_row_features
    from technic.store.migrations import MIGRATIONS

    p = _panel(bars)
    got = feature_arrays(p)["mfi_14"]
    checked = 0
    for j in range(len(p.symbols)):
        own = np.isfinite(p.close[:, j])
        want = talib.MFI(*(np.ascontiguousarray(getattr(p, f)[own, j])
                           for f in ("high", "low", "close", "volume")), 14)
        np.testing.assert_array_equal(got[own, j], want, err_msg=p.symbols[j])
        assert np.isnan(got[~own, j]).all()
        checked += int(np.isfinite(want).sum())
    assert checked > 50_000
    last = last_row_features(*(np.ascontiguousarray(getattr(p, f).T)
                               for f in ("high", "low", "close", "volume")))["mfi_14"]
    has = np.isfinite(p.close[-1])
    np.testing.assert_array_equal(last[has], got[-1, has])
    rows = compute_features(p).set_index("symbol")["mfi_14"]
    np.testing.assert_array_equal(rows.loc[p.symbols[has]].to_numpy(float), got[-1, has])
    v15 = next(m for m in MIGRATIONS if m.version == 15)
    sql = v15.render("technic", False)  # type: ignore[operator]
    assert sql == ['ALTER TABLE "technic".features_daily ADD COLUMN IF NOT EXISTS mfi_14 '
                   "double precision"]


def test_registry_generates_columns_units_ddl_and_plans():
    """One registry entry per feature: the stored columns, the units table of docs/tables.md,
    each migration's DDL and the last-row plan all come from it."""
    from pathlib import Path

    from technic.features import FEATURE_UNITS, FEATURES, SERIES, columns_added_by
    from technic.features.plans import last_row_plan
    from technic.features.registry import units_table
    from technic.store.migrations import MIGRATIONS

    assert FEATURE_COLUMNS == tuple(f.name for f in FEATURES) == tuple(FEATURE_UNITS)
    doc = (Path(__file__).resolve().parents[2] / "docs" / "tables.md").read_text()
    assert units_table() in doc, ("docs/tables.md's features_daily rows differ from the "
                                  "registry: paste `python -m technic.features.registry`")
    # every feature column is created by the migration the registry names, and only there
    added = {m.version: "\n".join(st for st in m.render("technic", False)  # type: ignore[operator]
                                   if "features_daily" in st.split("(")[0])
             for m in MIGRATIONS}
    for f in FEATURES:
        assert f.migration in added, f.name
        others = [v for v, sql in added.items() if v != f.migration
                  and any(f" {f.name} double precision" in ln for ln in sql.splitlines())]
        assert f" {f.name} double precision" in added[f.migration], f.name
        assert not others, (f.name, others)
    assert sum(len(columns_added_by(v)) for v in added) == len(FEATURE_COLUMNS)
    # the last-row plan covers every series, each indicator call once
    plan = last_row_plan()
    assert set(plan.names) == set(SERIES)
    assert len(plan.calls) == len({s.call for s in SERIES.values()})
