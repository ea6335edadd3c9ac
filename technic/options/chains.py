"""Row-level validation of end-of-day option chains before they reach ``option_chains``.

One row is one contract of one session: ``date`` (session), ``underlying``, ``expiration``,
``strike`` (USD), ``option_type`` (``C``/``P``; ``call``/``put`` are accepted), and optional
``last_price``, ``bid``, ``ask`` (USD per share), ``volume`` (contracts traded in the
session), ``open_interest`` (contracts), ``implied_vol`` (decimal: 0.25 = 25 %), ``delta``,
``gamma``, ``theta``, ``vega`` and ``underlying_price`` (USD, as traded). Underlyings are
trimmed and upper-cased (sources spell some in mixed case, e.g. ``Abt``). Optional values may
be null (a null implied vol is "no value", recomputed later where a session price exists).

Each row gets the first failing check as its reject reason, in this order (the same spirit
as the bar rules of :mod:`technic.validation`):

====================================  ===================================================
reason                                rule
====================================  ===================================================
missing value                         date, underlying, expiration, strike or type null
unparseable date                      date or expiration present but not an ISO date
invalid symbol                        control character in the underlying, or > 32 chars
date after today / weekend / holiday  ``date`` is not an NYSE session up to today
unknown option type                   type other than C, P, CALL, PUT (any case)
non-numeric value                     a number present but not finite / not a number
expiration before date                the contract expired before the session
strike <= 0                           strike not positive
implied vol outside (0, 5]            ``implied_vol`` ≤ 0 or > 5 (500 %; null is allowed)
negative price                        last price, bid or ask < 0
negative volume                       ``volume`` < 0
negative open interest                ``open_interest`` < 0
delta outside its range               call delta outside [0, 1], put delta outside [-1, 0]
underlying price <= 0                 ``underlying_price`` ≤ 0 (null is allowed)
duplicate contract                    exact repeat of (date, underlying, expiration, type,
                                      strike) and values (the first copy is kept)
conflicting duplicate contract        same contract key, different values: all rejected
====================================  ===================================================
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from technic.validation import (
    _BAD_SYMBOL_CHARS,
    MAX_SYMBOL_LENGTH,
    _calendar_reasons,
    _date_reasons,
    _jsonable,
    _now,
)

#: Arrow schema of validated chain rows, as stored in ``option_chains`` (without ``source``).
OPTION_SCHEMA = pa.schema([
    ("date", pa.date32()), ("underlying", pa.string()), ("expiration", pa.date32()),
    ("option_type", pa.string()), ("strike", pa.float64()),
    ("last_price", pa.float64()), ("bid", pa.float64()), ("ask", pa.float64()),
    ("volume", pa.int64()), ("open_interest", pa.int64()),
    ("implied_vol", pa.float64()), ("delta", pa.float64()), ("gamma", pa.float64()),
    ("theta", pa.float64()), ("vega", pa.float64()), ("underlying_price", pa.float64())])
KEY_COLUMNS = ("date", "underlying", "expiration", "option_type", "strike")
REQUIRED_COLUMNS = ("date", "underlying", "expiration", "strike", "option_type")
FLOAT_COLUMNS = ("strike", "last_price", "bid", "ask", "implied_vol", "delta", "gamma",
                 "theta", "vega", "underlying_price")
INT_COLUMNS = ("volume", "open_interest")
#: Other spellings of columns accepted in input files.
ALIASES = {"type": "option_type", "call_put": "option_type", "last": "last_price",
           "iv": "implied_vol", "oi": "open_interest"}
#: Highest implied vol accepted (decimal): the source caps near 15 (1,500 %), values above 5
#: are far-from-the-money quotes no metric uses.
MAX_IMPLIED_VOL = 5.0

REASONS = ("", "missing value", "unparseable date", "invalid symbol", "unknown option type",
           "non-numeric value", "expiration before date", "strike <= 0",
           "implied vol outside (0, 5]", "negative price", "negative volume",
           "negative open interest", "delta outside its range", "underlying price <= 0",
           "duplicate contract", "conflicting duplicate contract")
_CODE = {r: i for i, r in enumerate(REASONS)}


def is_option_chain(names: Iterable[str]) -> bool:
    """True when column ``names`` describe option chains (underlying, expiration, strike)."""
    cols = {ALIASES.get(n, n) for n in names}
    return {"underlying", "expiration", "strike", "option_type"} <= cols


def _np(col: pa.ChunkedArray | pa.Array, dtype: str) -> np.ndarray:
    """A numeric column as NumPy ``dtype`` (nulls → NaN for floats)."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if dtype == "float64":
        return arr.cast(pa.float64()).to_numpy(zero_copy_only=False)
    return arr.fill_null(0).cast(pa.int64()).to_numpy(zero_copy_only=False)


