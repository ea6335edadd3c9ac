"""The versioned schema migrations: plain SQL, applied in order, idempotent.

Each migration is one :class:`Migration` of :data:`MIGRATIONS`; its ``render(schema,
timescale)`` returns the statements of either storage variant (TimescaleDB hypertables or
native range partitioning; :mod:`technic.store.schema` describes both).
:func:`migration_sql` renders the SQL of either variant without a database, so the TimescaleDB
path is reviewed in tests even where the extension cannot be installed. Applying them
(:func:`technic.store.schema.init_db`) and managing the live schema (partitions, roll-up
refreshes) is :mod:`technic.store.schema`'s job.

The version functions (``_v1`` … ``_v27``) are grouped by subject:

* :mod:`~technic.store.migrations.core` — bars, symbols, ingest log, ``features_daily``, scan
  runs and results with their ``latest_*`` views, ``scan_presets``;
* :mod:`~technic.store.migrations.intraday` — intraday bars and their roll-ups, bar sources,
  corporate actions, TimescaleDB policies;
* :mod:`~technic.store.migrations.fundamentals` — quarterly fundamentals and their
  ``scan_results`` factors;
* :mod:`~technic.store.migrations.options` — option chains and option metrics;
* :mod:`~technic.store.migrations.portfolio` — portfolios and backtests;
* :mod:`~technic.store.migrations.ddl` — the SQL helpers they share (:func:`quote_ident`, …).

The column lists the migrations create (``scan_results``, ``fundamentals``, ``option_*``
columns) are re-exported here: other modules import them from this package.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from technic.store.migrations.core import (
    DEFAULT_PRESET,
    FACTOR_RESULT_COLUMNS,
    FEATURE_COLUMNS_V9,
    PARTITIONED_TABLES,
    RESULT_FEATURE_COLUMNS,
    RISK_RESULT_COLUMNS,
    SCORE_COLUMNS,
    YEAR_CHUNK_DAYS,
    _v1,
    _v2,
    _v4,
    _v5,
    _v7,
    _v8,
    _v9,
    _v10,
    _v13,
    _v15,
    _v16,
    _v19,
    _v27,
)
from technic.store.migrations.ddl import quote_ident
from technic.store.migrations.fundamentals import (
    FUNDAMENTAL_ITEMS,
    FUNDAMENTAL_RESULT_COLUMNS,
    FUNDAMENTAL_RESULT_META,
    _v17,
    _v18,
)
from technic.store.migrations.intraday import ROLLUP_POLICIES, ROLLUPS, _v3, _v6
from technic.store.migrations.options import (
    OPTION_CHUNK_DAYS,
    OPTION_METRIC_TYPES,
    OPTION_RESULT_COLUMNS,
    OPTION_VALUE_COLUMNS,
    _v21,
    _v22,
)
from technic.store.migrations.portfolio import _v23, _v24

__all__ = [
    "DEFAULT_PRESET", "FACTOR_RESULT_COLUMNS", "FEATURE_COLUMNS_V9", "FUNDAMENTAL_ITEMS",
    "FUNDAMENTAL_RESULT_COLUMNS", "FUNDAMENTAL_RESULT_META", "MIGRATIONS", "OPTION_CHUNK_DAYS",
    "OPTION_METRIC_TYPES", "OPTION_RESULT_COLUMNS", "OPTION_VALUE_COLUMNS", "PARTITIONED_TABLES",
    "RESULT_FEATURE_COLUMNS", "RISK_RESULT_COLUMNS", "ROLLUPS", "ROLLUP_POLICIES",
    "SCORE_COLUMNS", "YEAR_CHUNK_DAYS", "Migration", "migration_sql", "quote_ident",
]


@dataclass(frozen=True)
class Migration:
    """One schema version. ``render(schema, timescale)`` returns its SQL statements."""

    version: int
    description: str
    render: object = field(repr=False)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "bars, symbols, ingest log, feature store, scan results", _v1),
    Migration(2, "index features_daily by date", _v2),
    Migration(3, "intraday bars and their 15-minute, hourly and daily roll-ups", _v3),
    Migration(4, "trading_dates: the dates present in bars_daily", _v4),
    Migration(5, "ingest_runs.changed_from/changed_to: date range each ingest changed", _v5),
    Migration(6, "bar_sources (price basis per source), corporate_actions (splits); "
                 "TimescaleDB roll-up refresh, compression and retention policies", _v6),
    Migration(7, "ICS/MERIT/regime: factor columns, scan_runs.regime, market_daily", _v7),
    Migration(8, "BRIN index on bars_daily.date (one date's bars without a full scan)", _v8),
    Migration(9, "features_daily.trend_r2_63: R^2 of the 63-bar price regression line", _v9),
    Migration(10, "B-tree index on bars_daily.date, replacing the BRIN of migration 8", _v10),
    Migration(13, "scan_runs.preset; latest_scan_results shows the 'default' preset only, "
                  "latest_scan_results_by_preset", _v13),
    Migration(15, "features_daily.mfi_14: 14-bar Money Flow Index", _v15),
    Migration(16, "scan_presets: named screens, with the built-in ones", _v16),
    Migration(17, "fundamentals: quarterly line items with their public (filing) date", _v17),
    Migration(18, "scan_results: point-in-time fundamental factors (value, quality, growth) "
                  "and the source of market_cap_pit; latest_* views recreated", _v18),
    Migration(19, "scan_results.alpha_model: the model that produced the row's alphas", _v19),
    Migration(21, "option_chains: end-of-day option chains (hypertable-ready)", _v21),
    Migration(22, "option_metrics per (date, underlying); scan_results option columns",
              _v22),
    Migration(23, "portfolios, portfolio_weights: weights built from a scan run", _v23),
    Migration(24, "backtests, backtest_equity, backtest_holdings: portfolio backtests", _v24),
    Migration(27, "scan_results risk-adjusted columns: beta_60, resid_vol_60, ics_per_risk, "
                  "tech_per_risk, alpha_ir; latest_* views recreated", _v27),
)


def migration_sql(schema: str = "technic", timescale: bool = False) -> list[str]:
    """All migration statements for a fresh database, in order (no database needed).

    Args:
        schema: target schema name.
        timescale: render the TimescaleDB variant (hypertables, compression) instead of native
            range partitioning.
    """
    out: list[str] = []
    for m in MIGRATIONS:
        out.extend(m.render(schema, timescale))  # type: ignore[operator]
    return out
