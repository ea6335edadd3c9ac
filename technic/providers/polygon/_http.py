"""Polygon transport: errors, the API key, retries, the rate limiter and the paged GET.

Everything that is about talking to ``api.polygon.io`` and not about one endpoint lives here;
the endpoint groups (:mod:`.bars`, :mod:`.reference`, :mod:`.financials`, :mod:`.options`)
build on :class:`_PolygonHTTP`, and :class:`technic.providers.polygon.PolygonClient` combines
them.

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

Also here, because every endpoint group needs them: :func:`_date_str` (a date query
parameter) and ``NEW_YORK`` (the exchange time zone that bar and snapshot dates are read in).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Self
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

#: The package's logger (``technic.providers.polygon``), the name it had as one module.
log = logging.getLogger(__name__.rpartition(".")[0])

API_KEY_ENV = "TECHNIC_POLYGON_API_KEY"
DEFAULT_BASE_URL = "https://api.polygon.io"
NEW_YORK = "America/New_York"

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

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


# ----------------------------------------------------------------------------- client base


class _PolygonHTTP:
    """Settings, session and transport of :class:`technic.providers.polygon.PolygonClient`.

    The endpoint groups subclass it; its constructor's arguments are documented on
    ``PolygonClient``. It owns the key, the :class:`requests.Session`, the rate limiter and
    the tenacity retry policy, and offers the endpoint methods ``_get_json`` (one page),
    ``_pages`` (``next_url`` pagination) and ``_results`` (a page's checked ``results``).
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

    def __enter__(self) -> Self:
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

