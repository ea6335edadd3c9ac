"""Polygon options: the option chain snapshot of one underlying.

Endpoint: ``GET /v3/snapshot/options/{underlyingAsset}`` — every listed contract of an
underlying, in the columns of :data:`technic.options.chains.OPTION_SCHEMA`; fields that are
missing stay NaN/None for :func:`technic.options.chains.validate_chains` to count.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import pandas as pd

from technic.providers.polygon._http import NEW_YORK, _date_str, _PolygonHTTP


class _OptionsEndpoints(_PolygonHTTP):
    """:meth:`option_chain_snapshot` of ``PolygonClient``."""

    def option_chain_snapshot(self, underlying: str, *, session: str | dt.date | None = None,
                              contract_type: str | None = None,
                              expiration_date: str | dt.date | None = None,
                              limit: int = 250, max_pages: int | None = None) -> pd.DataFrame:
        """The option chain of one underlying (every listed contract), following ``next_url``.

        Source: ``GET /v3/snapshot/options/{underlyingAsset}``
        (https://polygon.io/docs/rest/options/snapshots/option-chain-snapshot). Fields mapped:
        ``details.expiration_date`` → ``expiration``, ``details.strike_price`` → ``strike``,
        ``details.contract_type`` (``call``/``put``) → ``option_type``, ``last_trade.price``
        (else ``day.close``) → ``last_price``, ``last_quote.bid/ask`` → ``bid``/``ask``,
        ``day.volume`` → ``volume``, ``open_interest``, ``implied_volatility`` (decimal),
        ``greeks.delta/gamma/theta/vega``, ``underlying_asset.price`` →
        ``underlying_price``; ``underlying_asset.ticker`` (else ``underlying``) →
        ``underlying``. Missing fields stay NaN/None for the validator
        (:func:`technic.options.chains.validate_chains`) to count.

        Args:
            underlying: the underlying ticker (``AAPL``).
            session: the session the snapshot stands for (``date`` column; default: the New
                York date of ``day.last_updated``, else today in New York).
            contract_type, expiration_date: Polygon's filters (``call``/``put``; a date).
            limit: contracts per page (Polygon max 250).
            max_pages: stop after this many pages (None = all).

        Returns:
            DataFrame with the columns of :data:`technic.options.chains.OPTION_SCHEMA`
            (``date``/``expiration`` as ``datetime.date``); ``df.attrs``: ``pages``,
            ``source``. No contracts → an empty frame.

        Raises:
            PolygonAuthError, PolygonRateLimitError, PolygonPayloadError, PolygonError: as
            in :meth:`grouped_daily` (``details`` required in results).
        """
        path = f"/v3/snapshot/options/{quote(underlying, safe='')}"
        params: dict[str, Any] = {"limit": int(limit)}
        if contract_type:
            params["contract_type"] = contract_type
        if expiration_date is not None:
            params["expiration_date"] = _date_str(expiration_date)
        rows: list[dict[str, Any]] = []
        pages = 0
        for page in self._pages(path, params, max_pages):
            rows.extend(self._results(page, ("details",)))
            pages += 1
        fixed = dt.date.fromisoformat(_date_str(session)) if session is not None else None
        today = pd.Timestamp.now(tz=NEW_YORK).date()

        def obj(r: Mapping[str, Any], k: str) -> Mapping[str, Any]:
            v = r.get(k)
            return v if isinstance(v, Mapping) else {}

        def num(v: Any) -> float:
            try:
                x = float(v)
            except (TypeError, ValueError):
                return math.nan
            return x

        def day_of(r: Mapping[str, Any]) -> dt.date:
            if fixed is not None:
                return fixed
            ns = obj(r, "day").get("last_updated")
            if isinstance(ns, int | float) and ns > 0:
                return pd.Timestamp(int(ns), unit="ns", tz="UTC").tz_convert(NEW_YORK).date()
            return today

        def parse_day(v: Any) -> dt.date | None:
            try:
                return dt.date.fromisoformat(str(v))
            except ValueError:
                return None

        recs = []
        for r in rows:
            d, day, trade = obj(r, "details"), obj(r, "day"), obj(r, "last_trade")
            quote_, greeks, und = obj(r, "last_quote"), obj(r, "greeks"), obj(r, "underlying_asset")
            kind = str(d.get("contract_type") or "").lower()
            last = num(trade.get("price"))
            recs.append({
                "date": day_of(r), "underlying": und.get("ticker") or underlying,
                "expiration": parse_day(d.get("expiration_date")),
                "option_type": {"call": "C", "put": "P"}.get(kind, kind or None),
                "strike": num(d.get("strike_price")),
                "last_price": last if last == last else num(day.get("close")),
                "bid": num(quote_.get("bid")), "ask": num(quote_.get("ask")),
                "volume": num(day.get("volume")), "open_interest": num(r.get("open_interest")),
                "implied_vol": num(r.get("implied_volatility")),
                "delta": num(greeks.get("delta")), "gamma": num(greeks.get("gamma")),
                "theta": num(greeks.get("theta")), "vega": num(greeks.get("vega")),
                "underlying_price": num(und.get("price")),
            })
        cols = ["date", "underlying", "expiration", "option_type", "strike", "last_price",
                "bid", "ask", "volume", "open_interest", "implied_vol", "delta", "gamma",
                "theta", "vega", "underlying_price"]
        df = pd.DataFrame.from_records(recs, columns=cols)
        df.attrs.update(pages=pages, source=path)
        return df
