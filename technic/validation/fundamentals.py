"""Validation of quarterly fundamentals rows before they reach ``fundamentals``:
:func:`validate_fundamentals` (its docstring has the reject reasons) and the stored columns
:data:`FUNDAMENTAL_COLUMNS`. A public date more than :data:`MAX_PUBLIC_LAG_DAYS` after the
quarter's end is rejected, since the quarter could not be used point in time."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from technic.calendar import today_new_york
from technic.validation._common import (
    MAX_SYMBOL_LENGTH,
    _mark_duplicate_rows,
    _now,
    _parse_dates,
    _row_json,
    _strip_symbols,
)

#: Columns of quarterly fundamentals rows as stored (``fundamentals``, migration 17): the key
#: ``symbol, period_end``, the public date, the fiscal labels (nullable), the line items.
FUNDAMENTAL_COLUMNS: tuple[str, ...] = (
    "symbol", "period_end", "available_date", "fiscal_year", "fiscal_period", "revenue",
    "net_income", "total_assets", "equity", "free_cash_flow", "shares_diluted")
#: Longest accepted delay from a quarter's end to its public date (days): a later "first
#: public date" is a vendor artefact (the shared file has dates years after the quarter), so
#: the quarter's availability is unknown and it must not be used point in time.
MAX_PUBLIC_LAG_DAYS = 365


def validate_fundamentals(df: pd.DataFrame, now: pd.Timestamp | dt.datetime | None = None
                          ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split quarterly fundamentals rows into valid rows and rejects with reasons.

    Checks, first failing wins:

    ============================================  ===========================================
    reason                                        rule
    ============================================  ===========================================
    missing value                                 symbol empty, or period_end/available_date
                                                  null
    unparseable date                              a date present but not an ISO 8601 date
    invalid symbol                                as for bars (control characters, > 32 chars)
    public date before period end                 ``available_date < period_end``
    public date > 365 days after period end       availability unknown (vendor artefact)
    public date after today                       ``available_date`` later than today (NY)
    non-numeric value                             a line item present but not a finite number
    duplicate (symbol, period_end)                exact repeat (the first copy is kept)
    conflicting duplicate (symbol, period_end)    same key, different values: all rejected
    ============================================  ===========================================

    Line items may be null (stored NULL: "unknown", never zero); negative values are kept
    (negative equity and revenue occur in real filings). ``fiscal_year``/``fiscal_period`` are
    optional labels (null when absent or unparseable).

    Args:
        df: columns of :data:`FUNDAMENTAL_COLUMNS` (``fiscal_*`` optional); dates as
            ``date``/``datetime64`` or ISO text; items numeric or text. Units: USD, shares.
        now: clock for the "after today" check (default: now).

    Returns:
        ``(good, rejects)``: good rows with :data:`FUNDAMENTAL_COLUMNS` (dates as
        ``datetime64[ns]`` midnights, items float64 with NaN = NULL, ``fiscal_year`` Int64,
        ``fiscal_period`` object), in input order; rejects with ``row`` (JSON text) and
        ``reason``.

    Raises:
        KeyError: a required column (symbol, period_end, available_date or an item) is
            missing.
    """
    n = len(df)
    reason = np.full(n, None, dtype=object)

    def mark(mask, why: str) -> None:
        sel = np.asarray(mask, dtype=bool) & (reason == None)  # noqa: E711
        reason[sel] = why

    items = FUNDAMENTAL_COLUMNS[5:]
    sym = _strip_symbols(df["symbol"]).astype("string")
    pe_raw, av_raw = df["period_end"], df["available_date"]
    pe, av = _parse_dates(pe_raw), _parse_dates(av_raw)
    mark((sym.isna() | (sym == "")).to_numpy(dtype=bool) | pe_raw.isna().to_numpy()
         | av_raw.isna().to_numpy(), "missing value")
    mark((pe.isna() | av.isna()).to_numpy(), "unparseable date")
    mark(((sym.str.len() > MAX_SYMBOL_LENGTH)
          | sym.str.contains("[\x00-\x1f\x7f\ufffd]", regex=True)).fillna(False)
         .to_numpy(dtype=bool), "invalid symbol")
    lag = (av - pe).dt.days.to_numpy(dtype="float64", na_value=np.nan)
    with np.errstate(invalid="ignore"):
        mark(lag < 0, "public date before period end")
        mark(lag > MAX_PUBLIC_LAG_DAYS,
             f"public date > {MAX_PUBLIC_LAG_DAYS} days after period end (availability unknown)")
    today = np.datetime64(today_new_york(_now(now)), "D")
    mark((av.to_numpy().astype("datetime64[D]") > today) & av.notna().to_numpy(),
         "public date after today (New York)")
    vals = {}
    nonnum = np.zeros(n, dtype=bool)
    for c in items:
        col = df[c]
        v = pd.to_numeric(col, errors="coerce").astype("float64").to_numpy()
        present = col.notna().to_numpy()
        if col.dtype == object or pd.api.types.is_string_dtype(col):
            present &= ~(col.astype("string").str.strip() == "").fillna(True).to_numpy(bool)
        nonnum |= present & ~np.isfinite(v)
        vals[c] = np.where(np.isfinite(v), v, np.nan)
    mark(nonnum, "non-numeric value")
    fy = (pd.to_numeric(df["fiscal_year"], errors="coerce").astype("Int64")
          if "fiscal_year" in df.columns else pd.Series(pd.NA, index=df.index, dtype="Int64"))
    fp = (df["fiscal_period"].astype("string").str.strip().astype(object)
          if "fiscal_period" in df.columns else pd.Series(None, index=df.index, dtype=object))
    clean = pd.DataFrame({"symbol": sym.to_numpy(dtype=object),
                          "period_end": pe.to_numpy(), "available_date": av.to_numpy(),
                          "fiscal_year": fy.to_numpy(), "fiscal_period": fp.to_numpy(),
                          **vals})
    clean["fiscal_period"] = clean["fiscal_period"].where(clean["fiscal_period"].notna(), None)
    ok = _mark_duplicate_rows(clean, reason, ["symbol", "period_end"])
    bad_idx = np.flatnonzero(~ok)
    rejects = pd.DataFrame({"row": [_row_json(df, int(i)) for i in bad_idx],
                            "reason": reason[bad_idx].astype(str)})
    good = clean[ok].reset_index(drop=True)
    return good[list(FUNDAMENTAL_COLUMNS)], rejects
