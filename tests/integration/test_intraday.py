"""Intraday bars: the real 5-minute file loads, is idempotent, and rolls up correctly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from technic.jobs.ingest import ingest_files
from technic.store.db import get_engine
from technic.validation import validate_bars
from tests.conftest import SHARED

FIVE_MIN = SHARED / "bars_5min.parquet"


@pytest.fixture(scope="module")
def five_min(tmp_path_factory):
    if not FIVE_MIN.exists():
        pytest.skip(f"real data not found: {FIVE_MIN} (set TECHNIC_SHARED_DATA)")
    t = pq.read_table(FIVE_MIN, filters=[("symbol", "in", ["AAPL", "MSFT", "SPCE"])])
    df = t.to_pandas()
    path = tmp_path_factory.mktemp("intraday") / "bars_5min.parquet"
    df.to_parquet(path)
    return df, path


def test_five_minute_bars_load_and_roll_up(fresh_target, five_min):
    df, path = five_min
    first = ingest_files(fresh_target, path)[0]
    assert first.rows_inserted == len(df) and first.rows_rejected == 0
    again = ingest_files(fresh_target, path)[0]
    assert again.rows_unchanged == len(df) and again.rows_inserted == 0
    with get_engine(fresh_target).connect() as c:
        n = c.execute(sa.text("SELECT count(*) FROM bars_intraday")).scalar()
        daily = pd.read_sql(sa.text("SELECT * FROM bars_intraday_daily ORDER BY symbol, date"),
                            c)
        hourly = c.execute(sa.text("SELECT count(*) FROM bars_1h")).scalar()
    assert n == len(df)
    ny = df.assign(date=df["ts"].dt.tz_convert("America/New_York").dt.date)
    g = ny.sort_values("ts").groupby(["symbol", "date"])
    ref = pd.DataFrame({"open": g["open"].first(), "high": g["high"].max(),
                        "low": g["low"].min(), "close": g["close"].last(),
                        "volume": g["volume"].sum(), "n_bars": g.size()}).reset_index()
    assert len(daily) == len(ref)
    for col in ("open", "high", "low", "close", "volume", "n_bars"):
        pd.testing.assert_series_equal(daily[col].astype(float), ref[col].astype(float),
                                       check_names=False)
    assert 0 < hourly < n


def test_intraday_validation_keys_by_timestamp():
    ts = pd.Timestamp("2026-06-04 13:30", tz="UTC")
    df = pd.DataFrame({"symbol": ["A", "A", "A"], "ts": [ts, ts, ts + pd.Timedelta("5min")],
                       "open": [1.0, 1.0, 1.0], "high": [1.2, 1.3, 1.2],
                       "low": [0.9, 0.9, 0.9], "close": [1.1, 1.1, 1.1],
                       "volume": [10.0, 10.0, 5.0]})
    v = validate_bars(df)
    assert list(v.rejects["reason"]) == ["conflicting duplicate (symbol, ts)"] * 2
    assert len(v.good) == 1 and str(v.good["ts"].dtype) == "datetime64[us]"


DAILY_2026 = SHARED / "bars_daily_2026.parquet"
LIQUID = ["AAPL", "AMZN", "JPM", "KO", "MSFT", "NVDA", "PG", "T", "WMT", "XOM"]
LAST = pd.Timestamp("2026-06-22")


@pytest.fixture(scope="module")
def coherent_files(tmp_path_factory):
    """The 2026 daily history (all but the last session) and the last session's 5-minute
    bars of ten liquid names, under the real file names (so their source tag and price
    basis are the real files'); plus the last session's complete daily bars."""
    if not (FIVE_MIN.exists() and DAILY_2026.exists()):
        pytest.skip(f"real data not found in {SHARED} (set TECHNIC_SHARED_DATA)")
    daily = pq.read_table(DAILY_2026, filters=[("symbol", "in", LIQUID)]).to_pandas(
        date_as_object=False)
    five = pq.read_table(FIVE_MIN, filters=[("symbol", "in", LIQUID)]).to_pandas()
    five = five[five["ts"].dt.tz_convert("America/New_York").dt.normalize()
                .dt.tz_localize(None) == LAST]
    root = tmp_path_factory.mktemp("coherent")
    for sub, frame in (("hist", daily[daily["date"] < LAST]),
                       ("last", daily[daily["date"] == LAST])):
        (root / sub).mkdir()
        frame.to_parquet(root / sub / "bars_daily_2026.parquet")
    five.to_parquet(root / "bars_5min.parquet")
    return root, daily[daily["date"] == LAST].set_index("symbol"), five


def test_scan_as_of_an_intraday_time_uses_the_partial_bar(fresh_target, coherent_files):
    from technic.jobs.ingest import build_partial_daily
    from technic.jobs.refresh import refresh_features
    from technic.jobs.scan import ScanParams, run_scan
    from technic.universe import UniverseRules

    t = fresh_target
    root, complete, five = coherent_files
    ingest_files(t, root / "hist" / "bars_daily_2026.parquet")
    ingest_files(t, root / "bars_5min.parquet")
    when = pd.Timestamp("2026-06-22 14:00", tz="America/New_York")
    rep = build_partial_daily(t, when)
    assert rep.rows_inserted == len(LIQUID) and rep.rows_updated == 0
    assert rep.changed_from == rep.changed_to == LAST.date()
    so_far = five[five["ts"] < when.tz_convert("UTC")].sort_values("ts").groupby("symbol")
    expect = pd.DataFrame({"close": so_far["close"].last(), "high": so_far["high"].max(),
                           "volume": so_far["volume"].sum()})
    with get_engine(t).connect() as c:
        stored = pd.read_sql(sa.text(
            "SELECT symbol, close, high, volume, source FROM bars_daily WHERE date = :d"),
            c, params={"d": LAST.date()}).set_index("symbol").sort_index()
        basis = c.execute(sa.text(
            "SELECT source, split_adjusted, dividend_adjusted, adjusted_as_of::text "
            "FROM bar_sources ORDER BY source")).all()
    assert (stored["source"] == "intraday-partial").all()
    np.testing.assert_allclose(stored["close"], expect["close"].sort_index())
    np.testing.assert_allclose(stored["volume"], expect["volume"].sort_index(), rtol=1e-12)
    assert basis == [("intraday-partial", True, False, "2026-06-22"),
                     ("stooq-5min", True, False, "2026-06-22")]

    refresh_features(t, as_of=LAST.date())
    out = run_scan(t, ScanParams(as_of=LAST.date(), top=len(LIQUID),
                                 rules=UniverseRules(min_price=0, min_dollar_volume=0)))
    assert out.as_of == LAST.date() and len(out.results) == len(LIQUID)
    closes = out.results.set_index("symbol")["close"].sort_index()
    np.testing.assert_allclose(closes, expect["close"].sort_index())
    assert not np.allclose(closes, complete["close"].sort_index())  # not the day's close

    # a later partial rewrites it; the complete bar replaces it; partials never come back
    later = build_partial_daily(t, pd.Timestamp("2026-06-22 15:30", tz="America/New_York"))
    assert later.rows_updated == len(LIQUID) and later.rows_inserted == 0
    eod = ingest_files(t, root / "last" / "bars_daily_2026.parquet")[0]
    assert eod.rows_updated == len(LIQUID) and eod.rows_inserted == 0
    assert eod.changed_from == eod.changed_to == LAST.date()
    again = build_partial_daily(t, pd.Timestamp("2026-06-22 15:45", tz="America/New_York"))
    assert (again.rows_inserted, again.rows_updated, again.rows_unchanged) == \
        (0, 0, len(LIQUID)) and again.changed_from is None
    with get_engine(t).connect() as c:
        src = c.execute(sa.text("SELECT DISTINCT source FROM bars_daily WHERE date = :d"),
                        {"d": LAST.date()}).scalars().all()
    assert src == ["stooq-5min"]
    # the complete daily bar equals the roll-up of the 5-minute bars (same basis, same source)
    with get_engine(t).connect() as c:
        diff = c.execute(sa.text(
            "SELECT max(abs(b.close - r.close)) FROM bars_daily b JOIN bars_intraday_daily r "
            "USING (symbol, date)")).scalar()
    assert diff == 0


def test_partial_bar_needs_a_session(fresh_target):
    from technic.jobs.ingest import build_partial_daily

    with pytest.raises(ValueError, match="not an NYSE session"):
        build_partial_daily(fresh_target, pd.Timestamp("2026-06-19 12:00", tz="UTC"))
    with pytest.raises(ValueError, match="not after the open"):
        build_partial_daily(fresh_target, pd.Timestamp("2026-06-22 09:00",
                                                       tz="America/New_York"))


def test_a_source_keeps_one_price_basis(fresh_target, coherent_files):
    from technic.providers.files import STOOQ_DAILY
    from technic.store.ingest import BasisConflictError

    root, _, _ = coherent_files
    ingest_files(fresh_target, root / "last" / "bars_daily_2026.parquet")
    with pytest.raises(BasisConflictError, match="stooq-5min"):
        ingest_files(fresh_target, root / "hist" / "bars_daily_2026.parquet",
                     basis=STOOQ_DAILY)
    with get_engine(fresh_target).connect() as c:
        assert c.execute(sa.text("SELECT count(*) FROM bars_daily")).scalar() == len(LIQUID)
        assert c.execute(sa.text(
            "SELECT count(*) FROM ingest_runs WHERE status = 'failed'")).scalar() == 1


def test_cli_builds_the_partial_bar(db_url, fresh_target, coherent_files):
    import subprocess
    import sys

    from tests.conftest import cli_env

    root, _, _ = coherent_files
    ingest_files(fresh_target, root / "bars_5min.parquet")
    r = subprocess.run([sys.executable, "-m", "technic.cli", "ingest", "partial", "--at",
                        "2026-06-22T18:00:00Z"], env=cli_env(db_url, fresh_target.schema),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    with get_engine(fresh_target).connect() as c:
        assert c.execute(sa.text("SELECT count(*) FROM bars_daily WHERE source = "
                                 "'intraday-partial'")).scalar() == len(LIQUID)
    r = subprocess.run([sys.executable, "-m", "technic.cli", "ingest", "partial", "--at",
                        "2026-06-19T18:00:00Z"], env=cli_env(db_url, fresh_target.schema),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "not an NYSE session" in r.stderr


def test_mixing_price_bases_in_bars_daily_is_reported(fresh_target, coherent_files, caplog,
                                                      tmp_path):
    from technic.store.quality import ingest_status
    from tests.conftest import BUNDLED

    root, _, _ = coherent_files
    old = pd.read_parquet(BUNDLED / "bars_daily.parquet")
    path = tmp_path / "bars_daily.parquet"
    old[old["symbol"].isin(LIQUID)].to_parquet(path)
    ingest_files(fresh_target, path)
    with caplog.at_level("WARNING", logger="technic.jobs.ingest"):
        ingest_files(fresh_target, root / "last" / "bars_daily_2026.parquet")
    assert "splice two bases" in caplog.text and "'files'" in caplog.text
    st = ingest_status(fresh_target)
    assert st.mixed_basis_symbols == len(LIQUID)
    assert {s["source"]: s["dividend_adjusted"] for s in st.sources} == \
        {"files": True, "stooq-5min": False}
