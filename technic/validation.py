"""Row-level validation of OHLCV bars before they reach the store.

Each row gets the first failing check as its reject reason (checked in this order):

========================  =============================================================
reason                    rule
========================  =============================================================
missing value             symbol empty, or any of date/open/high/low/close/volume null
unparseable date          date present but not an ISO 8601 date
non-numeric value         a price or volume present but not a finite number
price <= 0                any of open/high/low/close ≤ 0
high < low                high below low
open outside [low, high]  open < low or open > high
close outside [low, high] close < low or close > high
negative volume           volume < 0
duplicate (symbol, date)  an exact repeat of an earlier row (the first copy is kept)
conflicting duplicate     rows with the same (symbol, date) but different values: all are
                          rejected, since no rule can tell which one is right
========================  =============================================================
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

PRICE_COLUMNS = ("open", "high", "low", "close")
NUMERIC_COLUMNS = (*PRICE_COLUMNS, "volume")


@dataclass
class ValidationResult:
    """Outcome of :func:`validate_bars`.

    Attributes:
        good: valid rows: ``symbol`` (str), ``date`` (``datetime64[D]``), OHLC (float64, quote
            currency), ``volume`` (float64, shares); in input order.
        rejects: one row per rejected input row: ``row`` (the input row as JSON text) and
            ``reason`` (see the module table).
    """

    good: pd.DataFrame
    rejects: pd.DataFrame

    def counts_by_reason(self) -> dict[str, int]:
        """Rejected rows per reason."""
        return {str(k): int(v) for k, v in self.rejects["reason"].value_counts().items()}


def _strip_symbols(raw: pd.Series) -> pd.Series:
    """Symbols with surrounding whitespace removed (Arrow kernels: fast on millions of rows)."""
    try:
        arr = pa.array(raw.to_numpy(dtype=object), type=pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # non-text symbols (e.g. numbers)
        return raw.astype("string").str.strip().astype(object).where(raw.notna(), None)
    trimmed = pc.utf8_trim_whitespace(arr)
    if pc.all(pc.equal(arr, trimmed)).as_py() in (True, None):
        return raw.astype(object).where(raw.notna(), None)
    return pd.Series(trimmed.to_numpy(zero_copy_only=False), index=raw.index, dtype=object)


def _parse_dates(raw: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(raw):
        s = raw
        if getattr(s.dt, "tz", None) is not None:
            s = s.dt.tz_localize(None)
        return s.dt.normalize()
    as_str = raw.astype("string").str.strip()
    return pd.to_datetime(as_str, format="ISO8601", errors="coerce").dt.normalize()


def _parse_timestamps(raw: pd.Series) -> pd.Series:
    """Bar-start timestamps as naive UTC (tz-aware input is converted, naive input is UTC)."""
    if pd.api.types.is_datetime64_any_dtype(raw):
        s = raw
    else:
        s = pd.to_datetime(raw.astype("string").str.strip(), format="ISO8601", errors="coerce",
                           utc=True)
    if getattr(s.dt, "tz", None) is not None:
        s = s.dt.tz_convert("UTC").dt.tz_localize(None)
    return s


def time_column(df: pd.DataFrame) -> str:
    """``"ts"`` for intraday bars (a ``ts`` column and no ``date``), else ``"date"``."""
    return "ts" if "ts" in df.columns and "date" not in df.columns else "date"


def validate_bars(df: pd.DataFrame) -> ValidationResult:
    """Split raw bars into valid rows and rejects with reasons.

    Daily bars carry ``date``; intraday bars carry ``ts`` (bar start, UTC; tz-aware values
    are converted, naive ones taken as UTC) and are keyed by (symbol, ts) — the reasons then
    say ``unparseable timestamp`` and ``duplicate (symbol, ts)``.

    Args:
        df: columns ``symbol, date, open, high, low, close, volume`` as read by
            :func:`technic.providers.files.read_bars` (text or typed).

    Returns:
        :class:`ValidationResult`. Never raises for bad rows; every input row ends up in
        exactly one of ``good`` and ``rejects``.
    """
    n = len(df)
    reason = np.full(n, None, dtype=object)

    def mark(mask: np.ndarray, why: str) -> None:
        sel = mask & (reason == None)  # noqa: E711 - elementwise on an object array
        reason[sel] = why

    tcol = time_column(df)
    symbol = _strip_symbols(df["symbol"])
    dates = _parse_timestamps(df[tcol]) if tcol == "ts" else _parse_dates(df[tcol])
    nums = {c: pd.to_numeric(df[c], errors="coerce").astype("float64").to_numpy()
            for c in NUMERIC_COLUMNS}

    missing = (symbol.isna() | (symbol == "")).to_numpy(dtype=bool) | df[tcol].isna().to_numpy()
    for c in NUMERIC_COLUMNS:
        col = df[c]
        missing |= col.isna().to_numpy()
        if col.dtype == object or pd.api.types.is_string_dtype(col):
            missing |= (col.astype("string").str.strip() == "").fillna(False).to_numpy(dtype=bool)
    mark(missing, "missing value")
    mark(dates.isna().to_numpy(), "unparseable date" if tcol == "date" else "unparseable timestamp")
    nonnum = np.zeros(n, dtype=bool)
    for c in NUMERIC_COLUMNS:
        nonnum |= ~np.isfinite(nums[c])
    mark(nonnum, "non-numeric value")
    o, h, lo, c, v = (nums[k] for k in NUMERIC_COLUMNS)
    with np.errstate(invalid="ignore"):
        mark((o <= 0) | (h <= 0) | (lo <= 0) | (c <= 0), "price <= 0")
        mark(h < lo, "high < low")
        mark((o < lo) | (o > h), "open outside [low, high]")
        mark((c < lo) | (c > h), "close outside [low, high]")
        mark(v < 0, "negative volume")

    clean = pd.DataFrame({"symbol": symbol.to_numpy(dtype=object),
                          tcol: dates.to_numpy().astype("datetime64[D]" if tcol == "date"
                                                        else "datetime64[us]"),
                          **{k: nums[k] for k in NUMERIC_COLUMNS}})
    ok = reason == None  # noqa: E711
    keys = ["symbol", tcol]
    cand = clean[ok]
    dup_any = cand.duplicated(keys, keep=False).to_numpy()
    if dup_any.any():
        d = cand[dup_any]
        distinct = d.drop_duplicates()
        conflict_keys = distinct[distinct.duplicated(keys, keep=False)][keys].drop_duplicates()
        is_conflict = d.merge(conflict_keys.assign(_c=1), on=keys, how="left")["_c"] \
            .notna().to_numpy()
        repeat = d.duplicated(keep="first").to_numpy()
        idx = np.flatnonzero(ok)[dup_any]
        reason[idx[is_conflict]] = f"conflicting duplicate (symbol, {tcol})"
        reason[idx[~is_conflict & repeat]] = f"duplicate (symbol, {tcol})"
        ok = reason == None  # noqa: E711

    good = clean if ok.all() else clean[ok].reset_index(drop=True)
    bad_idx = np.flatnonzero(~ok)
    rejects = pd.DataFrame({
        "row": [_row_json(df, i) for i in bad_idx],
        "reason": reason[bad_idx].astype(str),
    })
    return ValidationResult(good=good, rejects=rejects)


def _row_json(df: pd.DataFrame, i: int) -> str:
    rec: dict[str, object] = {}
    for k, val in df.iloc[i].items():
        if val is None or pd.isna(val):
            rec[str(k)] = None
        elif isinstance(val, pd.Timestamp | np.datetime64):
            rec[str(k)] = pd.Timestamp(val).isoformat()
        elif isinstance(val, float | np.floating) and not np.isfinite(val):
            rec[str(k)] = str(val)
        elif isinstance(val, np.generic):
            rec[str(k)] = val.item()
        else:
            rec[str(k)] = val
    return json.dumps(rec, default=str)
