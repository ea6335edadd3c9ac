"""Schema and versioned migrations (plain SQL, applied in order, idempotent).

Two storage variants share the same table names and queries:

* **timescaledb** — when the extension can be enabled (installed *and* preloaded):
  ``bars_daily`` and ``features_daily`` are hypertables on ``date`` with one chunk per calendar
  year (shorter chunks compress poorly for daily bars), created ahead of each write by
  :func:`ensure_partitions` (TimescaleDB's own ``INTERVAL '1 year'`` is 360 days, so its
  chunks would straddle years). The extension lives in ``public``, never in a technic schema.
* **native** — plain PostgreSQL: the same tables are ``PARTITION BY RANGE (date)`` with one
  partition per calendar year, created ahead of each write by :func:`ensure_partitions`.

:func:`migration_sql` renders the SQL of either variant without a database, so the TimescaleDB
path is reviewed in tests even where the extension cannot be installed.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from tenacity import retry, retry_if_exception, stop_after_delay, wait_exponential

from technic.features.registry import FEATURE_COLUMNS as FEATURE_COLUMNS
from technic.features.registry import columns_added_by
from technic.validation import FUNDAMENTAL_COLUMNS

log = logging.getLogger(__name__)

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


def quote_ident(name: str) -> str:
    """Quote an SQL identifier (schema names may be reserved words, e.g. ``full``)."""
    return '"' + name.replace('"', '""') + '"'


def _bars_table(name: str, time_col: str, timescale: bool) -> str:
    """DDL of an OHLCV bars table keyed by (symbol, <time column>), range-partitioned on the
    time column unless it becomes a TimescaleDB hypertable."""
    col = time_col.split()[0]
    part = "" if timescale else f" PARTITION BY RANGE ({col})"
    return f"""CREATE TABLE IF NOT EXISTS {name} (
    symbol text NOT NULL,
    {time_col} NOT NULL,
    open double precision NOT NULL,
    high double precision NOT NULL,
    low double precision NOT NULL,
    close double precision NOT NULL,
    volume double precision NOT NULL,
    source text NOT NULL,
    ingested_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, {col})
){part}"""


def _double_cols(names: Iterable[str]) -> str:
    return ",\n".join(f"    {c} double precision" for c in names)


#: Chunk interval of the yearly hypertables: only the fallback for a chunk that
#: :func:`ensure_partitions` did not create ahead (it creates calendar-year chunks).
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


#: Roll-ups of intraday bars: (view name, bucket). Daily buckets are New York session dates.
ROLLUPS: tuple[tuple[str, str], ...] = (("bars_15min", "15 minutes"), ("bars_1h", "1 hour"),
                                        ("bars_intraday_daily", "1 day"))


def _rollup_sql(schema: str, view: str, bucket: str, timescale: bool) -> str:
    q = quote_ident(schema)
    if bucket == "1 day":  # session date in New York, not a UTC day
        key = "(ts AT TIME ZONE 'America/New_York')::date"
        key_name = "date"
    else:
        key = (f"time_bucket(INTERVAL '{bucket}', ts)" if timescale
               else f"date_bin(INTERVAL '{bucket}', ts, TIMESTAMPTZ '2000-01-03 00:00:00+00')")
        key_name = "ts"
    first = "first(open, ts)" if timescale else "(array_agg(open ORDER BY ts))[1]"
    last = "last(close, ts)" if timescale else "(array_agg(close ORDER BY ts DESC))[1]"
    # Real-time aggregation (materialized_only = false): buckets past the last refresh are
    # computed from the raw bars at query time. Created empty (WITH NO DATA: TimescaleDB
    # refuses WITH DATA inside a transaction); refresh_rollups materializes them.
    opts = (" WITH (timescaledb.continuous, timescaledb.materialized_only = false)"
            if timescale and bucket != "1 day" else "")
    return (f"CREATE MATERIALIZED VIEW IF NOT EXISTS {q}.{view}{opts} AS "
            f"SELECT symbol, {key} AS {key_name}, {first} AS open, max(high) AS high, "
            f"min(low) AS low, {last} AS close, sum(volume) AS volume, count(*) AS n_bars "
            f"FROM {q}.bars_intraday GROUP BY symbol, {key} WITH NO DATA")


def _v3(schema: str, timescale: bool) -> list[str]:
    q = quote_ident(schema)
    stmts = [_bars_table(f"{q}.bars_intraday", "ts timestamptz", timescale)]
    if timescale:
        stmts += [
            # No default index on ts (it made the 5-minute COPY ~1.9x slower than plain
            # PostgreSQL, which has none either): the primary key (symbol, ts) serves the
            # per-symbol reads, chunk exclusion the time ranges.
            f"SELECT create_hypertable('{q}.bars_intraday', by_range('ts', INTERVAL '7 days'), "
            f"create_default_indexes => FALSE, if_not_exists => TRUE)",
            f"ALTER TABLE {q}.bars_intraday SET (timescaledb.compress, "
            f"timescaledb.compress_segmentby = 'symbol', "
            f"timescaledb.compress_orderby = 'ts DESC')",
            f"SELECT add_compression_policy('{q}.bars_intraday', INTERVAL '14 days', "
            f"if_not_exists => TRUE)",
            f"SELECT add_retention_policy('{q}.bars_intraday', INTERVAL '730 days', "
            f"if_not_exists => TRUE)",
        ]
    stmts += [_rollup_sql(schema, v, b, timescale) for v, b in ROLLUPS]
    return stmts


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
#: schedule). The end offset leaves the bucket still filling out of the materialization
#: (real-time aggregation serves it); the start offset reaches back over late corrections.
ROLLUP_POLICIES: tuple[tuple[str, str, str, str], ...] = (
    ("bars_15min", "3 days", "15 minutes", "5 minutes"),
    ("bars_1h", "7 days", "1 hour", "15 minutes"),
)


def _v6(schema: str, timescale: bool) -> list[str]:
    # Where bars come from and on what price basis, and the splits applied to stored bars.
    q = quote_ident(schema)
    stmts = [
        f"""CREATE TABLE IF NOT EXISTS {q}.bar_sources (
    source text PRIMARY KEY,
    split_adjusted boolean,
    dividend_adjusted boolean,
    adjusted_as_of date,
    vendor text,
    note text,
    updated_at timestamptz NOT NULL DEFAULT now()
)""",
        f"""CREATE TABLE IF NOT EXISTS {q}.corporate_actions (
    symbol text NOT NULL,
    ex_date date NOT NULL,
    kind text NOT NULL DEFAULT 'split' CHECK (kind IN ('split')),
    split_from double precision NOT NULL CHECK (split_from > 0),
    split_to double precision NOT NULL CHECK (split_to > 0),
    source text NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    applied_at timestamptz,
    applied_rows bigint,
    PRIMARY KEY (symbol, ex_date, kind)
)""",
    ]
    if timescale:
        for view, start, end, every in ROLLUP_POLICIES:
            stmts += [
                f"SELECT add_continuous_aggregate_policy('{q}.{view}', "
                f"start_offset => INTERVAL '{start}', end_offset => INTERVAL '{end}', "
                f"schedule_interval => INTERVAL '{every}', if_not_exists => TRUE)",
                f"ALTER MATERIALIZED VIEW {q}.{view} SET (timescaledb.compress = true)",
                # compress well behind the refresh window, drop with the raw bars
                f"SELECT add_compression_policy('{q}.{view}', compress_after => "
                f"INTERVAL '30 days', if_not_exists => TRUE)",
                f"SELECT add_retention_policy('{q}.{view}', drop_after => INTERVAL '730 days', "
                f"if_not_exists => TRUE)",
            ]
        stmts += [
            f"ALTER TABLE {q}.features_daily SET (timescaledb.compress, "
            f"timescaledb.compress_segmentby = 'symbol', "
            f"timescaledb.compress_orderby = 'date DESC')",
            # feature backfills rewrite up to ~2 years: leave them uncompressed
            f"SELECT add_compression_policy('{q}.features_daily', INTERVAL '730 days', "
            f"if_not_exists => TRUE)",
        ]
    return stmts


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


def _sql_text(v: str | None) -> str:
    """A SQL string literal of a constant declared in code (never user input)."""
    return "NULL" if v is None else "'" + v.replace("'", "''") + "'"


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


#: Line items of ``fundamentals`` (migration 17), all USD except ``shares_diluted`` (shares):
#: flows (``revenue``, ``net_income``, ``free_cash_flow``) are single-quarter values,
#: ``total_assets`` and ``equity`` are at the quarter's end (docs/tables.md).
FUNDAMENTAL_ITEMS: tuple[str, ...] = FUNDAMENTAL_COLUMNS[5:]


def _v17(schema: str, timescale: bool) -> list[str]:
    # Quarterly fundamentals with the date each quarter became public (point-in-time factors
    # and size use only quarters public on or before the scan date). ~50k rows: a plain
    # table in both variants (a hypertable would buy nothing at this size, and its time
    # column would have to be part of every unique key); the index serves "quarters public
    # on or before d".
    q = quote_ident(schema)
    return [
        f"""CREATE TABLE IF NOT EXISTS {q}.fundamentals (
    symbol text NOT NULL,
    period_end date NOT NULL,
    available_date date NOT NULL,
    fiscal_year integer,
    fiscal_period text,
{_double_cols(FUNDAMENTAL_ITEMS)},
    source text NOT NULL,
    ingested_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, period_end),
    CHECK (available_date >= period_end)
)""",
        f"CREATE INDEX IF NOT EXISTS fundamentals_available_idx ON {q}.fundamentals "
        f"(available_date)",
    ]


#: ``scan_results`` columns of migration 18: the point-in-time fundamental factors of
#: :mod:`technic.scoring.fundamentals` (units: docs/tables.md, formulas: docs/scoring.md).
FUNDAMENTAL_RESULT_COLUMNS: tuple[str, ...] = (
    "earnings_yield", "sales_yield", "fcf_yield", "book_to_price",
    "roe", "roa", "accruals", "fcf_margin", "revenue_growth_yoy", "earnings_growth_yoy",
    "earnings_yield_sn", "sales_yield_sn", "fcf_yield_sn", "book_to_price_sn",
    "roe_sn", "roa_sn", "accruals_sn", "fcf_margin_sn", "revenue_growth_yoy_sn",
    "earnings_growth_yoy_sn",
    "value_score", "quality_score", "growth_score", "shares_diluted_pit",
)
#: Non-numeric ``scan_results`` columns of migration 18: where ``market_cap_pit`` came from
#: and which quarter the fundamentals are from.
FUNDAMENTAL_RESULT_META: tuple[tuple[str, str], ...] = (
    ("market_cap_source", "text"), ("fund_period_end", "date"),
    ("fund_available_date", "date"))


def _v18(schema: str, timescale: bool) -> list[str]:
    # The fundamental factors of each scan. Nullable, no default: catalog-only changes. The
    # latest_* views expand r.* when created: recreate them so they show the new columns
    # (with every column they had).
    q = quote_ident(schema)
    stmts = [f"ALTER TABLE {q}.scan_results ADD COLUMN IF NOT EXISTS {c} double precision"
             for c in FUNDAMENTAL_RESULT_COLUMNS]
    stmts += [f"ALTER TABLE {q}.scan_results ADD COLUMN IF NOT EXISTS {c} {t}"
              for c, t in FUNDAMENTAL_RESULT_META]
    return stmts + _latest_views(q)
#: Columns of ``option_chains`` besides the key (date, underlying, expiration, option_type,
#: strike) and bookkeeping (source, ingested_at), in table order (units: docs/options.md).
OPTION_VALUE_COLUMNS: tuple[str, ...] = (
    "last_price", "bid", "ask", "volume", "open_interest", "implied_vol", "delta", "gamma",
    "theta", "vega", "underlying_price")

#: Chunk interval of the ``option_chains`` hypertable (~300k contracts a session: a week is
#: ~1.5 M rows, the size TimescaleDB recommends a chunk to stay near).
OPTION_CHUNK_DAYS = 7


def _v21(schema: str, timescale: bool) -> list[str]:
    # End-of-day option chains, one row per (session, underlying, expiration, type, strike).
    # The key leads with date: ingests probe and replace whole sessions, the metrics job reads
    # one session range. Native: monthly range partitions (ensure_partitions, months);
    # TimescaleDB: a hypertable of 7-day chunks, compressed by underlying after 30 days.
    q = quote_ident(schema)
    part = "" if timescale else " PARTITION BY RANGE (date)"
    stmts = [f"""CREATE TABLE IF NOT EXISTS {q}.option_chains (
    date date NOT NULL,
    underlying text NOT NULL,
    expiration date NOT NULL,
    option_type text NOT NULL CHECK (option_type IN ('C', 'P')),
    strike double precision NOT NULL CHECK (strike > 0),
    last_price double precision,
    bid double precision,
    ask double precision,
    volume bigint,
    open_interest bigint,
    implied_vol double precision,
    delta double precision,
    gamma double precision,
    theta double precision,
    vega double precision,
    underlying_price double precision,
    source text NOT NULL,
    ingested_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (date, underlying, expiration, option_type, strike)
){part}"""]
    if timescale:
        stmts += [
            # the primary key (leading date) serves time ranges: no extra index on date
            f"SELECT create_hypertable('{q}.option_chains', by_range('date', "
            f"INTERVAL '{OPTION_CHUNK_DAYS} days'), create_default_indexes => FALSE, "
            f"if_not_exists => TRUE)",
            f"ALTER TABLE {q}.option_chains SET (timescaledb.compress, "
            f"timescaledb.compress_segmentby = 'underlying', "
            f"timescaledb.compress_orderby = 'date DESC, expiration, option_type, strike')",
            f"SELECT add_compression_policy('{q}.option_chains', INTERVAL '30 days', "
            f"if_not_exists => TRUE)",
        ]
    return stmts


#: ``option_metrics`` columns computed by :func:`technic.scoring.options.option_metrics`
#: (besides the key and ``reasons``/``computed_at``), with their SQL types.
OPTION_METRIC_TYPES: dict[str, str] = {
    "n_contracts": "integer", "underlying_price": "double precision",
    "atm_iv_30d": "double precision", "atm_iv_90d": "double precision",
    "term_slope": "double precision", "skew_25d": "double precision",
    "put_call_volume": "double precision", "put_call_oi": "double precision",
    "volume_oi": "double precision", "n_unusual": "integer", "next_expiration": "date",
    "expected_move": "double precision", "expected_move_pct": "double precision",
    "expected_move_method": "text", "realized_vol_20": "double precision",
    "iv_rv_20": "double precision", "iv_rank_252": "double precision",
    "iv_percentile_252": "double precision", "n_iv_recomputed": "integer",
}

#: ``option_metrics`` columns copied into ``scan_results`` by ``technic scan --with-options``,
#: as ``scan_results`` names them (``opt_`` + the metric).
OPTION_RESULT_COLUMNS: tuple[str, ...] = (
    "opt_atm_iv_30d", "opt_iv_rv_20", "opt_iv_rank_252", "opt_skew_25d", "opt_term_slope",
    "opt_put_call_volume", "opt_volume_oi", "opt_expected_move_pct")


def _v22(schema: str, timescale: bool) -> list[str]:
    # Per (session, underlying) option metrics (a few thousand rows a month: a plain table in
    # both variants), and their copy in scan_results for `technic scan --with-options`.
    q = quote_ident(schema)
    cols = ",\n".join(f"    {c} {t}" for c, t in OPTION_METRIC_TYPES.items())
    stmts = [f"""CREATE TABLE IF NOT EXISTS {q}.option_metrics (
    date date NOT NULL,
    underlying text NOT NULL,
{cols},
    reasons jsonb NOT NULL DEFAULT '{{}}'::jsonb,
    computed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (date, underlying)
)""",
             f"CREATE INDEX IF NOT EXISTS option_metrics_underlying_idx ON "
             f"{q}.option_metrics (underlying, date)"]
    stmts += [f"ALTER TABLE {q}.scan_results ADD COLUMN IF NOT EXISTS {c} double precision"
              for c in OPTION_RESULT_COLUMNS]
    # r.* is expanded when a view is created: recreate both so they show the new columns
    stmts += _latest_views(q)
    return stmts
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


def _v23(schema: str, timescale: bool) -> list[str]:
    # Portfolios built from a scan run's top names (technic portfolio): one row per build and
    # its weights. Small tables keyed by id: plain tables in both storage variants.
    q = quote_ident(schema)
    return [
        f"""CREATE TABLE IF NOT EXISTS {q}.portfolios (
    portfolio_id bigserial PRIMARY KEY,
    run_id bigint NOT NULL REFERENCES {q}.scan_runs (run_id) ON DELETE CASCADE,
    as_of date NOT NULL,
    method text NOT NULL,
    top_n integer NOT NULL,
    max_weight double precision,
    sector_cap double precision,
    lookback integer NOT NULL,
    n_names integer NOT NULL,
    shrinkage double precision,
    volatility_annual double precision,
    expected_return_daily double precision,
    params jsonb NOT NULL DEFAULT '{{}}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now()
)""",
        f"CREATE INDEX IF NOT EXISTS portfolios_run_idx ON {q}.portfolios (run_id)",
        f"""CREATE TABLE IF NOT EXISTS {q}.portfolio_weights (
    portfolio_id bigint NOT NULL REFERENCES {q}.portfolios (portfolio_id) ON DELETE CASCADE,
    symbol text NOT NULL,
    rank integer NOT NULL,
    sector text,
    weight double precision NOT NULL CHECK (weight >= 0 AND weight <= 1),
    volatility_annual double precision,
    expected_return_daily double precision,
    PRIMARY KEY (portfolio_id, symbol)
)""",
    ]


def _v24(schema: str, timescale: bool) -> list[str]:
    # Backtests of the portfolio methods over point-in-time scans (technic backtest): one row
    # per backtest with its metrics, the daily equity of the strategy and of the equal-weight
    # universe benchmark, and the names held after each rebalance. Plain tables in both
    # variants (a backtest's curve is read whole, by id).
    q = quote_ident(schema)
    return [
        f"""CREATE TABLE IF NOT EXISTS {q}.backtests (
    backtest_id bigserial PRIMARY KEY,
    start_date date NOT NULL,
    end_date date NOT NULL,
    method text NOT NULL,
    top_n integer NOT NULL,
    rebalance text NOT NULL,
    cost_bps double precision NOT NULL,
    params jsonb NOT NULL DEFAULT '{{}}'::jsonb,
    metrics jsonb NOT NULL DEFAULT '{{}}'::jsonb,
    benchmark_metrics jsonb NOT NULL DEFAULT '{{}}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now()
)""",
        f"""CREATE TABLE IF NOT EXISTS {q}.backtest_equity (
    backtest_id bigint NOT NULL REFERENCES {q}.backtests (backtest_id) ON DELETE CASCADE,
    date date NOT NULL,
    equity double precision NOT NULL,
    drawdown double precision NOT NULL,
    benchmark_equity double precision NOT NULL,
    benchmark_drawdown double precision NOT NULL,
    turnover double precision,
    cost double precision,
    benchmark_turnover double precision,
    PRIMARY KEY (backtest_id, date)
)""",
        f"""CREATE TABLE IF NOT EXISTS {q}.backtest_holdings (
    backtest_id bigint NOT NULL REFERENCES {q}.backtests (backtest_id) ON DELETE CASCADE,
    signal_date date NOT NULL,
    exec_date date NOT NULL,
    symbol text NOT NULL,
    rank integer NOT NULL,
    weight double precision NOT NULL,
    PRIMARY KEY (backtest_id, exec_date, symbol)
)""",
    ]


def _v19(schema: str, timescale: bool) -> list[str]:
    # Which model produced each row's alphas: a scan of a past date uses the walk-forward
    # model trained before it (technic.ml.walkforward), the latest date the final models.
    # The views select r.*, which PostgreSQL expands when a view is created: recreate them
    # (same definition as migration 13) so they show the new column. Same SQL for both
    # storage variants (scan_results is a plain table in both).
    q = quote_ident(schema)
    return [f"ALTER TABLE {q}.scan_results ADD COLUMN IF NOT EXISTS alpha_model text",
            *_latest_views(q)]


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


def timescale_schema(conn: Connection) -> str | None:
    """The schema the ``timescaledb`` extension is installed in, or None when it is not
    installed in this database."""
    return conn.execute(sa.text(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
        "WHERE e.extname = 'timescaledb'")).scalar()


def _refresh_conflict(e: BaseException) -> bool:
    """A refresh refused because an overlapping refresh of the same aggregate runs (e.g. its
    policy job): SQLSTATE 55P03."""
    return isinstance(e, sa.exc.DBAPIError) and getattr(e.orig, "sqlstate", None) == "55P03"


@retry(retry=retry_if_exception(_refresh_conflict), wait=wait_exponential(0.2, max=5),
       stop=stop_after_delay(300), reraise=True)
def _refresh_cagg(conn: Connection, stmt: sa.TextClause, params: dict) -> None:
    conn.execute(stmt, params)


def refresh_rollups(engine: Engine, schema: str, start: dt.datetime | None = None,
                    end: dt.datetime | None = None) -> None:
    """Bring the intraday roll-ups up to date with ``bars_intraday``.

    Plain materialized views are recomputed (``REFRESH MATERIALIZED VIEW``). TimescaleDB
    continuous aggregates are refreshed over ``[start, end]`` widened to whole buckets
    (``refresh_continuous_aggregate``; only invalidated or never-materialized buckets are
    recomputed), so they hold the right rows right after an ingest whatever its dates: the
    refresh policies only reach back days, and background jobs may not run at all.

    Runs on its own autocommit connection (a continuous aggregate cannot be refreshed inside
    a transaction): call it after the ingest has committed. A refresh that overlaps one in
    progress (a policy job) is retried for up to 5 minutes.

    Args:
        start, end: tz-aware bounds of the bar starts (``ts``) just written; None = the whole
            table.

    Raises:
        sqlalchemy.exc.DBAPIError: a refresh failed.
    """
    q = quote_ident(schema)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        ext = timescale_schema(conn)
        for view, bucket in ROLLUPS:
            kind = conn.execute(sa.text(
                "SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = :s AND c.relname = :v"), {"s": schema, "v": view}).scalar()
            if kind is None:
                continue
            if ext is not None and conn.execute(sa.text(
                    "SELECT 1 FROM timescaledb_information.continuous_aggregates "
                    "WHERE view_schema = :s AND view_name = :v"),
                    {"s": schema, "v": view}).first() is not None:  # a continuous aggregate
                x, b = quote_ident(ext), f"INTERVAL '{bucket}'"
                lo = "NULL" if start is None else f"{x}.time_bucket({b}, CAST(:a AS timestamptz))"
                hi = "NULL" if end is None else \
                    f"{x}.time_bucket({b}, CAST(:b AS timestamptz)) + {b}"
                _refresh_cagg(conn, sa.text(f"CALL {x}.refresh_continuous_aggregate("
                                            f"'{q}.{view}', {lo}, {hi})"), {"a": start, "b": end})
            elif kind == "m":
                conn.execute(sa.text(f"REFRESH MATERIALIZED VIEW {q}.{view}"))


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


@dataclass
class InitReport:
    """What ``init_db`` did: storage variant, versions applied now, current version."""

    variant: str
    applied: list[int]
    version: int


class MigrationError(RuntimeError):
    """A schema migration failed on a server that answered; the message names the migration
    and the server's reason (its transaction is rolled back, nothing of it is applied)."""


