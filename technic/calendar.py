"""The NYSE trading calendar (``exchange_calendars``, XNYS): sessions, holidays, half days.

Backfills iterate over sessions, not weekdays, so holidays are never requested, and an
"as of" date resolves to the last *complete* session (one whose close has passed).
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import numpy as np
import pandas as pd

#: Bars dated before this are rejected: market data this old is out of scope, and the
#: calendar's early history is not trusted (exchange_calendars' XNYS counts 1900-01-01 and
#: 1950-01-02 as sessions).
EARLIEST_SESSION_DATE = dt.date(1970, 1, 1)

#: Codes of :func:`session_codes`.
SESSION, WEEKEND, HOLIDAY, BEFORE_CALENDAR, FUTURE = 0, 1, 2, 3, 4


def as_day(day: np.datetime64 | dt.date | str) -> np.datetime64:
    """``day`` as a ``datetime64[D]`` date (a datetime64 of a finer unit, a datetime or a
    ``pd.Timestamp`` is truncated to its date; a str is parsed as ISO 8601).

    Raises:
        ValueError: a str that is not an ISO 8601 date.
    """
    if isinstance(day, np.datetime64):
        return day.astype("datetime64[D]")
    return np.datetime64(day, "D")


@lru_cache(maxsize=1)
def _xnys():
    import exchange_calendars as xc

    return xc.get_calendar("XNYS")


@lru_cache(maxsize=4)
def _session_days(start_year: int | None) -> np.ndarray:
    """Sorted NYSE session dates as int days since 1970 (the default calendar — about 20
    years back — or one reaching back to ``start_year``)."""
    if start_year is None:
        cal = _xnys()
    else:
        import exchange_calendars as xc

        cal = xc.get_calendar("XNYS", start=f"{start_year}-01-01", end=_xnys().last_session)
    return cal.sessions.to_numpy().astype("datetime64[D]").astype(np.int64)


def last_sessions(end: dt.date, n: int) -> np.ndarray:
    """The ``n`` NYSE sessions up to and including ``end``, oldest first, as
    ``datetime64[D]``.

    Raises:
        ValueError: fewer than ``n`` sessions between 1970 and ``end``.
    """
    e = np.datetime64(end, "D").astype(np.int64)
    known = _session_days(None)
    k = np.searchsorted(known, e, side="right")
    if k < n:
        known = _session_days(EARLIEST_SESSION_DATE.year)
        k = np.searchsorted(known, e, side="right")
        if k < n:
            raise ValueError(f"only {k} NYSE sessions up to {end} since "
                             f"{EARLIEST_SESSION_DATE}, {n} asked")
    return known[k - n:k].astype("datetime64[D]")


def today_new_york(now: pd.Timestamp | None = None) -> dt.date:
    """Today's date in New York (``now``: a tz-aware time; default the clock)."""
    now = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now)
    return now.tz_convert("America/New_York").date()


def session_codes(days: np.ndarray, today: dt.date | None = None) -> np.ndarray:
    """Classify dates against the NYSE calendar (vectorized; distinct dates are looked up).

    Args:
        days: ``(n,)`` ``datetime64[D]`` (or int days since 1970).
        today: the last acceptable date (default: today in New York).

    Returns:
        ``(n,)`` int8: :data:`SESSION`, :data:`FUTURE` (after ``today``), :data:`WEEKEND`,
        :data:`HOLIDAY` (a weekday the exchange was closed: holidays, closures such as
        2025-01-09) or :data:`BEFORE_CALENDAR` (before :data:`EARLIEST_SESSION_DATE`).
    """
    d = np.asarray(days).astype("datetime64[D]").astype(np.int64)
    out = np.zeros(len(d), dtype=np.int8)
    if not len(d):
        return out
    today = today or today_new_york()
    uniq, inv = np.unique(d, return_inverse=True)
    codes = np.zeros(len(uniq), dtype=np.int8)
    t = np.datetime64(today, "D").astype(np.int64)
    earliest = np.datetime64(EARLIEST_SESSION_DATE, "D").astype(np.int64)
    known = _session_days(None)
    past = uniq[(uniq <= t) & (uniq >= earliest)]
    if len(past) and past[0] < known[0]:
        start = np.datetime64(int(past[0]), "D").astype("datetime64[Y]").astype(int) + 1970
        known = _session_days(int(start))
    codes[(uniq + 3) % 7 >= 5] = WEEKEND  # 1970-01-01 was a Thursday
    idx = np.searchsorted(known, uniq).clip(0, len(known) - 1)
    closed = (known[idx] != uniq) & (codes == SESSION)
    codes[closed] = HOLIDAY
    codes[uniq < earliest] = BEFORE_CALENDAR
    codes[uniq > t] = FUTURE
    out[:] = codes[inv]
    return out


