"""Splits: stored unadjusted history is adjusted once, in one transaction, and stays so."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
import sqlalchemy as sa

from technic.jobs.ingest import ingest_files, ingest_splits
from technic.providers.files import STOOQ_DAILY
from technic.store.db import get_engine
from technic.validation import PriceBasis

RAW = PriceBasis(split_adjusted=False, dividend_adjusted=False, vendor="test")
DAYS = [d.date() for d in pd.bdate_range("2024-06-03", periods=6)]
EX = DAYS[3]


def _bars(symbol: str, before: float, after: float) -> pd.DataFrame:
    return pd.DataFrame({
        "symbol": symbol, "date": pd.to_datetime(DAYS),
        "open": [before] * 3 + [after] * 3, "high": [before * 1.01] * 3 + [after * 1.01] * 3,
        "low": [before * 0.99] * 3 + [after * 0.99] * 3, "close": [before] * 3 + [after] * 3,
        "volume": [1000.0] * 3 + [4000.0] * 3})


def _read(t, symbol):
    with get_engine(t).connect() as c:
        return pd.read_sql(sa.text("SELECT date, close, volume FROM bars_daily "
                                   "WHERE symbol = :s ORDER BY date"), c, params={"s": symbol})


@pytest.fixture()
def stored(fresh_target, tmp_path):
    raw = tmp_path / "raw.parquet"
    pd.concat([_bars("AAA", 100.0, 25.0), _bars("BBB", 50.0, 50.0)]).to_parquet(raw)
    ingest_files(fresh_target, raw, source="raw-test", basis=RAW)
    adj = tmp_path / "adj.parquet"  # adjusted as of a date after the ex-date: already right
    _bars("CCC", 25.0, 25.0).to_parquet(adj)
    ingest_files(fresh_target, adj, source="vendor-adj",
                 basis=PriceBasis(split_adjusted=True, dividend_adjusted=True,
                                  adjusted_as_of=dt.date(2024, 7, 1)))
    return fresh_target, raw


def test_split_adjusts_unadjusted_history_once(stored):
    t, raw = stored
    split = pd.DataFrame({"symbol": ["AAA", "CCC"], "execution_date": [EX, EX],
                          "split_from": [1.0, 1.0], "split_to": [4.0, 4.0]})
    rep = ingest_splits(t, split, source="polygon", as_of=DAYS[-1])
    assert rep.rows_read == 2 and rep.rows_updated == 3  # AAA's three bars before EX
    assert (rep.changed_from, rep.changed_to) == (DAYS[0], DAYS[2])
    aaa = _read(t, "AAA")
    assert aaa["close"].tolist() == [25.0] * 6 and aaa["volume"].tolist() == [4000.0] * 6
    assert _read(t, "CCC")["close"].tolist() == [25.0] * 6  # its basis already had it
    assert _read(t, "BBB")["close"].tolist() == [50.0] * 6
    with get_engine(t).connect() as c:
        applied = c.execute(sa.text(
            "SELECT symbol, applied_rows FROM corporate_actions WHERE applied_at IS NOT NULL "
            "ORDER BY symbol")).all()
        run = c.execute(sa.text("SELECT source, status, rows_updated, changed_from FROM "
                                "ingest_runs WHERE run_id = :r"), {"r": rep.run_id}).one()
    assert applied == [("AAA", 3), ("CCC", 0)]
    assert run == ("corporate-actions", "ok", 3, DAYS[0])
    # applying again does nothing; re-ingesting the raw file changes nothing either
    again = ingest_splits(t, split, source="polygon", as_of=DAYS[-1])
    assert (again.symbols_upserted, again.rows_read, again.rows_updated) == (0, 0, 0)
    assert again.changed_from is None
    re = ingest_files(t, raw, source="raw-test", basis=RAW)[0]
    assert (re.rows_inserted, re.rows_updated) == (0, 0)
    assert _read(t, "AAA")["close"].tolist() == [25.0] * 6


def test_future_split_waits_for_its_ex_date(stored):
    t, _ = stored
    split = pd.DataFrame({"symbol": ["AAA"], "ex_date": [EX], "split_from": [1], "split_to": [4]})
    rep = ingest_splits(t, split, as_of=DAYS[2])
    assert (rep.symbols_upserted, rep.rows_read, rep.rows_updated) == (1, 0, 0)
    assert _read(t, "AAA")["close"].tolist()[:3] == [100.0] * 3
    assert ingest_splits(t, split, as_of=DAYS[-1]).rows_updated == 3


def test_bad_ratio_is_refused(stored):
    t, _ = stored
    with pytest.raises(ValueError, match="> 0"):
        ingest_splits(t, pd.DataFrame({"symbol": ["AAA"], "ex_date": [EX],
                                       "split_from": [0.0], "split_to": [4.0]}))


def test_stooq_daily_basis_lacks_later_splits_only():
    assert STOOQ_DAILY.needs_split(dt.date(2025, 8, 1))
    assert not STOOQ_DAILY.needs_split(dt.date(2025, 7, 1))
    assert not PriceBasis().needs_split(dt.date(2025, 8, 1))  # unknown: left alone


def test_cli_records_and_applies_a_splits_file(db_url, stored, tmp_path):
    import subprocess
    import sys

    from tests.conftest import cli_env

    t, _ = stored
    f = tmp_path / "splits.csv"
    f.write_text(f"symbol,ex_date,split_from,split_to\nAAA,{EX.isoformat()},1,4\n")
    cmd = [sys.executable, "-m", "technic.cli", "ingest", "splits", str(f)]
    r = subprocess.run(cmd, env=cli_env(db_url, t.schema), capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert "1 new split(s) recorded, 1 applied, 3 daily bar(s) adjusted" in r.stdout
    r = subprocess.run(cmd, env=cli_env(db_url, t.schema), capture_output=True, text=True,
                       timeout=120)
    assert "0 new split(s) recorded, 0 applied, 0 daily bar(s) adjusted" in r.stdout
    r = subprocess.run([sys.executable, "-m", "technic.cli", "ingest", "status"],
                       env=cli_env(db_url, t.schema), capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert "splits no, dividends no" in r.stdout and "as of 2024-07-01" in r.stdout
