"""``PolygonClient``: the Polygon REST client, one class made of the endpoint groups.

Each group is a mixin over the shared transport (:class:`._http._PolygonHTTP`: key, session,
rate limiter, retries, paged GET): bars (:mod:`.bars`), reference data (:mod:`.reference`),
fundamentals (:mod:`.financials`) and option chains (:mod:`.options`).
"""

from __future__ import annotations

from technic.providers.polygon.bars import _BarsEndpoints
from technic.providers.polygon.financials import _FinancialsEndpoints
from technic.providers.polygon.options import _OptionsEndpoints
from technic.providers.polygon.reference import _ReferenceEndpoints

__all__ = ["PolygonClient"]


class PolygonClient(_BarsEndpoints, _ReferenceEndpoints, _FinancialsEndpoints, _OptionsEndpoints):
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
