"""Point-in-time fundamental factors (technic.scoring.fundamentals) and the validation of
fundamentals rows, on the bundled real cut of the shared fundamentals file (no database).

The truncation tests are the look-ahead guard: a factor computed for date d must not change
when every quarter made public after d is deleted or altered.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from technic.scoring.fundamentals import (
    FACTOR_COLUMNS,
    FUNDAMENTAL_FACTORS,
    MAX_QUARTER_AGE_DAYS,
    fundamental_factor_panel,
    fundamental_factors,
    market_cap_panel,
    market_cap_pit,
    pit_state,
    pit_state_asof,
    pit_state_events,
    sector_neutral_rank,
)
from technic.validation import validate_fundamentals
from tests.conftest import BUNDLED

DATES = (dt.date(2023, 11, 1), dt.date(2024, 5, 3), dt.date(2024, 6, 28), dt.date(2025, 2, 14))


@pytest.fixture(scope="module")
def quarters() -> pd.DataFrame:
    good, rejects = validate_fundamentals(pd.read_parquet(BUNDLED / "fundamentals.parquet"))
    assert len(rejects) == 11  # the rows the file flags available_date_suspect
    return good


@pytest.fixture(scope="module")
def frames() -> dict[dt.date, pd.DataFrame]:
    bars = pd.read_parquet(BUNDLED / "bars_daily.parquet", columns=["symbol", "date", "close"],
                           filters=[("date", "in", list(DATES))])
    uni = pd.read_parquet(BUNDLED / "universe.parquet", columns=["symbol", "sector"])
    df = bars.merge(uni, on="symbol", how="left")
    return {d: df[df["date"] == d].reset_index(drop=True) for d in DATES}


def _factors(q: pd.DataFrame, frame: pd.DataFrame, d: dt.date) -> pd.DataFrame:
    return fundamental_factors(frame, pit_state(q, d))


def _altered_after(q: pd.DataFrame, d: dt.date) -> pd.DataFrame:
    """Quarters public after ``d`` with every value changed (and their public dates moved)."""
    out = q.copy()
    late = out["available_date"] > pd.Timestamp(d)
    for c in ("revenue", "net_income", "total_assets", "equity", "free_cash_flow"):
        out.loc[late, c] = out.loc[late, c] * -7.0 + 1e9
    out.loc[late, "shares_diluted"] = out.loc[late, "shares_diluted"] * 3.0
    out.loc[late, "available_date"] = out.loc[late, "available_date"] + pd.Timedelta(days=1)
    return out


@pytest.mark.parametrize("d", DATES)
def test_factors_at_d_ignore_quarters_public_after_d(quarters, frames, d):
    full = _factors(quarters, frames[d], d)
    assert full["value_score"].notna().sum() > 300  # the test compares real values
    late = quarters["available_date"] > pd.Timestamp(d)
    assert late.any()
    truncated = _factors(quarters[~late], frames[d], d)
    altered = _factors(_altered_after(quarters, d), frames[d], d)
    pd.testing.assert_frame_equal(full, truncated)
    pd.testing.assert_frame_equal(full, altered)


def test_panel_equals_date_by_date_and_ignores_the_future(quarters, frames):
    panel = pd.concat(frames.values(), ignore_index=True)
    got = fundamental_factor_panel(panel, quarters)
    for d in DATES:
        rows = panel["date"] == d
        want = _factors(quarters, panel[rows], d)
        pd.testing.assert_frame_equal(got[rows], want, check_dtype=False)
    # quarters public after the first date altered: the first date's rows do not move
    d0 = DATES[0]
    moved = fundamental_factor_panel(panel, _altered_after(quarters, d0))
    first = panel["date"] == d0
    pd.testing.assert_frame_equal(moved[first], got[first])
    assert not moved[~first].equals(got[~first])


def test_public_date_is_inclusive(quarters):
    # NVDA's quarter ending 2024-04-30 was filed 2024-05-29
    before = pit_state(quarters, dt.date(2024, 5, 28)).loc["NVDA"]
    on = pit_state(quarters, dt.date(2024, 5, 29)).loc["NVDA"]
    assert before["period_end"] == pd.Timestamp("2024-01-31")
    assert on["period_end"] == pd.Timestamp("2024-04-30")
    assert on["available_date"] == pd.Timestamp("2024-05-29")


def _row(frames, quarters, symbol: str, d: dt.date) -> pd.Series:
    f = _factors(quarters, frames[d], d)
    return f[frames[d]["symbol"] == symbol].iloc[0]


# Hand computation from the quarterly rows of the shared file (USD; shares) and the bundled
# closes on 2024-06-28. AAPL/MSFT: latest quarter public by then ends 2024-03-31;
# NVDA: 2024-04-30 (filed 2024-05-29). TTM = the four quarters ending 0, 3, 6, 9 months before.
HAND = {
    "AAPL": dict(close=209.914, shares=15_464_709_000.0,
                 ni=(19.881e9, 22.956e9, 33.916e9, 23.636e9),
                 rev=(81.797e9, 89.498e9, 119.575e9, 90.753e9),
                 fcf=(24.287e9, 19.435e9, 37.503e9, 20.694e9),
                 equity=74.194e9, assets=337.411e9, rev_1y=94.836e9, ni_1y=24.160e9),
    "MSFT": dict(close=445.255, shares=7.472e9,
                 ni=(20.081e9, 22.291e9, 21.870e9, 21.939e9),
                 rev=(56.189e9, 56.517e9, 62.020e9, 61.858e9),
                 fcf=(19.827e9, 20.666e9, 9.118e9, 20.965e9),
                 equity=253.152e9, assets=484.275e9, rev_1y=52.857e9, ni_1y=18.299e9),
    "NVDA": dict(close=123.52, shares=24.89e9,
                 ni=(6.188e9, 9.243e9, 12.285e9, 14.881e9),
                 rev=(13.507e9, 18.120e9, 22.103e9, 26.044e9),
                 fcf=(6.048e9, 7.041e9, 11.215e9, 14.936e9),
                 equity=49.142e9, assets=77.072e9, rev_1y=7.192e9, ni_1y=2.043e9),
}


@pytest.mark.parametrize("symbol", sorted(HAND))
def test_hand_computed_values(quarters, frames, symbol):
    h = HAND[symbol]
    got = _row(frames, quarters, symbol, dt.date(2024, 6, 28))
    cap = h["close"] * h["shares"]
    ni, rev, fcf = sum(h["ni"]), sum(h["rev"]), sum(h["fcf"])
    want = {
        "market_cap_pit": cap,
        "earnings_yield": ni / cap, "sales_yield": rev / cap, "fcf_yield": fcf / cap,
        "book_to_price": h["equity"] / cap,
        "roe": ni / h["equity"], "roa": ni / h["assets"],
        "accruals": (ni - fcf) / h["assets"], "fcf_margin": fcf / rev,
        "revenue_growth_yoy": h["rev"][-1] / h["rev_1y"] - 1,
        "earnings_growth_yoy": (h["ni"][-1] - h["ni_1y"]) / abs(h["ni_1y"]),
    }
    for k, v in want.items():
        assert got[k] == pytest.approx(v, rel=2e-4), k
    assert got["market_cap_source"] == "fundamentals"
    # NVDA's year-on-year revenue growth of the quarter ending 2024-04-30: +262 %
    if symbol == "NVDA":
        assert got["revenue_growth_yoy"] == pytest.approx(2.6212, abs=1e-4)


def test_banks_and_missing_inputs_are_null_never_zero(quarters, frames):
    d = dt.date(2024, 6, 28)
    frame = frames[d]
    ref = np.full(len(frame), 1e9)
    f = fundamental_factors(frame, pit_state(quarters, d), reference_shares=ref)
    for bank in ("JPM", "BAC", "WFC", "GS"):
        row = f[frame["symbol"] == bank].iloc[0]
        for c in (*FUNDAMENTAL_FACTORS, *(f"{x}_sn" for x in FUNDAMENTAL_FACTORS),
                  "value_score", "quality_score", "growth_score", "shares_diluted_pit"):
            assert np.isnan(row[c]), (bank, c)
        # size falls back to the reference shares, flagged
        assert row["market_cap_source"] == "reference"
        assert row["market_cap_pit"] == pytest.approx(row_close(frame, bank) * 1e9)
    numeric = f[[c for c in FACTOR_COLUMNS if c not in (
        "market_cap_source", "fund_period_end", "fund_available_date")]]
    no_fund = ~frame["symbol"].isin(quarters["symbol"]).to_numpy()
    assert no_fund.sum() > 100
    assert numeric[no_fund].drop(columns=["market_cap_pit"]).isna().all().all()


def row_close(frame: pd.DataFrame, symbol: str) -> float:
    return float(frame.loc[frame["symbol"] == symbol, "close"].iloc[0])


def _synthetic(rows: list[tuple]) -> pd.DataFrame:
    cols = ["symbol", "period_end", "available_date", "revenue", "net_income", "total_assets",
            "equity", "free_cash_flow", "shares_diluted"]
    df = pd.DataFrame(rows, columns=cols)
    for c in ("period_end", "available_date"):
        df[c] = pd.to_datetime(df[c])
    return df


def test_ttm_needs_four_consecutive_public_quarters_and_staleness():
    q = _synthetic([
        ("X", "2023-03-31", "2023-05-01", 10, 1, 100, 50, 2, 1e6),
        # 2023-06-30 missing
        ("X", "2023-09-30", "2023-11-01", 10, 1, 100, 50, 2, 1e6),
        ("X", "2023-12-31", "2024-02-01", 12, 3, 100, 50, 2, 1e6),
        ("Y", "2023-03-31", "2023-05-01", 10, 1, 100, 50, 2, 1e6),
        ("Y", "2023-06-30", "2023-08-01", 10, 1, 100, 50, 2, 1e6),
        ("Y", "2023-09-30", "2023-11-01", 10, 1, 100, 50, np.nan, 1e6),
        ("Y", "2023-12-31", "2024-02-01", 12, 3, 100, -5, 2, 1e6),
    ])
    st = pit_state(q, dt.date(2024, 3, 1))
    assert np.isnan(st.loc["X", "net_income_ttm"]) and np.isnan(st.loc["X", "revenue_ttm"])
    assert st.loc["Y", "net_income_ttm"] == 6 and st.loc["Y", "revenue_ttm"] == 42
    assert np.isnan(st.loc["Y", "free_cash_flow_ttm"])  # one quarter's FCF is unknown
    frame = pd.DataFrame({"symbol": ["X", "Y"], "close": [10.0, 10.0], "sector": ["A", "A"]})
    f = fundamental_factors(frame, st)
    assert np.isnan(f.loc[0, "earnings_yield"]) and f.loc[0, "book_to_price"] == 50 / 1e7
    assert np.isnan(f.loc[1, "book_to_price"]) and np.isnan(f.loc[1, "roe"])  # equity < 0
    assert f.loc[1, "roa"] == 6 / 100
    # the latest public quarter must be recent: 15 months after it, nothing is known
    late = dt.date(2023, 12, 31) + dt.timedelta(days=MAX_QUARTER_AGE_DAYS + 1)
    assert pit_state(q, late).empty
    ev = pit_state_events(q)
    got = pit_state_asof(pd.DataFrame({"symbol": ["Y", "Y"], "date": [
        pd.Timestamp("2024-03-01"), pd.Timestamp(late)]}), ev)
    assert got["net_income_ttm"].iloc[0] == 6 and np.isnan(got["net_income_ttm"].iloc[1])
    with pytest.raises(ValueError, match="duplicate quarter"):
        pit_state(pd.concat([q, q.iloc[:1]]), dt.date(2024, 3, 1))


def test_sector_neutral_rank_formula():
    x = np.array([1.0, 2.0, 3.0, 4.0, 10.0, np.nan, 5.0])
    sector = np.array(["A", "A", "A", "A", "B", "B", None], dtype=object)
    r = sector_neutral_rank(x, sector)
    # A: ranks 1..4 of 4 → 100 (r − 0.5) / 4; B has one finite value → 50; no sector → its
    # own group of one → 50; NaN stays NaN
    np.testing.assert_allclose(r[:4], [12.5, 37.5, 62.5, 87.5])
    assert r[4] == 50.0 and np.isnan(r[5]) and r[6] == 50.0
    low = sector_neutral_rank(x, sector, direction=-1)
    np.testing.assert_allclose(low[:4], [87.5, 62.5, 37.5, 12.5])
    masked = sector_neutral_rank(x, sector, mask=np.array([1, 1, 0, 0, 1, 1, 1], bool))
    np.testing.assert_allclose(masked[:2], [25.0, 75.0])
    assert np.isnan(masked[2:4]).all()


def test_market_cap_pit_falls_back_and_flags():
    mc = market_cap_pit(np.array([10.0, 10.0, 10.0, np.nan]),
                        np.array([5.0, np.nan, np.nan, 5.0]),
                        np.array([7.0, 7.0, np.nan, 7.0]))
    np.testing.assert_array_equal(mc["market_cap_pit"].to_numpy()[:2], [50.0, 70.0])
    assert np.isnan(mc["market_cap_pit"].to_numpy()[2:]).all()
    assert mc["market_cap_source"].tolist() == ["fundamentals", "reference", None, None]


def test_validation_reasons():
    raw = pd.DataFrame({
        "symbol": ["A", "A", "B", "B", "C", "", "D", "E", "E", "F"],
        "period_end": ["2024-03-31", "2024-03-31", "2024-03-31", "2024-03-31", "2024-03-31",
                       "2024-03-31", "2024-03-31", "2025-12-31", "2024-06-30", "nope"],
        "available_date": ["2024-05-01", "2024-05-01", "2024-05-01", "2024-05-02",
                           "2024-03-01", "2024-05-01", "2025-06-01", "2026-02-01",
                           "2024-08-01", "2024-05-01"],
        "revenue": [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, "x", 1.0],
        "net_income": [1.0] * 10, "total_assets": [1.0] * 10, "equity": [-1.0] * 10,
        "free_cash_flow": [None] * 10, "shares_diluted": [1e6] * 10,
    })
    good, rej = validate_fundamentals(raw, now=pd.Timestamp("2026-01-01", tz="UTC"))
    assert good["symbol"].tolist() == ["A"]
    assert good["equity"].tolist() == [-1.0] and np.isnan(good["free_cash_flow"].iloc[0])
    assert rej["reason"].tolist() == [
        "duplicate (symbol, period_end)",
        "conflicting duplicate (symbol, period_end)",
        "conflicting duplicate (symbol, period_end)",
        "public date before period end", "missing value",
        "public date > 365 days after period end (availability unknown)",
        "public date after today (New York)", "non-numeric value", "unparseable date"]


@pytest.mark.parametrize("timescale", [False, True])
def test_migrations_17_18_sql(timescale):
    from technic.store.migrations import FUNDAMENTAL_RESULT_COLUMNS, MIGRATIONS

    m17, m18 = (next(m for m in MIGRATIONS if m.version == v) for v in (17, 18))
    sql17 = "\n".join(m17.render("technic", timescale))  # type: ignore[operator]
    assert 'CREATE TABLE IF NOT EXISTS "technic".fundamentals' in sql17
    assert "PRIMARY KEY (symbol, period_end)" in sql17 and "available_date date NOT NULL" in sql17
    sql18 = m18.render("technic", timescale)  # type: ignore[operator]
    for c in (*FUNDAMENTAL_RESULT_COLUMNS, "market_cap_source", "fund_period_end"):
        assert any(f"ADD COLUMN IF NOT EXISTS {c} " in s for s in sql18), c
    # the views expand r.* at creation: recreated after the columns are added
    last_add = max(i for i, s in enumerate(sql18) if "ADD COLUMN" in s)
    views = [i for i, s in enumerate(sql18) if s.startswith("CREATE VIEW")]
    assert len(views) == 2 and min(views) > last_add


def test_market_cap_panel_is_point_in_time(quarters, frames):
    panel = pd.concat(frames.values(), ignore_index=True)
    ref = pd.Series(2e9, index=pd.Index(panel["symbol"].unique(), name="symbol"))
    got = market_cap_panel(panel, quarters, ref)
    for d in DATES:
        rows = panel["date"] == d
        want = _factors(quarters, panel[rows], d)
        np.testing.assert_array_equal(got.loc[rows, "shares_diluted_pit"],
                                      want["shares_diluted_pit"])
    aapl = got[(panel["symbol"] == "AAPL").to_numpy()]
    assert (aapl["market_cap_source"] == "fundamentals").all()
    jpm = got[(panel["symbol"] == "JPM").to_numpy()]
    assert (jpm["market_cap_source"] == "reference").all()
    np.testing.assert_allclose(jpm["market_cap_pit"],
                               panel.loc[panel["symbol"] == "JPM", "close"] * 2e9)
    moved = market_cap_panel(panel, _altered_after(quarters, DATES[0]), ref)
    first = (panel["date"] == DATES[0]).to_numpy()
    pd.testing.assert_frame_equal(moved[first], got[first])