def _dates(col: pa.ChunkedArray) -> tuple[pa.Array, np.ndarray]:
    """A date column (date32, timestamp or ISO text) as date32 plus an "unparseable" mask."""
    arr = col.combine_chunks()
    if pa.types.is_date(arr.type):
        return arr.cast(pa.date32()), np.zeros(len(arr), dtype=bool)
    if pa.types.is_timestamp(arr.type):
        s = arr.to_pandas()
        if getattr(s.dt, "tz", None) is not None:
            s = s.dt.tz_localize(None)
        out = pa.array(s.dt.normalize().to_numpy().astype("datetime64[D]"), type=pa.date32(),
                       mask=s.isna().to_numpy())
        return out, np.zeros(len(arr), dtype=bool)
    raw = pd.Series(arr.cast(pa.string()).to_pandas(), dtype="string").str.strip()
    parsed = pd.to_datetime(raw, format="ISO8601", errors="coerce")
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_localize(None)
    bad = (raw.notna() & (raw != "") & parsed.isna()).to_numpy(dtype=bool)
    out = pa.array(parsed.dt.normalize().to_numpy().astype("datetime64[D]"), type=pa.date32(),
                   mask=parsed.isna().to_numpy())
    return out, bad


def _numbers(col: pa.ChunkedArray | None, n: int, kind: str
             ) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """A numeric column as Arrow float64/int64 plus masks (non-numeric, present)."""
    typ = pa.float64() if kind == "f" else pa.int64()
    if col is None:
        return pa.nulls(n, typ), np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    arr = col.combine_chunks()
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        raw = pd.Series(arr.cast(pa.string()).to_pandas(), dtype="string").str.strip()
        raw = raw.mask(raw == "")
        num = pd.to_numeric(raw, errors="coerce").astype("float64")
        v = num.to_numpy()
        bad = (raw.notna() & num.isna()).to_numpy(dtype=bool)
    else:
        v = arr.cast(pa.float64()).to_numpy(zero_copy_only=False)
        bad = np.zeros(n, dtype=bool)
    present = ~np.isnan(v)
    bad |= np.isinf(v)
    if kind == "f":
        out = pa.array(v, type=typ, mask=~present | bad)
    else:
        whole = present & ~bad & (v == np.round(v))
        bad |= present & ~np.isinf(v) & ~whole
        out = pa.array(np.where(whole, v, 0).astype(np.int64), type=typ, mask=~whole)
    return out, bad, present & ~bad


def _lex_increasing(keys: list[np.ndarray]) -> bool:
    """True when the rows are in strictly increasing lexicographic order of ``keys``."""
    if len(keys[0]) < 2:
        return True
    gt = np.zeros(len(keys[0]) - 1, dtype=bool)
    eq = np.ones(len(keys[0]) - 1, dtype=bool)
    for k in keys:
        a, b = k[:-1], k[1:]
        gt |= eq & (b > a)
        eq &= b == a
    return bool(gt.all())


