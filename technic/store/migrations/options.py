"""Migrations of the options data: end-of-day ``option_chains`` (21), and ``option_metrics``
with their copy in ``scan_results`` (22)."""

from __future__ import annotations

from technic.store.migrations.core import _latest_views
from technic.store.migrations.ddl import quote_ident

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