def timescale_available(conn: Connection) -> bool:
    """True when the ``timescaledb`` extension files are installed in the server (it may
    still fail to load: see :func:`init_db`)."""
    row = conn.execute(
        sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")
    ).first()
    return row is not None


#: Schema ``CREATE EXTENSION timescaledb`` installs into: never a technic schema (a second
#: technic schema must find the extension's functions, and ``DROP SCHEMA technic CASCADE``
#: must not drop it). ``public`` is on every technic connection's search path.
EXTENSION_SCHEMA = "public"


def _enable_timescale(engine: Engine) -> str | None:
    """Create the ``timescaledb`` extension if needed and return its schema, or None (with
    one warning) when it cannot be used here.

    Runs on a connection of its own: when the library is installed but not in
    ``shared_preload_libraries``, ``CREATE EXTENSION`` kills the backend (FATAL), which must
    not take the migration's transaction with it.
    """
    try:
        with engine.begin() as conn:
            if not timescale_available(conn):
                return None
            ext = timescale_schema(conn)
            if ext is not None:
                return ext
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
                         {"k": "technic-create-extension"})
            conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(EXTENSION_SCHEMA)}"))
            conn.execute(sa.text(f"CREATE EXTENSION IF NOT EXISTS timescaledb "
                                 f"SCHEMA {quote_ident(EXTENSION_SCHEMA)}"))
            return timescale_schema(conn)
    except sa.exc.DBAPIError as e:  # e.g. not preloaded (FATAL), no privilege
        reason = str(e.orig).strip().splitlines()[0] if e.orig is not None else str(e)
        log.warning("timescaledb is installed but cannot be enabled (%s); using native "
                    "PostgreSQL partitioning", reason)
        return None