def validate_chains(table: pa.Table | pd.DataFrame,
                    now: pd.Timestamp | dt.datetime | None = None
                    ) -> tuple[pa.Table, pd.DataFrame]:
    """Split raw option-chain rows into valid rows and rejects with reasons.

    Args:
        table: columns as in the module docstring (aliases in :data:`ALIASES`); typed
            (Parquet) or text (CSV read as strings). Missing optional columns become null.
        now: the clock of the "date after today" check (default: now).

    Returns:
        ``(good, rejects)``: ``good`` an Arrow table with :data:`OPTION_SCHEMA` (input order,
        underlying upper-cased, type ``C``/``P``); ``rejects`` a DataFrame ``row`` (the input
        row as JSON) and ``reason`` (the module table). Every input row ends in exactly one.

    Raises:
        KeyError: a required column is missing.
    """
    t = table if isinstance(table, pa.Table) else pa.Table.from_pandas(table,
                                                                       preserve_index=False)
    t = t.rename_columns([ALIASES.get(c, c) for c in t.column_names])
    missing_cols = [c for c in REQUIRED_COLUMNS if c not in t.column_names]
    if missing_cols:
        raise KeyError(f"option chains lack column(s) {', '.join(missing_cols)}")
    n = t.num_rows
    reason = np.zeros(n, dtype=np.int8)

    def mark(mask: np.ndarray, why: str) -> None:
        reason[mask & (reason == 0)] = _CODE[why]

    date, date_bad = _dates(t["date"])
    exp, exp_bad = _dates(t["expiration"])
    und = t["underlying"].combine_chunks()
    if pa.types.is_dictionary(und.type):
        und = und.dictionary_decode()
    und = pc.utf8_upper(pc.utf8_trim_whitespace(und.cast(pa.string())))
    typ = pc.utf8_upper(pc.utf8_trim_whitespace(
        t["option_type"].combine_chunks().cast(pa.string())))
    typ = pc.replace_substring_regex(typ, "^CALL$", "C")
    typ = pc.replace_substring_regex(typ, "^PUT$", "P")
    nums = {c: _numbers(t[c] if c in t.column_names else None, n, "f") for c in FLOAT_COLUMNS}
    ints = {c: _numbers(t[c] if c in t.column_names else None, n, "i") for c in INT_COLUMNS}

    date_null = date.is_null().to_numpy(zero_copy_only=False)
    exp_null = exp.is_null().to_numpy(zero_copy_only=False)
    missing = ((date_null & ~date_bad) | (exp_null & ~exp_bad)
               | und.is_null().to_numpy(zero_copy_only=False)
               | pc.equal(und, "").fill_null(True).to_numpy(zero_copy_only=False)
               | typ.is_null().to_numpy(zero_copy_only=False)
               | ~(nums["strike"][2] | nums["strike"][1]))
    mark(missing, "missing value")
    mark(date_bad | exp_bad, "unparseable date")
    bad_sym = pc.or_(pc.greater(pc.utf8_length(und), MAX_SYMBOL_LENGTH),
                     pc.match_substring_regex(und, _BAD_SYMBOL_CHARS)).fill_null(False)
    mark(bad_sym.to_numpy(zero_copy_only=False), "invalid symbol")
    dint = date.cast(pa.int32()).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    cal = _calendar_reasons(dint, "date", _now(now))
    extra = list(REASONS)
    for code, why in _date_reasons("date").items():
        extra.append(why)
        reason[(cal == code) & (reason == 0)] = len(extra) - 1
    is_c = pc.equal(typ, "C").fill_null(False).to_numpy(zero_copy_only=False)
    is_p = pc.equal(typ, "P").fill_null(False).to_numpy(zero_copy_only=False)
    mark(~(is_c | is_p), "unknown option type")
    nonnum = np.zeros(n, dtype=bool)
    for _, bad, _ in (*nums.values(), *ints.values()):
        nonnum |= bad
    mark(nonnum, "non-numeric value")
    eint = exp.cast(pa.int32()).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    mark(eint < dint, "expiration before date")
    f = {c: v[0].to_numpy(zero_copy_only=False) for c, v in nums.items()}
    with np.errstate(invalid="ignore"):
        mark(f["strike"] <= 0, "strike <= 0")
        iv = f["implied_vol"]
        mark((iv <= 0) | (iv > MAX_IMPLIED_VOL), "implied vol outside (0, 5]")
        mark((f["last_price"] < 0) | (f["bid"] < 0) | (f["ask"] < 0), "negative price")
        vol = ints["volume"][0].fill_null(0).to_numpy(zero_copy_only=False)
        oi = ints["open_interest"][0].fill_null(0).to_numpy(zero_copy_only=False)
        mark(vol < 0, "negative volume")
        mark(oi < 0, "negative open interest")
        d = f["delta"]
        mark((is_c & ((d < 0) | (d > 1))) | (is_p & ((d < -1) | (d > 0))),
             "delta outside its range")
        mark(f["underlying_price"] <= 0, "underlying price <= 0")

    out = pa.table({
        "date": date, "underlying": und, "expiration": exp, "option_type": typ,
        "strike": nums["strike"][0], **{c: nums[c][0] for c in FLOAT_COLUMNS if c != "strike"
                                        and c not in ("underlying_price",)},
        **{c: v[0] for c, v in ints.items()}, "underlying_price": nums["underlying_price"][0],
    }).select(OPTION_SCHEMA.names).cast(OPTION_SCHEMA)
    _mark_duplicates(out, reason)

    ok = reason == 0
    bad_idx = np.flatnonzero(~ok)
    good = out if ok.all() else out.filter(pa.array(ok))
    rows = t.take(pa.array(bad_idx, type=pa.int64())).to_pylist() if len(bad_idx) else []
    rejects = pd.DataFrame({"row": [json.dumps(_jsonable(r), default=str) for r in rows],
                            "reason": np.array(extra, dtype=object)[reason[bad_idx]]
                            .astype(str)})
    return good, rejects


