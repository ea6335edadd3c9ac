"""Polygon fundamentals: quarterly financials from SEC filings as ``fundamentals`` rows.

Endpoint: ``GET /vX/reference/financials`` — quarterly financials from SEC filings (XBRL),
mapped to the rows of technic's ``fundamentals`` table (:data:`FINANCIALS_COLUMNS`; where each
line item is read: :data:`FINANCIALS_FIELDS`). Fiscal period ends are reported as month ends
(:func:`nearest_month_end`).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from technic.providers.polygon._http import _date_str, _PolygonHTTP

#: Columns of :meth:`PolygonClient.financials` (those of ``fundamentals``, migration 17).
FINANCIALS_COLUMNS = ("symbol", "period_end", "available_date", "fiscal_year", "fiscal_period",
                      "revenue", "net_income", "total_assets", "equity", "free_cash_flow",
                      "shares_diluted")
#: Where each line item of :data:`FINANCIALS_COLUMNS` is read in a ``financials`` result:
#: (statement, candidate fields in order of preference). ``free_cash_flow`` has none: the
#: endpoint reports operating cash flow but no capital expenditure line, so it stays NULL
#: (never operating cash flow passed off as FCF).
FINANCIALS_FIELDS: Mapping[str, tuple[str, tuple[str, ...]]] = {
    "revenue": ("income_statement", ("revenues",)),
    "net_income": ("income_statement", ("net_income_loss_attributable_to_parent",
                                        "net_income_loss")),
    "total_assets": ("balance_sheet", ("assets",)),
    "equity": ("balance_sheet", ("equity",)),
    "shares_diluted": ("income_statement", ("diluted_average_shares",)),
}


def nearest_month_end(day: pd.Series) -> pd.Series:
    """Fiscal period ends as month ends, the convention of the shared fundamentals file (a
    52/53-week quarter ending 2024-12-28 is the quarter of 2024-12-31; one ending 2023-07-01
    is that of 2023-06-30): day ≤ 15 → the end of the previous month, else the end of its
    own month. NaT stays NaT.

    Args:
        day: ``datetime64`` values.
    """
    d = pd.to_datetime(day)
    own = d + pd.offsets.MonthEnd(0)
    prev = (d.dt.to_period("M") - 1).dt.to_timestamp(how="end").dt.normalize()
    return own.where(d.dt.day > 15, prev)


def _item_value(fin: Mapping[str, Any], statement: str, fields: tuple[str, ...]) -> float:
    """The ``value`` of the first present field of ``fin[statement]`` (NaN if none)."""
    st = fin.get(statement) if isinstance(fin, Mapping) else None
    if not isinstance(st, Mapping):
        return math.nan
    for f in fields:
        item = st.get(f)
        if isinstance(item, Mapping) and item.get("value") is not None:
            try:
                return float(item["value"])
            except (TypeError, ValueError):
                return math.nan
    return math.nan



class _FinancialsEndpoints(_PolygonHTTP):
    """:meth:`financials` of ``PolygonClient``."""

    def financials(self, symbol: str, *, filed_from: str | dt.date | None = None,
                   filed_to: str | dt.date | None = None, timeframe: str = "quarterly",
                   limit: int = 100, max_pages: int | None = None) -> pd.DataFrame:
        """Quarterly financials of one ticker as ``fundamentals`` rows (paginated).

        Source: ``GET /vX/reference/financials`` (``ticker``, ``timeframe``,
        ``filing_date.gte``/``.lte``, ``sort=filing_date``, follows ``next_url``). Mapping:
        ``end_date`` → ``period_end`` (as a month end, :func:`nearest_month_end`),
        ``filing_date`` → ``available_date`` (the first public date), ``fiscal_year``,
        ``fiscal_period``; the line items of :data:`FINANCIALS_FIELDS` (``value``, USD or
        shares). ``free_cash_flow`` is NaN (no capital-expenditure line in the endpoint).

        Returns:
            DataFrame with :data:`FINANCIALS_COLUMNS` (dates ``datetime64[ns]``, NaT when
            absent; items float64, NaN when absent: validation rejects rows without a date),
            in Polygon's order (ascending filing date).

        Raises:
            PolygonAuthError, PolygonRateLimitError, PolygonPayloadError (results lack
            ``end_date`` or ``financials``), PolygonError.
        """
        params: dict[str, Any] = {"ticker": symbol, "timeframe": timeframe,
                                  "sort": "filing_date", "order": "asc", "limit": int(limit)}
        if filed_from is not None:
            params["filing_date.gte"] = _date_str(filed_from)
        if filed_to is not None:
            params["filing_date.lte"] = _date_str(filed_to)
        rows: list[dict[str, Any]] = []
        for page in self._pages("/vX/reference/financials", params, max_pages):
            for r in self._results(page, ("end_date", "financials")):
                fin = r.get("financials") or {}
                rec: dict[str, Any] = {
                    "symbol": symbol, "end_date": r.get("end_date"),
                    "filing_date": r.get("filing_date"), "fiscal_year": r.get("fiscal_year"),
                    "fiscal_period": r.get("fiscal_period"), "free_cash_flow": math.nan}
                for col, (statement, fields) in FINANCIALS_FIELDS.items():
                    rec[col] = _item_value(fin, statement, fields)
                rows.append(rec)
        raw = pd.DataFrame.from_records(rows, columns=[
            "symbol", "end_date", "filing_date", "fiscal_year", "fiscal_period",
            *FINANCIALS_FIELDS, "free_cash_flow"])
        end = pd.to_datetime(raw["end_date"], format="ISO8601", errors="coerce")
        out = pd.DataFrame({
            "symbol": raw["symbol"].astype(object),
            "period_end": nearest_month_end(end) if len(raw) else end,
            "available_date": pd.to_datetime(raw["filing_date"], format="ISO8601",
                                             errors="coerce"),
            "fiscal_year": pd.to_numeric(raw["fiscal_year"], errors="coerce").astype("Int64"),
            "fiscal_period": raw["fiscal_period"].astype(object),
        })
        for c in FINANCIALS_COLUMNS[5:]:
            out[c] = pd.to_numeric(raw[c], errors="coerce").astype("float64")
        return out[list(FINANCIALS_COLUMNS)]
