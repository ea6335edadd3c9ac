"""The scoring path of one date's feature rows, shared by the scan, the evaluation and the
model data sets: universe filter → TechRating → factors → ICS (→ alphas) → MERIT → rank.

Pure (no database): the jobs read the rows (:mod:`technic.jobs.scan` one date from the
feature store, :mod:`technic.jobs.evaluate` every date of a range from the stored history)
and call these functions, so a replayed date scores exactly as the scan scored it.
Formulas: docs/scoring.md.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from technic.scoring.factors import compute_factors, point_in_time_market_cap
from technic.scoring.fundamentals import fundamental_factors
from technic.scoring.ics import ics
from technic.scoring.merit import alpha_score, merit
from technic.scoring.regime import Regime
from technic.scoring.techrating import tech_rating
from technic.universe import UniverseRules, apply_rules

#: The scan's default rank: the score ``rank`` orders by (descending; ties by symbol). Chosen
#: from the design periods only by :func:`technic.jobs.study.choose_default`; its locked-test
#: figures are in docs/evaluation/default_rank.md and the README.
DEFAULT_RANK = "ics"


def order_by(scored: pd.DataFrame, column: str = DEFAULT_RANK) -> pd.DataFrame:
    """Rows sorted by ``column`` descending (NaN last, ties by symbol) with ``rank`` 1..n
    (replacing any earlier ``rank``).

    Raises:
        KeyError: ``column`` is not a column of ``scored``.
    """
    if column not in scored.columns:
        raise KeyError(f"cannot rank by {column!r}: no such column")
    out = scored.drop(columns=["rank"], errors="ignore").sort_values(
        [column, "symbol"], ascending=[False, True], kind="mergesort",
        na_position="last").reset_index(drop=True)
    out.insert(0, "rank", np.arange(1, len(out) + 1, dtype=np.int64))
    return out


def market_cap_for(features: pd.DataFrame, caps: pd.DataFrame | None) -> np.ndarray | None:
    """Point-in-time market caps (USD) of ``features``' rows, or None without caps.

    Args:
        features: rows with ``symbol`` and ``close`` (USD per share).
        caps: ``symbol, market_cap, ref_close`` (:func:`technic.store.market.market_caps`).

    Returns:
        ``(len(features),) float64`` (:func:`technic.scoring.factors.point_in_time_market_cap`),
        NaN for symbols without a cap; None when ``caps`` is None or empty.
    """
    if caps is None or caps.empty:
        return None
    c = caps.set_index("symbol").reindex(features["symbol"].to_numpy())
    return point_in_time_market_cap(c["market_cap"].to_numpy(np.float64),
                                    features["close"].to_numpy(np.float64, na_value=np.nan),
                                    c["ref_close"].to_numpy(np.float64))


def reference_shares_for(features: pd.DataFrame, caps: pd.DataFrame | None
                         ) -> np.ndarray | None:
    """Shares of the reference snapshot (``market_cap / ref_close``, today's share count) of
    ``features``' rows: the fallback of the point-in-time market cap
    (:func:`technic.scoring.fundamentals.market_cap_pit`). None without caps.

    Returns:
        ``(len(features),) float64`` shares, NaN where unknown.
    """
    if caps is None or caps.empty:
        return None
    c = caps.set_index("symbol").reindex(features["symbol"].to_numpy())
    with np.errstate(divide="ignore", invalid="ignore"):
        sh = c["market_cap"].to_numpy(np.float64) / c["ref_close"].to_numpy(np.float64)
    return np.where(np.isfinite(sh) & (sh > 0), sh, np.nan)


def score_frame(features: pd.DataFrame, rules: UniverseRules,
                caps: pd.DataFrame | None = None, fundamentals: pd.DataFrame | None = None,
                point_in_time: bool = False
                ) -> tuple[pd.DataFrame, dict[str, int]]:
    """Filter and score one date's feature rows.

    Args:
        features: one date's feature rows joined with reference data (the columns
            :func:`technic.universe.apply_rules` and the scores read).
        rules: the universe filter.
        caps: for the ICS size component (:func:`market_cap_for`); None = size skipped.
        fundamentals: the point-in-time fundamentals state of the date
            (:func:`technic.scoring.fundamentals.pit_state`; for many dates
            :func:`~technic.scoring.fundamentals.pit_state_asof` of the date's rows), or
            None. Given, the factors of
            :func:`technic.scoring.fundamentals.fundamental_factors` are added (ranked within
            the filtered universe) and ``market_cap_pit`` (hence ICS size) becomes
            ``close × diluted shares of the latest quarter public on the date``, falling back
            to the reference shares of ``caps`` (``market_cap_source`` says which).
        point_in_time: a past date: universe membership from the bars that existed, not
            today's ``active`` flag (:func:`technic.universe.apply_rules`).

    Returns:
        ``(scored, counts)``: the rows that pass the filter, in input order, with the
        TechRating components, the factors of :mod:`technic.scoring.factors`, ``ics`` and its
        components appended to the features; ``counts`` per filter rule
        (:func:`technic.universe.apply_rules`).
    """
    keep, counts = apply_rules(features, rules, point_in_time)
    scores = tech_rating(features, keep)
    parts = [features.reset_index(drop=True), scores.reset_index(drop=True)]
    if fundamentals is not None:
        fund = fundamental_factors(features, fundamentals, keep,
                                   reference_shares_for(features, caps))
        cap = fund["market_cap_pit"].to_numpy(np.float64)
        fund = fund.drop(columns=["market_cap_pit"])
    else:
        fund, cap = None, market_cap_for(features, caps)
    factors = compute_factors(features, keep, cap)
    core = ics(features, factors, keep)
    parts += [factors.reset_index(drop=True), core.reset_index(drop=True)]
    if fund is not None:
        parts.append(fund.reset_index(drop=True))
    elif cap is not None:
        src = pd.Series(None, index=range(len(cap)), dtype=object)
        src[np.isfinite(cap)] = "reference"
        parts.append(pd.DataFrame({"market_cap_source": src}))
    scored = pd.concat(parts, axis=1)
    return scored[keep].reset_index(drop=True), counts


def rank_frame(features: pd.DataFrame, rules: UniverseRules,
               caps: pd.DataFrame | None = None, fundamentals: pd.DataFrame | None = None,
               point_in_time: bool = False
               ) -> tuple[pd.DataFrame, dict[str, int]]:
    """:func:`score_frame`, sorted by :data:`DEFAULT_RANK` descending (ties by symbol) with
    ``rank`` 1..n when that score is computed here (TechRating, ICS), else by TechRating; a
    rank by MERIT or the alphas needs them first (:func:`add_merit`, then :func:`order_by`)."""
    scored, counts = score_frame(features, rules, caps, fundamentals, point_in_time)
    col = DEFAULT_RANK if DEFAULT_RANK in scored.columns else "tech_rating"
    return order_by(scored, col), counts


def add_merit(scored: pd.DataFrame, regime: Regime | str) -> pd.DataFrame:
    """Add ``alpha_score``, ``merit`` (0–100 points) and ``regime`` to scored rows.

    Args:
        scored: :func:`score_frame` or :func:`rank_frame` rows (every row is in the filtered
            universe), with the ``alpha_5d``/``alpha_10d`` columns where there are alphas
            (missing → MERIT from TechRating and ICS only).
        regime: the date's regime (or its label).

    Returns:
        The rows with the three columns; order (and ``rank``) unchanged.
    """
    label = regime if isinstance(regime, str) else regime.label
    a = alpha_score(scored)
    return scored.assign(alpha_score=a,
                         merit=merit(scored["tech_rating"].to_numpy(np.float64),
                                     scored["ics"].to_numpy(np.float64), a, label),
                         regime=label)
