"""Incremental refresh: a new day, an intraday update and rewritten history, each equal to a
full refresh of the same date, bit for bit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import sqlalchemy as sa

from technic.cache import FrameCache
from technic.features import FEATURE_COLUMNS, feature_arrays, last_row_features
from technic.features.plans import last_row_plan, panel_series
from technic.incremental import BarWindow, refresh_incremental
from technic.indicators.lastrow import last_row_values
from technic.jobs.ingest import ingest_files
from technic.jobs.refresh import refresh_features
from technic.panel import Panel
from technic.store.db import get_engine
from tests.conftest import BUNDLED
from tests.integration.test_cache import RedisServer


@pytest.fixture()
def redis_url():
    srv = RedisServer()
    srv.start()
    yield srv.url
    srv.stop()


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    b = pd.read_parquet(BUNDLED / "bars_daily.parquet")
    keep = sorted(b["symbol"].unique())[1::8]  # 125 real tickers, with gaps and short lives
    b = b[b["symbol"].isin(keep)].reset_index(drop=True)
    b["date"] = pd.to_datetime(b["date"])
    return b


def _stored(target, day) -> pd.DataFrame:
    with get_engine(target).connect() as c:
        return pd.read_sql(sa.text("SELECT * FROM features_daily WHERE date = :d "
                                   "ORDER BY symbol"), c, params={"d": day})


def _assert_same_rows(a: pd.DataFrame, b: pd.DataFrame) -> None:
    a = a.sort_values("symbol").reset_index(drop=True)
    b = b.sort_values("symbol").reset_index(drop=True)
    np.testing.assert_array_equal(a["symbol"].to_numpy(), b["symbol"].to_numpy())
    np.testing.assert_array_equal(a["n_bars"].to_numpy(int), b["n_bars"].to_numpy(int))
    for col in FEATURE_COLUMNS:
        np.testing.assert_array_equal(a[col].to_numpy(float), b[col].to_numpy(float),
                                      err_msg=col)


def test_last_row_kernels_equal_the_full_panel_kernels(bars):
    # gappy, short and long histories; the last row of every series and feature, bit for bit
    p = Panel.from_arrow(pa.Table.from_pandas(bars, preserve_index=False))
    sym_major = [np.ascontiguousarray(getattr(p, f).T)
                 for f in ("high", "low", "close", "volume")]
    has = np.isfinite(p.close[-1])
    series = panel_series(p)
    plan = last_row_plan()
    values, n_bars = last_row_values(*sym_major, plan)
    assert set(plan.names) == set(series)
    for i, name in enumerate(plan.names):
        np.testing.assert_array_equal(values[i][has], series[name][-1][has], err_msg=name)
    full = feature_arrays(p)
    last = last_row_features(*sym_major)
    for name in (*FEATURE_COLUMNS, "n_bars"):
        np.testing.assert_array_equal(last[name][has], full[name][-1][has], err_msg=name)


def _write(df: pd.DataFrame, path) -> None:
    df.to_parquet(path, index=False)


def test_new_day_update_and_rewrite_each_equal_a_full_refresh(fresh_target, bars, tmp_path):
    dates = np.sort(bars["date"].unique())
    last, prev = dates[-1], dates[-2]
    hist = bars[bars["date"] < last]
    _write(hist, tmp_path / "hist.parquet")
    ingest_files(fresh_target, tmp_path / "hist.parquet")
    cache = FrameCache(None, namespace="t")

    # cold: no cached window → rebuild, equal to a full refresh
    r0, rows0 = refresh_incremental(fresh_target, lookback_bars=300, cache=cache)
    assert r0.mode == "rebuild" and r0.as_of == pd.Timestamp(prev).date()
    _, full0 = refresh_features(fresh_target, lookback_bars=300, write=False)
    _assert_same_rows(rows0, full0)

    # one new day: only that date is read; equal to a full refresh of the new date
    _write(bars[bars["date"] == last], tmp_path / "day.parquet")
    ingest_files(fresh_target, tmp_path / "day.parquet")
    r1, rows1 = refresh_incremental(fresh_target, lookback_bars=300, cache=cache)
    assert r1.mode == "append" and r1.window_layer == "l1"
    _, full1 = refresh_features(fresh_target, lookback_bars=300, write=False)
    _assert_same_rows(rows1, full1)
    _assert_same_rows(_stored(fresh_target, r1.as_of), full1)

    # nothing new: nothing recomputed
    r2, rows2 = refresh_incremental(fresh_target, lookback_bars=300, cache=cache)
    assert r2.mode == "unchanged" and rows2.empty

    # an intraday-style update of today's bar for three symbols: only those recomputed
    upd = bars[bars["date"] == last].head(3).copy()
    upd["close"] = upd["high"]
    upd["volume"] = upd["volume"] + 1000
    _write(upd, tmp_path / "upd.parquet")
    ingest_files(fresh_target, tmp_path / "upd.parquet")
    r3, rows3 = refresh_incremental(fresh_target, lookback_bars=300, cache=cache)
    assert r3.mode == "update" and sorted(rows3["symbol"]) == sorted(upd["symbol"])
    _, full3 = refresh_features(fresh_target, lookback_bars=300, write=False)
    _assert_same_rows(_stored(fresh_target, r3.as_of), full3)

    # a correction of an old bar: the cached window is stale → rebuilt, still exact
    old = bars[bars["date"] == dates[-30]].head(1).copy()
    old["close"] = old["low"]
    _write(old, tmp_path / "old.parquet")
    ingest_files(fresh_target, tmp_path / "old.parquet")
    r4, _ = refresh_incremental(fresh_target, lookback_bars=300, cache=cache)
    assert r4.mode == "rebuild"
    _, full4 = refresh_features(fresh_target, lookback_bars=300, write=False)
    _assert_same_rows(_stored(fresh_target, r4.as_of), full4)


def test_window_survives_new_processes_through_redis(fresh_target, bars, tmp_path, redis_url,
                                                     monkeypatch):
    # Between whole-window copies, L2 receives only each new date's column; a new process
    # (empty L1) rebuilds the window from the last whole copy plus those columns. Whole
    # copies go in parts (here of 40 symbols: 4 parts).
    import technic.incremental as inc

    monkeypatch.setattr(inc, "PART_SYMBOLS", 40)
    monkeypatch.setattr(inc, "REBASE_EVERY", 5)
    dates = np.sort(bars["date"].unique())
    k = 7
    _write(bars[bars["date"] < dates[-k]], tmp_path / "hist.parquet")
    ingest_files(fresh_target, tmp_path / "hist.parquet")
    refresh_incremental(fresh_target, lookback_bars=260,
                        cache=FrameCache(redis_url, namespace=fresh_target.schema))
    depths = []
    for i, day in enumerate(dates[-k:]):
        _write(bars[bars["date"] == day], tmp_path / f"day{i}.parquet")
        ingest_files(fresh_target, tmp_path / f"day{i}.parquet")
        cache = FrameCache(redis_url, namespace=fresh_target.schema)  # a new process
        r, rows = refresh_incremental(fresh_target, lookback_bars=260, cache=cache)
        assert r.mode == "append" and r.window_layer == "l2", (i, r.mode, r.window_layer)
        depths.append(cache.get_local("window-local:260").depth)
        _, full = refresh_features(fresh_target, lookback_bars=260, write=False)
        _assert_same_rows(rows, full)
    assert depths == [1, 2, 3, 4, 0, 1, 2]  # a whole copy every REBASE_EVERY (5) dates


def test_window_round_trips_through_arrow(bars):
    dates = np.sort(bars["date"].unique()).astype("datetime64[D]")[-50:]
    sub = bars[bars["date"] >= pd.Timestamp(dates[0])]
    w = BarWindow.from_bars(pa.Table.from_pandas(sub, preserve_index=False), dates, 7)
    table = w.to_arrow()
    # as read back from Redis: parts concatenated (several chunks per column)
    parts = pa.concat_tables([table.slice(0, 7), table.slice(7, 30), table.slice(37)])
    for t in (table, parts.replace_schema_metadata(table.schema.metadata)):
        back = BarWindow.from_arrow(t)
        assert back.version == 7 and np.array_equal(back.dates, w.dates)
        np.testing.assert_array_equal(back.symbols, w.symbols)
        for f in ("high", "low", "close", "volume"):
            np.testing.assert_array_equal(getattr(back, f), getattr(w, f))
    # the next date goes into the ring from_arrow allocated (no copy of the window) …
    last = bars[bars["date"] == pd.Timestamp(dates[-1])]
    day = pa.Table.from_pandas(last, preserve_index=False)
    nxt = back.append((dates[-1] + 1).item(), day, 50, 8)
    assert nxt.ring is back.ring
    np.testing.assert_array_equal(nxt.close[:, :-1], w.close[:, 1:])
    # … and a day with a symbol the window lacks widens it into a new ring
    extra = pa.concat_tables([day, pa.Table.from_pandas(
        last.head(1).assign(symbol="ZZZZ_NEW"), preserve_index=False)])
    wide = back.append((dates[-1] + 1).item(), extra, 50, 8)
    assert wide.ring is not back.ring and wide.symbols[-1] == "ZZZZ_NEW"
    assert len(wide.symbols) == len(w.symbols) + 1 and np.isnan(wide.close[-1, :-1]).all()
    np.testing.assert_array_equal(wide.close[:-1], nxt.close)


def _history_then_a_new_day_by_cli(target, bars, tmp_path, env: dict) -> tuple[str, str]:
    """Ingest all but the last date, `technic features refresh` (a new process), ingest the
    last date, refresh again; check the stored rows equal a full refresh. Returns both
    refreshes' output."""
    import subprocess
    import sys

    def refresh() -> str:
        r = subprocess.run([sys.executable, "-m", "technic.cli", "features", "refresh"],
                           env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        return r.stdout

    dates = np.sort(bars["date"].unique())
    _write(bars[bars["date"] < dates[-1]], tmp_path / "hist.parquet")
    ingest_files(target, tmp_path / "hist.parquet")
    first = refresh()
    _write(bars[bars["date"] == dates[-1]], tmp_path / "day.parquet")
    ingest_files(target, tmp_path / "day.parquet")
    second = refresh()
    _, full = refresh_features(target, write=False)
    _assert_same_rows(_stored(target, pd.Timestamp(dates[-1]).date()), full)
    return first, second


def test_cli_refresh_is_incremental_across_processes(fresh_target, db_url, bars, tmp_path,
                                                     redis_url):
    from tests.conftest import cli_env

    env = cli_env(db_url, fresh_target.schema, TECHNIC_REDIS_URL=redis_url)
    first, second = _history_then_a_new_day_by_cli(fresh_target, bars, tmp_path, env)
    assert "rebuild" in first
    assert "append, window from l2" in second  # a new process found yesterday's window


def test_cli_refresh_on_a_cluster_worker_keeps_the_window_between_processes(
        fresh_target, db_url, bars, tmp_path):
    """With TECHNIC_DASK_ADDRESS, each `technic features refresh` (a new process, as a
    scheduled run is) runs on the same long-lived worker, which still holds yesterday's window
    in memory: no Redis at all, and the window comes from that worker's L1."""
    from distributed import LocalCluster

    from tests.conftest import cli_env

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:
        env = cli_env(db_url, fresh_target.schema, TECHNIC_DASK_ADDRESS=cluster.scheduler_address)
        env.pop("TECHNIC_REDIS_URL", None)
        first, second = _history_then_a_new_day_by_cli(fresh_target, bars, tmp_path, env)
    assert "rebuild" in first
    assert "append, window from l1" in second


def test_cli_refresh_with_an_unreachable_scheduler_is_a_clear_error(fresh_target, db_url,
                                                                    bars, tmp_path):
    import subprocess
    import sys

    from tests.conftest import cli_env

    _write(bars, tmp_path / "all.parquet")
    ingest_files(fresh_target, tmp_path / "all.parquet")
    refresh_features(fresh_target)
    with get_engine(fresh_target).connect() as c:
        before = c.execute(sa.text("SELECT count(*), max(computed_at) FROM features_daily")).one()
    env = cli_env(db_url, fresh_target.schema, TECHNIC_DASK_ADDRESS="tcp://127.0.0.1:9")
    r = subprocess.run([sys.executable, "-m", "technic.cli", "features", "refresh"],
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in " ".join(r.stderr.split())
    with get_engine(fresh_target).connect() as c:  # nothing stored was touched
        assert c.execute(sa.text(
            "SELECT count(*), max(computed_at) FROM features_daily")).one() == before


def test_append_writes_in_place_but_never_changes_an_older_window(bars):
    dates = np.sort(bars["date"].unique()).astype("datetime64[D]")
    t0 = dates[-60:-3]
    sub = bars[(bars["date"] >= pd.Timestamp(t0[0])) & (bars["date"] <= pd.Timestamp(t0[-1]))]
    w0 = BarWindow.from_bars(pa.Table.from_pandas(sub, preserve_index=False), t0, 1)

    def day(d):
        return pa.Table.from_pandas(bars[bars["date"] == pd.Timestamp(d)], preserve_index=False)

    w1 = w0.append(dates[-3].item(), day(dates[-3]), 57, 2)  # copies into a new ring
    snap = w1.close.copy()
    w2 = w1.append(dates[-2].item(), day(dates[-2]), 57, 3)  # in place: same ring
    assert w2.ring is w1.ring and np.array_equal(w1.close, snap, equal_nan=True)
    w2b = w1.append(dates[-2].item(), day(dates[-1]), 57, 3)  # a branch from w1: copies
    assert w2b.ring is not w1.ring
    np.testing.assert_array_equal(w2.close[:, :-1], w2b.close[:, :-1])
    fresh = BarWindow.from_bars(pa.Table.from_pandas(
        bars[(bars["date"] >= pd.Timestamp(dates[-58]))
             & (bars["date"] <= pd.Timestamp(dates[-2]))], preserve_index=False),
        dates[-58:-1], 3)
    fresh = fresh._widen(w2.symbols) if len(fresh.symbols) != len(w2.symbols) else \
        {f: getattr(fresh, f) for f in ("high", "low", "close", "volume")}
    for f in ("high", "low", "close", "volume"):
        np.testing.assert_array_equal(getattr(w2, f), fresh[f])
    np.testing.assert_array_equal(w2.dates, dates[-58:-1])


def test_pooled_adbc_reuses_and_replaces_broken_connections(fresh_target):
    from technic.store.db import pooled_adbc

    def backend_pid(conn) -> int:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            return cur.fetchall()[0][0]

    with pooled_adbc(fresh_target) as c1:
        pid1 = backend_pid(c1)
    with pooled_adbc(fresh_target) as c2:
        assert c2 is c1 and backend_pid(c2) == pid1  # reused
    with get_engine(fresh_target).begin() as c:  # the server drops the pooled session
        c.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid1})
    with pooled_adbc(fresh_target) as c3:
        assert backend_pid(c3) != pid1  # a new connection replaced the dead one
    with pytest.raises(RuntimeError), pooled_adbc(fresh_target) as c4:
        raise RuntimeError("job failed")
    with pooled_adbc(fresh_target) as c5:
        assert c5 is not c4  # a connection that saw an error is not pooled again


def test_r2_at_requested_rows_equals_the_full_kernel(bars):
    from technic import indicators as ind
    from technic.indicators import linreg_r2_rows

    p = Panel.from_arrow(pa.Table.from_pandas(bars, preserve_index=False))
    rows = [0, 70, len(p.dates) - 40, len(p.dates) - 1]
    full = ind.linreg_r2(p.close, 63)
    some = linreg_r2_rows(p.close, rows, 63)
    np.testing.assert_array_equal(some[rows], full[rows])
    assert np.isnan(np.delete(some, rows, axis=0)).all()
