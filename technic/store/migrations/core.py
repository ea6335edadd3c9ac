"""Migrations of the core tables: bars, symbols, the ingest log, the feature store
(``features_daily``), scan runs and results with their ``latest_*`` views, and the named
screens (``scan_presets``). The ``scan_results`` column lists they add live here too
(:data:`SCORE_COLUMNS`, :data:`RESULT_FEATURE_COLUMNS`, :data:`FACTOR_RESULT_COLUMNS`,
:data:`RISK_RESULT_COLUMNS`), as does :data:`DEFAULT_PRESET`."""

from __future__ import annotations

import json

from technic.features.registry import columns_added_by
from technic.store.migrations.ddl import _bars_table, _double_cols, _sql_text, quote_ident

#: The ``features_daily`` columns that migration 1 creates (its DDL never changes: a
#: database migrated long ago and a fresh one must end up with the same table). Every feature
#: column comes from the registry (:mod:`technic.features.registry`), which records the
#: migration that added it.
_FEATURE_COLUMNS_V1: tuple[str, ...] = columns_added_by(1)

#: ``features_daily`` columns added by migration 9 (after those of migration 1).
FEATURE_COLUMNS_V9: tuple[str, ...] = columns_added_by(9)

#: Feature columns copied into ``scan_results`` next to the scores.
RESULT_FEATURE_COLUMNS: tuple[str, ...] = (
    "ret_21d", "ret_63d", "ret_126d", "ret_12_1", "rsi_14", "adx_14", "natr_14",
    "realized_vol_20", "dist_52w_high", "dollar_volume_20", "rel_volume_20",
)

#: TechRating components stored in ``scan_results`` (each 0–100).
SCORE_COLUMNS: tuple[str, ...] = ("trend_score", "momentum_score", "volatility_score",
                                  "volume_score")

PARTITIONED_TABLES: tuple[str, ...] = ("bars_daily", "features_daily")


#: Chunk interval of the yearly hypertables: only the fallback for a chunk that
#: :func:`technic.store.schema.ensure_partitions` did not create ahead (it creates
#: calendar-year chunks).
YEAR_CHUNK_DAYS = 365


def _v1(schema: str, timescale: bool) -> list[str]:
    schema = quote_ident(schema)
    part = "" if timescale else " PARTITION BY RANGE (date)"
    stmts = [
        f"CREATE SCHEMA IF NOT EXISTS {schema}",
        f"""CREATE TABLE IF NOT EXISTS {schema}.symbols (
    symbol text PRIMARY KEY,
    name text,
    exchange text,
    sector text,
    industry text,
    security_type text,
    is_etf boolean,
    active boolean,
    market_cap double precision,
    updated_at timestamptz NOT NULL DEFAULT now()
)""",
        _bars_table(f"{schema}.bars_daily", "date date", timescale),
        f"""CREATE TABLE IF NOT EXISTS {schema}.ingest_runs (
    run_id bigserial PRIMARY KEY,
    source text NOT NULL,
    path text,
    started_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    status text NOT NULL DEFAULT 'running',
    rows_read bigint,
    rows_inserted bigint,
    rows_updated bigint,
    rows_unchanged bigint,
    rows_rejected bigint,
    symbols_upserted bigint,
    rejects_by_reason jsonb,
    timings jsonb,
    error text
)""",
        f"""CREATE TABLE IF NOT EXISTS {schema}.ingest_rejects (
    run_id bigint NOT NULL REFERENCES {schema}.ingest_runs (run_id),
    source text NOT NULL,
    row jsonb NOT NULL,
    reason text NOT NULL,
    seen_at timestamptz NOT NULL DEFAULT now()
)""",
        f"CREATE INDEX IF NOT EXISTS ingest_rejects_run_idx ON {schema}.ingest_rejects (run_id)",
        f"""CREATE TABLE IF NOT EXISTS {schema}.features_daily (
    symbol text NOT NULL,
    date date NOT NULL,
{_double_cols(_FEATURE_COLUMNS_V1)},
    n_bars integer NOT NULL,
    computed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, date)
){part}""",
        f"""CREATE TABLE IF NOT EXISTS {schema}.scan_runs (
    run_id bigserial PRIMARY KEY,
    started_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    as_of date,
    params jsonb NOT NULL DEFAULT '{{}}'::jsonb,
    status text NOT NULL DEFAULT 'running',
    counts jsonb,
    timings jsonb,
    cache jsonb,
    error text
)""",
        f"""CREATE TABLE IF NOT EXISTS {schema}.scan_results (
    run_id bigint NOT NULL REFERENCES {schema}.scan_runs (run_id) ON DELETE CASCADE,
    rank integer NOT NULL,
    symbol text NOT NULL REFERENCES {schema}.symbols (symbol),
    sector text,
    close double precision NOT NULL,
    tech_rating double precision NOT NULL,
    ics double precision,
    merit double precision,
    alpha_5d double precision,
    alpha_10d double precision,
    regime text,
{_double_cols(SCORE_COLUMNS + RESULT_FEATURE_COLUMNS)},
    PRIMARY KEY (run_id, symbol),
    UNIQUE (run_id, rank)
)""",
        f"""CREATE OR REPLACE VIEW {schema}.latest_scan_results AS
SELECT r.*, s.as_of
FROM {schema}.scan_results r
JOIN {schema}.scan_runs s USING (run_id)
WHERE r.run_id = (SELECT max(run_id) FROM {schema}.scan_runs WHERE status = 'ok')""",
    ]
    if timescale:
        for table in PARTITIONED_TABLES:
            stmts.append(
                f"SELECT create_hypertable('{schema}.{table}', by_range('date', "
                f"INTERVAL '{YEAR_CHUNK_DAYS} days'), if_not_exists => TRUE)"
            )
        stmts.append(
            f"ALTER TABLE {schema}.bars_daily SET (timescaledb.compress, "
            f"timescaledb.compress_segmentby = 'symbol', "
            f"timescaledb.compress_orderby = 'date DESC')"
        )
        # Leave the re-ingest window (the last ~2 years) uncompressed: upserts into compressed
        # chunks are slow.
        stmts.append(
            f"SELECT add_compression_policy('{schema}.bars_daily', INTERVAL '730 days', "
            f"if_not_exists => TRUE)"
        )
    return stmts