def init_db(engine: Engine, schema: str, timescale: bool | None = None) -> InitReport:
    """Create or migrate the schema idempotently (safe to run concurrently and repeatedly).

    The storage variant is chosen when the schema is created and kept: TimescaleDB when the
    extension can be enabled (created in :data:`EXTENSION_SCHEMA` if missing), otherwise
    native partitioning (one warning when the extension is installed but cannot be enabled,
    e.g. not in ``shared_preload_libraries``). Migrations run in one transaction under an
    advisory lock, so two processes running it at once serialise. Continuous aggregates
    created by a migration are refreshed after it commits.

    Args:
        timescale: None = as available; False = native even where TimescaleDB could be
            used (side-by-side comparisons); True = TimescaleDB or :class:`MigrationError`.

    Raises:
        MigrationError: a migration statement failed (everything is rolled back), or
            ``timescale=True`` and the extension cannot be enabled.
        sqlalchemy.exc.DBAPIError: the server could not be reached.
    """
    qs = quote_ident(schema)
    with engine.connect() as conn:
        fresh = conn.execute(sa.text("SELECT to_regclass(:t) IS NULL"),
                             {"t": f"{qs}.schema_migrations"}).scalar() or not conn.execute(
            sa.text(f"SELECT EXISTS (SELECT 1 FROM {qs}.schema_migrations)")).scalar()
    ext = None
    if fresh and timescale is not False:
        ext = _enable_timescale(engine)
        if ext is None and timescale:
            raise MigrationError(f"schema {schema}: TimescaleDB requested but the timescaledb "
                                 "extension cannot be enabled on this server")
    with engine.begin() as conn:
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
                     {"k": f"technic-migrate-{schema}"})
        conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {qs}"))
        conn.execute(sa.text(f"""CREATE TABLE IF NOT EXISTS {qs}.schema_migrations (
            version integer PRIMARY KEY, description text NOT NULL, variant text NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now())"""))
        done: dict[int, str] = {version: variant for version, variant in conn.execute(
            sa.text(f"SELECT version, variant FROM {qs}.schema_migrations"))}
        new_variant = "timescaledb" if ext is not None else "native"
        variant = done[min(done)] if done else new_variant
        if variant == "timescaledb":
            ext = ext or timescale_schema(conn)
            if ext is None:
                raise MigrationError(f"schema {schema} was created for TimescaleDB but the "
                                     "timescaledb extension is not installed in this database")
            # the extension's functions, wherever it was installed
            conn.execute(sa.text(f"SET LOCAL search_path = {qs}, {quote_ident(ext)}"))
        applied: list[int] = []
        for m in MIGRATIONS:
            if m.version in done:
                continue
            try:
                for stmt in m.render(schema, variant == "timescaledb"):  # type: ignore[operator]
                    conn.execute(sa.text(stmt))
            except sa.exc.DBAPIError as e:
                reason = str(e.orig).strip() if e.orig is not None else str(e)
                raise MigrationError(
                    f"schema {schema}: migration {m.version} ({m.description}) failed "
                    f"[{variant}]: {reason}") from e
            conn.execute(
                sa.text(f"INSERT INTO {qs}.schema_migrations (version, description, variant)"
                        " VALUES (:v, :d, :var)"),
                {"v": m.version, "d": m.description, "var": variant},
            )
            applied.append(m.version)
        if applied:
            log.info("schema %s migrated to version %d (%s)", schema, MIGRATIONS[-1].version,
                     variant)
    if variant == "timescaledb" and 3 in applied:
        refresh_rollups(engine, schema)  # continuous aggregates are created empty
    return InitReport(variant=variant, applied=applied, version=MIGRATIONS[-1].version)


