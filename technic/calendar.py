"""The NYSE trading calendar (``exchange_calendars``, XNYS): sessions, holidays, half days.

Backfills iterate over sessions, not weekdays, so holidays are never requested, and an
"as of" date resolves to the last *complete* session (one whose close has passed).
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import pandas as pd


@lru_cache(maxsize=1)
def _xnys():
    import exchange_calendars as xc

    return xc.get_calendar("XNYS")


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


def should_run(job: str, when: pd.Timestamp) -> bool:
    """Whether a scheduled job fired at ``when`` (tz-aware) has work to do.

    ``"eod"``: ``when`` falls on a session day at or after its close (13:00 ET on half
    days); ``"intraday"``: the session is open; anything else (nightly training, weekly
    checks): always. Schedules are plain crons; the flows call this first and skip holidays.

    Raises:
        ValueError: ``when`` has no time zone.
    """
    ts = pd.Timestamp(when)
    if ts.tzinfo is None:
        raise ValueError("should_run needs a tz-aware time")
    if job == "eod":
        day = ts.tz_convert("America/New_York").date()
        return is_session(day) and ts.tz_convert("UTC") >= session_close(day)
    if job == "intraday":
        return is_open(ts)
    return True
