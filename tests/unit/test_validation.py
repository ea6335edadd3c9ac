"""Row validation: every bad-row kind gets its reason; good rows pass untouched."""

from __future__ import annotations

import numpy as np
import pandas as pd

from technic.providers.synthetic import generate_bars
from technic.validation import validate_bars

GOOD = {"symbol": "AAA", "date": "2024-01-02", "open": "10", "high": "11", "low": "9",
        "close": "10.5", "volume": "1000"}


def _frame(rows):
    return pd.DataFrame(rows, dtype=object)


def test_each_bad_row_gets_its_reason():
    rows = [
        GOOD,
        {**GOOD, "date": "2024-01-03", "close": None},                 # missing value
        {**GOOD, "symbol": " "},                                        # missing symbol
        {**GOOD, "date": "2024-13-45"},                                 # unparseable date
        {**GOOD, "date": "2024-01-04", "open": "abc"},                  # non-numeric
        {**GOOD, "date": "2024-01-05", "low": "0", "open": "0"},        # price <= 0
        {**GOOD, "date": "2024-01-08", "high": "8"},                    # high < low
        {**GOOD, "date": "2024-01-09", "open": "12"},                   # open outside
        {**GOOD, "date": "2024-01-10", "close": "8.5"},                 # close outside
        {**GOOD, "date": "2024-01-11", "volume": "-5"},                 # negative volume
        {**GOOD, "date": "2024-01-12"},
        {**GOOD, "date": "2024-01-12"},                                 # exact duplicate
        {**GOOD, "date": "2024-01-16"},
        {**GOOD, "date": "2024-01-16", "close": "10.25"},               # conflicting pair
        {**GOOD, "date": "2024-01-17", "volume": "inf"},                # non-finite
    ]
    v = validate_bars(_frame(rows))
    reasons = list(v.rejects["reason"])
    assert reasons == [
        "missing value", "missing value", "unparseable date", "non-numeric value", "price <= 0",
        "high < low", "open outside [low, high]", "close outside [low, high]",
        "negative volume", "duplicate (symbol, date)", "conflicting duplicate (symbol, date)",
        "conflicting duplicate (symbol, date)", "non-numeric value",
    ]
    assert list(v.good["date"].astype(str)) == ["2024-01-02", "2024-01-12"]
    assert len(v.good) + len(v.rejects) == len(rows)
    assert '"open": "abc"' in v.rejects["row"].iloc[3]
    assert v.counts_by_reason()["missing value"] == 2


def test_typed_input_and_zero_rejects():
    bars, _ = generate_bars(50, 30, seed=1)
    v = validate_bars(bars)
    assert v.rejects.empty
    assert len(v.good) == 50 * 30
    assert v.good["date"].dtype == np.dtype("datetime64[s]") or str(v.good["date"].dtype) \
        .startswith("datetime64")
    np.testing.assert_array_equal(v.good["close"].to_numpy(),
                                  bars.sort_values(["symbol", "date"])["close"].to_numpy())


def test_synthetic_bars_are_consistent_and_reproducible():
    a, ua = generate_bars(20, 100, seed=7)
    b, _ = generate_bars(20, 100, seed=7)
    pd.testing.assert_frame_equal(a, b)
    assert (a["high"] >= a[["open", "close"]].max(axis=1)).all()
    assert (a["low"] <= a[["open", "close"]].min(axis=1)).all()
    assert (a["volume"] > 0).all()
    assert len(ua) == 20
