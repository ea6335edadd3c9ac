"""Intraday bars: the real 5-minute file loads, is idempotent, and rolls up correctly."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from technic.ingest import ingest_files
from technic.store.db import get_engine
from technic.validation import validate_bars

from .conftest import SHARED

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
