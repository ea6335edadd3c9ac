"""One scan: feature store → universe filter → factors, TechRating, ICS → regime → alpha →
MERIT → rank → ``scan_results``.

Each scan is a ``scan_runs`` row (params, preset, status, counts, per-stage timings) and its
ranked rows in ``scan_results`` (rank 1 = best, no gaps). A failed scan leaves its run marked
``failed`` with the error and no results.

Presets decide which runs analysts read: a scan with the default universe filter is preset
``default`` and feeds ``latest_scan_results``; a scan with other filters (``--sector``, another
``--min-price`` …) is a custom scan (preset NULL) that feeds no view unless it is given a name,
which ``latest_scan_results_by_preset`` shows.

Screens (docs/screens.md): a ``where`` filter (:mod:`technic.screen.filter`), ``industries`` and
``min_market_cap`` apply after scoring — the scores stay cross-sectional over the universe
filter — and the rows they keep are ranked 1..n again (``counts["dropped_where"]``). Stored
presets (``scan_presets``) resolve to :class:`ScanParams` with :func:`resolve_preset`.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from technic.cache import FrameCache, get_cache
from technic.calendar import sessions
from technic.config import get_settings
from technic.panel import Panel
from technic.scoring.fundamentals import pit_state
from technic.scoring.rank import DEFAULT_RANK, add_merit, order_by, rank_frame
from technic.scoring.regime import regime_of
from technic.scoring.risk import alpha_per_risk, latest_beta_residual_vol, per_unit_risk
from technic.screen.columns import COLUMNS, OPTION_SCOPE, check_column, parse_columns
from technic.screen.filter import (
    Cmp,
    Col,
    In,
    Lit,
    Node,
    columns_of,
    conjoin,
    evaluate,
    parse_filter,
)
from technic.screen.presets import Preset
from technic.store.bars import read_bars_arrow, window_start
from technic.store.catalog import known_sectors
from technic.store.db import DatabaseTarget, pooled_adbc
from technic.store.features import features_version, latest_feature_date, read_features_arrow
from technic.store.fundamentals import read_fundamentals
from technic.store.market import market_caps, market_returns
from technic.store.migrations import (
    DEFAULT_PRESET,
    FACTOR_RESULT_COLUMNS,
    FUNDAMENTAL_RESULT_COLUMNS,
    OPTION_RESULT_COLUMNS,
    RESULT_FEATURE_COLUMNS,
    RISK_RESULT_COLUMNS,
    SCORE_COLUMNS,
)
from technic.store.presets import get_preset
from technic.store.results import fail_scan_run, finish_scan_run, start_scan_run
from technic.store.screen import known_industries
from technic.universe import UniverseRules
from technic.universe import check_sectors as universe_check_sectors

log = logging.getLogger(__name__)

__all__ = ["HEADLINE_COLUMNS", "SUMMARY_COLUMNS", "NoFeaturesError", "ScanOutcome",
           "ScanParams", "add_alpha", "add_merit", "add_options", "add_risk", "apply_screen",
           "check_industries", "check_sectors", "params_from_preset", "rank_frame",
           "resolve_preset", "run_scan", "sort_results", "start_scan"]


#: The result columns a scan reports, in display order: the ``--json`` results and the
#: flows' summary (``scan_results`` stores them all, in the order of
#: :data:`technic.store.results.RESULT_COLUMNS`).
SUMMARY_COLUMNS: tuple[str, ...] = (
    "rank", "symbol", "sector", "close", "tech_rating", *SCORE_COLUMNS, "ics", "merit",
    "regime", "alpha_5d", "alpha_10d", "alpha_model", *RESULT_FEATURE_COLUMNS,
    *FACTOR_RESULT_COLUMNS, "market_cap_source", *FUNDAMENTAL_RESULT_COLUMNS,
    *OPTION_RESULT_COLUMNS, *RISK_RESULT_COLUMNS)
#: The headline columns (the flows' ``scan-top`` table): rank, identity, every score
#: (TechRating and its components, ICS, MERIT, the regime, the alphas and the alpha score)
#: and the key features.
HEADLINE_COLUMNS: tuple[str, ...] = (
    *SUMMARY_COLUMNS[:SUMMARY_COLUMNS.index("alpha_10d") + 1], "alpha_score", "rsi_14",
    "adx_14", "ret_12_1", "dist_52w_high", "rel_volume_20", "dollar_volume_20")


_PRESET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class NoFeaturesError(LookupError):
    """The feature store has no rows for the requested date: run ``technic features refresh``."""


@dataclass(frozen=True)
class ScanParams:
    """Parameters of a scan (validated on construction).

    Attributes:
        top: rows to show/return in the summary (all passing symbols are stored), ≥ 1.
        as_of: scan date; resolved to the latest feature date on or before it. None = latest.
        rules: universe filter.
        preset: the name stored in ``scan_runs.preset``. None: ``default`` when ``rules``
            are the defaults and there is no screen, else a custom scan (NULL, feeds no
            view). ``default`` is reserved for the default rules; other names: letters,
            digits, ``_.-``, ≤ 64.
        where: filter text (docs/screens.md), applied after scoring; None = no filter.
        industries: keep only these industries (case-insensitive); empty = all.
        min_market_cap: minimum ``market_cap`` (USD, reference data); None = no minimum.
        sort: column the returned results are ordered by (the stored ``rank`` stays the
            default-rank order, ICS); None = rank.
        descending: sort direction; None = descending for numbers, ascending for ``rank``
            and text.
        columns: columns to show (presentation only; empty = the default table).
        with_options: add the ``opt_*`` option metrics of the scan date (``option_metrics``)
            to symbols with a chain that day (NULL for the others). Set by itself when
            ``where``, ``sort`` or ``columns`` names an ``opt_*`` column
            (:data:`technic.screen.columns.OPTION_SCOPE`): asking for an option column
            asks for the options.

    Raises:
        ValueError: a bad value; :class:`technic.screen.filter.FilterError` (a ValueError)
            for a bad filter or an unknown column, one line.
    """

    top: int = 25
    as_of: dt.date | None = None
    rules: UniverseRules = field(default_factory=UniverseRules)
    preset: str | None = None
    where: str | None = None
    industries: tuple[str, ...] = ()
    min_market_cap: float | None = None
    sort: str | None = None
    descending: bool | None = None
    columns: tuple[str, ...] = ()
    with_options: bool = False

    def __post_init__(self) -> None:
        if self.top < 1:
            raise ValueError(f"top must be >= 1, got {self.top}")
        parse_filter(self.where)
        if self.sort is not None:
            check_column(self.sort, what="--sort column")
        parse_columns(self.columns)
        if self.min_market_cap is not None and not (np.isfinite(self.min_market_cap)
                                                    and self.min_market_cap >= 0):
            raise ValueError(f"min_market_cap must be a number >= 0, got {self.min_market_cap}")
        if self.preset is not None:
            if not _PRESET_NAME.match(self.preset):
                raise ValueError(f"preset {self.preset!r}: use letters, digits, '_', '.', '-' "
                                 "(at most 64 characters)")
            if self.preset == DEFAULT_PRESET and not self.is_default_filter:
                raise ValueError(f"preset {DEFAULT_PRESET!r} is the default filter only; name "
                                 "a scan with other filters differently")
        if not self.with_options and self.option_columns:
            object.__setattr__(self, "with_options", True)  # frozen: set once, while built

    @property
    def option_columns(self) -> set[str]:
        """The ``opt_*`` columns the filter, ``sort`` and ``columns`` name (they need
        ``with_options``)."""
        node = parse_filter(self.where)
        named = (columns_of(node) if node is not None else set()) | set(self.columns) | (
            {self.sort} if self.sort else set())
        return named & OPTION_SCOPE

    @property
    def is_default_filter(self) -> bool:
        """True when the scan keeps the default universe: default rules, no screen."""
        return self.rules == UniverseRules() and not self.has_screen

    @property
    def has_screen(self) -> bool:
        """True when a ``where`` filter, industries or a minimum market cap is set."""
        return bool((self.where or "").strip() or self.industries
                    or self.min_market_cap is not None)

    @property
    def screen(self) -> Node | None:
        """The whole post-scoring filter: ``where`` and the industry and market-cap options
        as one AST (None: none)."""
        return conjoin(
            parse_filter(self.where),
            In(Col("industry"), tuple(self.industries)) if self.industries else None,
            Cmp(">=", Col("market_cap"), Lit(float(self.min_market_cap)))
            if self.min_market_cap is not None else None)

    @property
    def run_preset(self) -> str | None:
        """``scan_runs.preset`` of this scan (see ``preset``)."""
        if self.preset is not None:
            return self.preset
        return DEFAULT_PRESET if self.is_default_filter else None

    def as_json(self) -> dict:
        d = asdict(self)
        d["as_of"] = self.as_of.isoformat() if self.as_of else None
        d["rules"]["sectors"] = list(self.rules.sectors)
        for k in ("industries", "columns"):
            d[k] = list(d[k])
        return d


@dataclass
class ScanOutcome:
    """A finished scan: its run id, resolved date, counts, timings and ranked rows."""

    run_id: int | None
    as_of: dt.date
    counts: dict[str, int]
    timings_s: dict[str, float]
    results: pd.DataFrame
    cache: dict = field(default_factory=dict)
    #: Things the user should know (e.g. the data are older than ``--as-of``), one line each.
    warnings: list[str] = field(default_factory=list)

    def to_json(self, top: int, columns: tuple[str, ...] | list[str] = ()) -> dict:
        """The ``--json`` shape: run_id (None when not saved), as_of, counts, timings_s,
        results (top rows; ``columns`` or :data:`SUMMARY_COLUMNS`), and ``warnings`` when
        there are any.

        A summary column the scan did not compute (the ``opt_*`` columns without options) is
        null, as ``scan_results`` stores it: every answer of the CLI, the flows and the HTTP
        API (streamed or read back) has the same keys."""
        have = set(self.results.columns)
        cols = [c for c in (columns or SUMMARY_COLUMNS) if c in have or c in SUMMARY_COLUMNS]
        head = self.results.head(top).reindex(columns=cols)
        rows = [{k: (None if isinstance(v, float) and not np.isfinite(v) else
                     (v.item() if isinstance(v, np.generic) else v)) for k, v in r.items()}
                for r in head.to_dict(orient="records")]
        doc: dict = {"run_id": self.run_id, "as_of": self.as_of.isoformat(), "counts": self.counts,
               "timings_s": self.timings_s, "results": rows}
        if self.warnings:
            doc["warnings"] = list(self.warnings)
        return doc


_CAPS: dict[str, pd.DataFrame] = {}


def _caps(target: DatabaseTarget, features_key: str) -> pd.DataFrame:
    """Market caps for ICS size, read once per feature version (the version token covers
    ``symbols.updated_at`` and the feature rows of the scanned date)."""
    k = f"{target.cache_namespace()}:{features_key}"
    if k not in _CAPS:
        if len(_CAPS) > 8:
            _CAPS.clear()
        _CAPS[k] = market_caps(target)
    return _CAPS[k]


def fundamentals_as_of(target: DatabaseTarget, day: dt.date) -> pd.DataFrame | None:
    """The point-in-time fundamentals state of ``day``
    (:func:`technic.scoring.fundamentals.pit_state` of the stored quarters public on or before
    it), or None while ``fundamentals`` holds no quarter public by then (the scan then sizes
    by the reference shares and leaves the fundamental columns NULL)."""
    quarters = read_fundamentals(target, as_of=day)
    return None if quarters.empty else pit_state(quarters, day)


def add_alpha(ranked: pd.DataFrame, model_dir=None, as_of: dt.date | None = None
              ) -> pd.DataFrame:
    """Add ``alpha_5d``/``alpha_10d`` (XGBoost predicted excess forward return over the next 5
    and 10 bars, fraction; models/MODEL_CARD.md) and ``alpha_model`` (which model set) to the
    ranked, universe-passing rows.

    With ``as_of``, the model is the one a scan of that date may use
    (:func:`technic.ml.walkforward.choose_model`: the latest whose training labels ended on or
    before ``as_of``, so a past date never sees a model fit on its own future); none →
    NaN alphas and NULL ``alpha_model``. Without ``as_of``, the final models. The ranking itself
    is unchanged. Missing models give NaN columns and a warning.
    """
    from technic.ml.inference import predict_alpha
    from technic.ml.walkforward import choose_model

    folder = model_dir or get_settings().model_dir
    if as_of is None:
        alphas = predict_alpha(ranked, folder)
        name = "final"
    else:
        choice = choose_model(as_of, folder)
        if choice is None:
            log.warning("no alpha model in %s was trained on or before %s; alphas are NaN",
                        folder, as_of)
            return ranked.assign(alpha_5d=np.nan, alpha_10d=np.nan, alpha_model=None)
        alphas = predict_alpha(ranked, folder, files=choice.files)
        name = choice.name
    has = alphas.notna().any(axis=1).to_numpy() if len(alphas.columns) else \
        np.zeros(len(ranked), bool)
    model = np.full(len(ranked), None, dtype=object)
    model[has] = name
    return ranked.assign(**{c: alphas[c].to_numpy() for c in alphas.columns},
                         alpha_model=model)


#: Trailing dates of the risk estimates (:func:`technic.scoring.risk.market_beta_residual_vol`)
#: and the fewest returns an estimate needs (fewer: NULL).
RISK_WINDOW, RISK_MIN_OBS = 60, 40


def add_risk(target: DatabaseTarget, ranked: pd.DataFrame, day: dt.date,
             market: pd.Series) -> pd.DataFrame:
    """``ranked`` (the filtered universe of ``day``, with ``ics``, ``tech_rating`` and
    ``alpha_10d``) with the risk columns of :data:`RISK_RESULT_COLUMNS` (docs/scoring.md
    "Risk-adjusted ranking"):

    * ``beta_60`` (unitless) and ``resid_vol_60`` (annualised fraction): OLS of the symbol's
      own daily returns on the equal-weighted market's (``market_daily``) over the last
      ``RISK_WINDOW`` trading dates up to ``day`` (bars of the last ``RISK_WINDOW + 1`` dates,
      one read); NaN with fewer than ``RISK_MIN_OBS`` returns;
    * ``ics_per_risk``, ``tech_per_risk``: :func:`technic.scoring.risk.per_unit_risk` of ICS
      and TechRating by ``resid_vol_60`` within ``ranked`` (z-score units);
    * ``alpha_ir``: :func:`technic.scoring.risk.alpha_per_risk` of ``alpha_10d``, h = 10.

    Args:
        market: the equal-weighted market's daily returns indexed by date
            (:func:`technic.store.market.market_returns`, covering the window).
    """
    syms = ranked["symbol"].to_numpy(dtype=object)
    beta = resid = np.full(len(ranked), np.nan)
    if len(ranked):
        start = window_start(target, day, RISK_WINDOW + 1)
        with pooled_adbc(target) as conn:  # a pooled connection: opening one costs ~50 ms
            p = Panel.from_arrow(read_bars_arrow(target, start, day, conn=conn))
        m = market.reindex(pd.to_datetime(p.dates)).to_numpy(np.float64)
        b, r = latest_beta_residual_vol(p.close, m, RISK_WINDOW, RISK_MIN_OBS)
        col = pd.Series(np.arange(len(p.symbols)), index=p.symbols).reindex(syms)
        have = col.notna().to_numpy()
        j = col.to_numpy()[have].astype(np.int64)
        beta, resid = beta.copy(), resid.copy()
        beta[have], resid[have] = b[j], r[j]
    out = ranked.assign(beta_60=beta, resid_vol_60=resid)
    out["ics_per_risk"] = per_unit_risk(out["ics"].to_numpy(np.float64), resid)
    out["tech_per_risk"] = per_unit_risk(out["tech_rating"].to_numpy(np.float64), resid)
    alpha = out["alpha_10d"].to_numpy(np.float64) if "alpha_10d" in out.columns else \
        np.full(len(out), np.nan)
    out["alpha_ir"] = alpha_per_risk(alpha, resid, 10)
    return out


def add_options(target: DatabaseTarget, ranked: pd.DataFrame, day: dt.date) -> pd.DataFrame:
    """``ranked`` with the ``opt_*`` columns (:data:`OPTION_RESULT_COLUMNS`) of session
    ``day`` from ``option_metrics``; NaN for symbols without a chain that day."""
    from technic.jobs.options import option_metrics_for_scan

    opts = option_metrics_for_scan(target, day)
    merged = ranked.drop(columns=[c for c in OPTION_RESULT_COLUMNS if c in ranked.columns]) \
        .merge(opts, on="symbol", how="left")
    merged.index = ranked.index
    return merged


def check_sectors(target: DatabaseTarget, sectors: list[str] | tuple[str, ...] | None) -> None:
    """Reject sectors that no symbol has (a typo would otherwise scan an empty universe).

    Compared case-insensitively, like the universe filter. Skipped while ``symbols`` is empty
    (a first run that ingests the reference data before it scans); see
    :func:`technic.universe.check_sectors`.

    Raises:
        ValueError: a sector is unknown; the message lists the known ones.
    """
    if sectors:
        universe_check_sectors(sectors, known_sectors(target))


def start_scan(target: DatabaseTarget, params: ScanParams) -> int:
    """Insert the ``scan_runs`` row of a scan (status ``running``, its run lock held by this
    process) and return its ``run_id``; :func:`run_scan` with ``run_id`` runs it later (the
    HTTP API answers with the id at once and scans in a worker thread)."""
    return start_scan_run(target, params.as_json(), params.run_preset)


def check_industries(target: DatabaseTarget, industries: list[str] | tuple[str, ...] | None
                     ) -> None:
    """Reject industries that no symbol has (case-insensitive; skipped while ``symbols`` has
    no industries).

    Raises:
        ValueError: an industry is unknown; the message lists the closest known ones
            (there are ~150: ``technic sectors --industries`` lists them all).
    """
    if not industries:
        return
    known = known_industries(target)
    if not known:
        return
    lower = {k.lower() for k in known}
    unknown = [s for s in industries if s.lower() not in lower]
    if unknown:
        import difflib

        close = sorted({m for u in unknown for m in difflib.get_close_matches(
            u, known, n=4, cutoff=0.5)})
        hint = f"closest: {', '.join(close)}; " if close else ""
        raise ValueError(f"unknown industr{'y' if len(unknown) == 1 else 'ies'} "
                         f"{', '.join(map(repr, unknown))}; {hint}"
                         "`technic sectors --industries` lists them all")


def add_reference_columns(ranked: pd.DataFrame, caps: pd.DataFrame) -> pd.DataFrame:
    """Add ``market_cap`` (USD, ``symbols.market_cap``; NaN without one) and
    ``dollar_volume`` (USD, close × volume of the last bar) for screens."""
    cap = caps.set_index("symbol")["market_cap"] if len(caps) else pd.Series(dtype=float)
    return ranked.assign(
        market_cap=cap.reindex(ranked["symbol"].to_numpy()).to_numpy(np.float64),
        dollar_volume=ranked["close"].to_numpy(np.float64, na_value=np.nan)
        * ranked["volume"].to_numpy(np.float64, na_value=np.nan))


def apply_screen(ranked: pd.DataFrame, screen: Node | None,
                 counts: dict[str, int]) -> pd.DataFrame:
    """Keep the ranked rows a screen keeps and number them 1..n again (the default-rank order).

    Args:
        ranked: rows with ``rank`` (ascending) and every column the screen reads.
        screen: :attr:`ScanParams.screen` (None: nothing dropped).
        counts: updated in place: ``dropped_where`` and ``passed``.

    Returns:
        The kept rows, ``rank`` renumbered.
    """
    if screen is None:
        return ranked
    keep = evaluate(screen, ranked)
    counts["dropped_where"] = int((~keep).sum())
    counts["passed"] = int(keep.sum())
    out = ranked[keep].reset_index(drop=True)
    out["rank"] = np.arange(1, len(out) + 1, dtype=np.int64)
    return out


def default_descending(column: str) -> bool:
    """The default sort direction of a column: ascending for ``rank`` and text, descending
    for numbers (best scores first)."""
    return column != "rank" and COLUMNS[column].kind == "num"


def sort_results(results: pd.DataFrame, sort: str | None,
                 descending: bool | None = None) -> pd.DataFrame:
    """Results ordered by ``sort`` (NULLs last, ties by rank; stable), or unchanged.

    Raises:
        technic.screen.columns.UnknownColumnError: an unknown column.
    """
    if not sort or sort == "rank" and descending is not True:
        return results
    check_column(sort, what="--sort column")
    if sort not in results.columns:
        raise ValueError(f"--sort {sort}: the results have no such column")
    desc = default_descending(sort) if descending is None else descending
    key = results[sort]
    if COLUMNS[sort].kind == "text":
        key = key.astype(object).map(lambda v: v.lower() if isinstance(v, str) else None)
    order = results.assign(_k=key).sort_values(
        ["_k", "rank"] if "rank" in results.columns else ["_k"],
        ascending=[not desc, True] if "rank" in results.columns else [not desc],
        na_position="last", kind="mergesort")
    return order.drop(columns="_k").reset_index(drop=True)


def params_from_preset(p: Preset, as_of: dt.date | None = None,
                       top: int | None = None) -> ScanParams:
    """The scan parameters of a preset (run under its name: ``scan_runs.preset``).

    Args:
        p: the preset; its ``params`` fill :class:`UniverseRules` (missing = defaults).
        as_of: scan date (None = latest). top: overrides the preset's ``top``.

    Raises:
        ValueError: the stored preset is invalid (e.g. a column that no longer exists).
    """
    q = dict(p.params)
    d = UniverseRules()
    rules = UniverseRules(
        min_price=float(q.get("min_price", d.min_price)),
        min_dollar_volume=float(q.get("min_dollar_volume", d.min_dollar_volume)),
        valid_tickers=bool(q.get("valid_tickers", d.valid_tickers)),
        exclude_leveraged_etfs=bool(q.get("exclude_leveraged_etfs", d.exclude_leveraged_etfs)),
        sectors=tuple(q.get("sectors") or ()))
    mcap = q.get("min_market_cap")
    return ScanParams(top=top or int(q.get("top", 25)), as_of=as_of, rules=rules,
                      preset=p.name, where=p.where or None,
                      industries=tuple(q.get("industries") or ()),
                      min_market_cap=None if mcap is None else float(mcap), sort=p.sort,
                      descending=p.descending, columns=tuple(p.columns))


def resolve_preset(target: DatabaseTarget, name: str, as_of: dt.date | None = None,
                   top: int | None = None) -> ScanParams:
    """The :class:`ScanParams` of the stored preset ``name`` (built in or saved): what
    ``technic preset run NAME`` and a flow's ``preset`` parameter run.

    Raises:
        technic.store.presets.PresetNotFound: no such preset (the message lists them).
        ValueError: the stored preset is invalid.
    """
    return params_from_preset(get_preset(target, name), as_of, top)


def _stale_warning(requested: dt.date | None, day: dt.date) -> str | None:
    """A warning when NYSE sessions lie between the data's last date ``day`` and the scan
    date asked for (a weekend or holiday after it is no news); None otherwise."""
    if requested is None or requested <= day:
        return None
    try:
        missed = len(sessions(day + dt.timedelta(days=1), requested))
    except ValueError:  # beyond the calendar's range: certainly stale
        missed = -1
    if missed == 0:
        return None
    days = (requested - day).days
    age = f"{days} day{'s' if days != 1 else ''}" if days < 60 else \
        f"{days} days (~{days / 30.44:.0f} months)"
    gap = f", {missed} NYSE session{'s' if missed != 1 else ''} missing" if missed > 0 else ""
    return (f"--as-of {requested} is after the last feature date: scanned {day}, "
            f"the data are {age} old{gap} (run `technic ingest …` and `technic features "
            "refresh` for newer data)")


def run_scan(target: DatabaseTarget, params: ScanParams,
             on_stage: Callable[[str], None] | None = None,
             cache: FrameCache | None = None, run_id: int | None = None,
             save: bool = True) -> ScanOutcome:
    """Run one scan and (by default) store it.

    Args:
        target: the store.
        params: validated parameters.
        on_stage: called with each stage name as it starts (progress display).
        cache: where the feature frame is looked up first (L1/L2); default: the process-wide
            cache for ``TECHNIC_REDIS_URL``. Which layer served it goes to ``scan_runs.cache``.
        run_id: a run row made by :func:`start_scan` with the same ``params`` (by this
            process); None: a new one.
        save: store the run (``scan_runs``/``scan_results``) and extend ``market_daily``.
            False: read only — nothing is written, ``run_id`` is None (the regime reads the
            stored ``market_daily`` rows; dates missing there are computed from the bars in
            memory).

    Returns:
        The outcome: results hold every symbol that passed the filters, ranked (``rank``
        1..n by TechRating), ordered by ``params.sort`` when given.

    Raises:
        NoFeaturesError: no feature rows on or before ``params.as_of``.
        ValueError: an unknown sector or industry (nothing stored).
    """
    check_sectors(target, params.rules.sectors)
    check_industries(target, params.industries)
    screen = params.screen
    timings: dict[str, float] = {}
    warnings: list[str] = []
    if not save:
        run_id = None
    elif run_id is None:
        run_id = start_scan(target, params)
    t_all = time.perf_counter()
    try:
        stage = "read_features"
        if on_stage:
            on_stage(stage)
        t = time.perf_counter()
        day = latest_feature_date(target, params.as_of)
        if day is None:
            raise NoFeaturesError(
                "no feature rows" + (f" on or before {params.as_of}" if params.as_of else "")
                + "; run `technic features refresh` first")
        cache = cache or get_cache(get_settings().redis_url, target.cache_namespace())
        key = f"features:{day}:{features_version(target, day)}"
        with cache.recording() as rec:
            table, layer = cache.get_or_load(key, lambda: read_features_arrow(target, day))
        features = table.to_pandas(date_as_object=True)
        # this scan's lookups only: hits, misses, bytes and errors of each layer
        cache_info = {"features": layer, "l2_state": rec.l2_state,
                      "bytes": int(table.nbytes),
                      **{name: asdict(getattr(rec, name)) for name in ("l1", "l2", "l3")}}
        timings[stage] = round(time.perf_counter() - t, 4)
        stage = "filter_score_rank"
        if on_stage:
            on_stage(stage)
        t = time.perf_counter()
        caps = _caps(target, key)
        # a past date: membership from the bars that existed then, not today's status
        point_in_time = day < (latest_feature_date(target, None) or day)
        ranked, counts = rank_frame(features, params.rules, caps,
                                    fundamentals_as_of(target, day), point_in_time)
        ranked = add_reference_columns(ranked, caps)
        timings[stage] = round(time.perf_counter() - t, 4)
        stage = "regime"
        if on_stage:
            on_stage(stage)
        t = time.perf_counter()
        market = market_returns(target, day, update=save)
        regime = regime_of(market, ranked)
        timings[stage] = round(time.perf_counter() - t, 4)
        stage = "alpha"
        if on_stage:
            on_stage(stage)
        t = time.perf_counter()
        ranked = order_by(add_merit(add_alpha(ranked, as_of=day), regime), DEFAULT_RANK)
        timings[stage] = round(time.perf_counter() - t, 4)
        stage = "risk"  # timed, not a progress stage of its own (technic.service.runner)
        t = time.perf_counter()
        ranked = add_risk(target, ranked, day, market)
        timings[stage] = round(time.perf_counter() - t, 4)
        if params.with_options:
            stage = "options"
            t = time.perf_counter()
            ranked = add_options(target, ranked, day)
            counts["with_options"] = int(ranked["opt_atm_iv_30d"].notna().sum())
            timings[stage] = round(time.perf_counter() - t, 4)
            if counts["with_options"] == 0:
                warnings.append(f"no option metrics for {day}: the opt_* columns are NULL "
                                "(load option chains with `technic ingest files` or "
                                "`technic options snapshot`)")
        if screen is not None:
            stage = "screen"
            t = time.perf_counter()
            ranked = apply_screen(ranked, screen, counts)
            timings[stage] = round(time.perf_counter() - t, 4)
        if run_id is not None:
            stage = "write_results"
            if on_stage:
                on_stage(stage)
            finish_scan_run(target, run_id, day, ranked, counts, timings, started=t_all,
                            cache=cache_info, regime=regime.label,
                            regime_facts=regime.facts())
        else:
            timings["total"] = round(time.perf_counter() - t_all, 4)
    except Exception as e:
        timings["total"] = round(time.perf_counter() - t_all, 4)
        if run_id is None:
            raise
        try:
            fail_scan_run(target, run_id, f"{type(e).__name__}: {e}", timings)
        except Exception as e2:  # e.g. the database is gone: the next run marks it orphaned
            log.warning("scan run %d: could not be marked failed (%s)", run_id,
                        str(e2).splitlines()[0] if str(e2) else type(e2).__name__)
        raise
    log.info("scan run %s for %s: %d of %d symbols ranked", run_id, day, counts["passed"],
             counts["input"])
    warnings[:0] = [w for w in (_stale_warning(params.as_of, day),) if w]
    for w in warnings:  # the CLI prints them, tc.scan() warns, flows log them
        log.info("%s", w)
    return ScanOutcome(run_id=run_id, as_of=day, counts=counts, timings_s=timings,
                       results=sort_results(ranked, params.sort, params.descending),
                       cache=cache_info, warnings=warnings)