def _mark_duplicates(out: pa.Table, reason: np.ndarray) -> None:
    """Mark repeated contract keys among the rows still valid: exact repeats after the first
    copy (``duplicate contract``), every copy of a key whose values differ (``conflicting``).
    Input sorted by the key (the usual file) is recognised in one vectorized pass."""
    ok_idx = np.flatnonzero(reason == 0)
    if len(ok_idx) < 2:
        return
    und = pc.dictionary_encode(out["underlying"]).combine_chunks()
    und_rank = np.argsort(np.argsort(und.dictionary.to_numpy(zero_copy_only=False)))
    keys = [und_rank[und.indices.fill_null(0).to_numpy(zero_copy_only=False)],
            _np(out["date"].cast(pa.int32()), "int64"),
            _np(out["expiration"].cast(pa.int32()), "int64"),
            pc.equal(out["option_type"], "P").fill_null(False)
            .to_numpy(zero_copy_only=False).astype(np.int8),
            _np(out["strike"], "float64")]
    if len(ok_idx) < out.num_rows:
        keys = [k[ok_idx] for k in keys]
    if _lex_increasing(keys) or _lex_increasing([keys[1], *keys[:1], *keys[2:]]):
        return
    sub = out if len(ok_idx) == out.num_rows else out.take(pa.array(ok_idx))
    df = sub.to_pandas(date_as_object=False)
    dup_any = df.duplicated(list(KEY_COLUMNS), keep=False).to_numpy()
    if not dup_any.any():
        return
    d = df[dup_any]
    n_distinct = d.drop_duplicates().groupby(list(KEY_COLUMNS), dropna=False).size()
    conflict_keys = n_distinct[n_distinct > 1].index
    key_idx = pd.MultiIndex.from_frame(d[list(KEY_COLUMNS)])
    conflict = key_idx.isin(conflict_keys)
    exact_repeat = d.duplicated(keep="first").to_numpy() & ~conflict
    rows = ok_idx[np.flatnonzero(dup_any)]
    reason[rows[conflict]] = _CODE["conflicting duplicate contract"]
    reason[rows[exact_repeat]] = _CODE["duplicate contract"]
