"""What the validators of :mod:`technic.validation` share (and :mod:`technic.options.chains`
uses for its chain rows): the symbol rules (length, forbidden characters) and whitespace
trimming, date and bar-start timestamp parsing, the NYSE calendar check of each row's time with
its reject reasons, the clock (``now``), duplicate-key marking on parsed frames, and rejected
rows as JSON text for ``ingest_rejects.row`` (NUL shown as U+2400, long strings cut)."""

from __future__ import annotations

import datetime as dt
import json
import math
import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from technic.calendar import (
    BEFORE_CALENDAR,
    EARLIEST_SESSION_DATE,
    FUTURE,
    HOLIDAY,
    WEEKEND,
    session_codes,
    today_new_york,
)

#: Longest symbol accepted (CQS tickers have ≤ 8 characters; Polygon's up to ~20).
MAX_SYMBOL_LENGTH = 32
#: Control characters, DEL and U+FFFD (an undecodable byte) have no place in a symbol
#: (RE2 syntax: used by Arrow and, translated, by pandas).
_BAD_SYMBOL_CHARS = r"[\x00-\x1f\x7f\x{fffd}]"
#: Strings of a rejected row longer than this are cut in ``ingest_rejects.row``.
MAX_REJECT_TEXT = 1000


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
    with warnings.catch_warnings():  # mixed offsets: object dtype now, an error in pandas 3
        warnings.simplefilter("ignore", FutureWarning)
        try:
            parsed = pd.to_datetime(as_str, format="ISO8601", errors="coerce")
        except (ValueError, TypeError):
            parsed = None
    if parsed is None or not pd.api.types.is_datetime64_any_dtype(parsed):
        # mixed UTC offsets: each value's own wall-clock date (where it was stamped)
        def one(x):
            v = pd.to_datetime(x, format="ISO8601", errors="coerce")
            return pd.NaT if v is pd.NaT else v.replace(tzinfo=None)
        parsed = pd.to_datetime(pd.Series([one(x) if x is not pd.NA else pd.NaT
                                           for x in as_str], index=raw.index,
                                          dtype=object), errors="coerce")
    return parsed.dt.normalize()


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


def _calendar_reasons(tint: np.ndarray, tcol: str, now: pd.Timestamp) -> np.ndarray:
    """Calendar check of each row's time: 0 = fine, else a code of
    :func:`technic.calendar.session_codes` (``ts``: of its New York date, or ``FUTURE`` when
    the bar start is after ``now``).

    Args:
        tint: ``(n,)`` int64, days since 1970 (``date``) or microseconds since 1970 UTC
            (``ts``).
    """
    today = today_new_york(now)
    # distinct times first (a hash: ~50 ms for millions of rows), rows only where one is bad
    uniq = pd.unique(tint)
    if tcol == "date":
        codes = session_codes(uniq.astype("datetime64[D]"), today)
    else:
        ny = pd.DatetimeIndex(uniq.astype("datetime64[us]")).tz_localize("UTC") \
            .tz_convert("America/New_York").tz_localize(None).normalize()
        codes = session_codes(ny.to_numpy().astype("datetime64[D]"), today)
        codes[uniq > int(now.tz_convert("UTC").value // 1000)] = FUTURE
    out = np.zeros(len(tint), dtype=np.int8)
    bad = codes != 0
    if bad.any():
        rows = np.flatnonzero(np.isin(tint, uniq[bad]))
        out[rows] = codes[bad][pd.Index(uniq[bad]).get_indexer(tint[rows])]
    return out


def _date_reasons(tcol: str) -> dict[int, str]:
    """Reject reason of each code of :func:`technic.calendar.session_codes`."""
    return {FUTURE: "date after today (New York)" if tcol == "date"
            else "timestamp in the future",
            WEEKEND: "weekend (not an NYSE session)",
            HOLIDAY: "holiday (not an NYSE session)",
            BEFORE_CALENDAR: f"date before {EARLIEST_SESSION_DATE.isoformat()}"}


def _now(now: pd.Timestamp | dt.datetime | None) -> pd.Timestamp:
    ts = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts


def _mark_duplicate_rows(clean: pd.DataFrame, reason: np.ndarray, keys: list[str]
                         ) -> np.ndarray:
    """The frame path's :func:`technic.validation.bars._mark_duplicates` (the Arrow path's
    works on integer codes).

    Mark repeated keys among the rows not yet rejected: rows sharing a key with different
    values are all ``conflicting duplicate (k1, k2)``; an exact repeat keeps its first copy
    and rejects the others as ``duplicate (k1, k2)``.

    Args:
        clean: the parsed rows, aligned with ``reason``.
        reason: ``(n,) object`` reject reason per row (None = kept so far), updated in place.
        keys: the key columns.

    Returns:
        ``(n,) bool``: the rows still kept.
    """
    ok = reason == None  # noqa: E711
    cand = clean[ok]
    dup_any = cand.duplicated(keys, keep=False).to_numpy()
    if dup_any.any():
        label = f"({', '.join(keys)})"
        d = cand[dup_any]
        distinct = d.drop_duplicates()
        conflict_keys = distinct[distinct.duplicated(keys, keep=False)][keys].drop_duplicates()
        is_conflict = d.merge(conflict_keys.assign(_c=1), on=keys, how="left")["_c"] \
            .notna().to_numpy()
        repeat = d.duplicated(keep="first").to_numpy()
        idx = np.flatnonzero(ok)[dup_any]
        reason[idx[is_conflict]] = f"conflicting duplicate {label}"
        reason[idx[~is_conflict & repeat]] = f"duplicate {label}"
        ok = reason == None  # noqa: E711
    return ok


def _safe_text(s: str) -> str:
    """A string as ``jsonb`` can hold it: NUL (which PostgreSQL text cannot store) shown as
    U+2400, strings longer than :data:`MAX_REJECT_TEXT` cut (their length noted)."""
    if "\x00" in s:
        s = s.replace("\x00", "\u2400")
    if len(s) > MAX_REJECT_TEXT:
        s = f"{s[:MAX_REJECT_TEXT]}… ({len(s):,} characters)"
    return s


def _jsonable(rec: dict) -> dict:
    out: dict[str, object] = {}
    for k, val in rec.items():
        if isinstance(val, str):
            out[k] = _safe_text(val)
        elif isinstance(val, bytes):
            out[k] = _safe_text(val.decode("utf-8", "replace"))
        elif isinstance(val, dt.datetime):
            out[k] = val.isoformat()
        elif isinstance(val, dt.date):
            out[k] = dt.datetime.combine(val, dt.time()).isoformat()
        elif isinstance(val, float) and not math.isfinite(val):
            out[k] = None if math.isnan(val) else str(val)
        else:
            out[k] = val
    return out


def _row_json(df: pd.DataFrame, i: int) -> str:
    rec: dict[str, object] = {}
    for k, val in df.iloc[i].items():
        if isinstance(val, str):
            rec[str(k)] = _safe_text(val)
        elif isinstance(val, bytes):
            rec[str(k)] = _safe_text(val.decode("utf-8", "replace"))
        elif val is None or pd.isna(val):
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