def schema_initialised(engine: Engine, schema: str) -> bool:
    """True when ``schema`` exists and holds technic's ``schema_migrations`` table (created by
    :func:`init_db`); read-only."""
    with engine.connect() as conn:
        return bool(conn.execute(sa.text("SELECT to_regclass(:t) IS NOT NULL"),
                                 {"t": f"{quote_ident(schema)}.schema_migrations"}).scalar())


def is_native_partitioned(conn: Connection, schema: str, table: str) -> bool:
    """True when ``schema.table`` is a natively range-partitioned parent table."""
    row = conn.execute(sa.text(
        "SELECT 1 FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = :s AND c.relname = :t"
    ), {"s": schema, "t": table}).first()
    return row is not None


def _hypertable_dimension(conn: Connection, schema: str, table: str) -> str | None:
    """The time column of hypertable ``schema.table``, or None when it is not one."""
    if timescale_schema(conn) is None:
        return None
    return conn.execute(sa.text(
        "SELECT column_name FROM timescaledb_information.dimensions WHERE hypertable_schema = :s "
        "AND hypertable_name = :t AND dimension_number = 1"), {"s": schema, "t": table}).scalar()


def _epoch_us(day: str) -> int:
    """Microseconds from the Unix epoch to UTC midnight of ISO date ``day`` (TimescaleDB's
    internal time of chunk slices)."""
    return int((np.datetime64(day, "D") - np.datetime64("1970-01-01", "D"))
               .astype("timedelta64[us]").astype(np.int64))