def _v2(schema: str, timescale: bool) -> list[str]:
    # Scans and cache versions select one date of a feature history.
    return [f"CREATE INDEX IF NOT EXISTS features_daily_date_idx ON "
            f"{quote_ident(schema)}.features_daily (date)"]


def _v4(schema: str, timescale: bool) -> list[str]:
    # The trading dates present in bars_daily, kept by each daily ingest: "latest date" and
    # "the last N sessions" become index lookups instead of scans of millions of bars.
    q = quote_ident(schema)
    return [f"CREATE TABLE IF NOT EXISTS {q}.trading_dates (date date PRIMARY KEY)",
            f"INSERT INTO {q}.trading_dates SELECT DISTINCT date FROM {q}.bars_daily "
            f"ON CONFLICT DO NOTHING"]


def _v5(schema: str, timescale: bool) -> list[str]:
    # The date range each ingest changed: a cached window of bars stays valid when every
    # later ingest changed only dates after it (a new day appended, not history rewritten).
    q = quote_ident(schema)
    return [f"ALTER TABLE {q}.ingest_runs ADD COLUMN IF NOT EXISTS changed_from date",
            f"ALTER TABLE {q}.ingest_runs ADD COLUMN IF NOT EXISTS changed_to date"]


#: Columns migration 7 adds to ``scan_results`` (units: docs/tables.md, docs/scoring.md).
FACTOR_RESULT_COLUMNS: tuple[str, ...] = (
    "alpha_score", "ics_liquidity", "ics_size", "ics_trend_stability", "ics_drawdown",
    "ics_volatility", "mom_6_1", "mom_3_1", "rs_market_63d", "rs_sector_63d", "ma_alignment",
    "market_cap_pit",
)


def _v7(schema: str, timescale: bool) -> list[str]:
    # ICS, MERIT and regime: factor and component columns of scan_results, the regime of each
    # scan run, and the equal-weighted market index history the regime is computed from.
    q = quote_ident(schema)
    stmts = [f"ALTER TABLE {q}.scan_results ADD COLUMN IF NOT EXISTS {c} double precision"
             for c in FACTOR_RESULT_COLUMNS]
    stmts += [
        f"ALTER TABLE {q}.scan_runs ADD COLUMN IF NOT EXISTS regime text",
        f"ALTER TABLE {q}.scan_runs ADD COLUMN IF NOT EXISTS regime_facts jsonb",
        f"""CREATE TABLE IF NOT EXISTS {q}.market_daily (
    date date PRIMARY KEY,
    n_symbols integer NOT NULL,
    ew_return double precision,
    computed_at timestamptz NOT NULL DEFAULT now()
)""",
        # r.* is expanded when a view is created: recreate it so it shows the new columns
        f"DROP VIEW IF EXISTS {q}.latest_scan_results",
        f"""CREATE VIEW {q}.latest_scan_results AS
SELECT r.*, s.as_of
FROM {q}.scan_results r
JOIN {q}.scan_runs s USING (run_id)
WHERE r.run_id = (SELECT max(run_id) FROM {q}.scan_runs WHERE status = 'ok')""",
    ]
    return stmts


