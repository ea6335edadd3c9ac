"""The screen filter language (parser, pandas evaluator), the column registry, presets and
the fitted table — no database."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from technic.commands.screen import fit_columns, format_value, results_table
from technic.features.registry import FEATURE_COLUMNS
from technic.screen import (
    BUILTIN_PRESETS,
    COLUMNS,
    FEATURE_SCOPE,
    FilterError,
    Preset,
    evaluate,
    parse_columns,
    parse_filter,
    to_text,
)
from technic.screen.filter import And, Cmp, Col, In, IsNull, Lit, Not, Or

FRAME = pd.DataFrame({
    "symbol": ["A", "B", "C", "D", "E"],
    "rsi_14": [25.0, 35.0, np.nan, 70.0, 29.9],
    "close": [10.0, 20.0, 30.0, 40.0, 50.0],
    "sma_200": [9.0, 25.0, 20.0, np.nan, 49.0],
    "sector": ["Technology", "Finance", None, "technology", "Energy"],
    "is_etf": [False, True, False, None, False],
    "market_cap": [1e9, 5e9, np.nan, 3e10, 2.5e9],
})


def rows(text: str) -> list[str]:
    return FRAME["symbol"][evaluate(parse_filter(text), FRAME)].tolist()


def test_registry_has_every_feature_reference_and_score_column():
    assert set(FEATURE_COLUMNS) <= set(COLUMNS) <= set(COLUMNS)
    for name in ("sector", "industry", "market_cap", "dollar_volume", "tech_rating", "merit",
                 "ics", "rank", "alpha_5d"):
        assert name in COLUMNS, name
    assert "tech_rating" not in FEATURE_SCOPE and "rsi_14" in FEATURE_SCOPE
    assert all(c.unit for c in COLUMNS.values())


def test_registry_has_the_fundamental_and_option_columns():
    from technic.jobs.scan import ScanParams
    from technic.screen.columns import OPTION_SCOPE
    from technic.store.migrations import FUNDAMENTAL_RESULT_COLUMNS, OPTION_RESULT_COLUMNS
    from technic.store.results import RESULT_COLUMNS

    assert set(FUNDAMENTAL_RESULT_COLUMNS) | {"market_cap_source", "market_cap_pit"} <= {
        n for n, c in COLUMNS.items() if c.scope == "scan"}
    assert {COLUMNS[c].source for c in FUNDAMENTAL_RESULT_COLUMNS} == {"fundamental"}
    assert COLUMNS["market_cap_source"].kind == "text"
    assert set(OPTION_RESULT_COLUMNS) == OPTION_SCOPE  # the same names as scan_results
    # every stored result column a screen can use is in the registry (dates and the id aside)
    assert set(RESULT_COLUMNS) - set(COLUMNS) == {"run_id", "fund_period_end",
                                                  "fund_available_date"}
    assert parse_filter("value_score > 70 and rsi_14 < 40") is not None
    with pytest.raises(FilterError, match="did you mean value_score"):
        parse_filter("valu_score > 70")
    # an opt_* column in the filter, sort or columns turns the options on
    assert ScanParams(where="opt_iv_rv_20 > 1.2").with_options
    assert ScanParams(sort="opt_skew_25d").with_options
    assert ScanParams(columns=("symbol", "opt_volume_oi")).with_options
    assert not ScanParams(where="value_score > 70").with_options
    assert format_value("value_score", 71.26) == "71.3"
    assert format_value("earnings_yield", 0.052) == "+5.2%"
    assert format_value("opt_atm_iv_30d", 0.31) == "31.0%"
    assert format_value("shares_diluted_pit", 1.5e10) == "15.0B"


@pytest.mark.parametrize("text, expected", [
    ("rsi_14 < 30", ["A", "E"]),
    ("rsi_14 <= 35", ["A", "B", "E"]),
    ("rsi_14 > 35", ["D"]),
    ("rsi_14 >= 35", ["B", "D"]),
    ("close = 20", ["B"]),
    ("close == 20", ["B"]),
    ("close != 20", ["A", "C", "D", "E"]),
    ("close <> 20", ["A", "C", "D", "E"]),
    ("close > sma_200", ["A", "C", "E"]),          # D: sma_200 NULL -> unknown -> dropped
    ("30 > rsi_14", ["A", "E"]),                    # a literal on the left
    ("rsi_14 < 30 and close > sma_200", ["A", "E"]),
    ("rsi_14 < 30 or close >= 40", ["A", "D", "E"]),
    ("not rsi_14 < 30", ["B", "D"]),                # C: NULL stays unknown under not (SQL)
    ("not (rsi_14 < 30 or close > 45)", ["B", "D"]),
    ("(rsi_14 < 30 or rsi_14 > 60) and not (sector = 'energy')", ["A", "D"]),
    ("sector in ('Technology', 'finance')", ["A", "B", "D"]),  # case-insensitive
    ("sector not in (\"TECHNOLOGY\")", ["B", "E"]),  # C: NULL sector -> unknown
    ("sector = 'Technology'", ["A", "D"]),
    ("sector != 'Technology'", ["B", "E"]),
    ("sector is null", ["C"]),
    ("sma_200 is not null and rsi_14 is null", ["C"]),
    ("is_etf = true", ["B"]),
    ("is_etf = false", ["A", "C", "E"]),
    ("market_cap >= 2.5B", ["B", "D", "E"]),        # K/M/B/T suffixes
    ("market_cap < 1_500M", ["A"]),
    ("close > 1e1 AND close < 4.5e1", ["B", "C", "D"]),  # keywords case-insensitive
])
def test_each_operator(text, expected):
    assert rows(text) == expected
    # the canonical text parses back to the same tree
    node = parse_filter(text)
    assert node is not None and parse_filter(to_text(node)) == node


def test_ast_shape_and_precedence():
    n = parse_filter("rsi_14 < 30 or close > 5 and not sector = 'X'")
    assert n == Or((Cmp("<", Col("rsi_14"), Lit(30.0)),
                    And((Cmp(">", Col("close"), Lit(5.0)),
                         Not(Cmp("=", Col("sector"), Lit("X")))))))
    assert parse_filter("industry is not null") == IsNull(Col("industry"), True)
    assert parse_filter("sector not in ('a','b')") == In(Col("sector"), ("a", "b"), True)
    assert parse_filter("  ") is None and parse_filter(None) is None


@pytest.mark.parametrize("text, message", [
    ("rsi14 < 30", "unknown column 'rsi14'; did you mean rsi_14"),
    ("clse > sma_20O", "unknown column 'clse'; did you mean close"),
    ("foo_bar_baz > 1", "`technic columns` lists them"),
    ("rsi_14 < 30 and", "expected a column"),
    ("rsi_14 30", "expected a comparison"),
    ("(rsi_14 < 30", "expected ')'"),
    ("rsi_14 < 30)", "expected 'and', 'or' or the end"),
    ("sector < 'T'", "text columns compare with = and != only"),
    ("sector = 3", "cannot compare text with num"),
    ("rsi_14 = 'x'", "cannot compare num with text"),
    ("sector in (1, 2)", "needs text values"),
    ("1 < 2", "without a column"),
    ("rsi_14 < 1e999", "not finite"),
    ("not " * 50 + "rsi_14 < 3", "nested deeper"),
    ("rsi_14 < 30 -- comment", "unexpected character '-'"),
])
def test_bad_filters_are_one_line_errors(text, message):
    with pytest.raises(FilterError) as e:
        parse_filter(text)
    assert message in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("text", [
    "rsi_14 < 30; DROP TABLE technic.scan_runs",
    "rsi_14 < 30 /* x */",
    "close > 0 UNION SELECT 1",
    "pg_sleep(10) > 0",
    "close > (SELECT 1)",
    "sector = 'x' || 'y'",
    "close > 0 --",
])
def test_sql_injection_attempts_do_not_parse(text):
    with pytest.raises(FilterError):
        parse_filter(text)


def test_quotes_inside_strings_are_values_not_syntax():
    n = parse_filter("sector = 'x'' or 1=1 --'")
    assert n == Cmp("=", Col("sector"), Lit("x' or 1=1 --"))
    assert rows("sector = 'x'' or 1=1 --'") == []


def test_feature_scope_rejects_scores():
    with pytest.raises(FilterError, match="outside a scan"):
        parse_filter("tech_rating > 50", FEATURE_SCOPE)
    assert parse_filter("rsi_14 > 50", FEATURE_SCOPE) is not None


def test_columns_list_and_presets():
    assert parse_columns("rank, symbol,,close,rank") == ("rank", "symbol", "close")
    with pytest.raises(ValueError, match="did you mean symbol"):
        parse_columns("rank,symbl")
    names = {p.name for p in BUILTIN_PRESETS}
    assert names == {"momentum-leaders", "oversold-quality", "breakout-52w-high"}
    with pytest.raises(ValueError, match="preset name"):
        Preset("bad name!")
    with pytest.raises(FilterError):
        Preset("x", where="rsi < 3")
    with pytest.raises(ValueError, match="unknown parameter"):
        Preset("x", params={"min_volume": 3})


def test_cells_are_formatted_in_their_unit():
    assert format_value("close", 1234.5) == "1,234.50"
    assert format_value("tech_rating", 71.234) == "71.2"
    assert format_value("ret_12_1", 0.1234) == "+12.3%"
    assert format_value("natr_14", 3.14159) == "3.14%"
    assert format_value("dollar_volume_20", 2.5e9) == "$2.5B"
    assert format_value("market_cap", 3.1e12) == "$3.1T"
    assert format_value("volume", 1.5e6) == "1.5M"
    assert format_value("rank", 3.0) == "3" and format_value("rsi_14", float("nan")) == "—"
    assert format_value("is_etf", True) == "yes" and format_value("sector", "Energy") == "Energy"


def test_table_fits_80_columns_without_cutting_values():
    df = pd.DataFrame({
        "rank": [1, 2], "symbol": ["BRK.B", "GOOGL"], "sector": ["Consumer Discretionary", "X"],
        "close": [123456.78, 1.0], "tech_rating": [99.9, 1.0], "merit": [50.0, 60.0],
        "ics": [1.0, 2.0], "trend_score": [1.0, 2.0], "momentum_score": [1.0, 2.0],
        "volatility_score": [1.0, 2.0], "volume_score": [1.0, 2.0],
        "alpha_5d": [0.01, -0.02], "ret_12_1": [0.5, -0.1], "rsi_14": [50.0, 60.0],
        "dollar_volume_20": [1e9, 2e6]})
    wanted = list(df.columns)
    vis, hidden, _ = fit_columns(df, wanted, 80)
    assert vis[:2] == ["rank", "symbol"] and hidden and set(vis) | set(hidden) == set(wanted)
    table, hidden2 = results_table(df, wanted, "t", 80)
    con = Console(width=80, record=True, file=io.StringIO())
    con.print(table)
    text = con.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    for cell in ("BRK.B", "GOOGL", "123,456.78", "99.9"):
        assert cell in text, text
    assert "…" not in text and hidden2 == hidden
    # the user's --columns order is the priority: the last ones go first
    vis, hidden, _ = fit_columns(df, ["symbol", "close", "sector", "dollar_volume_20"], 30,
                                 keep_order=True)
    assert vis == ["symbol", "close"] and hidden == ["sector", "dollar_volume_20"]


def test_as_of_warning_only_when_sessions_are_missing():
    import datetime as dt

    from technic.jobs.scan import _stale_warning

    last = dt.date(2025, 7, 11)  # a Friday
    assert _stale_warning(None, last) is None and _stale_warning(last, last) is None
    assert _stale_warning(dt.date(2025, 7, 13), last) is None  # the weekend after it
    w = _stale_warning(dt.date(2025, 7, 14), last)
    assert w is not None and "the data are 3 days old, 1 NYSE session missing" in w
    w = _stale_warning(dt.date(2030, 1, 1), dt.date(2025, 7, 9))
    assert w is not None and "scanned 2025-07-09, the data are 1637 days (~54 months) old" in w


def test_builtin_presets_render_as_plain_sql_literals():
    """Migration 16 inserts them through sqlalchemy.text(), where ':word' would be a bind
    parameter: the declared texts must not contain a colon."""
    from technic.store.migrations import MIGRATIONS

    for p in BUILTIN_PRESETS:
        assert ":" not in p.name + p.where + p.description + "".join(p.columns), p.name
    stmts = next(m for m in MIGRATIONS if m.version == 16).render("technic", False)
    assert len(stmts) == 1 + len(BUILTIN_PRESETS) and "ON CONFLICT (name) DO NOTHING" in stmts[1]
