"""Greeks filled before chains are stored (:mod:`technic.options.greeks`): vollib's analytical
Black-Scholes-Merton greeks against the closed forms computed by hand (``math.erf``) on real
contracts of ``../shared/data/options.parquet``, the source's greeks kept, the IV of the
session's price where the source has none (stale prices left alone), 0-DTE and missing
inputs. No database."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from technic.options.bs import implied_vol
from technic.options.chains import OPTION_SCHEMA, validate_chains
from technic.options.greeks import fill_greeks

OPTIONS = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "options.parquet"
DAY = dt.date(2026, 6, 12)


def _n(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def _phi(x: float) -> float:
    return math.exp(-x * x / 2.0) / math.sqrt(2.0 * math.pi)


def hand_greeks(put: bool, s: float, k: float, t: float, sigma: float, r: float, q: float
                ) -> dict[str, float]:
    """Black-Scholes-Merton greeks from the textbook formulas (Hull, "The Greek Letters"):
    theta per calendar day (/365), vega per volatility point (x 0.01)."""
    d1 = (math.log(s / k) + (r - q + sigma * sigma / 2.0) * t) / (sigma * math.sqrt(t))
    d2 = d1 - sigma * math.sqrt(t)
    dq, dr = math.exp(-q * t), math.exp(-r * t)
    decay = -s * dq * _phi(d1) * sigma / (2.0 * math.sqrt(t))
    if put:
        delta = -dq * _n(-d1)
        theta = decay - q * s * dq * _n(-d1) + r * k * dr * _n(-d2)
    else:
        delta = dq * _n(d1)
        theta = decay + q * s * dq * _n(d1) - r * k * dr * _n(d2)
    return {"delta": delta, "gamma": dq * _phi(d1) / (s * sigma * math.sqrt(t)),
            "theta": theta / 365.0, "vega": s * dq * _phi(d1) * math.sqrt(t) * 0.01}


@pytest.fixture(scope="module")
def aapl() -> pa.Table:
    """Six real AAPL contracts of 2026-06-12 expiring 2026-07-17 (ITM, ATM, OTM calls and
    puts), validated: IV and delta from the source, no gamma/theta/vega."""
    if not OPTIONS.exists():
        pytest.skip(f"real data not found: {OPTIONS}")
    t = pq.read_table(OPTIONS, filters=[("underlying", "=", "AAPL"), ("date", "=", DAY),
                                        ("expiration", "=", dt.date(2026, 7, 17)),
                                        ("strike", "in", [250.0, 290.0, 330.0])])
    good, rejects = validate_chains(t, now=dt.datetime(2026, 7, 1, tzinfo=dt.UTC))
    assert good.num_rows == 6 and rejects.empty
    assert good["gamma"].null_count == 6
    return good


@pytest.mark.parametrize(("r", "q"), [(0.04, 0.0), (0.05, 0.02)])
def test_greeks_match_hand_computed_on_real_contracts(aapl, r, q):
    out, fill = fill_greeks(aapl, r=r, q=q)
    assert fill.rows_filled == 6 and fill.filled == {"delta": 0, "gamma": 6, "theta": 6,
                                                     "vega": 6}
    t = (dt.date(2026, 7, 17) - DAY).days / 365.0
    for row in out.to_pylist():
        want = hand_greeks(row["option_type"] == "P", row["underlying_price"], row["strike"],
                           t, row["implied_vol"], r, q)
        for g in ("gamma", "theta", "vega"):
            assert row[g] == pytest.approx(want[g], abs=1e-8, rel=1e-8), (row, g)
    src = aapl.to_pylist()
    assert [r_["delta"] for r_ in out.to_pylist()] == [r_["delta"] for r_ in src]  # kept
    atm_call = next(x for x in out.to_pylist() if x["strike"] == 290 and x["option_type"] == "C")
    # units: theta per calendar day, vega per vol point (the 290 call is worth 9.30 USD)
    assert -0.2 < atm_call["theta"] < -0.05 and 0.2 < atm_call["vega"] < 0.5


def _rows(base: dict, *changes: dict) -> pa.Table:
    rows = []
    for ch in changes:
        r = {c: None for c in OPTION_SCHEMA.names}
        r.update(base)
        r.update(ch)
        rows.append(r)
    return pa.Table.from_pylist(rows, schema=OPTION_SCHEMA)


def test_source_greeks_kept_missing_ones_filled_and_unusable_rows_left_null():
    base = {"date": DAY, "underlying": "AAPL", "expiration": dt.date(2026, 7, 17),
            "option_type": "C", "strike": 290.0, "last_price": 9.3, "volume": 2317,
            "implied_vol": 0.2335, "underlying_price": 291.13}
    t = _rows(base,
              {"delta": 0.55, "gamma": 0.011, "theta": -0.11, "vega": 0.35},  # Polygon: all
              {"strike": 295.0, "delta": 0.5},                 # delta only: the rest filled
              {"strike": 300.0},                                # nothing: all four filled
              {"strike": 305.0, "implied_vol": None},           # IV of the session's price
              {"strike": 310.0, "implied_vol": None, "volume": 0},   # stale: none
              {"strike": 315.0, "expiration": DAY},             # 0 DTE: none
              {"strike": 320.0, "underlying_price": None},      # the chain's price
              {"underlying": "MSFT", "underlying_price": None})  # no price in its chain
    out, fill = fill_greeks(t)
    rows = out.to_pylist()
    assert out.schema == OPTION_SCHEMA and out.num_rows == t.num_rows
    assert (rows[0]["delta"], rows[0]["gamma"], rows[0]["theta"], rows[0]["vega"]) == \
        (0.55, 0.011, -0.11, 0.35)
    tt = 35 / 365.0
    want = hand_greeks(False, 291.13, 295.0, tt, 0.2335, 0.04, 0.0)
    assert rows[1]["delta"] == 0.5
    assert rows[1]["gamma"] == pytest.approx(want["gamma"], abs=1e-8)
    want = hand_greeks(False, 291.13, 300.0, tt, 0.2335, 0.04, 0.0)
    assert all(rows[2][g] == pytest.approx(want[g], abs=1e-8) for g in want)
    sigma = implied_vol(9.3, 291.13, 305.0, tt, "c")
    assert 0 < sigma < 1
    want = hand_greeks(False, 291.13, 305.0, tt, sigma, 0.04, 0.0)
    assert all(rows[3][g] == pytest.approx(want[g], abs=1e-8) for g in want)
    assert rows[3]["implied_vol"] is None  # the column keeps the source's (none)
    for i in (4, 5, 7):
        assert all(rows[i][g] is None for g in ("delta", "gamma", "theta", "vega")), i
    want = hand_greeks(False, 291.13, 320.0, tt, 0.2335, 0.04, 0.0)
    assert rows[6]["vega"] == pytest.approx(want["vega"], abs=1e-8)
    assert rows[6]["underlying_price"] is None  # stored as the source gave it
    assert fill.rows_filled == 4 and fill.iv_recomputed == 1 and fill.rows_unusable == 3
    assert fill.filled == {"delta": 3, "gamma": 4, "theta": 4, "vega": 4}


def test_nothing_missing_returns_the_same_table():
    t = _rows({"date": DAY, "underlying": "X", "expiration": dt.date(2026, 7, 17),
               "option_type": "P", "strike": 10.0, "delta": -0.4, "gamma": 0.1,
               "theta": -0.01, "vega": 0.02})
    out, fill = fill_greeks(t)
    assert out is t and fill.rows_filled == 0
