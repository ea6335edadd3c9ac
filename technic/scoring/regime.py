"""Market regime of a scan date: trend, breadth and volatility state → a label (docs/scoring.md).

Inputs:

* the **market index**: an equal-weighted, daily-rebalanced index of the universe's common
  stocks, built from stored bars (:mod:`technic.store.market`): each trading date's return is
  the mean daily return of every non-ETF symbol whose previous close is ≥ $5, each return
  clipped to [−50 %, +100 %] (bad prints, splits the vendor missed). No index ETF is assumed.
* **trend** = index level / its 200-date simple average (``trend_ratio``; > 1 = above);
* **breadth** = share of the scan's filtered universe whose close is above its own 50-bar SMA
  (symbols without an ``sma_50`` are left out), fraction;
* **volatility state** = percentile of the index's 20-date realized volatility (std of daily
  returns × √252, annualized fraction) among its values over the last 252 dates (share of
  those values ≤ today's, so 1.0 = the highest of the year).

Label:

* ``risk_on`` — trend_ratio > 1, breadth ≥ 0.5 and vol percentile < 0.8;
* ``risk_off`` — trend_ratio ≤ 1 and (breadth < 0.5 or vol percentile ≥ 0.8);
* ``neutral`` — anything else, including a short history (trend or volatility undefined:
  fewer than 200 index dates, or fewer than 60 volatility values).

Every value uses only bars on or before the scan date.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

TREND_WINDOW = 200
VOL_WINDOW = 20
VOL_HISTORY = 252
VOL_MIN_HISTORY = 60
BREADTH_THRESHOLD = 0.5
VOL_STRESS_PCT = 0.8
LABELS: tuple[str, ...] = ("risk_on", "neutral", "risk_off")


@dataclass(frozen=True)
class Regime:
    """Regime of one date: the label and the numbers it came from (units in the module doc)."""

    label: str
    trend_ratio: float
    breadth: float
    index_vol_20: float
    vol_percentile: float
    index_dates: int

    def facts(self) -> dict:
        """JSON-safe dict (NaN → None) for ``scan_runs.regime_facts``."""
        return {k: (None if isinstance(v, float) and not np.isfinite(v) else v)
                for k, v in asdict(self).items()}


def breadth(df: pd.DataFrame, mask: np.ndarray | None = None) -> float:
    """Share of the masked rows with ``close > sma_50`` among those with ``sma_50`` defined.

    Returns:
        Fraction in [0, 1]; NaN when no masked row has an ``sma_50``.
    """
    close = df["close"].to_numpy(np.float64, na_value=np.nan)
    sma = df["sma_50"].to_numpy(np.float64, na_value=np.nan)
    m = np.ones(len(df), bool) if mask is None else np.asarray(mask, bool)
    ok = m & np.isfinite(close) & np.isfinite(sma)
    return float((close[ok] > sma[ok]).mean()) if ok.any() else float("nan")


def index_series(returns: pd.Series) -> pd.DataFrame:
    """Trend ratio, 20-date realized vol and its 252-date percentile for every date.

    Args:
        returns: equal-weighted index daily returns (fraction) indexed by date, ascending,
            no gaps in the trading calendar.

    Returns:
        Frame indexed by date: ``level`` (index, 1.0 before the first return), ``trend_ratio``
        (level / 200-date mean of level; NaN before 200 dates), ``index_vol_20`` (annualized
        fraction; NaN before 20 returns), ``vol_percentile`` (share of the last ≤ 252
        ``index_vol_20`` values ≤ today's; NaN with fewer than 60), ``index_dates``.
    """
    r = returns.astype(np.float64)
    level = (1.0 + r.fillna(0.0)).cumprod()
    trend = level / level.rolling(TREND_WINDOW, min_periods=TREND_WINDOW).mean()
    vol = r.rolling(VOL_WINDOW, min_periods=VOL_WINDOW).std(ddof=1) * np.sqrt(252.0)
    pct = vol.rolling(VOL_HISTORY, min_periods=VOL_MIN_HISTORY).apply(
        lambda w: float(np.mean(w <= w[-1])), raw=True)
    return pd.DataFrame({"level": level, "trend_ratio": trend, "index_vol_20": vol,
                         "vol_percentile": pct,
                         "index_dates": np.arange(1, len(r) + 1)}, index=r.index)


def classify(trend_ratio: float, breadth_: float, vol_percentile: float) -> str:
    """The label of the module docstring from the three numbers (NaN = undefined)."""
    if not (np.isfinite(trend_ratio) and np.isfinite(vol_percentile)
            and np.isfinite(breadth_)):
        return "neutral"
    stressed = vol_percentile >= VOL_STRESS_PCT
    broad = breadth_ >= BREADTH_THRESHOLD
    if trend_ratio > 1.0 and broad and not stressed:
        return "risk_on"
    if trend_ratio <= 1.0 and (not broad or stressed):
        return "risk_off"
    return "neutral"


def regime_of(returns: pd.Series, df: pd.DataFrame, mask: np.ndarray | None = None
              ) -> Regime:
    """The regime of the last date of ``returns`` with the breadth of ``df`` (that date's
    feature rows) within ``mask``.

    Args:
        returns: index daily returns up to and including the scan date (≥ 271 dates for every
            part to be defined; fewer → ``neutral`` with NaN facts).
    """
    b = breadth(df, mask)
    if len(returns) == 0:
        return Regime("neutral", float("nan"), b, float("nan"), float("nan"), 0)
    last = index_series(returns.iloc[-(VOL_HISTORY + VOL_WINDOW + TREND_WINDOW):]).iloc[-1]
    tr, vol, pct = (float(last["trend_ratio"]), float(last["index_vol_20"]),
                    float(last["vol_percentile"]))
    return Regime(classify(tr, b, pct), tr, b, vol, pct, int(len(returns)))
