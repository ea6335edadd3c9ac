"""Point-in-time fundamental factors and size: frames in, frames out, no database.

Input: quarterly fundamentals rows (the ``fundamentals`` table, migration 17, or
:func:`technic.validation.validate_fundamentals` output): ``symbol``, ``period_end`` (fiscal
quarter end, a month end), ``available_date`` (first public date: the filing date), the
single-quarter flows ``revenue``, ``net_income``, ``free_cash_flow`` and the quarter-end
stocks ``total_assets``, ``equity`` (USD), and ``shares_diluted`` (weighted-average diluted
shares of the quarter).

**Point in time.** For a date ``d`` only quarters with ``available_date <= d`` exist
(:func:`pit_state`). Of those, per symbol, the *latest quarter* is the one with the latest
``period_end`` (a late-published older quarter never replaces it); it must end no more than
:data:`MAX_QUARTER_AGE_DAYS` before ``d`` (an issuer that stopped filing gets NULL, not years-old
numbers). TTM ("trailing twelve months") sums a flow over the latest quarter and the three
before it (period ends 0, 3, 6 and 9 months earlier), all public by ``d`` and all non-null;
otherwise the TTM value is NULL. The year-ago quarter is the one ending 12 months before the
latest. Any missing input gives NULL (NaN), never zero: banks and insurers, absent from the
shared file, get NULL everywhere.

The value factors divide by the market capitalisation at ``d`` from the same source:
``close_d × shares_diluted`` of the latest quarter (:func:`market_cap_pit`). Formulas, sources
and the sector-neutral ranking: :data:`FUNDAMENTAL_FACTORS` and docs/scoring.md.

Public entry points (the scan, the evaluation and the lead call these):

* :func:`pit_state` — the per-symbol state as of one date;
* :func:`pit_state_events` + :func:`pit_state_asof` — the same for many dates at once;
* :func:`market_cap_pit` — point-in-time market cap with the fallback to reference shares;
* :func:`market_cap_panel` — the same for any number of ``(symbol, date, close)`` rows;
* :func:`fundamental_factors` — raw factors, sector-neutral ranks and composites of one date;
* :func:`fundamental_factor_panel` — :func:`fundamental_factors` for every date of a panel.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from technic.scoring.cross_section import rank

#: The latest public quarter must end at most this many days before the scan date (about 15
#: months: up to four missed filings); older → the symbol has no fundamentals that day.
MAX_QUARTER_AGE_DAYS = 456
#: Fewer diluted shares than this are a unit error in the source (98 rows of the shared file
#: hold values below 1,000): treated as unknown.
MIN_SHARES = 1_000.0
#: Months back from the latest quarter whose values a state needs (0 = latest; 3, 6, 9 for the
#: TTM sums; 12 = the year-ago quarter).
_LAGS = (0, 3, 6, 9, 12)
_FLOWS = ("revenue", "net_income", "free_cash_flow")
_STOCKS = ("total_assets", "equity", "shares_diluted")

#: Columns of a state frame (:func:`pit_state`), besides the key.
STATE_COLUMNS: tuple[str, ...] = (
    "period_end", "available_date", "revenue_q", "net_income_q", "revenue_q_1y",
    "net_income_q_1y", "revenue_ttm", "net_income_ttm", "free_cash_flow_ttm", "total_assets",
    "equity", "shares_diluted")

#: factor → (unit, formula, direction for "better" (+1 higher, -1 lower), source).
FUNDAMENTAL_FACTORS: dict[str, tuple[str, str, int, str]] = {
    "earnings_yield": ("1/year", "net_income_ttm / market_cap", 1,
                       "E/P (Basu 1977; Fama & French 1992)"),
    "sales_yield": ("1/year", "revenue_ttm / market_cap", 1,
                    "S/P (Barbee, Mukherji & Raines 1996)"),
    "fcf_yield": ("1/year", "free_cash_flow_ttm / market_cap", 1, "FCF/P (cash-flow yield, "
                  "Lakonishok, Shleifer & Vishny 1994 use CF/P)"),
    "book_to_price": ("ratio", "equity / market_cap, NULL where equity <= 0", 1,
                      "B/P (Fama & French 1992, 1993: negative book equity excluded)"),
    "roe": ("1/year", "net_income_ttm / equity, NULL where equity <= 0", 1,
            "return on equity (profitability; Fama & French 2015 RMW uses operating "
            "profit / book equity)"),
    "roa": ("1/year", "net_income_ttm / total_assets, NULL where total_assets <= 0", 1,
            "return on assets"),
    "accruals": ("1/year", "(net_income_ttm - free_cash_flow_ttm) / total_assets, NULL where "
                 "total_assets <= 0", -1,
                 "Sloan (1996) accruals, cash-flow form (Hribar & Collins 2002) with FCF in "
                 "place of operating cash flow (so capex counts as accrual, as in Richardson "
                 "et al. 2005 total accruals); lower is better"),
    "fcf_margin": ("fraction", "free_cash_flow_ttm / revenue_ttm, NULL where revenue_ttm <= 0",
                   1, "free-cash-flow margin"),
    "revenue_growth_yoy": ("fraction", "revenue_q / revenue_q_1y - 1, NULL where "
                           "revenue_q_1y <= 0", 1,
                           "same-quarter year-over-year growth (seasonality cancels)"),
    "earnings_growth_yoy": ("fraction", "(net_income_q - net_income_q_1y) / "
                            "|net_income_q_1y|, NULL where net_income_q_1y = 0", 1,
                            "same-quarter year-over-year change of net income over the "
                            "absolute base (sign-correct when the base is a loss)"),
}

#: Composite → its factors (each enters through its sector-neutral rank, oriented so that
#: higher is better).
COMPOSITES: dict[str, tuple[str, ...]] = {
    "value_score": ("earnings_yield", "sales_yield", "fcf_yield", "book_to_price"),
    "quality_score": ("roe", "roa", "accruals", "fcf_margin"),
    "growth_score": ("revenue_growth_yoy", "earnings_growth_yoy"),
}

#: Columns of :func:`fundamental_factors`, in order (``market_cap_source`` is text, the
#: dates ``datetime64``, the rest float64).
FACTOR_COLUMNS: tuple[str, ...] = (
    *FUNDAMENTAL_FACTORS, *(f"{f}_sn" for f in FUNDAMENTAL_FACTORS), *COMPOSITES,
    "shares_diluted_pit", "market_cap_pit", "market_cap_source", "fund_period_end",
    "fund_available_date")

#: Label of rows without a sector in the sector-neutral ranking (they form one group).
NO_SECTOR = "(no sector)"


def _prepared(quarters: pd.DataFrame) -> pd.DataFrame:
    """Quarters with datetime64 dates, float items and ``m`` = year·12 + month of the period
    end (so lags are differences of ``m``).

    Raises:
        ValueError: two rows of one symbol end in the same month (validate first:
            :func:`technic.validation.validate_fundamentals` rejects duplicate keys).
    """
    q = quarters[["symbol", "period_end", "available_date", *_FLOWS, *_STOCKS]].copy()
    q["period_end"] = pd.to_datetime(q["period_end"])
    q["available_date"] = pd.to_datetime(q["available_date"])
    for c in (*_FLOWS, *_STOCKS):
        q[c] = pd.to_numeric(q[c], errors="coerce").astype("float64")
    q.loc[~(q["shares_diluted"] >= MIN_SHARES), "shares_diluted"] = np.nan
    q["m"] = q["period_end"].dt.year.to_numpy() * 12 + q["period_end"].dt.month.to_numpy()
    dup = q.duplicated(["symbol", "m"])
    if dup.any():
        first = q[dup].iloc[0]
        raise ValueError(f"{int(dup.sum())} duplicate quarter(s), e.g. {first['symbol']} "
                         f"{first['period_end']:%Y-%m}: one row per (symbol, fiscal quarter)")
    return q


def _state(public: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """State of each key (``keys`` columns) from its public quarters (``_prepared`` rows,
    already restricted to what was public). Returns one row per key, columns ``keys`` +
    :data:`STATE_COLUMNS`."""
    if public.empty:
        return pd.DataFrame(columns=[*keys, *STATE_COLUMNS])
    latest_m = public.groupby(keys, sort=False)["m"].transform("max")
    lag = latest_m.to_numpy() - public["m"].to_numpy()
    sub = public[np.isin(lag, _LAGS)].assign(lag=lag[np.isin(lag, _LAGS)])
    # (key, lag) is unique: (symbol, period_end) is the table's key
    wide = sub.set_index([*keys, "lag"])[[*_FLOWS, *_STOCKS, "period_end",
                                          "available_date"]].unstack("lag")

    def col(item: str, k: int) -> np.ndarray:
        if (item, k) not in wide.columns:
            return np.full(len(wide), np.nan)
        return wide[(item, k)].to_numpy(dtype=np.float64, na_value=np.nan)

    def ttm(item: str) -> np.ndarray:
        parts = np.vstack([col(item, k) for k in (0, 3, 6, 9)])
        return np.where(np.isfinite(parts).all(axis=0), parts.sum(axis=0), np.nan)

    out = pd.DataFrame({
        "period_end": pd.to_datetime(wide[("period_end", 0)].to_numpy()),
        "available_date": pd.to_datetime(wide[("available_date", 0)].to_numpy()),
        "revenue_q": col("revenue", 0), "net_income_q": col("net_income", 0),
        "revenue_q_1y": col("revenue", 12), "net_income_q_1y": col("net_income", 12),
        "revenue_ttm": ttm("revenue"), "net_income_ttm": ttm("net_income"),
        "free_cash_flow_ttm": ttm("free_cash_flow"),
        "total_assets": col("total_assets", 0), "equity": col("equity", 0),
        "shares_diluted": col("shares_diluted", 0),
    }, index=wide.index)
    return out.reset_index()


def pit_state(quarters: pd.DataFrame, as_of) -> pd.DataFrame:
    """Each symbol's fundamentals as known on ``as_of``.

    Uses only quarters with ``available_date <= as_of``; the latest of them (by period end)
    must end within :data:`MAX_QUARTER_AGE_DAYS` of ``as_of``, else the symbol is left out.

    Args:
        quarters: quarterly rows (module docstring); any number of symbols and dates.
        as_of: the date (anything ``pandas.Timestamp`` takes).

    Returns:
        One row per symbol, indexed by ``symbol``, columns :data:`STATE_COLUMNS`:
        ``period_end``/``available_date`` of the latest public quarter, its flows
        (``revenue_q``, ``net_income_q``) and those of the quarter 12 months earlier
        (``*_q_1y``), TTM sums (NaN unless the four quarters are all public and non-null), and
        its ``total_assets``, ``equity`` (USD) and ``shares_diluted`` (shares; NaN below
        :data:`MIN_SHARES`).

    Raises:
        ValueError: duplicate (symbol, quarter) rows.
    """
    d = pd.Timestamp(as_of)
    q = _prepared(quarters)
    st = _state(q[q["available_date"] <= d], ["symbol"])
    st = st[st["period_end"] >= d - pd.Timedelta(days=MAX_QUARTER_AGE_DAYS)]
    return st.set_index("symbol")[list(STATE_COLUMNS)]


def pit_state_events(quarters: pd.DataFrame) -> pd.DataFrame:
    """The state of every symbol on each date its set of public quarters changed.

    Row ``(symbol, effective_date)`` holds :func:`pit_state` as of ``effective_date`` (an
    ``available_date`` of the symbol), valid until the symbol's next ``effective_date``; the
    staleness limit is applied by :func:`pit_state_asof`, which depends on the query date.

    Returns:
        Columns ``symbol, effective_date`` + :data:`STATE_COLUMNS`, sorted by
        ``effective_date``.
    """
    q = _prepared(quarters)
    events = q[["symbol", "available_date"]].drop_duplicates().rename(
        columns={"available_date": "effective_date"})
    pairs = events.merge(q, on="symbol")
    pairs = pairs[pairs["available_date"] <= pairs["effective_date"]]
    st = _state(pairs, ["symbol", "effective_date"])
    return st.sort_values(["effective_date", "symbol"], kind="mergesort").reset_index(drop=True)


def pit_state_asof(rows: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """Attach to each ``(symbol, date)`` row the state known on its date.

    Args:
        rows: columns ``symbol``, ``date`` (any other columns are kept), any number of dates.
        events: :func:`pit_state_events`.

    Returns:
        ``rows`` (same order and index) with :data:`STATE_COLUMNS` appended; NaN/NaT where
        the symbol had no public quarter by that date or its latest one is older than
        :data:`MAX_QUARTER_AGE_DAYS`. Equal to :func:`pit_state` date by date.
    """
    left = rows[["symbol", "date"]].copy()
    left["date"] = pd.to_datetime(left["date"]).astype("datetime64[ns]")
    left["_i"] = np.arange(len(left))
    left = left.sort_values("date", kind="mergesort")
    ev = events.copy()
    ev["effective_date"] = pd.to_datetime(ev["effective_date"]).astype("datetime64[ns]")
    merged = pd.merge_asof(left, ev, left_on="date", right_on="effective_date", by="symbol",
                           direction="backward").sort_values("_i")
    stale = ~(merged["period_end"] >= merged["date"] - pd.Timedelta(days=MAX_QUARTER_AGE_DAYS))
    merged.loc[stale.to_numpy(), list(STATE_COLUMNS)] = np.nan
    out = rows.copy()
    for c in STATE_COLUMNS:
        v = merged[c].to_numpy()
        out[c] = pd.to_datetime(v) if c in ("period_end", "available_date") else \
            v.astype(np.float64)
    return out


def _div(a: np.ndarray, b: np.ndarray, ok: np.ndarray | None = None) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        r = a / b
    if ok is not None:
        r = np.where(ok, r, np.nan)
    return np.where(np.isfinite(r), r, np.nan)


def market_cap_pit(close: np.ndarray, shares_pit: np.ndarray,
                   reference_shares: np.ndarray | None = None) -> pd.DataFrame:
    """Market capitalisation on the scan date, point in time where fundamentals allow.

    ``market_cap = close_d × shares``, with ``shares`` the diluted shares of the latest
    quarter public on or before ``d`` (``shares_pit``, from :func:`pit_state`); where that is
    unknown, the current reference shares (``symbols.market_cap / reference close``, a
    2025 snapshot: look-ahead in the share count) flagged ``reference``.

    Both prices and shares must be on the same split basis: the shared bars are
    split-adjusted (as of 2025-07-09) and the vendor's share counts are restated for splits
    (e.g. NVDA's 2022 quarters show ~25 billion shares, after its 2024 10-for-1 split), so
    their product is the market cap of the time. Dividend back-adjustment lowers past
    closes by the dividends paid since (a few percent).

    Args:
        close: ``(N,)`` USD per share on ``d``.
        shares_pit: ``(N,)`` shares (NaN = unknown).
        reference_shares: ``(N,)`` shares of the reference snapshot, or None.

    Returns:
        Frame of N rows: ``market_cap_pit`` (USD, NaN where unknown or not positive) and
        ``market_cap_source`` (``"fundamentals"``, ``"reference"`` or None).
    """
    c = np.asarray(close, dtype=np.float64)
    s = np.asarray(shares_pit, dtype=np.float64)
    cap = c * s
    ok_f = np.isfinite(cap) & (cap > 0)
    out = np.where(ok_f, cap, np.nan)
    src = np.full(c.shape, None, dtype=object)
    src[ok_f] = "fundamentals"
    if reference_shares is not None:
        ref = c * np.asarray(reference_shares, dtype=np.float64)
        use = ~ok_f & np.isfinite(ref) & (ref > 0)
        out = np.where(use, ref, out)
        src[use] = "reference"
    return pd.DataFrame({"market_cap_pit": out, "market_cap_source": src})


def market_cap_panel(rows: pd.DataFrame, quarters: pd.DataFrame | None = None,
                     reference_shares: pd.Series | None = None,
                     events: pd.DataFrame | None = None) -> pd.DataFrame:
    """Point-in-time market cap of any number of ``(symbol, date)`` rows at once.

    ``close × shares_diluted`` of the latest quarter public on or before each row's date
    (:func:`pit_state_asof`), falling back to ``close × reference_shares`` (flagged
    ``reference``): :func:`market_cap_pit` row by row.

    Args:
        rows: ``symbol``, ``date``, ``close`` (USD per share on that date).
        quarters: quarterly rows (every quarter; each date sees only those public by then),
            or None when ``events`` is given.
        reference_shares: fallback shares indexed by symbol (e.g. ``symbols.market_cap /
            ref_close``), or None.
        events: :func:`pit_state_events` of ``quarters``, computed once and reused.

    Returns:
        Frame indexed like ``rows``: ``market_cap_pit`` (USD, NaN where unknown),
        ``market_cap_source`` (``fundamentals``, ``reference`` or None), ``shares_diluted_pit``
        (shares) and ``fund_period_end`` (the quarter used).

    Raises:
        ValueError: neither ``quarters`` nor ``events`` given.
    """
    if events is None:
        if quarters is None:
            raise ValueError("market_cap_panel needs quarters or events")
        events = pit_state_events(quarters)
    st = pit_state_asof(rows[["symbol", "date"]], events)
    shares = st["shares_diluted"].to_numpy(np.float64)
    ref = (None if reference_shares is None else
           reference_shares.reindex(rows["symbol"].to_numpy()).to_numpy(np.float64))
    mc = market_cap_pit(rows["close"].to_numpy(np.float64, na_value=np.nan), shares, ref)
    mc.index = rows.index
    mc["shares_diluted_pit"] = shares
    mc["fund_period_end"] = st["period_end"].to_numpy()
    return mc


def sector_neutral_rank(x: np.ndarray, sector: np.ndarray, mask: np.ndarray | None = None,
                        direction: int = 1) -> np.ndarray:
    """Sector-neutral percentile rank, 0–100 (100 = best in its sector).

    ``100 · (r − 0.5) / n``: ``r`` the average rank (ties share it) of ``direction · x``
    among the finite, masked-in values of the row's sector, ``n`` their count. The centred
    form puts a sector's median at 50 and a sector of one at 50 (no information), so a
    small sector cannot hand out a 100. Rows without a sector form one group
    (:data:`NO_SECTOR`).

    Args:
        x: ``(N,)`` factor values. sector: ``(N,)`` labels (None/NaN = no sector).
        mask: ``(N,) bool`` universe (None = all rows). direction: +1 higher is better,
            −1 lower is better.

    Returns:
        ``(N,) float64``; NaN outside the mask and where ``x`` is not finite.
    """
    v = direction * np.asarray(x, dtype=np.float64)
    g = pd.Series(np.asarray(sector, dtype=object)).fillna(NO_SECTOR).to_numpy(dtype=object)
    m = np.ones(v.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    sel = m & np.isfinite(v)
    r = rank(v, sel, g)
    n = pd.Series(np.where(sel, 1.0, 0.0)).groupby(g).transform("sum").to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        out = 100.0 * (r - 0.5) / n
    return np.where(sel, out, np.nan)


def fundamental_factors(frame: pd.DataFrame, state: pd.DataFrame,
                        mask: np.ndarray | None = None,
                        reference_shares: np.ndarray | None = None) -> pd.DataFrame:
    """Point-in-time fundamental factors of one date's cross-section.

    Args:
        frame: N rows of one date with ``symbol``, ``close`` (USD per share on that date)
            and ``sector`` (optional; missing → :data:`NO_SECTOR`).
        state: :func:`pit_state` for that date (indexed by ``symbol``), rows with a
            ``symbol`` column (e.g. :func:`pit_state_asof` of this date's rows), or
            :data:`STATE_COLUMNS` aligned with ``frame`` row by row (same length, no key).
        mask: ``(N,) bool`` universe the ranks are taken in (None = all rows).
        reference_shares: ``(N,)`` fallback shares for ``market_cap_pit`` (see
            :func:`market_cap_pit`), or None.

    Returns:
        Frame indexed like ``frame`` with :data:`FACTOR_COLUMNS`: the raw factors of
        :data:`FUNDAMENTAL_FACTORS` (units there; NaN where an input is missing — never 0),
        their sector-neutral ranks ``<factor>_sn`` (:func:`sector_neutral_rank`, 0–100,
        higher = better, accruals inverted), the composites of :data:`COMPOSITES` (0–100:
        mean of the defined ``_sn`` of their factors; NaN when none is defined),
        ``shares_diluted_pit``, ``market_cap_pit`` / ``market_cap_source``
        (:func:`market_cap_pit`) and the latest quarter used (``fund_period_end``,
        ``fund_available_date``). The value factors use the fundamentals' market cap only
        (never the reference fallback).

    Raises:
        ValueError: ``state`` has no symbol key and not one row per ``frame`` row.
    """
    n = len(frame)
    if "symbol" in state.columns:  # e.g. pit_state_asof rows of this one date
        state = state.drop_duplicates("symbol").set_index("symbol")
    if state.index.name == "symbol":
        st = state.reindex(frame["symbol"].to_numpy()).reset_index(drop=True)
    elif len(state) == n:
        st = state.reset_index(drop=True)
    else:
        raise ValueError(f"state has {len(state)} rows for {n} frame rows and no symbol key")

    def s(c: str) -> np.ndarray:
        return st[c].to_numpy(dtype=np.float64, na_value=np.nan)

    close = frame["close"].to_numpy(dtype=np.float64, na_value=np.nan)
    shares = s("shares_diluted")
    cap_f = _div(close * shares, np.ones(n), (shares > 0) & (close > 0))
    equity, assets = s("equity"), s("total_assets")
    ni_ttm, rev_ttm, fcf_ttm = s("net_income_ttm"), s("revenue_ttm"), s("free_cash_flow_ttm")
    ni_1y, rev_1y = s("net_income_q_1y"), s("revenue_q_1y")
    raw = {
        "earnings_yield": _div(ni_ttm, cap_f),
        "sales_yield": _div(rev_ttm, cap_f),
        "fcf_yield": _div(fcf_ttm, cap_f),
        "book_to_price": _div(equity, cap_f, equity > 0),
        "roe": _div(ni_ttm, equity, equity > 0),
        "roa": _div(ni_ttm, assets, assets > 0),
        "accruals": _div(ni_ttm - fcf_ttm, assets, assets > 0),
        "fcf_margin": _div(fcf_ttm, rev_ttm, rev_ttm > 0),
        "revenue_growth_yoy": _div(s("revenue_q"), rev_1y, rev_1y > 0) - 1.0,
        "earnings_growth_yoy": _div(s("net_income_q") - ni_1y, np.abs(ni_1y), ni_1y != 0),
    }
    sector = (frame["sector"].to_numpy(dtype=object) if "sector" in frame.columns
              else np.full(n, None, dtype=object))
    sn = {f"{f}_sn": sector_neutral_rank(raw[f], sector, mask, direction)
          for f, (_, _, direction, _) in FUNDAMENTAL_FACTORS.items()}
    out: dict[str, np.ndarray] = {**raw, **sn}
    for comp, parts in COMPOSITES.items():
        stack = np.vstack([sn[f"{p}_sn"] for p in parts])
        cnt = np.isfinite(stack).sum(axis=0)
        total = np.nansum(stack, axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[comp] = np.where(cnt > 0, total / np.maximum(cnt, 1), np.nan)
    mc = market_cap_pit(close, shares, reference_shares)
    out["shares_diluted_pit"] = shares
    out["market_cap_pit"] = mc["market_cap_pit"].to_numpy()
    out["market_cap_source"] = mc["market_cap_source"].to_numpy()
    out["fund_period_end"] = pd.to_datetime(st["period_end"]).to_numpy()
    out["fund_available_date"] = pd.to_datetime(st["available_date"]).to_numpy()
    if mask is not None:
        m = np.asarray(mask, dtype=bool)
        for f in FUNDAMENTAL_FACTORS:
            out[f] = np.where(m, out[f], np.nan)
    res = pd.DataFrame(out, index=frame.index)
    assert tuple(res.columns) == FACTOR_COLUMNS
    return res


def fundamental_factor_panel(panel: pd.DataFrame, quarters: pd.DataFrame,
                             mask_column: str | None = None,
                             reference_shares: pd.Series | None = None) -> pd.DataFrame:
    """:func:`fundamental_factors` for every date of a panel, point in time per date.

    Args:
        panel: rows ``symbol, date, close`` (+ ``sector``; + ``mask_column``), many dates.
        quarters: quarterly rows (every quarter; each date sees only those public by then).
        mask_column: a bool column of ``panel`` giving each date's universe (None = all).
        reference_shares: fallback shares by symbol (index ``symbol``), or None.

    Returns:
        Frame indexed like ``panel`` with :data:`FACTOR_COLUMNS`; ranks and composites are
        taken within each date's cross-section.
    """
    state = pit_state_asof(panel[["symbol", "date"]], pit_state_events(quarters))
    parts = []
    dates = pd.to_datetime(panel["date"]).to_numpy()
    for d in np.unique(dates):
        idx = np.flatnonzero(dates == d)
        rows = panel.iloc[idx]
        ref = (None if reference_shares is None else
               reference_shares.reindex(rows["symbol"].to_numpy()).to_numpy(np.float64))
        parts.append(fundamental_factors(
            rows, state.iloc[idx][list(STATE_COLUMNS)].reset_index(drop=True),
            None if mask_column is None else rows[mask_column].to_numpy(bool), ref))
    if not parts:
        return pd.DataFrame(columns=list(FACTOR_COLUMNS), index=panel.index)
    return pd.concat(parts).reindex(panel.index)
