"""Risk measures and scores per unit of risk. Pure numpy; formulas in docs/scoring.md.

* :func:`market_beta_residual_vol` — rolling OLS of each symbol's daily return on the
  equal-weighted market's (the regime's index, :mod:`technic.scoring.regime`):
  ``r_i = a + β_i m + ε``; over the last ``window`` bars where the symbol has a return,
  ``β = cov(r, m) / var(m)`` and the residual volatility
  ``σ_ε = sqrt((var(r) − β² var(m)) · 252)`` (annualised fraction; population moments).
* :func:`per_unit_risk` — a score expressed per unit of risk: the score's cross-sectional
  z-score divided by the symbol's risk relative to the date's median risk,
  ``z(s)_i / (σ_i / median σ)``. For a return forecast (an alpha) :func:`alpha_per_risk` is
  the forecast information ratio ``α_i / (σ_i · sqrt(h / 252))`` (Grinold & Kahn, *Active
  Portfolio Management*, 2000, ch. 10: a forecast worth acting on is large relative to the
  risk taken).
"""

from __future__ import annotations

import numpy as np

from technic.scoring.cross_section import zscore


def _rolling_sum(x: np.ndarray, window: int) -> np.ndarray:
    c = np.cumsum(np.vstack([np.zeros((1,) + x.shape[1:]), x]), axis=0)
    out = c[window:] - c[:-window]
    pad = np.full((window - 1,) + x.shape[1:], np.nan)
    return np.vstack([pad, out]) if len(x) >= window else np.full(x.shape, np.nan)


def market_beta_residual_vol(returns: np.ndarray, market: np.ndarray, window: int = 60,
                             min_obs: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Rolling market beta and annualised residual volatility.

    Args:
        returns: ``(T, N) float64`` daily returns (fraction), NaN where the symbol has none.
        market: ``(T,) float64`` daily return of the equal-weighted market (fraction).
        window: trailing dates per estimate (the value on date ``t`` uses dates
            ``t − window + 1 … t``, so nothing after ``t``).
        min_obs: fewest dates with both returns for an estimate.

    Returns:
        ``(beta, resid_vol)``, each ``(T, N) float64`` (beta unitless, residual volatility an
        annualised fraction); NaN with fewer than ``min_obs`` observations or a constant
        market.

    Raises:
        ValueError: shapes disagree.
    """
    r = np.asarray(returns, np.float64)
    m = np.asarray(market, np.float64)
    if r.ndim != 2 or m.shape != (r.shape[0],):
        raise ValueError(f"returns {r.shape} and market {m.shape} do not align")
    ok = np.isfinite(r) & np.isfinite(m)[:, None]
    rz = np.where(ok, r, 0.0)
    mz = np.where(ok, m[:, None], 0.0)
    n = _rolling_sum(ok.astype(np.float64), window)
    sr, sm = _rolling_sum(rz, window), _rolling_sum(mz, window)
    srm, srr, smm = (_rolling_sum(rz * mz, window), _rolling_sum(rz * rz, window),
                     _rolling_sum(mz * mz, window))
    with np.errstate(divide="ignore", invalid="ignore"):
        mr, mm = sr / n, sm / n
        cov = srm / n - mr * mm
        vm = smm / n - mm * mm
        vr = srr / n - mr * mr
        beta = cov / vm
        resid = np.sqrt(np.clip(vr - beta * beta * vm, 0.0, None) * 252.0)
    bad = (n < min_obs) | ~(vm > 1e-14)
    beta[bad] = np.nan
    resid[bad] = np.nan
    return beta, resid


def own_bar_returns(close: np.ndarray) -> np.ndarray:
    """``close / previous own close − 1`` per symbol (the previous bar the symbol has, so a
    gap does not break the series).

    Args:
        close: ``(T, N) float64`` closes, NaN where the symbol has no bar.

    Returns:
        ``(T, N) float64`` fractions; NaN where no bar and on each symbol's first bar.
    """
    c = np.asarray(close, np.float64)
    prev = np.full_like(c, np.nan)
    if len(c) > 1:
        # forward-fill each column, then shift one date down
        idx = np.where(np.isfinite(c), np.arange(len(c))[:, None], 0)
        np.maximum.accumulate(idx, axis=0, out=idx)
        filled = np.take_along_axis(c, idx, axis=0)
        prev[1:] = filled[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        out = c / prev - 1.0
    out[~np.isfinite(c)] = np.nan
    return out


def latest_beta_residual_vol(close: np.ndarray, market: np.ndarray, window: int = 60,
                             min_obs: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """:func:`market_beta_residual_vol` on the last date of a close panel.

    Args:
        close: ``(T, N) float64`` closes, NaN where no bar; the returns are
            :func:`own_bar_returns` (so ``T = window + 1`` dates give ``window`` returns).
        market: ``(T,) float64`` the equal-weighted market's daily return on each date
            (fraction, NaN where unknown).
        window, min_obs: as :func:`market_beta_residual_vol`.

    Returns:
        ``(beta, resid_vol)``, each ``(N,) float64``; NaN with fewer than ``min_obs``
        returns in the last ``window`` dates.
    """
    c = np.asarray(close, np.float64)
    if len(c) == 0:
        return np.full(c.shape[1], np.nan), np.full(c.shape[1], np.nan)
    beta, resid = market_beta_residual_vol(own_bar_returns(c), market, window, min_obs)
    return beta[-1], resid[-1]


def per_unit_risk(score: np.ndarray, risk: np.ndarray, mask: np.ndarray | None = None
                  ) -> np.ndarray:
    """``z(score)_i / (risk_i / median risk)`` within ``mask`` (module docstring).

    Args:
        score: ``(N,) float64`` any score, higher = better.
        risk: ``(N,) float64`` a positive risk measure (residual or total volatility, …).
        mask: the filtered universe (None = all rows).

    Returns:
        ``(N,) float64``: NaN outside the mask, where either input is not finite, or where
        the risk is ≤ 0.
    """
    s = np.asarray(score, np.float64)
    rk = np.asarray(risk, np.float64)
    m = np.ones(len(s), bool) if mask is None else np.asarray(mask, bool)
    m = m & np.isfinite(s) & np.isfinite(rk) & (rk > 0)
    out = np.full(len(s), np.nan)
    if not m.any():
        return out
    z = zscore(s, m)
    out[m] = z[m] / (rk[m] / np.median(rk[m]))
    return out


def alpha_per_risk(alpha: np.ndarray, vol: np.ndarray, horizon: int) -> np.ndarray:
    """Forecast information ratio ``α / (σ · sqrt(h / 252))``.

    Args:
        alpha: ``(N,)`` predicted excess return over ``h`` bars (fraction).
        vol: ``(N,)`` annualised volatility (fraction), e.g. residual or ``realized_vol_60``.
        horizon: ``h`` in bars.

    Returns:
        ``(N,) float64`` unitless; NaN where ``vol`` ≤ 0 or an input is not finite.
    """
    a = np.asarray(alpha, np.float64)
    v = np.asarray(vol, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = a / (v * np.sqrt(horizon / 252.0))
    out[~np.isfinite(out) | ~(v > 0)] = np.nan
    return out
