"""Universe filter: which symbols a scan ranks, with a drop count per rule.

Rules run in order; a symbol is counted under the first rule that drops it. Each rule can be
switched off or re-parameterised (``UniverseRules``), and the per-rule counts are stored in
``scan_runs.counts``.

1. ``sector`` — only the requested sectors (if any were requested).
2. ``valid_ticker`` — ordinary listed shares: drops warrants, units, rights, preferreds and
   exchange-listed notes (by ``security_type``, else by ticker shape: ``.WS``/``.U``/``p``
   suffixes), symbols marked inactive, and tickers that do not look like a CQS symbol.
   The ``active`` flag is today's status: it is used only for a scan of the latest date.
   On a past date (``point_in_time=True``) membership comes from the bars that existed: a
   symbol is in the universe on date *d* when it has a bar (a feature row) on *d*, whatever
   its status today — a name delisted since is kept on the dates it traded.
3. ``leveraged_etf`` — ETFs/ETNs whose name says leveraged or inverse (2x, 3x, Ultra, Bear,
   Short, Inverse, …).
4. ``min_price`` — last close ≥ ``min_price`` (USD, default 5).
5. ``min_dollar_volume`` — 20-bar mean of close × volume ≥ ``min_dollar_volume`` (USD,
   default 500,000).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

EXCLUDED_SECURITY_TYPES = frozenset({"warrant", "unit", "right", "preferred", "note"})
_TICKER = re.compile(r"^[A-Z]{1,5}(\.[A-Z])?$")
_LEVERAGED = re.compile(
    r"(?i)(\b[-+]?[234](\.\d)?x\b|\bultra(pro|short)?\b|\bleveraged?\b|\binverse\b|\bbear\b"
    r"|\bshort\b|\bdaily\b.*\bbull\b|\bbull\b.*\b[23]x\b)")


@dataclass(frozen=True)
class UniverseRules:
    """Parameters of the universe filter (see the module docstring for each rule).

    Attributes:
        min_price: minimum last close, USD (≥ 0; 0 disables).
        min_dollar_volume: minimum 20-bar mean dollar volume, USD (≥ 0; 0 disables).
        valid_tickers: apply the ``valid_ticker`` rule.
        exclude_leveraged_etfs: apply the ``leveraged_etf`` rule.
        sectors: keep only these sectors (case-insensitive); empty = all.
    """

    min_price: float = 5.0
    min_dollar_volume: float = 500_000.0
    valid_tickers: bool = True
    exclude_leveraged_etfs: bool = True
    sectors: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not np.isfinite(self.min_price) or self.min_price < 0:
            raise ValueError(f"min_price must be a number >= 0, got {self.min_price}")
        if not np.isfinite(self.min_dollar_volume) or self.min_dollar_volume < 0:
            raise ValueError(f"min_dollar_volume must be >= 0, got {self.min_dollar_volume}")


#: The default filter: the one place its defaults are declared (the CLI options, the flow
#: parameters, the evaluation and the model data sets all take them from here).
DEFAULT_RULES = UniverseRules()


def _valid_ticker(df: pd.DataFrame, point_in_time: bool = False) -> np.ndarray:
    sym = df["symbol"].astype(str)
    stype = df["security_type"].astype(object)
    bad_type = stype.isin(EXCLUDED_SECURITY_TYPES).to_numpy()
    shape_ok = np.fromiter((_TICKER.match(s) is not None for s in sym), bool, len(sym))
    if point_in_time:  # today's status says nothing about a past date
        return ~bad_type & shape_ok
    inactive = (df["active"].astype(object) == False).to_numpy()  # noqa: E712 - None stays
    return ~bad_type & shape_ok & ~inactive


def _leveraged(df: pd.DataFrame) -> np.ndarray:
    is_etf = (df["is_etf"].astype(object) == True).to_numpy()  # noqa: E712
    out = np.zeros(len(df), dtype=bool)
    etf = np.flatnonzero(is_etf)  # only ETF names are searched (~10% of the universe)
    names = df["name"].to_numpy(dtype=object)[etf]
    out[etf] = [isinstance(s, str) and _LEVERAGED.search(s) is not None for s in names]
    return out


def apply_rules(df: pd.DataFrame, rules: UniverseRules, point_in_time: bool = False
                ) -> tuple[np.ndarray, dict[str, int]]:
    """Evaluate the filter on a feature frame (one row per symbol).

    Args:
        df: needs ``symbol, close, dollar_volume_20, sector, security_type, is_etf, active,
            name`` (``active`` only when ``point_in_time`` is False). The rows are the
            symbols with a bar on the date (feature rows exist only there).
        rules: the parameters.
        point_in_time: the date is in the past: ignore today's ``active`` flag, so
            membership is the bars that existed on the date (module docstring).

    Returns:
        ``(keep, counts)``: boolean mask ``(len(df),)`` and
        ``{"input": n, "dropped_<rule>": k, …, "passed": m}``.
    """
    keep = np.ones(len(df), dtype=bool)
    counts: dict[str, int] = {"input": int(len(df))}

    def drop(rule: str, bad: np.ndarray) -> None:
        nonlocal keep
        hit = keep & bad
        counts[f"dropped_{rule}"] = int(hit.sum())
        keep = keep & ~bad

    if rules.sectors:
        wanted = {s.lower() for s in rules.sectors}
        sec = df["sector"].fillna("").astype(str).str.lower()
        drop("sector", ~sec.isin(wanted).to_numpy())
    if rules.valid_tickers:
        drop("valid_ticker", ~_valid_ticker(df, point_in_time))
    if rules.exclude_leveraged_etfs:
        drop("leveraged_etf", _leveraged(df))
    close = df["close"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        drop("min_price", ~(close >= rules.min_price))
        dv = df["dollar_volume_20"].to_numpy(dtype=float)
        drop("min_dollar_volume", ~(dv >= rules.min_dollar_volume))
    counts["passed"] = int(keep.sum())
    return keep, counts


def check_sectors(requested: tuple[str, ...] | list[str] | None,
                  known: list[str] | tuple[str, ...]) -> None:
    """Reject requested sectors that no symbol has (a typo would scan an empty universe and
    store an empty run).

    Compared case-insensitively, like the ``sector`` rule. Skipped when ``known`` is empty
    (no reference data yet).

    Args:
        requested: the ``sectors`` of :class:`UniverseRules`.
        known: the distinct non-null ``symbols.sector`` values.

    Raises:
        ValueError: a sector is unknown; the message lists the known ones.
    """
    if not requested or not known:
        return
    lower = {k.lower() for k in known}
    unknown = [s for s in requested if s.lower() not in lower]
    if unknown:
        raise ValueError(f"unknown sector(s) {', '.join(map(repr, unknown))}; known sectors: "
                         f"{', '.join(sorted(known))}")