def ensure_partitions(conn: Connection, schema: str, table: str,
                      periods: Iterable[int | np.datetime64]) -> list[str]:
    """Create the missing range partitions of ``table`` ahead of a write.

    Native variant: one partition per period. TimescaleDB hypertables: one chunk per
    calendar year for yearly periods (``_timescaledb_functions.create_chunk``; a year some
    chunk already overlaps is left alone), nothing for months (intraday chunks are
    TimescaleDB's own 7-day ones).

    Race-free: creation runs under a transaction-level advisory lock per table, so
    concurrent writers into an empty database wait for each other instead of failing with
    ``DuplicateTable``. Call it in a short transaction of its own (the lock is held until it
    commits).

    Args:
        periods: calendar years (``int`` or ``datetime64[Y]``) → ``<table>_y<YYYY>``, or
            months (``datetime64[M]``, for intraday tables) → ``<table>_m<YYYYMM>``; bounds
            are UTC midnights.

    Returns:
        The names of the partitions (or hypertable chunks) created.
    """
    qs = quote_ident(schema)
    bounds = set()
    for p in periods:
        if isinstance(p, np.datetime64) and np.datetime_data(p.dtype)[0] == "M":
            lo = p.astype("datetime64[M]")
            bounds.add((f"{table}_m{str(lo).replace('-', '')}", str(lo.astype("datetime64[D]")),
                        str((lo + 1).astype("datetime64[D]"))))
        else:
            y = int(p.astype("datetime64[Y]").astype(int) + 1970) \
                if isinstance(p, np.datetime64) else int(p)
            bounds.add((f"{table}_y{y}", f"{y}-01-01", f"{y + 1}-01-01"))
    if not bounds:
        return []
    native = is_native_partitioned(conn, schema, table)
    dim = None if native else _hypertable_dimension(conn, schema, table)
    if not native and dim is None:
        return []
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
                 {"k": f"technic-partitions-{schema}.{table}"})
    created: list[str] = []
    for name, lo, hi in sorted(bounds):
        if native:
            exists = conn.execute(sa.text(
                "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = :s AND c.relname = :t"), {"s": schema, "t": name}).first()
            if not exists:
                conn.execute(sa.text(
                    f"CREATE TABLE IF NOT EXISTS {qs}.{name} PARTITION OF {qs}.{table} "
                    f"FOR VALUES FROM ('{lo} 00:00:00+00') TO ('{hi} 00:00:00+00')"))
                created.append(name)
            continue
        if "_y" not in name[len(table):]:
            continue  # months: TimescaleDB's own chunks
        taken = conn.execute(sa.text(
            "SELECT 1 FROM timescaledb_information.chunks WHERE hypertable_schema = :s "
            "AND hypertable_name = :t AND range_start < CAST(:hi AS timestamptz) "
            "AND range_end > CAST(:lo AS timestamptz)"),
            {"s": schema, "t": table, "lo": f"{lo} 00:00:00+00",
             "hi": f"{hi} 00:00:00+00"}).first()
        if not taken:
            slices = json.dumps({dim: [_epoch_us(lo), _epoch_us(hi)]})
            chunk = conn.execute(sa.text(
                "SELECT table_name FROM _timescaledb_functions.create_chunk("
                "CAST(:h AS regclass), CAST(:sl AS jsonb))"),
                {"h": f"{qs}.{table}", "sl": slices}).scalar_one()  # one row per call
            created.append(chunk)
    return created
