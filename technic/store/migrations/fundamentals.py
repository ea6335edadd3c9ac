"""Migrations of the fundamentals: the quarterly ``fundamentals`` table (17) and the
point-in-time fundamental factor columns of ``scan_results`` (18)."""

from __future__ import annotations

from technic.store.migrations.core import _latest_views
from technic.store.migrations.ddl import _double_cols, quote_ident
from technic.validation import FUNDAMENTAL_COLUMNS

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
