"""Portfolio weights for a ranked list of symbols (docs/portfolio.md).

The covariance of daily simple returns (``close[t] / close[t-1] − 1``, fraction) is the
Ledoit-Wolf shrinkage estimate (Ledoit & Wolf 2004, "A well-conditioned estimator for
large-dimensional covariance matrices", via :class:`skfolio.moments.LedoitWolf`, i.e.
scikit-learn's estimator). The optimisation is skfolio's:

* ``hrp`` — Hierarchical Risk Parity (López de Prado 2016) with variance as the risk measure
  (:class:`skfolio.optimization.HierarchicalRiskParity`);
* ``min-variance`` — the long-only minimum-variance portfolio
  (:class:`skfolio.optimization.MeanRisk`, ``MINIMIZE_RISK``);
* ``max-sharpe`` — the long-only maximum ``μ'w / sqrt(w'Σw)`` portfolio (``MAXIMIZE_RATIO``,
  risk-free rate 0), with ``μ`` the scan's alphas (:func:`expected_returns_from_alphas`);
* ``risk-parity`` — equal risk contributions (:class:`skfolio.optimization.RiskBudgeting`);
* ``equal`` — ``1/N`` (:class:`skfolio.optimization.EqualWeighted`).

Caps: at most ``max_weight`` per name and ``sector_cap`` per sector (symbols without a sector
form one group, ``UNCLASSIFIED``). The convex methods take them as constraints of the
optimisation; HRP and equal weights have no such constraint in the library (HRP takes the
per-name bound itself), so their weights are capped afterwards by :func:`apply_caps`
(capped names and sectors keep their cap, the excess goes to the uncapped names in proportion
to their weights). Caps no long-only fully invested portfolio can meet raise
:class:`InfeasibleCapsError` before anything is optimised.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

#: Methods of :func:`optimize`, in the CLI's order.
METHODS: tuple[str, ...] = ("hrp", "min-variance", "max-sharpe", "risk-parity", "equal")
#: Methods that need expected returns (the alphas).
NEEDS_EXPECTED: frozenset[str] = frozenset({"max-sharpe"})
#: The group of symbols without a sector (capped like a sector).
UNCLASSIFIED = "UNCLASSIFIED"
#: A cap counts as met up to this much (solver tolerance), fraction of the book.
CAP_TOLERANCE = 1e-6
#: Fewest daily returns a symbol needs in the lookback window to be covered.
MIN_OBSERVATIONS = 20


class InfeasibleCapsError(ValueError):
    """The caps leave less than 100 % of the book investable (long only, fully invested)."""


@dataclass(frozen=True)
class PortfolioSpec:
    """How to build a portfolio (validated on construction; one-line ``ValueError``\\s).

    Attributes:
        method: one of :data:`METHODS`.
        top: how many of the ranked symbols to hold (≥ 2).
        max_weight: cap per name, fraction of the book in (0, 1]; None = no cap (1).
        sector_cap: cap per sector, fraction in (0, 1]; None = no cap.
        lookback: trading days of daily returns for the covariance (≥ :data:`MIN_OBSERVATIONS`
            + 1 bars, ≤ 2520).
    """

    method: str = "hrp"
    top: int = 20
    max_weight: float | None = None
    sector_cap: float | None = None
    lookback: int = 126

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; use one of {', '.join(METHODS)}")
        if self.top < 2:
            raise ValueError(f"top must be >= 2 (a portfolio of one name is no portfolio), "
                             f"got {self.top}")
        for name, v in (("max-weight", self.max_weight), ("sector-cap", self.sector_cap)):
            if v is not None and not (0 < v <= 1):
                raise ValueError(f"{name} must be a fraction in (0, 1], got {v}")
        if not (MIN_OBSERVATIONS < self.lookback <= 2520):
            raise ValueError(f"lookback must be between {MIN_OBSERVATIONS + 1} and 2520 "
                             f"trading days, got {self.lookback}")

    def as_json(self) -> dict:
        return {"method": self.method, "top": self.top, "max_weight": self.max_weight,
                "sector_cap": self.sector_cap, "lookback": self.lookback}


@dataclass
class PortfolioWeights:
    """The result of :func:`optimize`.

    Attributes:
        weights: fraction of the book per symbol (index = symbols, in input order), ≥ 0,
            summing to 1.
        covariance: the Ledoit-Wolf covariance of daily returns (symbols × symbols).
        shrinkage: the Ledoit-Wolf shrinkage intensity in [0, 1].
        expected_daily: ``μ`` per symbol (fraction per day) where the method used one.
        observations: daily returns per symbol in the window (before gaps were filled).
        capped_after: True when :func:`apply_caps` changed the library's weights.
    """

    weights: pd.Series
    covariance: pd.DataFrame
    shrinkage: float
    expected_daily: pd.Series | None = None
    observations: pd.Series = field(default_factory=lambda: pd.Series(dtype=np.int64))
    capped_after: bool = False

    @property
    def volatility_annual(self) -> float:
        """``sqrt(252 · w'Σw)``: the ex-ante annualised volatility (fraction)."""
        w = self.weights.to_numpy()
        return float(np.sqrt(max(252.0 * w @ self.covariance.to_numpy() @ w, 0.0)))

    @property
    def expected_return_daily(self) -> float | None:
        """``μ'w`` (fraction per day) when the method used expected returns."""
        if self.expected_daily is None:
            return None
        return float(self.expected_daily.to_numpy() @ self.weights.to_numpy())


def sector_groups(sectors: Sequence[str | None]) -> np.ndarray:
    """Sector labels with missing ones (None, NaN, empty) as :data:`UNCLASSIFIED`."""
    return np.array([UNCLASSIFIED if s is None or (isinstance(s, float) and s != s) or s == ""
                     else str(s) for s in sectors], dtype=object)


def investable_capacity(sectors: Sequence[str | None], max_weight: float | None,
                        sector_cap: float | None) -> float:
    """The largest fraction of the book the caps allow to invest, long only:
    ``Σ_sector min(sector_cap, n_sector · max_weight)`` (fraction; ≥ 1 means feasible)."""
    g = sector_groups(sectors)
    w = 1.0 if max_weight is None else max_weight
    s = 1.0 if sector_cap is None else sector_cap
    _, counts = np.unique(g, return_counts=True)
    return float(np.minimum(s, counts * w).sum())


def check_caps(sectors: Sequence[str | None], max_weight: float | None,
               sector_cap: float | None) -> None:
    """Raise :class:`InfeasibleCapsError` when no long-only, fully invested portfolio of these
    names meets the caps (:func:`investable_capacity` < 1)."""
    cap = investable_capacity(sectors, max_weight, sector_cap)
    if cap < 1 - 1e-9:
        n = len(sectors)
        k = len(set(sector_groups(sectors)))
        raise InfeasibleCapsError(
            f"caps are infeasible: with {n} names in {k} sector(s), max weight "
            f"{max_weight if max_weight is not None else 1:g} and sector cap "
            f"{sector_cap if sector_cap is not None else 1:g} at most {cap:.1%} of the book "
            "can be invested; raise --max-weight or --sector-cap, or hold more names (--top)")


def apply_caps(weights: np.ndarray, sectors: Sequence[str | None], max_weight: float | None,
               sector_cap: float | None, max_iter: int = 1000) -> np.ndarray:
    """Cap long-only weights per name and per sector, keeping them fully invested.

    Repeatedly: names above ``max_weight`` are set to it, sectors above ``sector_cap`` are
    scaled down to it, and both are frozen; the freed weight goes to the unfrozen names in
    proportion to their weights (equally when those are all 0). Each round freezes at least
    one more name or sector, so it ends after at most ``n + sectors`` rounds.

    Args:
        weights: ``(n,)`` non-negative weights (normalised to sum 1 first).
        sectors: ``(n,)`` sector labels (missing → :data:`UNCLASSIFIED`).

    Returns:
        ``(n,)`` weights ≥ 0, summing to 1, each ≤ ``max_weight`` and each sector's sum
        ≤ ``sector_cap`` (both up to floating point).

    Raises:
        InfeasibleCapsError: the caps cannot be met (:func:`check_caps`).
    """
    check_caps(sectors, max_weight, sector_cap)
    w = np.clip(np.asarray(weights, dtype=np.float64), 0.0, None)
    if w.sum() <= 0:
        raise ValueError("weights sum to 0")
    w = w / w.sum()
    wmax = np.inf if max_weight is None else max_weight
    smax = np.inf if sector_cap is None else sector_cap
    g = sector_groups(sectors)
    labels, inv = np.unique(g, return_inverse=True)
    frozen = np.zeros(len(w), dtype=bool)
    eps = 1e-12
    for _ in range(max_iter):
        over = w > wmax + eps
        w[over] = wmax
        frozen |= over
        totals = np.bincount(inv, weights=w, minlength=len(labels))
        for k in np.flatnonzero(totals > smax + eps):
            m = inv == k
            w[m] *= smax / totals[k]
            frozen |= m
        # a sector that reached its cap takes no more weight
        totals = np.bincount(inv, weights=w, minlength=len(labels))
        frozen |= (totals >= smax - eps)[inv]
        excess = 1.0 - w.sum()
        if abs(excess) <= 1e-13:
            break
        free = ~frozen
        if not free.any():  # cannot happen when check_caps passed; kept as a guard
            raise InfeasibleCapsError("caps are infeasible: no name can take more weight")
        base = w[free].sum()
        w[free] += excess * (w[free] / base if base > 0 else 1.0 / free.sum())
    return w


def _fixed_mu_class():
    from skfolio.moments import BaseMu

    class _FixedMu(BaseMu):
        """Expected returns given from outside (the scan's alphas), as a skfolio estimator."""

        def __init__(self, mu: np.ndarray | None = None) -> None:
            self.mu = mu

        def fit(self, X, y=None):  # noqa: N803 (scikit-learn's argument name)
            X = np.asarray(X)
            self.mu_ = np.asarray(self.mu, dtype=np.float64)
            if self.mu_.shape != (X.shape[1],):
                raise ValueError(f"expected returns of shape ({X.shape[1]},), "
                                 f"got {self.mu_.shape}")
            return self

    return _FixedMu


def expected_returns_from_alphas(alpha_5d: np.ndarray, alpha_10d: np.ndarray) -> np.ndarray:
    """Daily expected excess return per symbol from the scan's alphas.

    ``μ = mean(alpha_5d / 5, alpha_10d / 10)`` over the alphas present (each alpha is a
    predicted excess return over 5 or 10 bars, fraction: models/MODEL_CARD.md); NaN where
    neither is present.

    Args:
        alpha_5d, alpha_10d: ``(n,)`` fractions (NaN = missing).

    Returns:
        ``(n,)`` fraction per trading day.
    """
    a = np.vstack([np.asarray(alpha_5d, dtype=np.float64) / 5.0,
                   np.asarray(alpha_10d, dtype=np.float64) / 10.0])
    with np.errstate(all="ignore"):
        n = np.isfinite(a).sum(axis=0)
        s = np.where(np.isfinite(a), a, 0.0).sum(axis=0)
        return np.where(n > 0, s / np.maximum(n, 1), np.nan)


def prepare_returns(returns: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Daily returns ready for the estimators: gaps (no bar that day) filled with 0.

    Args:
        returns: ``(T, n)`` daily simple returns (fraction), NaN where a symbol had no bar.

    Returns:
        ``(filled, observations)``: the filled frame and the count of real returns per symbol.

    Raises:
        ValueError: a symbol has fewer than :data:`MIN_OBSERVATIONS` returns.
    """
    obs = returns.notna().sum().astype(np.int64)
    short = obs[obs < MIN_OBSERVATIONS]
    if len(short):
        raise ValueError(f"{len(short)} symbol(s) have fewer than {MIN_OBSERVATIONS} daily "
                         f"returns in the lookback window: {', '.join(map(str, short.index[:5]))}")
    return returns.fillna(0.0), obs


def estimator(method: str, max_weight: float | None = None, sector_cap: float | None = None,
              sectors: Sequence[str | None] | None = None, mu: np.ndarray | None = None):
    """The skfolio estimator :func:`optimize` fits for ``method``: its prior (Ledoit-Wolf
    covariance; ``mu`` as expected returns when given, else the sample mean) and the caps the
    estimator takes itself (``max_weight`` as the per-name bound except for ``equal``;
    ``sector_cap`` as ``A·w ≤ b`` rows, one per sector, for the convex methods).

    Raises:
        ValueError: an unknown method.
    """
    from skfolio import RiskMeasure
    from skfolio.moments import EmpiricalMu, LedoitWolf
    from skfolio.optimization import (
        EqualWeighted,
        HierarchicalRiskParity,
        MeanRisk,
        ObjectiveFunction,
        RiskBudgeting,
    )
    from skfolio.prior import EmpiricalPrior

    mu_est = _fixed_mu_class()(mu) if mu is not None else EmpiricalMu()
    prior = EmpiricalPrior(mu_estimator=mu_est, covariance_estimator=LedoitWolf())
    wmax = 1.0 if max_weight is None else float(max_weight)
    lin: dict = {}
    if sector_cap is not None and sectors is not None:
        g = sector_groups(sectors)
        labels = np.unique(g)
        lin = {"left_inequality": (g[None, :] == labels[:, None]).astype(np.float64),
               "right_inequality": np.full(len(labels), float(sector_cap))}
    if method == "hrp":
        return HierarchicalRiskParity(risk_measure=RiskMeasure.VARIANCE, prior_estimator=prior,
                                      max_weights=wmax)
    if method == "min-variance":
        return MeanRisk(objective_function=ObjectiveFunction.MINIMIZE_RISK,
                        risk_measure=RiskMeasure.VARIANCE, prior_estimator=prior,
                        max_weights=wmax, **lin)
    if method == "max-sharpe":
        return MeanRisk(objective_function=ObjectiveFunction.MAXIMIZE_RATIO,
                        risk_measure=RiskMeasure.VARIANCE, prior_estimator=prior,
                        max_weights=wmax, **lin)
    if method == "risk-parity":
        return RiskBudgeting(risk_measure=RiskMeasure.VARIANCE, prior_estimator=prior,
                             max_weights=wmax, **lin)
    if method == "equal":
        return EqualWeighted()
    raise ValueError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")


def optimize(returns: pd.DataFrame, sectors: Sequence[str | None], method: str,
             max_weight: float | None = None, sector_cap: float | None = None,
             expected_daily: np.ndarray | None = None) -> PortfolioWeights:
    """Weights of the symbols in ``returns``' columns.

    Args:
        returns: ``(T, n)`` daily simple returns (fraction; NaN = no bar that day, filled
            with 0), T ≥ :data:`MIN_OBSERVATIONS`, columns = symbols.
        sectors: ``(n,)`` sector per column.
        method: one of :data:`METHODS`.
        max_weight, sector_cap: caps (fractions; None = none).
        expected_daily: ``(n,)`` expected returns per day (fraction), required by
            ``max-sharpe`` (NaN → 0, "no view").

    Returns:
        :class:`PortfolioWeights` (weights ≥ 0, summing to 1, caps met).

    Raises:
        InfeasibleCapsError: the caps cannot be met.
        ValueError: an unknown method; fewer than 2 symbols; too little history; max-sharpe
            without expected returns or with none positive; the optimiser found no solution.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    n = returns.shape[1]
    if n < 2:
        raise ValueError(f"a portfolio needs at least 2 symbols with price history, got {n}")
    if len(sectors) != n:
        raise ValueError(f"{len(sectors)} sectors for {n} symbols")
    check_caps(sectors, max_weight, sector_cap)
    filled, obs = prepare_returns(returns)
    mu = None
    if method in NEEDS_EXPECTED:
        if expected_daily is None or not np.isfinite(np.asarray(expected_daily)).any():
            raise ValueError(f"method {method} needs expected returns: the run has no alphas "
                             "(alpha_5d/alpha_10d are NULL; are the models installed?); use "
                             "another method")
        mu = np.nan_to_num(np.asarray(expected_daily, dtype=np.float64), nan=0.0)
        if not (mu > 0).any():
            raise ValueError(f"method {method} needs at least one positive expected return; "
                             "every alpha of these names is <= 0")
    from skfolio.moments import LedoitWolf

    lw = LedoitWolf().fit(filled.to_numpy())
    cov = pd.DataFrame(lw.covariance_, index=filled.columns, columns=filled.columns)
    est = estimator(method, max_weight, sector_cap, sectors, mu)
    try:
        est.fit(filled.to_numpy())
    except Exception as e:  # the solver's own error text, one line
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ValueError(f"{method}: the optimiser found no solution ({msg})") from None
    w = np.clip(np.asarray(est.weights_, dtype=np.float64), 0.0, None)
    if not np.isfinite(w).all() or w.sum() <= 0:
        raise ValueError(f"{method}: the optimiser returned no usable weights")
    w = w / w.sum()
    capped = apply_caps(w, sectors, max_weight, sector_cap)
    changed = bool(np.abs(capped - w).max() > CAP_TOLERANCE)
    return PortfolioWeights(
        weights=pd.Series(capped, index=filled.columns, name="weight"), covariance=cov,
        shrinkage=float(lw.shrinkage_),
        expected_daily=None if mu is None else pd.Series(mu, index=filled.columns),
        observations=obs, capped_after=changed)
