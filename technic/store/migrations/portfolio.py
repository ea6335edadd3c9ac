"""Migrations of the portfolio tables: ``portfolios`` and ``portfolio_weights`` (23), and the
backtests of the portfolio methods (24)."""

from __future__ import annotations

from technic.store.migrations.ddl import quote_ident


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
