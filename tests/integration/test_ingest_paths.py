"""The fast ingest paths agree with the general ones: vectorized Arrow validation against the
row-wise pandas rules, and the direct COPY of new dates against the staged upsert."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import sqlalchemy as sa

from technic.jobs.ingest import ingest_files
from technic.store.db import get_engine
from technic.store.schema import ensure_partitions
from technic.validation import _validate_pandas, validate_bars


def _messy(n: int = 4000, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sym = rng.choice(["AAA", "BBB", " CCC", "DDD", ""], n)
    date = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 300, n), "D")
    close = rng.uniform(1, 100, n)
    df = pd.DataFrame({"symbol": sym, "date": date.values,
                       "open": close * rng.uniform(.97, 1.03, n),
                       "high": close * 1.04, "low": close * 0.96, "close": close,
                       "volume": rng.uniform(-10, 1e6, n)})
    k = rng.integers(0, n, 200)
    df.loc[k[:40], "close"] = np.nan
    df.loc[k[40:80], "open"] = np.inf
    df.loc[k[80:120], "low"] = df.loc[k[80:120], "high"] * 2
    df.loc[k[120:160], "high"] = -1.0
    dup = df.iloc[:300].copy()
    dup.loc[dup.index[::2], "close"] = dup["close"].iloc[::2] * 1.0001  # conflicts
    return pd.concat([df, dup], ignore_index=True)


def test_arrow_validation_matches_the_pandas_rules():
    df = _messy()
    fast = validate_bars(pa.Table.from_pandas(df, preserve_index=False))
    slow = _validate_pandas(df, "date")
    assert list(fast.rejects["reason"]) == list(slow.rejects["reason"])
    assert fast.counts_by_reason()["conflicting duplicate (symbol, date)"] > 0
    assert fast.counts_by_reason()["duplicate (symbol, date)"] > 0
    assert fast.table.equals(slow.table)
    assert len(fast.good) + len(fast.rejects) == len(df)


def test_direct_copy_and_upsert_give_the_same_store(fresh_target, tmp_path):
    """Day 1–3 land by direct COPY; a file re-sending day 3 (one value changed) and adding
    day 4 takes both paths in one run; changed_from/to cover exactly what changed."""
    t = fresh_target
    days = pd.bdate_range("2024-03-04", periods=4)
    rows = [{"symbol": s, "date": d, "open": 10.0 + i, "high": 12.0 + i, "low": 9.0 + i,
             "close": 11.0 + i, "volume": 1000.0} for i, d in enumerate(days)
            for s in ("AAA", "BBB")]
    df = pd.DataFrame(rows)
    df[df["date"] < days[3]].to_parquet(tmp_path / "a.parquet")
    first = ingest_files(t, tmp_path / "a.parquet")[0]
    assert first.rows_inserted == 6 and first.timings.get("copy_s") is not None
    assert "update_s" not in first.timings
    assert (first.changed_from, first.changed_to) == (days[0].date(), days[2].date())
    b = df[df["date"] >= days[2]].copy()
    b.loc[(b["symbol"] == "AAA") & (b["date"] == days[2]), "close"] = 11.5
    b.to_parquet(tmp_path / "b.parquet")
    second = ingest_files(t, tmp_path / "b.parquet")[0]
    assert (second.rows_inserted, second.rows_updated, second.rows_unchanged) == (2, 1, 1)
    assert (second.changed_from, second.changed_to) == (days[2].date(), days[3].date())
    again = ingest_files(t, tmp_path / "b.parquet")[0]
    assert (again.rows_inserted, again.rows_updated, again.changed_from) == (0, 0, None)
    with get_engine(t).connect() as c:
        assert c.execute(sa.text("SELECT count(*) FROM bars_daily")).scalar() == 8
        assert c.execute(sa.text("SELECT count(*) FROM trading_dates")).scalar() == 4
        assert c.execute(sa.text("SELECT close FROM bars_daily WHERE symbol = 'AAA' "
                                 "AND date = :d"), {"d": days[2].date()}).scalar() == 11.5


def test_direct_copy_falls_back_when_trading_dates_lag(fresh_target, tmp_path):
    """A bar stored behind the ingest's back (no trading_dates row): the direct COPY hits
    its key, rolls back to its savepoint and the upsert stores the rest."""
    t = fresh_target
    with get_engine(t).begin() as c:
        ensure_partitions(c, t.schema, "bars_daily", [2024])
        c.execute(sa.text("INSERT INTO bars_daily (symbol, date, open, high, low, close, "
                          "volume, source) VALUES ('AAA', '2024-03-04', 1, 1, 1, 1, 1, 'x')"))
    pd.DataFrame({"symbol": ["AAA", "BBB"], "date": pd.to_datetime(["2024-03-04"] * 2),
                  "open": [1.0, 2.0], "high": [1.0, 2.0], "low": [1.0, 2.0],
                  "close": [1.0, 2.0], "volume": [1.0, 2.0]}).to_parquet(tmp_path / "x.parquet")
    r = ingest_files(t, tmp_path / "x.parquet")[0]
    assert (r.rows_inserted, r.rows_updated, r.rows_unchanged) == (1, 0, 1)
