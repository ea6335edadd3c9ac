"""MERIT 0–100: the final blend of TechRating, ICS and the XGBoost alphas, regime-aware.

``alpha_score = 100 × mean(pct(alpha_5d), pct(alpha_10d))`` — the percentile ranks of the two
model predictions within the filtered universe (a missing prediction is skipped).

``merit = w_tech · tech_rating + w_ics · ics + w_alpha · alpha_score`` with the weights of the
scan date's regime (:mod:`technic.scoring.regime`):

==========  ======  =====  =======  =============================================================
regime      tech    ics    alpha    rationale
==========  ======  =====  =======  =============================================================
risk_on     0.45    0.20   0.35     trend and momentum pay in rising, broad, calm markets
neutral     0.35    0.30   0.35     mixed signals: balanced
risk_off    0.20    0.45   0.35     momentum crashes after market declines (Daniel & Moskowitz
                                    2016); stable, liquid, low-volatility names hold up better
==========  ======  =====  =======  =============================================================

The alpha weight is the same in every regime: the models already see volatility and trend
inputs. Where a symbol has no alpha score (models missing), its alpha weight is spread over
TechRating and ICS in proportion to their weights. Weights sum to 1, so MERIT ∈ [0, 100].
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from technic.scoring.cross_section import mean_points, percentile_rank

MERIT_WEIGHTS: dict[str, dict[str, float]] = {
    "risk_on": {"tech": 0.45, "ics": 0.20, "alpha": 0.35},
    "neutral": {"tech": 0.35, "ics": 0.30, "alpha": 0.35},
    "risk_off": {"tech": 0.20, "ics": 0.45, "alpha": 0.35},
}
ALPHA_COLUMNS: tuple[str, ...] = ("alpha_5d", "alpha_10d")


def alpha_score(df: pd.DataFrame, mask: np.ndarray | None = None) -> np.ndarray:
    """``100 × mean(percentile ranks of alpha_5d, alpha_10d)`` within ``mask``.

    Returns:
        ``(N,) float64`` points 0–100; NaN outside the mask and where no alpha is defined.
    """
    cols = [c for c in ALPHA_COLUMNS if c in df.columns]
    if not cols:
        return np.full(len(df), np.nan)
    ranks = np.vstack([percentile_rank(df[c].to_numpy(np.float64, na_value=np.nan), mask)
                       for c in cols])
    return mean_points(ranks)


def merit(tech: np.ndarray, ics: np.ndarray, alpha: np.ndarray, regime: str) -> np.ndarray:
    """MERIT of the module docstring.

    Args:
        tech, ics, alpha: ``(N,) float64`` points 0–100 (NaN alpha → weight redistributed;
            NaN tech or ics → NaN MERIT).
        regime: one of :data:`MERIT_WEIGHTS`.

    Returns:
        ``(N,) float64`` points 0–100.

    Raises:
        KeyError: unknown regime label.
    """
    w = MERIT_WEIGHTS[regime]
    tech, ics, alpha = (np.asarray(a, np.float64) for a in (tech, ics, alpha))
    with_alpha = w["tech"] * tech + w["ics"] * ics + w["alpha"] * np.nan_to_num(alpha)
    rest = w["tech"] + w["ics"]
    without = (w["tech"] * tech + w["ics"] * ics) / rest
    return np.where(np.isfinite(alpha), with_alpha, without)
