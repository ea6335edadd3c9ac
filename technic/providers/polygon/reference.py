"""Polygon reference data: tickers (technic's universe rows), one ticker's details, splits.

Polygon's ticker ``type`` codes and ``primary_exchange`` MICs are mapped to the values
technic's universe uses (:func:`map_security_type`, :func:`map_exchange`); the raw codes are
kept next to them. Symbols are kept exactly as Polygon returns them (CQS style, ``BRK.B``).

Endpoints:

* ``GET /v3/reference/tickers`` and ``GET /v3/reference/tickers/{ticker}`` — reference data
* ``GET /v3/reference/splits`` — stock splits
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import pandas as pd

from technic.providers.polygon._http import PolygonPayloadError, _date_str, _PolygonHTTP

TICKER_COLUMNS = ("symbol", "name", "exchange", "security_type", "is_etf", "active",
                  "polygon_type", "primary_exchange")
SPLIT_COLUMNS = ("symbol", "execution_date", "split_from", "split_to")

#: Polygon ticker ``type`` code (``GET /v3/reference/tickers/types``) → technic
#: ``security_type``. Codes not listed (and ``OTHER``) map to ``common_or_other``.
SECURITY_TYPES: Mapping[str, str] = {
    "CS": "common_or_other", "OS": "common_or_other", "FUND": "common_or_other",
    "LT": "common_or_other", "OTHER": "common_or_other",
    "ADRC": "adr", "GDR": "adr", "NYRS": "adr",
    "ETF": "etf_etn", "ETN": "etf_etn", "ETV": "etf_etn", "ETS": "etf_etn",
    "WARRANT": "warrant", "ADRW": "warrant",
    "RIGHT": "right", "ADRR": "right",
    "UNIT": "unit",
    "PFD": "preferred", "ADRP": "preferred",
    "BOND": "note", "AGEN": "note", "EQLK": "note", "SP": "note",
}

#: Polygon ``primary_exchange`` (ISO 10383 MIC) → the exchange names technic's universe uses.
EXCHANGES: Mapping[str, str] = {
    "XNYS": "NYSE", "XNAS": "NASDAQ", "XASE": "NYSE American", "ARCX": "NYSE Arca",
    "BATS": "Cboe BZX", "IEXG": "IEX", "XCHI": "NYSE Chicago", "XPHL": "Nasdaq PHLX",
    "XBOS": "Nasdaq BX",
}


def map_security_type(polygon_type: str | None) -> str | None:
    """Map a Polygon ticker ``type`` code (``CS``, ``ETF``, ``ADRC``, …) to technic's value.

    Returns:
        one of ``common_or_other, etf_etn, warrant, right, unit, preferred, adr, note``;
        ``None`` when the type is missing; ``common_or_other`` for codes not in
        ``SECURITY_TYPES``. Source: ``GET /v3/reference/tickers/types``.
    """
    if polygon_type is None or (isinstance(polygon_type, float) and math.isnan(polygon_type)):
        return None
    code = str(polygon_type).strip().upper()
    if not code:
        return None
    return SECURITY_TYPES.get(code, "common_or_other")


def map_exchange(mic: str | None) -> str | None:
    """Map a Polygon ``primary_exchange`` MIC (``XNYS``) to technic's name (``NYSE``).

    Unknown codes are returned unchanged; ``None`` stays ``None``.
    """
    if mic is None or (isinstance(mic, float) and math.isnan(mic)):
        return None
    return EXCHANGES.get(str(mic), str(mic))



class _ReferenceEndpoints(_PolygonHTTP):
    """:meth:`tickers`, :meth:`ticker_details` and :meth:`splits` of ``PolygonClient``."""

    def tickers(self, *, active: bool | None = True, market: str = "stocks",
                ticker_type: str | None = None, exchange: str | None = None,
                date: str | dt.date | None = None, limit: int = 1000,
                max_pages: int | None = None) -> pd.DataFrame:
        """Reference rows of all tickers (paginated), shaped like technic's universe.

        Source: ``GET /v3/reference/tickers`` (``sort=ticker``, follows ``next_url``).

        Args:
            active: only active (``True``), only delisted (``False``) or both (``None``).
            market: Polygon market (``stocks``, ``otc``, …).
            ticker_type: a Polygon type code filter (``CS``, ``ETF``, …).
            exchange: a primary-exchange MIC filter (``XNAS``, …).
            date: reference data as of this date.
            limit: rows per page (Polygon max 1000).
            max_pages: stop after this many pages (``None`` = all).

        Returns:
            DataFrame with ``TICKER_COLUMNS``: ``symbol`` (str, as returned), ``name`` (str),
            ``exchange`` (technic name via :func:`map_exchange`, e.g. ``NYSE``),
            ``security_type`` (via :func:`map_security_type`), ``is_etf`` (bool: type maps to
            ``etf_etn``), ``active`` (bool or None), ``polygon_type`` and
            ``primary_exchange`` (the raw codes). One row per symbol (first page wins).

        Raises:
            PolygonAuthError, PolygonRateLimitError, PolygonPayloadError (results lack
            ``ticker``), PolygonError.
        """
        params: dict[str, Any] = {"market": market, "sort": "ticker", "order": "asc",
                                  "limit": int(limit)}
        if active is not None:
            params["active"] = str(active).lower()
        if ticker_type:
            params["type"] = ticker_type
        if exchange:
            params["exchange"] = exchange
        if date is not None:
            params["date"] = _date_str(date)
        rows: list[dict[str, Any]] = []
        for page in self._pages("/v3/reference/tickers", params, max_pages):
            rows.extend(self._results(page, ("ticker",)))
        recs = [self._ticker_record(r) for r in rows]
        df = pd.DataFrame.from_records(recs, columns=list(TICKER_COLUMNS))
        df = df[df["symbol"].notna()].drop_duplicates("symbol").reset_index(drop=True)
        df["is_etf"] = df["is_etf"].astype(bool)
        return df

    @staticmethod
    def _ticker_record(r: Mapping[str, Any]) -> dict[str, Any]:
        stype = map_security_type(r.get("type"))
        active = r.get("active")
        return {
            "symbol": r.get("ticker"),
            "name": r.get("name"),
            "exchange": map_exchange(r.get("primary_exchange")),
            "security_type": stype,
            "is_etf": stype == "etf_etn",
            "active": active if isinstance(active, bool) else None,
            "polygon_type": r.get("type"),
            "primary_exchange": r.get("primary_exchange"),
        }

    def ticker_details(self, symbol: str, date: str | dt.date | None = None) -> dict[str, Any]:
        """Reference details of one ticker, including SIC code and market cap.

        Source: ``GET /v3/reference/tickers/{ticker}``.

        Returns:
            dict with the keys of ``TICKER_COLUMNS`` plus ``sic_code`` (str or None),
            ``sic_description`` (str or None), ``market_cap`` (float USD or None),
            ``share_class_shares_outstanding`` (float shares or None), ``list_date``
            (``YYYY-MM-DD`` or None).

        Raises:
            PolygonError: HTTP 404 for an unknown ticker (``status`` 404), other failures.
            PolygonAuthError, PolygonRateLimitError, PolygonPayloadError (no ``results``
            object or no ``ticker`` in it).
        """
        params = {"date": _date_str(date)} if date is not None else None
        page = self._get_json(f"/v3/reference/tickers/{quote(symbol, safe='')}", params)
        r = page.get("results")
        if not isinstance(r, dict) or "ticker" not in r:
            raise PolygonPayloadError(f"GET {page['_display']}: no results object with a "
                                      f"ticker", path=page["_display"])

        def num(v: Any) -> float | None:
            return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None

        rec = self._ticker_record(r)
        rec.update(sic_code=None if r.get("sic_code") is None else str(r["sic_code"]),
                   sic_description=r.get("sic_description"),
                   market_cap=num(r.get("market_cap")),
                   share_class_shares_outstanding=num(r.get("share_class_shares_outstanding")),
                   list_date=r.get("list_date"))
        return rec

    def splits(self, symbol: str | None = None, *, start: str | dt.date | None = None,
               end: str | dt.date | None = None, limit: int = 1000,
               max_pages: int | None = None) -> pd.DataFrame:
        """Stock splits (paginated), optionally for one ticker and an execution-date range.

        Source: ``GET /v3/reference/splits`` (``execution_date.gte``/``.lte`` filters,
        ``sort=execution_date``, follows ``next_url``).

        Returns:
            DataFrame ``symbol`` (str), ``execution_date`` (``datetime64[ns]``, the first
            trading day on the post-split basis), ``split_from``, ``split_to`` (float64; a 4-for-1
            split is ``split_from=1, split_to=4``, the price factor is ``split_from /
            split_to``), in Polygon's order (ascending execution date).

        Raises:
            PolygonAuthError, PolygonRateLimitError, PolygonPayloadError (results lack
            ``ticker``/``execution_date``/``split_from``/``split_to``), PolygonError.
        """
        params: dict[str, Any] = {"sort": "execution_date", "order": "asc", "limit": int(limit)}
        if symbol:
            params["ticker"] = symbol
        if start is not None:
            params["execution_date.gte"] = _date_str(start)
        if end is not None:
            params["execution_date.lte"] = _date_str(end)
        rows: list[dict[str, Any]] = []
        for page in self._pages("/v3/reference/splits", params, max_pages):
            rows.extend(self._results(page, ("ticker", "execution_date", "split_from",
                                             "split_to")))
        raw = pd.DataFrame.from_records(rows)
        if raw.empty:
            return pd.DataFrame({"symbol": pd.Series(dtype=object),
                                 "execution_date": pd.Series(dtype="datetime64[ns]"),
                                 "split_from": pd.Series(dtype="float64"),
                                 "split_to": pd.Series(dtype="float64")})
        return pd.DataFrame({
            "symbol": raw["ticker"].astype(object),
            "execution_date": pd.to_datetime(raw["execution_date"], format="ISO8601",
                                             errors="coerce"),
            "split_from": pd.to_numeric(raw["split_from"], errors="coerce").astype("float64"),
            "split_to": pd.to_numeric(raw["split_to"], errors="coerce").astype("float64"),
        })
