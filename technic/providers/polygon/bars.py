"""Polygon bars: grouped daily bars of the whole market and one ticker's custom-range bars.

Bars frames use the technic columns ``symbol, date, open, high, low, close, volume`` (daily and
longer bars, :data:`BAR_COLUMNS`) or ``symbol, ts, open, high, low, close, volume`` (intraday
bars, :data:`INTRADAY_BAR_COLUMNS`, ``ts`` = UTC start of the bar). Prices are USD per share
and volume is shares (float64: Polygon reports split-adjusted volume as a float). Symbols are
kept exactly as Polygon returns them (CQS style, e.g. ``BRK.B``). Rows are returned as
received: a row with a missing value keeps it as NaN/NaT so that
:func:`technic.validation.validate_bars` counts it as a reject instead of this module crashing.

Endpoints:

* ``GET /v2/aggs/grouped/locale/us/market/stocks/{date}`` — grouped daily bars (whole market)
* ``GET /v2/aggs/ticker/{ticker}/range/{multiplier}/{timespan}/{from}/{to}`` — custom bars
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import quote

import pandas as pd

from technic.providers.polygon._http import NEW_YORK, _date_str, _PolygonHTTP

BAR_COLUMNS = ("symbol", "date", "open", "high", "low", "close", "volume")
INTRADAY_BAR_COLUMNS = ("symbol", "ts", "open", "high", "low", "close", "volume")
INTRADAY_TIMESPANS = frozenset({"second", "minute", "hour"})
DAILY_TIMESPANS = frozenset({"day", "week", "month", "quarter", "year"})


def _range_bound(value: str | int | dt.date | dt.datetime | pd.Timestamp) -> str:
    """``from``/``to`` of the aggregates endpoint: ``YYYY-MM-DD`` or a ms epoch (datetimes)."""
    if isinstance(value, bool):
        raise TypeError("range bound must be a date, datetime, ISO date string or ms epoch")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, pd.Timestamp | dt.datetime):
        ts = pd.Timestamp(value)
        if ts.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: give a timezone (or pass a date)")
        return str(int(ts.timestamp() * 1000))
    return _date_str(value)



class _BarsEndpoints(_PolygonHTTP):
    """:meth:`grouped_daily` and :meth:`aggregates` of ``PolygonClient``."""

    @staticmethod
    def _bars_frame(rows: list[dict[str, Any]], symbol: str | None, intraday: bool
                    ) -> pd.DataFrame:
        cols = INTRADAY_BAR_COLUMNS if intraday else BAR_COLUMNS
        if not rows:
            df = pd.DataFrame({c: pd.Series(dtype="float64") for c in cols})
            df["symbol"] = pd.Series(dtype=object)
            df[cols[1]] = pd.Series(dtype="datetime64[ns, UTC]" if intraday
                                    else "datetime64[ns]")
            return df[list(cols)]
        raw = pd.DataFrame.from_records(rows)
        t = pd.to_datetime(pd.to_numeric(raw.get("t"), errors="coerce"), unit="ms", utc=True)
        when = t if intraday else t.dt.tz_convert(NEW_YORK).dt.tz_localize(None).dt.normalize()
        sym = raw["T"].astype(object) if symbol is None else pd.Series([symbol] * len(raw))
        out = pd.DataFrame({"symbol": sym.where(sym.notna(), None), cols[1]: when})
        for src, dst in (("o", "open"), ("h", "high"), ("l", "low"), ("c", "close"),
                         ("v", "volume")):
            out[dst] = pd.to_numeric(raw[src], errors="coerce").astype("float64") \
                if src in raw else float("nan")
        return out[list(cols)]

    def grouped_daily(self, date: str | dt.date, adjusted: bool = True,
                      include_otc: bool = False) -> pd.DataFrame:
        """Daily bars of every US stock for one trading date (one request).

        Source: ``GET /v2/aggs/grouped/locale/us/market/stocks/{date}``. Fields mapped:
        ``T`` → ``symbol``, ``o h l c v`` → ``open high low close volume``, ``t`` (ms epoch
        UTC) → ``date`` = the America/New_York calendar date of the bar.

        Args:
            date: the trading date (``YYYY-MM-DD`` or a date).
            adjusted: split-adjusted prices/volume (Polygon's ``adjusted`` parameter).
            include_otc: also return OTC securities.

        Returns:
            DataFrame ``symbol`` (str), ``date`` (``datetime64[ns]``, naive midnight of the New
            York date), ``open, high, low, close`` (float64, USD/share), ``volume`` (float64,
            shares), ``adjusted`` (bool, the flag the response reports, else the one
            requested); one row per result. A market holiday (``resultsCount: 0``, no
            ``results``) gives an empty frame with these columns. ``df.attrs`` holds
            ``adjusted``, ``request_id`` and ``source``.

        Raises:
            PolygonAuthError: 401/403. PolygonRateLimitError: 429 after all retries.
            PolygonPayloadError: malformed JSON or results lacking ``T``/``t``/OHLCV.
            PolygonError: any other HTTP or connection failure.
        """
        day = _date_str(date)
        path = f"/v2/aggs/grouped/locale/us/market/stocks/{day}"
        page = self._get_json(path, {"adjusted": str(adjusted).lower(),
                                     "include_otc": str(include_otc).lower()})
        rows = self._results(page, ("T", "t", "o", "h", "l", "c", "v"))
        df = self._bars_frame(rows, None, intraday=False)
        flag = page.get("adjusted")
        flag = bool(flag) if isinstance(flag, bool) else adjusted
        df["adjusted"] = pd.Series([flag] * len(df), index=df.index, dtype=bool)
        df.attrs.update(adjusted=flag, request_id=page.get("request_id"), source=path)
        return df

    def aggregates(self, symbol: str, multiplier: int, timespan: str,
                   start: str | int | dt.date | dt.datetime, end: str | int | dt.date | dt.datetime,
                   adjusted: bool = True, limit: int = 50_000,
                   max_pages: int | None = None) -> pd.DataFrame:
        """Bars of one ticker over a range, following ``next_url`` pagination.

        Source: ``GET /v2/aggs/ticker/{ticker}/range/{multiplier}/{timespan}/{from}/{to}``
        (``sort=asc``). ``start``/``end`` are inclusive: ISO dates (``YYYY-MM-DD``/dates),
        ms epochs (int) or timezone-aware datetimes (sent as ms epochs).

        Args:
            symbol: Polygon ticker (``AAPL``, ``BRK.B``).
            multiplier: bars of ``multiplier`` × ``timespan`` (≥ 1).
            timespan: ``second, minute, hour`` (intraday) or ``day, week, month, quarter,
                year``.
            adjusted: split-adjusted prices/volume.
            limit: base aggregates per page requested (Polygon max 50,000).
            max_pages: stop after this many pages (``None`` = all).

        Returns:
            Daily and longer bars: ``symbol, date, open, high, low, close, volume`` (``date``
            = New York date of the bar start, ``datetime64[ns]``). Intraday bars: ``symbol,
            ts, open, high, low, close, volume`` with ``ts`` the bar START as
            ``datetime64[ns, UTC]``. Prices float64 USD/share, volume float64 shares; rows in
            Polygon's order (ascending time). ``df.attrs``: ``adjusted``, ``pages``,
            ``source``. No data → an empty frame with the same columns.

        Raises:
            ValueError: unknown timespan or multiplier < 1.
            PolygonAuthError, PolygonRateLimitError, PolygonPayloadError, PolygonError: as in
            :meth:`grouped_daily` (``t``/OHLCV required in results).
        """
        ts_name = timespan.strip().lower()
        if ts_name not in INTRADAY_TIMESPANS | DAILY_TIMESPANS:
            raise ValueError(f"unknown timespan {timespan!r}; expected one of "
                             f"{sorted(INTRADAY_TIMESPANS | DAILY_TIMESPANS)}")
        if int(multiplier) < 1:
            raise ValueError(f"multiplier must be >= 1, got {multiplier}")
        intraday = ts_name in INTRADAY_TIMESPANS
        path = (f"/v2/aggs/ticker/{quote(symbol, safe='')}/range/{int(multiplier)}/{ts_name}/"
                f"{_range_bound(start)}/{_range_bound(end)}")
        params = {"adjusted": str(adjusted).lower(), "sort": "asc", "limit": int(limit)}
        rows: list[dict[str, Any]] = []
        flag: bool | None = None
        pages = 0
        for page in self._pages(path, params, max_pages):
            rows.extend(self._results(page, ("t", "o", "h", "l", "c", "v")))
            if isinstance(page.get("adjusted"), bool):
                flag = page["adjusted"]
            pages += 1
        df = self._bars_frame(rows, symbol, intraday=intraday)
        df.attrs.update(adjusted=adjusted if flag is None else flag, pages=pages, source=path)
        return df