#: TimescaleDB policies of the intraday roll-ups: (view, refresh start offset, end offset,


def _v8(schema: str, timescale: bool) -> list[str]:
    # "The bars of one date" (the incremental refresh's read of a new day): a BRIN range index
    # on date lets the scan skip every page range whose dates all lie before it — nearly the
    # whole table when the day was just appended — for a few pages of index and no measurable
    # ingest cost. Hypertables already index their time column.
    if timescale:
        return []
    q = quote_ident(schema)
    return [f"CREATE INDEX IF NOT EXISTS bars_daily_date_brin ON {q}.bars_daily "
            f"USING brin (date)"]


def _v9(schema: str, timescale: bool) -> list[str]:
    # Trend quality: R^2 of the 63-bar regression line of close on the bar index (fraction
    # 0-1, technic.indicators.linreg_r2). Nullable without a default, so it is a catalog-only
    # change on PostgreSQL and allowed on compressed TimescaleDB hypertables (2.1+; IF NOT
    # EXISTS on them since 2.6.1). Rows written before it hold NULL until recomputed.
    q = quote_ident(schema)
    return [f"ALTER TABLE {q}.features_daily ADD COLUMN IF NOT EXISTS {c} double precision"
            for c in FEATURE_COLUMNS_V9]


def _add_feature_columns(schema: str, version: int) -> list[str]:
    # The registry's columns of this migration: nullable, no default (a catalog-only change,
    # allowed on compressed hypertables, as in _v9). Rows written before stay NULL.
    q = quote_ident(schema)
    return [f"ALTER TABLE {q}.features_daily ADD COLUMN IF NOT EXISTS {c} double precision"
            for c in columns_added_by(version)]


def _v15(schema: str, timescale: bool) -> list[str]:
    # features_daily.mfi_14: Money Flow Index (technic.indicators.mfi, TA-Lib MFI).
    return _add_feature_columns(schema, 15)


def _v10(schema: str, timescale: bool) -> list[str]:
    # "The bars of one date" again: the BRIN index of migration 8 does not serve it. The bulk
    # history is loaded symbol-major, so every BRIN range spans most of a year's dates and
    # the planner (rightly, from the column's near-zero correlation) prefers a sequential
    # scan of the whole year partition — ~60 ms for the incremental refresh's read of one
    # new day (7,600 rows), against ~2 ms through a B-tree. A B-tree on date is what a
    # hypertable has on its time column anyway (~6.5 MB per year partition of the real data);
    # benchmarks/ingest.py measures the ingest with it (its COPY reference pays it too).
    if timescale:
        return []
    q = quote_ident(schema)
    return [f"DROP INDEX IF EXISTS {q}.bars_daily_date_brin",
            f"CREATE INDEX IF NOT EXISTS bars_daily_date_idx ON {q}.bars_daily (date)"]


#: ``scan_runs.preset`` of a scan with the default universe filter (the runs analysts read
#: through ``latest_scan_results``).
DEFAULT_PRESET = "default"


def _latest_views(q: str) -> list[str]:
    """``latest_scan_results`` (the newest successful run of the ``default`` preset: latest
    ``as_of``, then latest run) and ``latest_scan_results_by_preset`` (the same per named
    preset). Custom scans (preset NULL) feed neither."""
    return [
        f"DROP VIEW IF EXISTS {q}.latest_scan_results",
        f"DROP VIEW IF EXISTS {q}.latest_scan_results_by_preset",
        f"""CREATE VIEW {q}.latest_scan_results AS
SELECT r.*, s.as_of, s.preset
FROM {q}.scan_results r
JOIN {q}.scan_runs s USING (run_id)
WHERE r.run_id = (SELECT run_id FROM {q}.scan_runs
                  WHERE status = 'ok' AND preset = '{DEFAULT_PRESET}'
                  ORDER BY as_of DESC, run_id DESC LIMIT 1)""",
        f"""CREATE VIEW {q}.latest_scan_results_by_preset AS
SELECT r.*, s.as_of, s.preset
FROM {q}.scan_results r
JOIN {q}.scan_runs s USING (run_id)
WHERE r.run_id IN (SELECT DISTINCT ON (preset) run_id FROM {q}.scan_runs
                   WHERE status = 'ok' AND preset IS NOT NULL
                   ORDER BY preset, as_of DESC, run_id DESC)""",
    ]


