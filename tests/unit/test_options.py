"""Option chains: validation reasons, Black-Scholes round trip (vollib), the option metrics
against hand-computed values on real chains (../shared/data/options.parquet), the stale-price
rule and IV rank. No database."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from technic.options.bs import bs_price, implied_vol
from technic.options.chains import OPTION_SCHEMA, validate_chains
from technic.options.metrics import option_metrics, realized_vol

OPTIONS = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "options.parquet"
NOW = pd.Timestamp("2026-07-01", tz="UTC")


def _row(**kw) -> dict:
    base = {"date": dt.date(2026, 6, 12), "underlying": "AAPL",
            "expiration": dt.date(2026, 7, 17), "strike": 290.0, "option_type": "C",
            "last_price": 9.3, "volume": 10, "open_interest": 100, "implied_vol": 0.23,
            "delta": 0.55, "underlying_price": 291.13}
    base.update(kw)
    return base


# ----------------------------------------------------------------------------- validation


def test_each_reject_reason():
    rows = [
        _row(),                                                   # good
        _row(strike=300.0, underlying=" aapl ", option_type="call"),  # good, normalised
        _row(strike=None),                                        # missing value
        _row(expiration="2026-13-40", strike=301.0),              # unparseable date
        _row(underlying="AA\nPL"),                                # invalid symbol
        _row(date=dt.date(2026, 6, 13)),                          # weekend
        _row(date=dt.date(2026, 6, 19)),                          # holiday (Juneteenth)
        _row(option_type="X", strike=302.0),                      # unknown option type
        _row(last_price=math.inf, strike=303.0),                  # non-numeric value
        _row(expiration=dt.date(2026, 6, 11), strike=304.0),      # expiration before date
        _row(strike=-5.0),                                        # strike <= 0
        _row(implied_vol=0.0, strike=305.0),                      # IV outside (0, 5]
        _row(implied_vol=14.99, strike=306.0),                    # IV outside (0, 5]
        _row(last_price=-1.0, strike=307.0),                      # negative price
        _row(volume=-1, strike=308.0),                            # negative volume
        _row(open_interest=-3, strike=309.0),                     # negative open interest
        _row(delta=-0.3, strike=310.0),                           # call with a put delta
        _row(underlying_price=0.0, strike=311.0),                 # underlying price <= 0
        _row(strike=312.0), _row(strike=312.0),                   # exact repeat: 1 rejected
        _row(strike=313.0, volume=1), _row(strike=313.0, volume=2),  # conflicting: both
        _row(strike=314.0, implied_vol=None, last_price=None),    # nulls allowed: good
    ]
    df = pd.DataFrame(rows)
    df["expiration"] = df["expiration"].astype(str)  # text dates, as from a CSV
    good, rejects = validate_chains(df, now=NOW)
    assert good.schema == OPTION_SCHEMA
    assert good.num_rows + len(rejects) == len(rows)
    assert rejects["reason"].tolist() == [
        "missing value", "unparseable date", "invalid symbol", "weekend (not an NYSE session)",
        "holiday (not an NYSE session)", "unknown option type", "non-numeric value",
        "expiration before date", "strike <= 0", "implied vol outside (0, 5]",
        "implied vol outside (0, 5]", "negative price", "negative volume",
        "negative open interest", "delta outside its range", "underlying price <= 0",
        "duplicate contract", "conflicting duplicate contract",
        "conflicting duplicate contract"]
    g = good.to_pandas()
    assert g["strike"].tolist() == [290.0, 300.0, 312.0, 314.0]
    assert set(g["underlying"]) == {"AAPL"} and g["option_type"].tolist()[1] == "C"
    assert json.loads(rejects["row"].iloc[0])["underlying"] == "AAPL"


# ----------------------------------------------------------------------------- Black-Scholes


@pytest.mark.parametrize("flag", ["c", "p"])
def test_black_scholes_round_trip_iv_price_iv(flag):
    worst = 0.0
    for s in (50.0, 291.13):
        for k_rel in (0.8, 0.95, 1.0, 1.05, 1.25):
            for t in (3 / 365, 30 / 365, 0.5, 2.0):
                for sigma in (0.08, 0.25, 0.6, 1.5):
                    k = s * k_rel
                    price = bs_price(flag, s, k, t, sigma)
                    fwd_intrinsic = max(0.0, (s - k * math.exp(-0.04 * t)) * (
                        1 if flag == "c" else -1))
                    if price - fwd_intrinsic < 1e-4:  # ~no time value: IV not identifiable
                        continue
                    back = implied_vol(price, s, s * k_rel, t, flag)
                    worst = max(worst, abs(back - sigma))
    assert worst < 1e-6


def test_implied_vol_below_intrinsic_is_nan():
    assert math.isnan(implied_vol(1.0, 300.0, 250.0, 0.1, "c"))  # intrinsic ~51
    assert math.isnan(implied_vol(0.0, 300.0, 250.0, 0.1, "c"))


# ----------------------------------------------------------------------------- metrics


@pytest.fixture(scope="module")
def real() -> pa.Table:
    if not OPTIONS.exists():
        pytest.skip(f"{OPTIONS} not present (the shared real data)")
    t = pq.read_table(OPTIONS, filters=[("underlying", "in", ["AAPL", "KLAC", "SLF"]),
                                        ("date", ">=", dt.date(2026, 6, 10)),
                                        ("date", "<=", dt.date(2026, 6, 12))])
    good, _ = validate_chains(t, now=NOW)
    return good


@pytest.fixture(scope="module")
def real_metrics(real) -> pd.DataFrame:
    return option_metrics(real)


def _chain(real: pa.Table, u: str, day: dt.date) -> pd.DataFrame:
    df = real.to_pandas()
    return df[(df["underlying"] == u) & (df["date"] == day)]


def _ref_atm(c: pd.DataFrame, s: float, exp: dt.date) -> float:
    """ATM IV of one expiration, computed the plain way (a loop per side)."""
    vals = []
    for ty in "CP":
        y = c[(c["expiration"] == exp) & (c["option_type"] == ty)].dropna(
            subset=["implied_vol"]).sort_values("strike")
        lo, hi = y[y["strike"] <= s].tail(1), y[y["strike"] > s].head(1)
        if len(lo) and len(hi):
            k0, k1 = lo["strike"].iloc[0], hi["strike"].iloc[0]
            v0, v1 = lo["implied_vol"].iloc[0], hi["implied_vol"].iloc[0]
            vals.append(v0 + (s - k0) / (k1 - k0) * (v1 - v0))
    return float(np.mean(vals)) if vals else math.nan


def _ref_metrics(c: pd.DataFrame) -> dict:
    day = c["date"].iloc[0]
    s = float(c["underlying_price"].iloc[0])
    exps = sorted(e for e in c["expiration"].unique() if (e - day).days >= 1)
    atm = {e: _ref_atm(c, s, e) for e in exps}
    pts = [((e - day).days / 365, v) for e, v in atm.items() if not math.isnan(v)]

    def horizon(days: int) -> float:
        T = days / 365
        below = [p for p in pts if p[0] <= T]
        above = [p for p in pts if p[0] > T]
        (t1, v1), (t2, v2) = below[-1], above[0]
        w = v1 ** 2 * t1 + (v2 ** 2 * t2 - v1 ** 2 * t1) * (T - t1) / (t2 - t1)
        return math.sqrt(w / T)

    near = min((e for e in exps if not math.isnan(atm[e])),
               key=lambda e: (abs((e - day).days - 30), (e - day).days))
    skew = {}
    for ty, target in (("C", 0.25), ("P", -0.25)):
        y = c[(c["expiration"] == near) & (c["option_type"] == ty)].dropna(
            subset=["implied_vol", "delta"]).sort_values("strike").reset_index(drop=True)
        i = y.index[y["delta"] >= target].max()
        d0, d1 = y["delta"].iloc[i], y["delta"].iloc[i + 1]
        v0, v1 = y["implied_vol"].iloc[i], y["implied_vol"].iloc[i + 1]
        skew[ty] = v0 + (d0 - target) / (d0 - d1) * (v1 - v0)
    calls, puts = c[c["option_type"] == "C"], c[c["option_type"] == "P"]
    return {"atm_iv_30d": horizon(30), "atm_iv_90d": horizon(90),
            "skew_25d": skew["P"] - skew["C"],
            "put_call_volume": puts["volume"].sum() / calls["volume"].sum(),
            "put_call_oi": puts["open_interest"].sum() / calls["open_interest"].sum(),
            "volume_oi": c["volume"].sum() / c["open_interest"].sum(),
            "n_unusual": int(((c["volume"] >= 100) & (c["volume"] > c["open_interest"])).sum())}


def test_metrics_match_hand_computed_aapl_2026_06_12(real_metrics):
    """AAPL on 2026-06-12, S = 291.13; values read off the chain by hand:
    2026-07-10 (28 d): call IV 0.2343 @290, 0.2250 @295; put 0.2242 @290, 0.2185 @295.
    2026-07-17 (35 d): call IV 0.2335 @290, 0.2272 @295; put 0.2235 @290, 0.2183 @295.
    Next expiration 2026-06-15: strike 290 nearest S; call last 2.52 (volume 7,923), put
    last 1.38 (volume 13,348) → straddle 3.90."""
    m = real_metrics
    r = m[(m["underlying"] == "AAPL") & (m["date"] == dt.date(2026, 6, 12))].iloc[0]
    w = (291.13 - 290) / 5
    a28 = ((0.2343 + w * (0.2250 - 0.2343)) + (0.2242 + w * (0.2185 - 0.2242))) / 2
    a35 = ((0.2335 + w * (0.2272 - 0.2335)) + (0.2235 + w * (0.2183 - 0.2235))) / 2
    w28, w35 = a28 ** 2 * 28 / 365, a35 ** 2 * 35 / 365
    iv30 = math.sqrt((w28 + (w35 - w28) * 2 / 7) / (30 / 365))
    assert r["atm_iv_30d"] == pytest.approx(iv30, abs=1e-12)
    assert iv30 == pytest.approx(0.22744, abs=1e-5)
    assert r["expected_move_method"] == "straddle"
    assert r["next_expiration"] == dt.date(2026, 6, 15)
    assert r["expected_move"] == pytest.approx(3.90)
    assert r["expected_move_pct"] == pytest.approx(3.90 / 291.13)
    assert r["underlying_price"] == 291.13


@pytest.mark.parametrize("u, day", [("AAPL", dt.date(2026, 6, 10)),
                                    ("AAPL", dt.date(2026, 6, 12)),
                                    ("KLAC", dt.date(2026, 6, 11)),
                                    ("KLAC", dt.date(2026, 6, 12))])  # the split day
def test_metrics_match_plain_reference_on_real_chains(real, real_metrics, u, day):
    m = real_metrics
    got = m[(m["underlying"] == u) & (m["date"] == day)].iloc[0]
    want = _ref_metrics(_chain(real, u, day))
    for k, v in want.items():
        assert got[k] == pytest.approx(v, rel=1e-9, abs=1e-12), k
    assert got["term_slope"] == pytest.approx(want["atm_iv_90d"] - want["atm_iv_30d"])


def test_chain_without_underlying_price_gives_null_with_reasons(real_metrics):
    m = real_metrics
    slf = m[(m["underlying"] == "SLF") & m["underlying_price"].isna()]
    assert len(slf) == 1 and slf["atm_iv_30d"].isna().all()
    assert slf["reasons"].iloc[0]["atm_iv_30d"] == "no underlying price in the chain"
    assert slf["put_call_oi"].notna().all()  # volume / OI metrics need no price


def test_stale_price_rule_straddle_and_recomputed_iv():
    """A leg that did not trade in the session (volume 0: its last price is stale) is not
    used: the move falls back to S·IV·sqrt(t); a missing IV is recomputed from a price of
    the session only."""
    day, exp = dt.date(2026, 6, 12), dt.date(2026, 6, 19 + 3)  # 10 days
    s, t = 100.0, 10 / 365
    rows = []
    for k in (95.0, 100.0, 105.0):
        for ty in "CP":
            rows.append({"date": day, "underlying": "XYZ", "expiration": exp, "strike": k,
                         "option_type": ty, "last_price": bs_price(ty.lower(), s, k, t, 0.3),
                         "volume": 5, "open_interest": 50, "implied_vol": 0.3,
                         "delta": 0.5 if ty == "C" else -0.5, "underlying_price": s})
    fresh = pd.DataFrame(rows)
    m = option_metrics(fresh)
    straddle = bs_price("c", s, 100, t, 0.3) + bs_price("p", s, 100, t, 0.3)
    assert m["expected_move_method"].iloc[0] == "straddle"
    assert m["expected_move"].iloc[0] == pytest.approx(straddle)
    stale = fresh.copy()
    stale.loc[(stale["strike"] == 100) & (stale["option_type"] == "C"), "volume"] = 0
    stale.loc[(stale["strike"] == 100) & (stale["option_type"] == "C"), "last_price"] = 0.01
    m2 = option_metrics(stale)
    assert m2["expected_move_method"].iloc[0] == "iv"
    assert m2["expected_move"].iloc[0] == pytest.approx(s * 0.3 * math.sqrt(t))
    # IV missing: recomputed from the session's price; not from a stale one
    gap = fresh.copy()
    gap.loc[gap["strike"] == 105, "implied_vol"] = np.nan
    gap.loc[(gap["strike"] == 105) & (gap["option_type"] == "P"), "volume"] = 0
    m3 = option_metrics(gap)
    assert m3["n_iv_recomputed"].iloc[0] == 1  # the call only
    assert m3["atm_iv_30d"].iloc[0] == pytest.approx(0.3, abs=1e-9)


def test_iv_rank_needs_history_then_hand_computed():
    day0 = dt.date(2026, 6, 1)
    rows = []
    ivs = [0.20, 0.30, 0.25, 0.40, 0.35]
    days = [day0 + dt.timedelta(days=i) for i in (0, 1, 2, 3, 4)]
    for d, v in zip(days, ivs, strict=True):
        for k in (95.0, 105.0):
            for ty in "CP":
                rows.append({"date": d, "underlying": "XYZ", "expiration": d + dt.timedelta(30),
                             "strike": k, "option_type": ty, "last_price": 1.0, "volume": 0,
                             "open_interest": 1, "implied_vol": v, "delta": 0.5 if ty == "C"
                             else -0.5, "underlying_price": 100.0})
    df = pd.DataFrame(rows)
    m = option_metrics(df)
    assert m["iv_rank_252"].isna().all()
    assert m["reasons"].iloc[-1]["iv_rank_252"] == "5 session(s) of IV history, 252 needed"
    m = option_metrics(df, min_rank_sessions=4)
    assert m["iv_rank_252"].iloc[:3].isna().all()
    # session 4: IV 0.40 over {0.20, 0.30, 0.25, 0.40} → rank 1, 3 of 3 earlier lower
    assert m["iv_rank_252"].iloc[3] == pytest.approx(1.0)
    assert m["iv_percentile_252"].iloc[3] == pytest.approx(1.0)
    # session 5: 0.35 → (0.35 − 0.20) / (0.40 − 0.20) = 0.75; 3 of 4 earlier lower
    assert m["iv_rank_252"].iloc[4] == pytest.approx(0.75)
    assert m["iv_percentile_252"].iloc[4] == pytest.approx(0.75)
    # the same with the first three sessions as stored history
    hist = m.iloc[:3][["date", "underlying", "atm_iv_30d"]]
    later = option_metrics(df[df["date"] >= days[3]], iv_history=hist, min_rank_sessions=4)
    assert later["iv_rank_252"].tolist() == pytest.approx([1.0, 0.75])


def test_realized_vol_hand_computed():
    closes = [100.0 * math.exp(0.01 * ((-1) ** i)) for i in range(22)]
    df = pd.DataFrame({"symbol": "XYZ", "close": closes,
                       "date": pd.bdate_range("2026-05-01", periods=22).date})
    rv = realized_vol(df)
    assert rv["realized_vol"].iloc[:20].isna().all()
    lr = np.diff(np.log(closes))
    assert rv["realized_vol"].iloc[20] == pytest.approx(np.std(lr[:20], ddof=1) * math.sqrt(252))
    assert rv["realized_vol"].iloc[21] == pytest.approx(np.std(lr[1:21], ddof=1) * math.sqrt(252))


# ----------------------------------------------------------------------------- schema


def test_migrations_21_22_sql_both_variants():
    """Rendered without a database: the TimescaleDB variant is reviewed here only (no
    TimescaleDB server in the test run)."""
    from technic.store.migrations import MIGRATIONS, OPTION_RESULT_COLUMNS

    by_version = {m.version: m for m in MIGRATIONS}
    ts = "\n".join(by_version[21].render("technic", True))  # type: ignore[operator]
    native = "\n".join(by_version[21].render("technic", False))  # type: ignore[operator]
    assert "PRIMARY KEY (date, underlying, expiration, option_type, strike)" in native
    assert ") PARTITION BY RANGE (date)" in native and "create_hypertable" not in native
    assert "PARTITION BY RANGE" not in ts
    assert ("""create_hypertable('"technic".option_chains', by_range('date', """
            """INTERVAL '7 days'), create_default_indexes => FALSE""") in ts
    assert "timescaledb.compress_segmentby = 'underlying'" in ts
    assert """add_compression_policy('"technic".option_chains', INTERVAL '30 days'""" in ts
    v22 = by_version[22].render("technic", False)  # type: ignore[operator]
    assert any("CREATE TABLE IF NOT EXISTS \"technic\".option_metrics" in s for s in v22)
    for c in OPTION_RESULT_COLUMNS:
        assert (f'ALTER TABLE "technic".scan_results ADD COLUMN IF NOT EXISTS {c} '
                'double precision') in v22
    # both views recreated after the new columns (r.* is expanded at creation)
    assert v22[-1].startswith('CREATE VIEW "technic".latest_scan_results_by_preset')
