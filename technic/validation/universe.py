"""Validation of the universe (reference) file before it reaches ``universe``:
:func:`validate_universe` (symbol, NUL bytes, flags, duplicates) and :func:`parse_flag`, the
accepted spellings of the ``is_etf``/``active`` flags (also used by the store's upsert)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from technic.validation._common import MAX_SYMBOL_LENGTH, _row_json

#: Accepted spellings of the universe flags ``is_etf`` and ``active`` (case-insensitive).
TRUE_WORDS = frozenset({"true", "t", "yes", "y", "1"})
FALSE_WORDS = frozenset({"false", "f", "no", "n", "0"})
_UNIVERSE_TEXT = ("symbol", "name", "exchange", "sector", "industry", "security_type")


def parse_flag(value: object) -> bool | None:
    """A universe flag: booleans as they are; ``true/false, t/f, yes/no, y/n, 1/0`` (any case,
    surrounding blanks ignored) and the numbers 1/0; null or blank → None.

    Raises:
        ValueError: anything else (e.g. ``"maybe"``, ``2``).
    """
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | float | np.integer | np.floating):
        if isinstance(value, float | np.floating) and np.isnan(value):
            return None
        if value in (0, 1):
            return bool(value)
        raise ValueError(value)
    if isinstance(value, str):
        w = value.strip().lower()
        if not w:
            return None
        if w in TRUE_WORDS:
            return True
        if w in FALSE_WORDS:
            return False
    raise ValueError(value)


def validate_universe(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split universe (reference) rows into valid rows and rejects with reasons.

    Checks, first failing wins: ``missing value`` (symbol empty), ``invalid symbol`` (as for
    bars), ``NUL byte in a text field`` (PostgreSQL text cannot hold it), ``unparseable
    is_etf`` / ``unparseable active`` (not a flag :func:`parse_flag` reads), ``duplicate
    symbol`` (a later row of a symbol already seen; the first is kept). ``market_cap`` (USD)
    that is not a finite number ≥ 0 is stored as NULL, never NaN.

    Args:
        df: ``technic.providers.files.UNIVERSE_COLUMNS`` (text or typed).

    Returns:
        ``(good, rejects)``: good rows with symbols trimmed, ``is_etf``/``active`` as
        True/False/None, ``market_cap`` float or None; rejects with ``row`` (JSON text) and
        ``reason``.
    """
    n = len(df)
    reason = np.full(n, None, dtype=object)

    def mark(mask, why: str) -> None:
        sel = np.asarray(mask, dtype=bool) & (reason == None)  # noqa: E711
        reason[sel] = why

    sym = df["symbol"].astype("string").str.strip()
    mark((sym.isna() | (sym == "")).to_numpy(dtype=bool), "missing value")
    mark(((sym.str.len() > MAX_SYMBOL_LENGTH)
          | sym.str.contains("[\x00-\x1f\x7f\ufffd]", regex=True)).fillna(False), "invalid symbol")
    nul = np.zeros(n, dtype=bool)
    for c in _UNIVERSE_TEXT:
        nul |= df[c].astype("string").str.contains("\x00", regex=False).fillna(False) \
            .to_numpy(dtype=bool)
    mark(nul, "NUL byte in a text field")
    flags = {}
    for c in ("is_etf", "active"):
        vals = np.full(n, None, dtype=object)
        bad = np.zeros(n, dtype=bool)
        for i, v in enumerate(df[c].to_numpy(dtype=object)):
            try:
                vals[i] = parse_flag(v)
            except ValueError:
                bad[i] = True
        mark(bad, f"unparseable {c} (expected true/false, yes/no, y/n, 1/0)")
        flags[c] = vals
    ok = reason == None  # noqa: E711
    dup = np.zeros(n, dtype=bool)
    dup[ok] = sym[ok].duplicated(keep="first").to_numpy()
    mark(dup, "duplicate symbol")
    ok = reason == None  # noqa: E711

    cap = pd.to_numeric(df["market_cap"], errors="coerce").astype("float64").to_numpy()
    with np.errstate(invalid="ignore"):
        cap_ok = np.isfinite(cap) & (cap >= 0)
    good = pd.DataFrame({
        "symbol": sym.to_numpy(dtype=object),
        **{c: df[c].astype(object).where(df[c].notna(), None).map(
            lambda x: None if x is None else str(x)).to_numpy(dtype=object)
           for c in _UNIVERSE_TEXT[1:]},
        "is_etf": flags["is_etf"], "active": flags["active"],
        "market_cap": np.asarray(np.where(cap_ok, cap, None), dtype=object),
    })[ok].reset_index(drop=True)
    bad_idx = np.flatnonzero(~ok)
    rejects = pd.DataFrame({"row": [_row_json(df, int(i)) for i in bad_idx],
                            "reason": reason[bad_idx].astype(str)})
    return good, rejects
