"""Polygon.io (now also served as Massive) REST client: daily/intraday bars and reference data.

Only fetching and reshaping happen here; nothing touches the database. Bars frames use the
technic columns ``symbol, date, open, high, low, close, volume`` (daily and longer bars) or
``symbol, ts, open, high, low, close, volume`` (intraday bars, ``ts`` = UTC start of the bar).
Prices are USD per share and volume is shares (float64: Polygon reports split-adjusted volume
as a float). Symbols are kept exactly as Polygon returns them (CQS style, e.g. ``BRK.B``).
Rows are returned as received: a row with a missing value keeps it as NaN/NaT so that
:func:`technic.validation.validate_bars` counts it as a reject instead of this module crashing.

Endpoints used (https://polygon.io/docs/rest/stocks):

* ``GET /v2/aggs/grouped/locale/us/market/stocks/{date}`` — grouped daily bars (whole market)
* ``GET /v2/aggs/ticker/{ticker}/range/{multiplier}/{timespan}/{from}/{to}`` — custom bars
* ``GET /v3/reference/tickers`` and ``GET /v3/reference/tickers/{ticker}`` — reference data
* ``GET /v3/reference/splits`` — stock splits
* ``GET /vX/reference/financials`` — quarterly financials from SEC filings (XBRL), mapped to
  the rows of technic's ``fundamentals`` table (:data:`FINANCIALS_COLUMNS`)
* ``GET /v3/snapshot/options/{underlyingAsset}`` — an underlying's option chain snapshot

The API key (``TECHNIC_POLYGON_API_KEY``) is sent as ``Authorization: Bearer <key>`` (which
Polygon accepts in place of the ``apiKey`` query parameter), so it never appears in a URL,
including the ``next_url`` pages that are followed for pagination. It is never logged or put
into an exception message or repr; any ``apiKey=`` found in a URL or response excerpt is
redacted anyway, and so is the key itself wherever a server echoes it. A key that is not a
well-formed Bearer credential (a line break, a space or a control character inside it) is
refused before any request, with a message that does not show it.

Robustness: every HTTP attempt first takes a token from a client-side rate limiter
(``requests_per_minute``); 429, 500, 502, 503, 504, connection errors and timeouts are retried
with exponential backoff by :mod:`tenacity` (``Retry-After`` in seconds or as an HTTP date is
honoured, capped at ``max_wait``), up to ``max_attempts`` attempts in all. ``sleep`` and
``clock`` can be injected so tests never really wait.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import pandas as pd
import requests
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

__all__ = [
    "API_KEY_ENV",
    "BAR_COLUMNS",
    "DEFAULT_BASE_URL",
    "INTRADAY_BAR_COLUMNS",
    "FINANCIALS_COLUMNS",
    "SPLIT_COLUMNS",
    "TICKER_COLUMNS",
    "PolygonAuthError",
    "PolygonClient",
    "PolygonError",
    "PolygonPayloadError",
    "PolygonRateLimitError",
    "api_key_from_env",
    "map_exchange",
    "map_security_type",
    "nearest_month_end",
]

#: The package's logger (``technic.providers.polygon``), the name it had as one module.
log = logging.getLogger(__name__.rpartition(".")[0])

API_KEY_ENV = "TECHNIC_POLYGON_API_KEY"
DEFAULT_BASE_URL = "https://api.polygon.io"
NEW_YORK = "America/New_York"

BAR_COLUMNS = ("symbol", "date", "open", "high", "low", "close", "volume")
INTRADAY_BAR_COLUMNS = ("symbol", "ts", "open", "high", "low", "close", "volume")
TICKER_COLUMNS = ("symbol", "name", "exchange", "security_type", "is_etf", "active",
                  "polygon_type", "primary_exchange")
SPLIT_COLUMNS = ("symbol", "execution_date", "split_from", "split_to")
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

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
INTRADAY_TIMESPANS = frozenset({"second", "minute", "hour"})
DAILY_TIMESPANS = frozenset({"day", "week", "month", "quarter", "year"})

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

#: Transport failures worth retrying: refused/reset connections, timeouts, a body cut short.
_RETRY_EXCEPTIONS = (requests.ConnectionError, requests.Timeout,
                     requests.exceptions.ChunkedEncodingError)
_KEY_IN_TEXT = re.compile(r"(?i)(api_?key=)[^&\s\"']*")
#: What a key may be: an RFC 6750 §2.1 ``b64token`` (the syntax of a Bearer credential), so it
#: fits in an HTTP header as is and prints the same in ``repr`` as in ``str`` (which makes
#: :func:`_scrub` reliable). Polygon keys are letters, digits and ``_``.
_KEY_SYNTAX = re.compile(r"[A-Za-z0-9._~+/-]+=*")


# ----------------------------------------------------------------------------- errors


class PolygonError(RuntimeError):
    """A Polygon request failed (HTTP error, connection failure, ``status: ERROR`` payload).

    Attributes:
        path: the endpoint path and query of the failing request, without the API key.
        status: the HTTP status code, or ``None`` when no response arrived.
        excerpt: the first characters of the response body (key redacted), or ``""``.
    """

    def __init__(self, message: str, *, path: str = "", status: int | None = None,
                 excerpt: str = "") -> None:
        super().__init__(message)
        self.path = path
        self.status = status
        self.excerpt = excerpt


class PolygonAuthError(PolygonError):
    """401/403, or no key configured: the API key is bad, missing or lacks this entitlement."""


class PolygonPayloadError(PolygonError):
    """A response could not be used: malformed or truncated JSON, or required fields missing."""


class PolygonRateLimitError(PolygonError):
    """Still HTTP 429 (too many requests) after every retry attempt."""


class _RetryableResponse(Exception):
    """Internal: a response with a status in ``RETRY_STATUSES`` (triggers a tenacity retry)."""

    def __init__(self, response: requests.Response, retry_after: float | None) -> None:
        super().__init__(response.status_code)
        self.response = response
        self.retry_after = retry_after


# ----------------------------------------------------------------------------- helpers


def api_key_from_env(environ: Mapping[str, str] | None = None) -> str:
    """Return the Polygon API key from ``TECHNIC_POLYGON_API_KEY``.

    Args:
        environ: mapping to read instead of the settings (tests).

    Raises:
        PolygonAuthError: the variable is unset or empty, or the key is malformed (whitespace
            or control characters inside it; the message does not show the key).
    """
    if environ is None:
        from technic.config import get_settings

        secret = get_settings().polygon_api_key
        key = secret.get_secret_value().strip() if secret else ""
    else:
        key = environ.get(API_KEY_ENV, "").strip()
    if not key:
        raise PolygonAuthError(f"no Polygon API key: set {API_KEY_ENV}")
    return _checked_key(key)


def _checked_key(key: str) -> str:
    """``key`` if it is a well-formed Bearer credential (see ``_KEY_SYNTAX``).

    Leading and trailing whitespace has been stripped by the caller; anything else outside
    the syntax (a line break or a space inside, control characters, quotes, non-ASCII) is
    refused here, before any request, because such a key would be echoed by the HTTP layer's
    header check (with escapes that defeat the scrubbing of messages). The message never
    contains the key or any part of it.

    Raises:
        PolygonAuthError: the key is malformed.
    """
    if _KEY_SYNTAX.fullmatch(key) is None:
        raise PolygonAuthError(
            f"malformed Polygon API key: it contains whitespace, a line break, control or "
            f"other characters a key cannot have; set {API_KEY_ENV} to the key alone "
            f"(letters, digits, '-', '.', '_', '~', '+', '/')")
    return key


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


def _scrub(text: str, secret: str | None) -> str:
    """``text`` with any ``apiKey=…`` value and every spelling of ``secret`` (as is,
    percent-encoded, JSON-escaped) replaced by ``***``."""
    out = _KEY_IN_TEXT.sub(r"\1***", text)
    if secret:
        forms = {secret, quote(secret, safe=""), secret.replace("/", "\\/")}
        for form in sorted(forms, key=len, reverse=True):
            out = out.replace(form, "***")
    return out


def _date_str(value: str | dt.date | pd.Timestamp) -> str:
    if isinstance(value, str):
        return dt.date.fromisoformat(value.strip()[:10]).isoformat()
    if isinstance(value, pd.Timestamp | dt.datetime):
        return value.date().isoformat()
    return value.isoformat()


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


def _parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, when.timestamp() - now)


class _RateLimiter:
    """Token bucket: ``per_minute`` tokens a minute, at most ``burst`` saved up.

    ``acquire`` blocks (through the injected ``sleep``) until a token is available. Thread-safe.
    """

    def __init__(self, per_minute: float | None, burst: int, clock: Callable[[], float],
                 sleep: Callable[[float], None]) -> None:
        if per_minute is not None and not per_minute > 0:
            raise ValueError(f"requests_per_minute must be > 0 or None, got {per_minute}")
        if burst < 1:
            raise ValueError(f"rate_burst must be >= 1, got {burst}")
        self.rate = None if per_minute is None else per_minute / 60.0  # tokens per second
        self.burst = float(burst)
        self.clock = clock
        self.sleep = sleep
        self.tokens = float(burst)
        self.last: float | None = None
        self.lock = threading.Lock()

    def acquire(self) -> float:
        """Take one token; return the seconds waited."""
        if self.rate is None:
            return 0.0
        with self.lock:
            now = self.clock()
            if self.last is not None:
                self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
            self.last = now
            waited = 0.0
            if self.tokens < 1.0:
                waited = (1.0 - self.tokens) / self.rate
                self.sleep(waited)
                now = self.clock()
                self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
                self.last = now
                self.tokens = max(self.tokens, 1.0)  # a sleep that returned early still pays
            self.tokens -= 1.0
            return waited


# ----------------------------------------------------------------------------- client


class PolygonClient:
    """Polygon.io REST client over one :class:`requests.Session`.

    Args:
        api_key: the key; ``None`` → ``TECHNIC_POLYGON_API_KEY`` (see :func:`api_key_from_env`).
        base_url: scheme + host (+ optional path prefix) of the API, default
            ``https://api.polygon.io``. ``next_url`` pages are always fetched from this base
            (only their path and query are used), so the key is never sent to another host.
        timeout: per-request ``(connect, read)`` timeout in seconds.
        max_attempts: HTTP attempts per request in all (≥ 1; 1 = no retries).
        backoff_initial: first exponential backoff wait, seconds (doubles each retry).
        backoff_jitter: random extra wait in ``[0, backoff_jitter]`` seconds per retry.
        max_wait: cap on any single wait between attempts (also caps ``Retry-After``), seconds.
        requests_per_minute: client-side rate limit (token bucket); ``None`` = unlimited.
            The default 5 fits Polygon's free tier; paid plans can pass ``None`` or a larger
            number.
        rate_burst: requests that may go out back to back before the limit spaces them.
        session: a session to use (its headers get ``Authorization`` and ``User-Agent``);
            default a new one, closed by :meth:`close`.
        sleep: the function that waits (seconds); inject a recorder in tests.
        clock: monotonic clock in seconds, used by the rate limiter.

    Raises:
        PolygonAuthError: no key given and ``TECHNIC_POLYGON_API_KEY`` unset, or the key is
            malformed (whitespace, a line break or control characters inside it).
        ValueError: a parameter out of range.
    """

    def __init__(self, api_key: str | None = None, *, base_url: str = DEFAULT_BASE_URL,
                 timeout: float | tuple[float, float] = (5.0, 60.0), max_attempts: int = 5,
                 backoff_initial: float = 1.0, backoff_jitter: float = 1.0,
                 max_wait: float = 60.0, requests_per_minute: float | None = 5,
                 rate_burst: int = 1, session: requests.Session | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        key = api_key.strip() if api_key is not None else api_key_from_env()
        if not key:
            raise PolygonAuthError("empty Polygon API key")
        key = _checked_key(key)
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
        if backoff_initial < 0 or backoff_jitter < 0 or max_wait < 0:
            raise ValueError("backoff_initial, backoff_jitter and max_wait must be >= 0")
        self.__key = key
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff_initial = backoff_initial
        self.backoff_jitter = backoff_jitter
        self.max_wait = max_wait
        self._sleep = sleep
        self._clock = clock
        self._limiter = _RateLimiter(requests_per_minute, rate_burst, clock, sleep)
        self._own_session = session is None
        self._session = session if session is not None else requests.Session()
        self._session.headers["Authorization"] = f"Bearer {key}"
        self._session.headers.setdefault("User-Agent", "technic-polygon/0.1")
        self._backoff = (wait_exponential(multiplier=backoff_initial, max=max_wait)
                         + wait_random(0, backoff_jitter))

    def __repr__(self) -> str:
        return f"PolygonClient(base_url={self.base_url!r}, api_key='***')"

    def close(self) -> None:
        """Close the session if this client created it."""
        if self._own_session:
            self._session.close()

    def __enter__(self) -> PolygonClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ transport

    def _scrub(self, text: str) -> str:
        return _scrub(text, self.__key)

    def _url(self, path_or_url: str) -> tuple[str, str]:
        """(full URL on ``base_url``, display path) for an endpoint path or a ``next_url``."""
        parts = urlsplit(path_or_url)
        path = parts.path if parts.path.startswith("/") else "/" + parts.path
        query = "&".join(p for p in parts.query.split("&")
                         if p and not p.lower().startswith(("apikey=", "api_key=")))
        rel = path + (f"?{query}" if query else "")
        return self.base_url + rel, rel

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        if isinstance(exc, _RetryableResponse) and exc.retry_after is not None:
            return min(exc.retry_after, self.max_wait)
        return min(float(self._backoff(state)), self.max_wait)

    def _before_sleep(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        what = (f"HTTP {exc.response.status_code}" if isinstance(exc, _RetryableResponse)
                else type(exc).__name__)
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        log.warning("polygon %s: %s (attempt %d/%d), retrying in %.2fs",
                    state.kwargs.get("display", "?"), what, state.attempt_number,
                    self.max_attempts, wait)

    def _attempt(self, url: str, params: Mapping[str, Any] | None, *, display: str
                 ) -> requests.Response:
        self._limiter.acquire()
        log.debug("polygon GET %s", display)
        resp = self._session.get(url, params=params, timeout=self.timeout)
        if resp.status_code in RETRY_STATUSES:
            retry_after = _parse_retry_after(resp.headers.get("Retry-After"), time.time())
            raise _RetryableResponse(resp, retry_after)
        return resp

    def _get_json(self, path_or_url: str, params: Mapping[str, Any] | None = None
                  ) -> dict[str, Any]:
        """GET one page and return its JSON object (retries, rate limit, error mapping)."""
        url, rel = self._url(path_or_url)
        display = rel
        if params:
            shown = "&".join(f"{k}={v}" for k, v in params.items()
                             if str(k).lower() not in ("apikey", "api_key"))
            display = rel + ("&" if "?" in rel else "?") + shown
        display = self._scrub(display)
        retrying = Retrying(
            stop=stop_after_attempt(self.max_attempts), wait=self._wait,
            retry=retry_if_exception_type(
                (_RetryableResponse, *_RETRY_EXCEPTIONS)),
            sleep=self._sleep, before_sleep=self._before_sleep, reraise=True)
        try:
            resp = retrying(self._attempt, url, params, display=display)
        except _RetryableResponse as exc:
            r = exc.response
            excerpt = self._scrub(r.text[:200])
            cls = PolygonRateLimitError if r.status_code == 429 else PolygonError
            raise cls(f"GET {display}: HTTP {r.status_code} after {self.max_attempts} "
                      f"attempt(s): {excerpt!r}", path=display, status=r.status_code,
                      excerpt=excerpt) from None
        except _RETRY_EXCEPTIONS as exc:
            raise PolygonError(f"GET {display}: {type(exc).__name__} after "
                               f"{self.max_attempts} attempt(s): "
                               f"{self._scrub(str(exc))[:300]}", path=display) from None
        except requests.RequestException as exc:
            raise PolygonError(f"GET {display}: {type(exc).__name__}: "
                               f"{self._scrub(str(exc))[:300]}", path=display) from None
        return self._decode(resp, display)

    def _decode(self, resp: requests.Response, display: str) -> dict[str, Any]:
        status = resp.status_code
        excerpt = self._scrub(resp.text[:200])
        if status in (401, 403):
            raise PolygonAuthError(f"GET {display}: HTTP {status}: bad or missing API key, or "
                                   f"the plan lacks this data: {excerpt!r}", path=display,
                                   status=status, excerpt=excerpt)
        if status >= 400:
            raise PolygonError(f"GET {display}: HTTP {status}: {excerpt!r}", path=display,
                               status=status, excerpt=excerpt)
        try:
            payload = json.loads(resp.content)
        except (ValueError, UnicodeDecodeError) as exc:
            raise PolygonPayloadError(
                f"GET {display}: HTTP {status} but the body is not valid JSON "
                f"({type(exc).__name__}: {exc}); {len(resp.content)} bytes: {excerpt!r}",
                path=display, status=status, excerpt=excerpt) from None
        if not isinstance(payload, dict):
            raise PolygonPayloadError(f"GET {display}: expected a JSON object, got "
                                      f"{type(payload).__name__}: {excerpt!r}",
                                      path=display, status=status, excerpt=excerpt)
        if str(payload.get("status", "OK")).upper() in ("ERROR", "NOT_AUTHORIZED"):
            msg = self._scrub(str(payload.get("error") or payload.get("message") or ""))[:200]
            cls = (PolygonAuthError if str(payload.get("status")).upper() == "NOT_AUTHORIZED"
                   else PolygonError)
            raise cls(f"GET {display}: status {payload.get('status')}: {msg!r}", path=display,
                      status=status, excerpt=excerpt)
        payload["_display"] = display
        return payload

    def _pages(self, path: str, params: Mapping[str, Any] | None,
               max_pages: int | None = None) -> Iterator[dict[str, Any]]:
        """Yield each page of a paginated endpoint, following ``next_url`` until absent."""
        page = self._get_json(path, params)
        seen: set[str] = set()
        n = 1
        while True:
            yield page
            nxt = page.get("next_url")
            if not nxt or (max_pages is not None and n >= max_pages):
                return
            if not isinstance(nxt, str):
                raise PolygonPayloadError(f"GET {page['_display']}: next_url is not a string",
                                          path=page["_display"])
            if nxt in seen:
                raise PolygonPayloadError(f"GET {page['_display']}: next_url repeats an "
                                          f"earlier page (pagination loop)",
                                          path=page["_display"])
            seen.add(nxt)
            page = self._get_json(nxt)  # the key travels in the session header
            n += 1

    @staticmethod
    def _results(page: dict[str, Any], required: tuple[str, ...]) -> list[dict[str, Any]]:
        """``results`` of a page as a list of objects, checked for the required fields."""
        display = page["_display"]
        results = page.get("results")
        count = page.get("resultsCount", page.get("count"))
        if results is None:
            if isinstance(count, int) and count > 0:
                raise PolygonPayloadError(f"GET {display}: resultsCount={count} but no "
                                          f"results (truncated payload?)", path=display)
            return []
        if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
            raise PolygonPayloadError(f"GET {display}: results is not a list of objects",
                                      path=display)
        if results:
            missing = [f for f in required if not any(f in r for r in results)]
            if missing:
                raise PolygonPayloadError(f"GET {display}: results lack required field(s) "
                                          f"{', '.join(missing)}", path=display)
        return results

    # ------------------------------------------------------------------ bars

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

    # ------------------------------------------------------------------ reference data

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

    # ------------------------------------------------------------------ fundamentals

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
    # ------------------------------------------------------------------ options

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
