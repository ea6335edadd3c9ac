"""The evaluation protocol: the ONE place that declares which dates of a data set are the
locked test period and which are the design period.

Rule: the **locked test period** of any data set is its last :data:`LOCKED_TEST_MONTHS`
calendar months of trading dates (a function of the data's own date range only). No design
choice — a score's weights, a hyperparameter, the choice of the default rank — may look at a
date in it or at a forward return that reaches into it. The **design period** is every earlier
date whose longest forward window (``max_horizon`` bars) ends before the first locked-test
date (purged: López de Prado, *Advances in Financial Machine Learning*, 2018, §7.4.1), so no
design label shares a close with the test period.

Each data set is split on its own (the 2022–25 and 2014–16 bars are separate periods, never
joined into one series).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: Length of the locked test period: the last 12 calendar months of every data set.
LOCKED_TEST_MONTHS = 12


@dataclass(frozen=True)
class Split:
    """Design and locked-test periods of one data set (dates inclusive).

    Attributes:
        data_start, data_end: the data set's first and last trading date.
        design_start, design_end: design-period dates (``design_end`` = the last date whose
            ``max_horizon``-bar forward window ends before ``test_start``).
        test_start, test_end: the locked test period (``test_end`` = ``data_end``).
        max_horizon: the purge length in bars.
    """

    data_start: dt.date
    data_end: dt.date
    design_start: dt.date
    design_end: dt.date
    test_start: dt.date
    test_end: dt.date
    max_horizon: int

    def period(self, dates: Sequence | np.ndarray | pd.Series | pd.DatetimeIndex
               ) -> np.ndarray:
        """Label each date ``"design"``, ``"test"`` or ``""`` (in the purge gap or outside
        the data). Returns an ``(n,) object`` array."""
        d = pd.to_datetime(pd.Series(np.asarray(dates))).dt.date.to_numpy()
        out = np.full(len(d), "", dtype=object)
        out[(d >= self.design_start) & (d <= self.design_end)] = "design"
        out[(d >= self.test_start) & (d <= self.test_end)] = "test"
        return out

    def describe(self) -> dict[str, str]:
        """The split as text (JSON-ready)."""
        return {"design": f"{self.design_start} … {self.design_end}",
                "test": f"{self.test_start} … {self.test_end}",
                "data": f"{self.data_start} … {self.data_end}",
                "purge_bars": str(self.max_horizon)}


def locked_split(calendar: Sequence | np.ndarray | pd.DatetimeIndex, max_horizon: int = 10,
                 months: int = LOCKED_TEST_MONTHS) -> Split:
    """The design / locked-test split of a data set from its trading calendar.

    Args:
        calendar: every trading date of the data set (any order; duplicates allowed).
        max_horizon: the longest forward horizon evaluated, in bars (the purge).
        months: locked-test length in calendar months (default :data:`LOCKED_TEST_MONTHS`;
            other values are for tests only).

    Returns:
        The :class:`Split`: ``test_start`` = the first trading date after
        ``data_end − months``; the design period ends ``max_horizon`` trading dates before it.

    Raises:
        ValueError: fewer dates than the split needs (no design date would remain).
    """
    cal = np.unique(pd.to_datetime(np.asarray(calendar)).to_numpy().astype("datetime64[D]"))
    if len(cal) == 0:
        raise ValueError("an empty calendar has no locked test period")
    end = pd.Timestamp(cal[-1])
    cut = np.datetime64((end - pd.DateOffset(months=months)).date(), "D")
    i_test = int(np.searchsorted(cal, cut, side="right"))
    i_design_end = i_test - max_horizon - 1
    if i_design_end < 0 or i_test >= len(cal):
        raise ValueError(f"{len(cal)} dates ({cal[0]} … {cal[-1]}) are too few for a "
                         f"{months}-month locked test period and a design period")
    day = lambda x: pd.Timestamp(x).date()  # noqa: E731
    return Split(data_start=day(cal[0]), data_end=day(cal[-1]), design_start=day(cal[0]),
                 design_end=day(cal[i_design_end]), test_start=day(cal[i_test]),
                 test_end=day(cal[-1]), max_horizon=int(max_horizon))