def sessions(start: dt.date, end: dt.date) -> list[dt.date]:
    """NYSE sessions from ``start`` to ``end`` inclusive, oldest first (holidays excluded).

    Raises:
        ValueError: ``start`` after ``end``, or a date outside the calendar's range.
    """
    if start > end:
        raise ValueError(f"start {start} is after end {end}")
    cal = _xnys()
    try:
        idx = cal.sessions_in_range(pd.Timestamp(start), pd.Timestamp(end))
    except Exception as e:  # exchange_calendars raises its own DateOutOfBounds errors
        raise ValueError(f"{start} … {end} is outside the NYSE calendar: {e}") from None
    return [d.date() for d in idx]


def is_session(day: dt.date) -> bool:
    """True when the NYSE trades on ``day``."""
    return _xnys().is_session(pd.Timestamp(day))


def session_close(day: dt.date) -> pd.Timestamp:
    """Close time (UTC) of the session ``day`` — 13:00 New York time on half days.

    Raises:
        ValueError: ``day`` is not a session.
    """
    if not is_session(day):
        raise ValueError(f"{day} is not an NYSE session")
    return _xnys().session_close(pd.Timestamp(day))


def last_complete_session(now: pd.Timestamp | None = None) -> dt.date:
    """The latest session whose close is at or before ``now`` (UTC; default: the clock)."""
    now = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now).tz_convert("UTC")
    cal = _xnys()
    day = cal.date_to_session(now.tz_convert("America/New_York").normalize().tz_localize(None),
                              direction="previous")
    if cal.session_close(day) > now:
        day = cal.previous_session(day)
    return day.date()


def is_open(when: pd.Timestamp) -> bool:
    """True when the NYSE regular session is open at ``when`` (tz-aware), half days included."""
    ts = pd.Timestamp(when).tz_convert("UTC")
    day = ts.tz_convert("America/New_York").date()
    if not is_session(day):
        return False
    cal = _xnys()
    return cal.session_open(pd.Timestamp(day)) <= ts <= cal.session_close(pd.Timestamp(day))


def skip_reason(job: str, when: pd.Timestamp) -> str | None:
    """Why a scheduled job fired at ``when`` (tz-aware) has no market work to do, or None
    when it has.

    ``"eod"``: work when ``when`` falls on a session day at or after its close (13:00 ET on
    half days); ``"intraday"``: while the regular session is open; anything else (nightly
    training, weekly checks): always. Schedules are plain crons; the flows ask this first.

    Returns:
        None, or one line naming the New York time and the rule, e.g.
        ``"2025-07-04 16:30 America/New_York: 2025-07-04 is not an NYSE session (weekend or
        holiday)"``.

    Raises:
        ValueError: ``when`` has no time zone.
    """
    ts = pd.Timestamp(when)
    if ts.tzinfo is None:
        raise ValueError("skip_reason needs a tz-aware time")
    if job not in ("eod", "intraday"):
        return None
    ny = ts.tz_convert("America/New_York")
    day = ny.date()
    at = f"{ny:%Y-%m-%d %H:%M} America/New_York"
    if not is_session(day):
        return f"{at}: {day} is not an NYSE session (weekend or holiday)"
    close = session_close(day)
    close_ny = f"{close.tz_convert('America/New_York'):%H:%M}"
    if job == "eod":
        if ts.tz_convert("UTC") < close:
            return f"{at}: before the {close_ny} close of the {day} session"
        return None
    if not is_open(ts):
        open_ny = f"{_xnys().session_open(pd.Timestamp(day)).tz_convert('America/New_York'):%H:%M}"
        return f"{at}: outside the {day} regular session ({open_ny}-{close_ny})"
    return None


def should_run(job: str, when: pd.Timestamp) -> bool:
    """Whether a scheduled job fired at ``when`` (tz-aware) has work to do: no
    :func:`skip_reason`.

    Raises:
        ValueError: ``when`` has no time zone.
    """
    ts = pd.Timestamp(when)
    if ts.tzinfo is None:
        raise ValueError("should_run needs a tz-aware time")
    return skip_reason(job, ts) is None
