"""Migrations of the intraday bars (``bars_intraday``) and their roll-ups (15-minute, hourly
and New York session-daily views; TimescaleDB continuous aggregates with their refresh,
compression and retention policies), and of the tables migration 6 adds beside those
policies: ``bar_sources`` and ``corporate_actions`` (with ``features_daily`` compression on
TimescaleDB). :data:`ROLLUPS` is also read by :func:`technic.store.schema.refresh_rollups`."""

from __future__ import annotations

from technic.store.migrations.ddl import _bars_table, quote_ident

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