def _v13(schema: str, timescale: bool) -> list[str]:
    # Which scans feed latest_scan_results: a scan with --sector or other custom filters
    # must not replace the full-universe result analysts read. Runs stored before this
    # migration with the default filters become the 'default' preset.
    q = quote_ident(schema)
    default_rules = ('{"min_price": 5.0, "min_dollar_volume": 500000.0, '
                     '"valid_tickers": true, "exclude_leveraged_etfs": true, "sectors": []}')
    return [
        f"ALTER TABLE {q}.scan_runs ADD COLUMN IF NOT EXISTS preset text",
        f"UPDATE {q}.scan_runs SET preset = '{DEFAULT_PRESET}' WHERE preset IS NULL "
        f"AND params->'rules' = '{default_rules}'::jsonb",
        f"CREATE INDEX IF NOT EXISTS scan_runs_preset_idx ON {q}.scan_runs "
        f"(preset, as_of DESC, run_id DESC) WHERE status = 'ok'",
        *_latest_views(q),
    ]


def _v16(schema: str, timescale: bool) -> list[str]:
    # Named screens (technic preset save/list/run, the flow's preset parameter). A small
    # reference table: no hypertable with TimescaleDB either. The built-in presets of
    # technic.screen.presets are inserted here (builtin = true: read-only for the CLI).
    from technic.screen.presets import BUILTIN_PRESETS

    q = quote_ident(schema)
    stmts = [f"""CREATE TABLE IF NOT EXISTS {q}.scan_presets (
    name text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{{0,63}}$'),
    where_text text NOT NULL DEFAULT '',
    sort text,
    descending boolean,
    columns text[] NOT NULL DEFAULT '{{}}',
    params jsonb NOT NULL DEFAULT '{{}}',
    description text NOT NULL DEFAULT '',
    builtin boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
)"""]
    for p in BUILTIN_PRESETS:
        cols = "ARRAY[" + ", ".join(_sql_text(c) for c in p.columns) + "]::text[]"
        desc = "NULL" if p.descending is None else ("true" if p.descending else "false")
        stmts.append(
            f"INSERT INTO {q}.scan_presets (name, where_text, sort, descending, columns, "
            f"params, description, builtin) VALUES ({_sql_text(p.name)}, "
            f"{_sql_text(p.where)}, {_sql_text(p.sort)}, {desc}, {cols}, "
            f"{_sql_text(json.dumps(p.params))}::jsonb, {_sql_text(p.description)}, true) "
            f"ON CONFLICT (name) DO NOTHING")
    return stmts


def _v19(schema: str, timescale: bool) -> list[str]:
    # Which model produced each row's alphas: a scan of a past date uses the walk-forward
    # model trained before it (technic.ml.walkforward), the latest date the final models.
    # The views select r.*, which PostgreSQL expands when a view is created: recreate them
    # (same definition as migration 13) so they show the new column. Same SQL for both
    # storage variants (scan_results is a plain table in both).
    q = quote_ident(schema)
    return [f"ALTER TABLE {q}.scan_results ADD COLUMN IF NOT EXISTS alpha_model text",
            *_latest_views(q)]


#: Risk-adjusted columns of ``scan_results`` (migration 27; docs/scoring.md "Risk-adjusted
#: ranking"): 60-bar market beta, annualised residual volatility, ICS and TechRating per unit
#: of residual risk and ``alpha_10d``'s forecast information ratio.
RISK_RESULT_COLUMNS: tuple[str, ...] = (
    "beta_60", "resid_vol_60", "ics_per_risk", "tech_per_risk", "alpha_ir")


def _v27(schema: str, timescale: bool) -> list[str]:
    # Scores per unit of risk, computed by every scan from the last 61 dates of bars. Same SQL
    # for both storage variants (scan_results is a plain table in both); the views select r.*,
    # expanded at creation: recreate them so they show the new columns.
    q = quote_ident(schema)
    return [*(f"ALTER TABLE {q}.scan_results ADD COLUMN IF NOT EXISTS {c} double precision"
              for c in RISK_RESULT_COLUMNS), *_latest_views(q)]
