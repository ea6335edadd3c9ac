"""The columns a screen can filter, sort and show: every stored feature, the reference data of
``symbols``, and the scan's scores.

Generated from the feature registry (:mod:`technic.features.registry`) plus the reference and
score columns declared here, each with its kind (``num``, ``text``, ``bool``), unit and
meaning. ``technic columns`` prints this registry; the filter parser
(:mod:`technic.screen.filter`) accepts only these names.

Scopes:

* ``features`` — in ``features_daily`` joined with ``symbols`` (any date: ``tc.features``, a
  scan, SQL over the feature store);
* ``scan`` — computed by a scan (scores, factors, point-in-time fundamental factors, rank): a
  scan's rows and ``scan_results``;
* ``options`` — the ``opt_*`` option metrics (``option_metrics`` of the scan date), in a scan's
  rows only with ``--with-options``; a scan whose filter, ``--sort`` or ``--columns`` names
  one turns the options on by itself (:class:`technic.jobs.scan.ScanParams`). In
  ``scan_results`` they are NULL for runs made without options.

Pure (no database).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

from technic.features.registry import FEATURES
from technic.scoring.fundamentals import FACTOR_COLUMNS

KINDS = ("num", "text", "bool")


@dataclass(frozen=True)
class Column:
    """A column a screen can use.

    Attributes:
        name: column name (as in the scan's frame, ``features_daily`` or ``symbols``).
        kind: ``num`` (float), ``text`` or ``bool``.
        unit: unit and meaning (one line).
        scope: ``features`` (feature store and reference data), ``scan`` (scan output only)
            or ``options`` (scan output with options only).
        source: ``feature``, ``reference``, ``derived``, ``score``, ``fundamental`` or
            ``option`` (what ``technic columns`` groups by).
    """

    name: str
    kind: str
    unit: str
    scope: str = "features"
    source: str = "feature"


_REFERENCE: tuple[Column, ...] = (
    Column("symbol", "text", "ticker (CQS style: BRK.B)", source="reference"),
    Column("name", "text", "company or fund name (symbols.name)", source="reference"),
    Column("exchange", "text", "listing exchange (symbols.exchange)", source="reference"),
    Column("sector", "text", "NASDAQ-screener sector, not GICS (`technic sectors`)",
           source="reference"),
    Column("industry", "text", "NASDAQ-screener industry (`technic sectors --industries`)",
           source="reference"),
    Column("security_type", "text", "common, etf, warrant, unit, right, preferred, note …",
           source="reference"),
    Column("is_etf", "bool", "true for ETFs/ETNs", source="reference"),
    Column("market_cap", "num", "USD, market capitalisation from the reference data "
           "(symbols.market_cap, as of the universe file; not point-in-time)",
           source="reference"),
    Column("n_bars", "num", "bars of history the features of the row saw", source="feature"),
    Column("dollar_volume", "num", "USD, close * volume of the last bar", source="derived"),
)

_SCORES: tuple[Column, ...] = tuple(Column(n, "num", u, scope="scan", source="score") for n, u in (
    ("rank", "1 = best by the default rank (ICS) in the scan (1..n, no gaps)"),
    ("tech_rating", "0-100 points, TechRating (docs/scoring.md)"),
    ("trend_score", "0-100 points, TechRating component (weight 0.30)"),
    ("momentum_score", "0-100 points, TechRating component (weight 0.35)"),
    ("volatility_score", "0-100 points, TechRating component (weight 0.15)"),
    ("volume_score", "0-100 points, TechRating component (weight 0.20)"),
    ("ics", "0-100 points, institutional core score"),
    ("ics_liquidity", "0-100 points, ICS component: dollar volume"),
    ("ics_size", "0-100 points, ICS component: market cap"),
    ("ics_trend_stability", "0-100 points, ICS component: MA alignment and ADX"),
    ("ics_drawdown", "0-100 points, ICS component: distance from the 52-week high"),
    ("ics_volatility", "0-100 points, ICS component: calmer = higher"),
    ("alpha_5d", "fraction, XGBoost predicted 5-bar excess return (NULL without models)"),
    ("alpha_10d", "fraction, XGBoost predicted 10-bar excess return (NULL without models)"),
    ("alpha_score", "0-100 points, percentile rank of the alphas"),
    ("merit", "0-100 points, regime-weighted blend of tech_rating, ics and alpha_score"),
    ("mom_6_1", "fraction, return from 126 to 21 bars ago"),
    ("mom_3_1", "fraction, return from 63 to 21 bars ago"),
    ("rs_market_63d", "fraction, 63-bar return relative to the scanned universe's mean"),
    ("rs_sector_63d", "fraction, 63-bar return relative to the sector's mean"),
    ("ma_alignment", "-1..1, mean sign of close > sma_20 > sma_50 > sma_200"),
    ("market_cap_pit", "USD, point-in-time market cap: market_cap * close / ref_close"),
    ("beta_60", "unitless, 60-bar OLS beta of daily returns to the equal-weighted market"),
    ("resid_vol_60", "annualised fraction, 60-bar residual volatility vs the market"),
    ("ics_per_risk", "z-score units, z(ics) / (resid_vol_60 / median resid_vol_60)"),
    ("tech_per_risk", "z-score units, z(tech_rating) / (resid_vol_60 / median)"),
    ("alpha_ir", "unitless, alpha_10d / (resid_vol_60 * sqrt(10/252)): forecast IR"),
)) + (Column("regime", "text", "risk_on, neutral or risk_off: the run's regime", scope="scan",
             source="score"),
      Column("alpha_model", "text", "the model set that produced the alphas: 'final' on the "
             "latest date, a walk-forward model's name on a past date (NULL: none)",
             scope="scan", source="score"))

_FACTOR_UNITS: dict[str, str] = {
    "earnings_yield": "fraction per year, TTM net income / market cap (close x diluted shares)",
    "sales_yield": "fraction per year, TTM revenue / market cap (close x diluted shares)",
    "fcf_yield": "fraction per year, TTM free cash flow / market cap (close x diluted shares)",
    "book_to_price": "ratio, total equity of the latest quarter / market cap (NULL where "
                     "equity <= 0)",
    "roe": "fraction per year, TTM net income / total equity (NULL where equity <= 0)",
    "roa": "fraction per year, TTM net income / total assets",
    "accruals": "fraction per year, (TTM net income - TTM free cash flow) / total assets "
                "(lower is better)",
    "fcf_margin": "fraction, TTM free cash flow / TTM revenue (NULL where revenue <= 0)",
    "revenue_growth_yoy": "fraction, latest quarter's revenue vs 12 months earlier - 1",
    "earnings_growth_yoy": "fraction, (net income - net income 1y ago) / |net income 1y ago|",
    "value_score": "0-100 points, mean sector-neutral rank of E/P, S/P, FCF/P, B/P",
    "quality_score": "0-100 points, mean sector-neutral rank of ROE, ROA, accruals, FCF margin",
    "growth_score": "0-100 points, mean sector-neutral rank of revenue and earnings growth",
    "shares_diluted_pit": "shares, weighted-average diluted shares of the latest quarter "
                          "public on the scan date",
}


def _factor_unit(name: str) -> str:
    if name in _FACTOR_UNITS:
        return _FACTOR_UNITS[name] + " (point-in-time fundamentals; NULL without them)"
    base = name.removesuffix("_sn")
    return (f"0-100 points, sector-neutral percentile of {base} in the run's universe "
            "(100 = best in its sector)")


#: The numeric point-in-time fundamental factors a scan adds (=
#: :data:`technic.store.migrations.FUNDAMENTAL_RESULT_COLUMNS`; named here from the scoring
#: module: technic.store.migrations imports this package for the built-in presets).
FUNDAMENTAL_COLUMNS: tuple[str, ...] = tuple(
    c for c in FACTOR_COLUMNS if c not in ("market_cap_pit", "market_cap_source",
                                           "fund_period_end", "fund_available_date"))

#: The point-in-time fundamental factors of a scan (docs/scoring.md, docs/tables.md).
_FUNDAMENTALS: tuple[Column, ...] = (
    *(Column(n, "num", _factor_unit(n), scope="scan", source="fundamental")
      for n in FUNDAMENTAL_COLUMNS),
    Column("market_cap_source", "text", "where market_cap_pit came from: fundamentals, "
           "reference or NULL", scope="scan", source="fundamental"),
)

_OPTION_UNITS: dict[str, str] = {
    "opt_atm_iv_30d": "annualized fraction, ATM implied volatility at 30 days",
    "opt_iv_rv_20": "ratio, opt_atm_iv_30d / 20-day realized volatility",
    "opt_iv_rank_252": "0-1, (IV - min) / (max - min) of ATM IV 30d over 252 sessions "
                       "(NULL until 252 sessions exist)",
    "opt_skew_25d": "vol points (decimal IV), IV(25-delta put) - IV(25-delta call), "
                    "expiration nearest 30 days",
    "opt_term_slope": "vol points (decimal IV), ATM IV 90d - ATM IV 30d (> 0 = contango)",
    "opt_put_call_volume": "ratio, put volume / call volume of the session",
    "opt_volume_oi": "ratio, option volume / open interest of the session",
    "opt_expected_move_pct": "fraction of the underlying price, expected move to the next "
                             "expiration (ATM straddle or IV)",
}

#: The ``opt_*`` option metrics (docs/options.md; =
#: :data:`technic.store.migrations.OPTION_RESULT_COLUMNS`, checked by tests/unit/test_screen.py);
#: in a scan's rows with options only.
_OPTIONS: tuple[Column, ...] = tuple(
    Column(n, "num", u + " (option_metrics; scan --with-options)", scope="options",
           source="option") for n, u in _OPTION_UNITS.items())

#: Every column a screen can use, by name, in display order: features, reference, scores,
#: fundamental factors, option metrics.
COLUMNS: dict[str, Column] = {c.name: c for c in (
    *(Column(f.name, "num", f.unit) for f in FEATURES), *_REFERENCE, *_SCORES,
    *_FUNDAMENTALS, *_OPTIONS)}

#: Columns available outside a scan (the feature store joined with ``symbols``).
FEATURE_SCOPE: frozenset[str] = frozenset(n for n, c in COLUMNS.items() if c.scope == "features")

#: The ``opt_*`` columns: a scan has them only with options (``with_options``).
OPTION_SCOPE: frozenset[str] = frozenset(n for n, c in COLUMNS.items() if c.scope == "options")


class UnknownColumnError(ValueError):
    """A name that is not in :data:`COLUMNS` (or not in the allowed scope)."""


def check_column(name: str, allowed: frozenset[str] | set[str] | None = None,
                 what: str = "column") -> Column:
    """The :class:`Column` called ``name``.

    Args:
        allowed: names allowed here (default: every column).
        what: how the error names it (``--sort``, ``--columns`` …).

    Raises:
        UnknownColumnError: one line naming the closest known names (difflib) or pointing to
            ``technic columns``.
    """
    names = set(COLUMNS) if allowed is None else set(allowed)
    if name in names:
        return COLUMNS[name]
    close = difflib.get_close_matches(name.lower(), sorted(names), n=5, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}?" if close else "`technic columns` lists them"
    scope = " outside a scan" if name in COLUMNS else ""
    raise UnknownColumnError(f"unknown {what} {name!r}{scope}; {hint}")


def parse_columns(text: str | Sequence[str] | None,
                  allowed: frozenset[str] | set[str] | None = None) -> tuple[str, ...]:
    """A ``--columns a,b,c`` list: names split on commas, blanks dropped, each checked.

    Raises:
        UnknownColumnError: a name is unknown.
    """
    if text is None:
        return ()
    items = text.split(",") if isinstance(text, str) else [
        p for t in text for p in str(t).split(",")]
    out: list[str] = []
    for raw in items:
        name = raw.strip()
        if name and name not in out:
            check_column(name, allowed, "--columns entry")
            out.append(name)
    return tuple(out)
