"""Polygon.io REST client (package; being split out of the former ``polygon.py``)."""

from technic.providers.polygon._http import *  # noqa: F403
from technic.providers.polygon._http import (  # noqa: F401
    _KEY_IN_TEXT,
    _KEY_SYNTAX,
    _RETRY_EXCEPTIONS,
    DAILY_TIMESPANS,
    EXCHANGES,
    FINANCIALS_FIELDS,
    INTRADAY_TIMESPANS,
    NEW_YORK,
    RETRY_STATUSES,
    SECURITY_TYPES,
    __all__,  # noqa: F401
    _checked_key,
    _date_str,
    _item_value,
    _parse_retry_after,
    _range_bound,
    _RateLimiter,
    _RetryableResponse,
    _scrub,
    log,
)
