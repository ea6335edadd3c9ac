"""The Python API: screens, features and bars as pandas DataFrames.

    import technic as tc
    top = tc.scan(where="rsi_14 < 30 and close > sma_200", sort="merit")
    f = tc.features(["AAPL", "MSFT"], start="2025-01-01")
    b = tc.bars("AAPL", start="2025-06-01")

The database is resolved like the CLI (``TECHNIC_DATABASE_URL``, else the local server, else
the embedded one; schema ``TECHNIC_DB_SCHEMA``); a schema that does not exist is an error
(run ``technic db init``), never created. Nothing is written unless ``save=True``: no
``scan_runs``/``scan_results`` rows, no ``market_daily`` rows, no Prefect server. Every
function takes ``target=`` to use another :class:`technic.store.db.DatabaseTarget`.

Walk-through: docs/python-api.md (run by the tests on the bundled data).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import warnings
from collections.abc import Sequence

import pandas as pd

from technic.jobs.scan import ScanParams, params_from_preset, run_scan
from technic.jobs.target import SchemaMissing, open_target
from technic.screen.columns import COLUMNS, FEATURE_SCOPE, parse_columns
from technic.screen.filter import parse_filter
from technic.store.bars import last_bar_date, read_bars_arrow
from technic.store.db import DatabaseTarget
from technic.store.features import latest_feature_date
from technic.store.presets import get_preset, list_presets
from technic.store.screen import read_feature_rows
from technic.universe import DEFAULT_RULES, UniverseRules

__all__ = ["SchemaMissing", "bars", "columns", "features", "presets", "scan"]

DateLike = dt.date | str | None
_CHECKED: set[tuple[str, str]] = set()


def _target(target: DatabaseTarget | None) -> DatabaseTarget:
    if target is not None and (target.url, target.schema) in _CHECKED:
        return target
    t, _ = open_target(create=False, target=target)
    _CHECKED.add((t.url, t.schema))
    return t


def _date(v: DateLike, name: str) -> dt.date | None:
    if v is None or isinstance(v, dt.date):
        return v
    try:
        return dt.date.fromisoformat(v)
    except ValueError:
        raise ValueError(f"{name}={v!r} is not an ISO date (YYYY-MM-DD)") from None


def _symbols(symbols: str | Sequence[str] | None) -> list[str] | None:
    if symbols is None:
        return None
    return [symbols] if isinstance(symbols, str) else list(symbols)


def scan(where: str | None = None, *, as_of: DateLike = None, sort: str | None = None,
         descending: bool | None = None, columns: str | Sequence[str] | None = None,
         top: int | None = None, sectors: Sequence[str] | None = None,
         industries: Sequence[str] | None = None, min_market_cap: float | None = None,
         min_price: float = DEFAULT_RULES.min_price,
         min_dollar_volume: float = DEFAULT_RULES.min_dollar_volume,
         all_tickers: bool = False, keep_leveraged: bool = False, preset: str | None = None,
         with_options: bool = False, save: bool = False,
         target: DatabaseTarget | None = None) -> pd.DataFrame:
    """Scan one date: universe filter → scores → ``where`` → ranked rows.

    Args:
        where: filter text (docs/screens.md; ``tc.columns()`` lists the names), applied after
            scoring; None = none.
        as_of: scan date (latest feature date on or before it); None = the latest. A date
            after the data gives a warning (``df.attrs["warnings"]``).
        sort, descending: order of the rows (default: ``rank``, i.e. TechRating); direction
            default descending for numbers.
        columns: keep only these columns (list or ``"a,b,c"``); None = every column.
        top: the first ``top`` rows; None = all.
        sectors, industries, min_market_cap, min_price, min_dollar_volume, all_tickers,
            keep_leveraged: the universe filter, as on the CLI.
        preset: run a stored preset (its filter, sort and universe parameters; the other
            arguments except ``as_of``, ``top``, ``columns`` and ``save`` are then
            ignored; its display columns are not applied: every column is returned).
        with_options: add the ``opt_*`` option metrics of the scan date (as ``technic scan
            --with-options``); on by itself when ``where``, ``sort`` or ``columns`` names
            an ``opt_*`` column.
        save: store the run in ``scan_runs``/``scan_results`` (as ``technic scan`` does);
            False (default): nothing is written.
        target: another database target.

    Returns:
        One row per symbol that passed: ``rank`` (1 = best by the default rank, ICS, among
        them), the features, reference columns and scores (``tc.columns()`` for units).
        ``df.attrs`` holds ``run_id`` (None unless saved), ``as_of``, ``counts`` and
        ``warnings`` (also issued as :class:`UserWarning`, e.g. for a date after the data).

    Raises:
        technic.screen.filter.FilterError: a bad filter or unknown column (one line).
        ValueError: an unknown sector/industry or another bad value.
        technic.jobs.scan.NoFeaturesError: no features on or before ``as_of``.
        technic.jobs.target.SchemaMissing: the schema does not exist.
    """
    t = _target(target)
    day = _date(as_of, "as_of")
    if preset is not None:
        params = params_from_preset(get_preset(t, preset), as_of=day, top=top)
        if with_options:
            params = dataclasses.replace(params, with_options=True)
    else:
        params = ScanParams(
            top=top or 25, as_of=day, rules=UniverseRules(
                min_price=min_price, min_dollar_volume=min_dollar_volume,
                valid_tickers=not all_tickers, exclude_leveraged_etfs=not keep_leveraged,
                sectors=tuple(sectors or ())), where=where,
            industries=tuple(industries or ()), min_market_cap=min_market_cap, sort=sort,
            descending=descending, columns=parse_columns(columns), with_options=with_options)
    outcome = run_scan(t, params, save=save)
    for w in outcome.warnings:
        warnings.warn(w, UserWarning, stacklevel=2)
    df = outcome.results
    if top is not None:
        df = df.head(top)
    if columns is not None:
        keep = parse_columns(columns)
        df = df[[c for c in keep if c in df.columns]]
    df = df.reset_index(drop=True)
    df.attrs.update(run_id=outcome.run_id, as_of=outcome.as_of, counts=dict(outcome.counts),
                    warnings=list(outcome.warnings))
    return df


def features(symbols: str | Sequence[str] | None = None, *, as_of: DateLike = None,
             start: DateLike = None, end: DateLike = None, where: str | None = None,
             columns: str | Sequence[str] | None = None,
             target: DatabaseTarget | None = None) -> pd.DataFrame:
    """Rows of the feature store (``features_daily`` joined with ``symbols``).

    Args:
        symbols: a ticker or tickers; None = every symbol.
        as_of: one date (the latest feature date on or before it); the default when neither
            ``start`` nor ``end`` is given: the latest feature date.
        start, end: a date range instead (inclusive; ``end`` default: the latest).
        where: filter text over feature and reference columns (not scores), evaluated by
            PostgreSQL with bound parameters.
        columns: keep ``symbol``, ``date`` and these columns.
        target: another database target.

    Returns:
        One row per (symbol, date), ordered by date then symbol: the features
        (``tc.columns()`` for units), ``n_bars``, reference columns, ``dollar_volume``.

    Raises:
        technic.screen.filter.FilterError: a bad filter, or one on scan-only columns.
        LookupError: no feature rows on or before the date.
    """
    t = _target(target)
    node = parse_filter(where, FEATURE_SCOPE)
    cols = parse_columns(columns, FEATURE_SCOPE)
    s, e, a = _date(start, "start"), _date(end, "end"), _date(as_of, "as_of")
    if s is None and e is None:
        day = latest_feature_date(t, a)
        if day is None:
            raise LookupError("no feature rows" + (f" on or before {a}" if a else "")
                              + "; run `technic features refresh` first")
        s = e = day
    else:
        e = e or latest_feature_date(t) or dt.date.today()
        s = s or e
    df = read_feature_rows(t, s, e, _symbols(symbols), node)
    if cols:
        df = df[list(dict.fromkeys(["symbol", "date", *cols]))]
    return df


def bars(symbols: str | Sequence[str] | None = None, *, start: DateLike = None,
         end: DateLike = None, target: DatabaseTarget | None = None) -> pd.DataFrame:
    """Daily OHLCV bars.

    Args:
        symbols: a ticker or tickers; None = every symbol.
        start: first date (default: 365 calendar days before ``end``).
        end: last date (default: the latest stored bar).

    Returns:
        ``symbol, date, open, high, low, close, volume`` (USD per share, shares), ordered by
        symbol then date; ``date`` as ``datetime.date``.

    Raises:
        technic.store.bars.NoDataError: no bars stored.
    """
    t = _target(target)
    e = _date(end, "end") or last_bar_date(t)
    s = _date(start, "start") or e - dt.timedelta(days=365)
    df = read_bars_arrow(t, s, e, _symbols(symbols)).to_pandas(date_as_object=True)
    return df.sort_values(["symbol", "date"], kind="mergesort").reset_index(drop=True)


def columns(scope: str | None = None) -> pd.DataFrame:
    """Every column ``where``, ``sort`` and ``columns`` accept: ``column, kind, scope,
    source, unit`` (scope ``features``: the feature store; ``scan``: scan output only;
    ``options``: the ``opt_*`` columns of a scan with options)."""
    return pd.DataFrame([{"column": c.name, "kind": c.kind, "scope": c.scope,
                          "source": c.source, "unit": c.unit} for c in COLUMNS.values()
                         if scope in (None, c.scope)])


def presets(target: DatabaseTarget | None = None) -> pd.DataFrame:
    """The stored presets: ``name, builtin, where, sort, descending, columns, params,
    description``."""
    return pd.DataFrame([{"name": p.name, "builtin": p.builtin, "where": p.where,
                          "sort": p.sort, "descending": p.descending,
                          "columns": list(p.columns), "params": p.params,
                          "description": p.description} for p in list_presets(_target(target))])
