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

The API key (``TECHNIC_POLYGON_API_KEY``) travels only in an ``Authorization: Bearer``
header and is redacted from every log line, message and repr; 429/5xx answers, connection
errors and timeouts are retried with backoff under a client-side rate limiter. How, in
detail: :mod:`._http`.

Layout (one responsibility a module; everything is re-exported here, so
``technic.providers.polygon.X`` is the import to use):

* :mod:`._http` — errors (:class:`PolygonError` and subclasses), the API key
  (:func:`api_key_from_env`), scrubbing, ``Retry-After``, the rate limiter, and the transport
  base class (session, retries, the paged GET, ``results`` checks)
* :mod:`.bars` — grouped daily and custom-range bars (:data:`BAR_COLUMNS`,
  :data:`INTRADAY_BAR_COLUMNS`)
* :mod:`.reference` — tickers, ticker details and splits (:data:`TICKER_COLUMNS`,
  :data:`SPLIT_COLUMNS`, :func:`map_security_type`, :func:`map_exchange`)
* :mod:`.financials` — quarterly financials (:data:`FINANCIALS_COLUMNS`,
  :func:`nearest_month_end`)
* :mod:`.options` — the option chain snapshot
* :mod:`.client` — :class:`PolygonClient`, the endpoint groups combined over the transport
"""

# Every name of the former single-file module stays importable from here, those outside
# ``__all__`` too (tests import ``_RateLimiter``): hence ``noqa: F401`` on these imports.
from technic.providers.polygon._http import (  # noqa: F401
    _KEY_IN_TEXT,
    _KEY_SYNTAX,
    _RETRY_EXCEPTIONS,
    API_KEY_ENV,
    DEFAULT_BASE_URL,
    NEW_YORK,
    RETRY_STATUSES,
    PolygonAuthError,
    PolygonError,
    PolygonPayloadError,
    PolygonRateLimitError,
    _checked_key,
    _date_str,
    _parse_retry_after,
    _RateLimiter,
    _RetryableResponse,
    _scrub,
    api_key_from_env,
    log,
)
from technic.providers.polygon.bars import (  # noqa: F401
    BAR_COLUMNS,
    DAILY_TIMESPANS,
    INTRADAY_BAR_COLUMNS,
    INTRADAY_TIMESPANS,
    _range_bound,
)
from technic.providers.polygon.client import PolygonClient
from technic.providers.polygon.financials import (  # noqa: F401
    FINANCIALS_COLUMNS,
    FINANCIALS_FIELDS,
    _item_value,
    nearest_month_end,
)
from technic.providers.polygon.reference import (  # noqa: F401
    EXCHANGES,
    SECURITY_TYPES,
    SPLIT_COLUMNS,
    TICKER_COLUMNS,
    map_exchange,
    map_security_type,
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

