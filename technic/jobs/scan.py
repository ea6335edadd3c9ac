"""One scan: feature store → universe filter → factors, TechRating, ICS → regime → alpha →
MERIT → rank → ``scan_results``.

Each scan is a ``scan_runs`` row (params, preset, status, counts, per-stage timings) and its
ranked rows in ``scan_results`` (rank 1 = best, no gaps). A failed scan leaves its run marked
``failed`` with the error and no results.

Presets decide which runs analysts read: a scan with the default universe filter is preset
``default`` and feeds ``latest_scan_results``; a scan with other filters (``--sector``, another
``--min-price`` …) is a custom scan (preset NULL) that feeds no view unless it is given a name,
which ``latest_scan_results_by_preset`` shows.
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
from technic.config import get_settings
from technic.scoring.rank import DEFAULT_RANK, add_merit, order_by, rank_frame
from technic.scoring.regime import regime_of
from technic.store.catalog import known_sectors
from technic.store.db import DatabaseTarget
from technic.store.features import features_version, latest_feature_date, read_features_arrow
from technic.store.market import market_caps, market_returns
from technic.store.results import fail_scan_run, finish_scan_run, start_scan_run
from technic.store.schema import (
    DEFAULT_PRESET,
    FACTOR_RESULT_COLUMNS,
    RESULT_FEATURE_COLUMNS,
    SCORE_COLUMNS,
)
from technic.universe import UniverseRules
from technic.universe import check_sectors as universe_check_sectors

log = logging.getLogger(__name__)

__all__ = ["HEADLINE_COLUMNS", "SUMMARY_COLUMNS", "NoFeaturesError", "ScanOutcome",
           "ScanParams", "add_alpha", "add_merit", "check_sectors", "rank_frame", "run_scan"]


#: The result columns a scan reports, in display order: the ``--json`` results and the
#: flows' summary (``scan_results`` stores them all, in the order of
#: :data:`technic.store.results.RESULT_COLUMNS`).
SUMMARY_COLUMNS: tuple[str, ...] = (
    "rank", "symbol", "sector", "close", "tech_rating", *SCORE_COLUMNS, "ics", "merit",
    "regime", "alpha_5d", "alpha_10d", "alpha_model", *RESULT_FEATURE_COLUMNS,
    *FACTOR_RESULT_COLUMNS)
#: The headline columns (the flows' top-N table): rank, identity, TechRating and its components.
HEADLINE_COLUMNS: tuple[str, ...] = SUMMARY_COLUMNS[:5 + len(SCORE_COLUMNS)]


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
            are the defaults, else a custom scan (NULL, feeds no view). ``default`` is
            reserved for the default rules; other names: letters, digits, ``_.-``, ≤ 64.
    """

    top: int = 25
    as_of: dt.date | None = None
    rules: UniverseRules = field(default_factory=UniverseRules)
    preset: str | None = None

    def __post_init__(self) -> None:
        if self.top < 1:
            raise ValueError(f"top must be >= 1, got {self.top}")
        if self.preset is not None:
            if not _PRESET_NAME.match(self.preset):
                raise ValueError(f"preset {self.preset!r}: use letters, digits, '_', '.', '-' "
                                 "(at most 64 characters)")
            if self.preset == DEFAULT_PRESET and self.rules != UniverseRules():
                raise ValueError(f"preset {DEFAULT_PRESET!r} is the default filter only; name "
                                 "a scan with other filters differently")

    @property
    def run_preset(self) -> str | None:
        """``scan_runs.preset`` of this scan (see ``preset``)."""
        if self.preset is not None:
            return self.preset
        return DEFAULT_PRESET if self.rules == UniverseRules() else None

    def as_json(self) -> dict:
        d = asdict(self)
        d["as_of"] = self.as_of.isoformat() if self.as_of else None
        d["rules"]["sectors"] = list(self.rules.sectors)
        return d


@dataclass
class ScanOutcome:
    """A finished scan: its run id, resolved date, counts, timings and ranked rows."""

    run_id: int
    as_of: dt.date
    counts: dict[str, int]
    timings_s: dict[str, float]
    results: pd.DataFrame
    cache: dict = field(default_factory=dict)

    def to_json(self, top: int) -> dict:
        """The ``--json`` shape: run_id, as_of, counts, timings_s, results (top rows)."""
        cols = [c for c in SUMMARY_COLUMNS if c in self.results.columns]
        head = self.results.head(top)[cols]
        rows = [{k: (None if isinstance(v, float) and not np.isfinite(v) else
                     (v.item() if isinstance(v, np.generic) else v)) for k, v in r.items()}
                for r in head.to_dict(orient="records")]
        return {"run_id": self.run_id, "as_of": self.as_of.isoformat(), "counts": self.counts,
                "timings_s": self.timings_s, "results": rows}


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


def run_scan(target: DatabaseTarget, params: ScanParams,
             on_stage: Callable[[str], None] | None = None,
             cache: FrameCache | None = None) -> ScanOutcome:
    """Run one scan and store it.

    Args:
        target: the store.
        params: validated parameters.
        on_stage: called with each stage name as it starts (progress display).
        cache: where the feature frame is looked up first (L1/L2); default: the process-wide
            cache for ``TECHNIC_REDIS_URL``. Which layer served it goes to ``scan_runs.cache``.

    Returns:
        The outcome (results hold every passing symbol, ranked).

    Raises:
        NoFeaturesError: no feature rows on or before ``params.as_of``.
    """
    timings: dict[str, float] = {}
    run_id = start_scan_run(target, params.as_json(), params.run_preset)
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
        # a past date: membership from the bars that existed then, not today's status
        point_in_time = day < (latest_feature_date(target, None) or day)
        ranked, counts = rank_frame(features, params.rules, _caps(target, key), point_in_time)
        timings[stage] = round(time.perf_counter() - t, 4)
        stage = "regime"
        if on_stage:
            on_stage(stage)
        t = time.perf_counter()
        regime = regime_of(market_returns(target, day), ranked)
        timings[stage] = round(time.perf_counter() - t, 4)
        stage = "alpha"
        if on_stage:
            on_stage(stage)
        t = time.perf_counter()
        ranked = order_by(add_merit(add_alpha(ranked, as_of=day), regime), DEFAULT_RANK)
        timings[stage] = round(time.perf_counter() - t, 4)
        stage = "write_results"
        if on_stage:
            on_stage(stage)
        finish_scan_run(target, run_id, day, ranked, counts, timings, started=t_all,
                        cache=cache_info, regime=regime.label, regime_facts=regime.facts())
    except Exception as e:
        timings["total"] = round(time.perf_counter() - t_all, 4)
        try:
            fail_scan_run(target, run_id, f"{type(e).__name__}: {e}", timings)
        except Exception as e2:  # e.g. the database is gone: the next run marks it orphaned
            log.warning("scan run %d: could not be marked failed (%s)", run_id,
                        str(e2).splitlines()[0] if str(e2) else type(e2).__name__)
        raise
    log.info("scan run %d for %s: %d of %d symbols ranked", run_id, day, counts["passed"],
             counts["input"])
    return ScanOutcome(run_id=run_id, as_of=day, counts=counts, timings_s=timings,
                       results=ranked, cache=cache_info)
