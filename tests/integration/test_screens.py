"""Screens on the bundled real data: every filter operator, the SQL compiler (bound
parameters only), presets (built in and saved), the read-only Python API.

Expected rows are computed independently with pandas from ``features_daily`` (read with
plain SQL here) and, for score filters, from an unfiltered scan's rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

import technic as tc
from technic.jobs.scan import ScanParams, resolve_preset, run_scan
from technic.screen import FilterError, Preset, parse_filter
from technic.store.db import get_engine
from technic.store.presets import (
    PresetNotFound,
    PresetReadOnly,
    delete_preset,
    get_preset,
    list_presets,
    save_preset,
)
from technic.store.screen import features_select, read_feature_rows, read_scan_results

DAY = pd.Timestamp("2025-07-09").date()


def _q(t, sql: str, **params) -> list:
    with get_engine(t).connect() as c:
        return c.execute(sa.text(sql), params).all()


@pytest.fixture(scope="module")
def latest(demo_target) -> pd.DataFrame:
    """The latest date's feature rows joined with symbols, read independently."""
    with get_engine(demo_target).connect() as c:
        df = pd.read_sql(sa.text(
            "SELECT f.*, s.sector, s.industry, s.market_cap, s.is_etf FROM features_daily f "
            "JOIN symbols s USING (symbol) WHERE f.date = :d"), c, params={"d": DAY})
    assert len(df) == 1000
    return df


@pytest.fixture(scope="module")
def unfiltered(demo_target) -> pd.DataFrame:
    """Every ranked row of a default scan (read-only)."""
    return tc.scan(target=demo_target)


def _syms(df: pd.DataFrame) -> list[str]:
    return sorted(df["symbol"].tolist())


def _feature_cases(f: pd.DataFrame) -> list[tuple[str, pd.Series]]:
    sec = f["sector"].str.lower()
    return [
        ("rsi_14 < 30", f.rsi_14 < 30),
        ("rsi_14 <= 30.5 and rsi_14 >= 25", (f.rsi_14 <= 30.5) & (f.rsi_14 >= 25)),
        ("close > sma_200 and rsi_14 > 75", (f.close > f.sma_200) & (f.rsi_14 > 75)),
        ("n_bars = 299", f.n_bars == 299),
        ("adx_14 > 50 and not (natr_14 < 5)", (f.adx_14 > 50) & (f.natr_14 >= 5)),
        ("rel_volume_20 > 3 or ret_21d < -0.3", (f.rel_volume_20 > 3) | (f.ret_21d < -0.3)),
        ("sector in ('energy', 'UTILITIES') and rsi_14 > 70",
         sec.isin(["energy", "utilities"]) & (f.rsi_14 > 70)),
        ("sector not in ('Technology', 'Finance', 'Health Care', 'Industrials', "
         "'Consumer Discretionary', 'Real Estate', 'Energy') and market_cap > 100B",
         sec.notna() & ~sec.isin(["technology", "finance", "health care", "industrials",
                                  "consumer discretionary", "real estate", "energy"])
         & (f.market_cap > 100e9)),
        ("sector is null and close > 100", f.sector.isna() & (f.close > 100)),
        ("market_cap >= 500B", f.market_cap >= 500e9),
        ("is_etf = true and rsi_14 > 60", (f.is_etf == True) & (f.rsi_14 > 60)),  # noqa: E712
        ("industry = 'Semiconductors' and close != sma_20",
         (f.industry.str.lower() == "semiconductors") & (f.close != f.sma_20)),
    ]


def test_each_operator_on_the_feature_store(demo_target, latest):
    """SQL (bound) and pandas evaluation both give the independently computed rows."""
    from technic.screen import evaluate

    frame = read_feature_rows(demo_target, DAY, DAY)
    for text, mask in _feature_cases(latest):
        expected = sorted(latest.symbol[mask.fillna(False).astype(bool)])
        assert expected, f"{text}: the case selects nothing on the real data"
        sql_rows = read_feature_rows(demo_target, DAY, DAY, where=parse_filter(text))
        assert _syms(sql_rows) == expected, text
        assert sorted(frame.symbol[evaluate(parse_filter(text), frame)]) == expected, text


def test_hand_checked_rows(demo_target):
    """Pinned on the bundled data (2025-07-09): the most oversold names in the feature store
    and in the default universe."""
    rows = tc.features(where="rsi_14 < 20", columns="rsi_14", target=demo_target)
    assert rows.symbol.tolist() == ["CNC"] and 16.9 < rows.rsi_14.iloc[0] < 16.91
    scan = tc.scan("rsi_14 < 30", sort="rsi_14", descending=False, target=demo_target)
    assert scan.symbol.tolist() == ["CNC", "HLN", "MOH", "DUOL", "EXE"]
    assert sorted(scan["rank"]) == [1, 2, 3, 4, 5]  # re-ranked among the kept rows


def test_scan_filters_on_scores_after_scoring(demo_target, unfiltered):
    u = unfiltered
    cases = [
        ("tech_rating > 70 and ics >= 60", (u.tech_rating > 70) & (u.ics >= 60)),
        ("merit > 75 or rank <= 3", (u.merit > 75) | (u["rank"] <= 3)),
        ("alpha_score >= 90 and sector = 'technology'",
         (u.alpha_score >= 90) & (u.sector.str.lower() == "technology")),
        ("rsi_14 < 40 and close > sma_200", (u.rsi_14 < 40) & (u.close > u.sma_200)),
    ]
    for text, mask in cases:
        exp = u[mask.fillna(False).astype(bool)]
        got = tc.scan(text, target=demo_target)
        assert got.symbol.tolist() == exp.symbol.tolist(), text  # same TechRating order
        assert got["rank"].tolist() == list(range(1, len(got) + 1))
        # the scores are those of the whole universe (computed before the filter)
        np.testing.assert_allclose(got.tech_rating.to_numpy(), exp.tech_rating.to_numpy())
        assert got.attrs["counts"]["dropped_where"] == len(u) - len(got)


def test_industry_market_cap_sort_and_columns(demo_target, unfiltered):
    u = unfiltered
    got = tc.scan(industries=["semiconductors"], min_market_cap=50e9, sort="market_cap",
                  columns="symbol,market_cap,industry", target=demo_target)
    exp = u[(u.industry.str.lower() == "semiconductors") & (u.market_cap >= 50e9)]
    exp = exp.sort_values("market_cap", ascending=False)
    assert list(got.columns) == ["symbol", "market_cap", "industry"]
    assert got.symbol.tolist() == exp.symbol.tolist() and len(got) >= 3
    asc = tc.scan(sort="symbol", top=5, target=demo_target)
    assert asc.symbol.tolist() == sorted(u.symbol, key=str.lower)[:5]
    with pytest.raises(ValueError, match="unknown industry 'Semiconductor'.*Semiconductors"):
        tc.scan(industries=["Semiconductor"], target=demo_target)


def test_unknown_names_are_one_line_errors(demo_target):
    before = _q(demo_target, "SELECT count(*) FROM scan_runs")[0][0]
    with pytest.raises(FilterError, match=r"unknown column 'rsi' ?; did you mean"):
        tc.scan("rsi < 30", target=demo_target)
    with pytest.raises(ValueError, match="unknown sector.*'Tech'.*known sectors: .*Technology"):
        tc.scan(sectors=["Tech"], save=True, target=demo_target)
    with pytest.raises(FilterError, match="only in a scan"):
        read_feature_rows(demo_target, DAY, DAY, where=parse_filter("tech_rating > 5"))
    assert _q(demo_target, "SELECT count(*) FROM scan_runs")[0][0] == before


def test_filter_text_only_reaches_sql_as_bound_parameters(demo_target):
    evil = "x'; DROP TABLE symbols; --"
    node = parse_filter("sector = 'x''; DROP TABLE symbols; --' or close > 1e9")
    stmt = features_select(DAY, DAY, where=node)
    compiled = stmt.compile(dialect=postgresql.dialect())
    sql = str(compiled)
    assert "DROP" not in sql and "1000000000" not in sql
    assert evil.lower() in compiled.params.values() and 1e9 in compiled.params.values()
    assert read_feature_rows(demo_target, DAY, DAY, where=node).empty
    assert _q(demo_target, "SELECT count(*) FROM symbols")[0][0] == 1000
    # every literal of every operator becomes a parameter
    stmt = features_select(DAY, DAY, ["AAPL"], parse_filter(
        "rsi_14 < 30.25 or sector in ('a', 'b') or is_etf = true or industry != 'c'"))
    compiled = stmt.compile(dialect=postgresql.dialect())
    text = str(compiled)
    for lit in ("30.25", "'a'", "'b'", "'c'", "true", "AAPL"):
        assert lit not in text, (lit, text)
    assert text.count("%(") >= 6


def test_builtin_presets_exist_after_db_init(fresh_target):
    ps = {p.name: p for p in list_presets(fresh_target)}
    assert {"momentum-leaders", "oversold-quality", "breakout-52w-high"} <= set(ps)
    assert all(p.builtin and p.where and p.description for p in ps.values())


def _preset_expectation(name: str, u: pd.DataFrame) -> pd.DataFrame:
    if name == "momentum-leaders":
        m = (u.ret_12_1 > 0.2) & (u.close > u.sma_50) & (u.sma_50 > u.sma_200) & (u.rsi_14 < 80)
        return u[m].sort_values(["ret_12_1", "rank"], ascending=[False, True])
    if name == "oversold-quality":
        m = (u.rsi_14 < 40) & (u.close > u.sma_200) & (u.ics >= 55)
        return u[m].sort_values(["rsi_14", "rank"])
    m = (u.dist_52w_high >= -0.02) & (u.rel_volume_20 >= 1.2) & (u.close > u.sma_50)
    return u[m].sort_values(["rel_volume_20", "rank"], ascending=[False, True])


@pytest.mark.parametrize("name", ["momentum-leaders", "oversold-quality", "breakout-52w-high"])
def test_each_builtin_preset(demo_target, unfiltered, name):
    exp = _preset_expectation(name, unfiltered)
    got = tc.scan(preset=name, target=demo_target)
    assert len(got) >= 3, name
    assert got.symbol.tolist() == exp.symbol.tolist()
    params = resolve_preset(demo_target, name)
    assert params.preset == name and params.run_preset == name and params.columns


def test_saved_preset_runs_under_its_name(demo_target, unfiltered):
    p = Preset("test-cheap-tech", where="close < 50 and tech_rating > 60",
               sort="close", descending=False, columns=("symbol", "close"),
               params={"sectors": ["Technology"], "top": 4}, description="t")
    try:
        assert save_preset(demo_target, p) is True
        assert save_preset(demo_target, p) is False  # replaced
        assert get_preset(demo_target, p.name) == p
        outcome = run_scan(demo_target, resolve_preset(demo_target, p.name))
        run = _q(demo_target, "SELECT preset, status, params->>'where' FROM scan_runs "
                              "WHERE run_id = :r", r=outcome.run_id)[0]
        assert tuple(run) == (p.name, "ok", p.where)
        # sector restricts the universe before scoring: compare with a sector scan
        sec = tc.scan(sectors=["Technology"], target=demo_target)
        exp = sec[(sec.close < 50) & (sec.tech_rating > 60)].sort_values(["close", "rank"])
        assert outcome.results.symbol.tolist() == exp.symbol.tolist()
        stored = read_scan_results(demo_target, outcome.run_id, sort="close")
        assert stored.symbol.tolist() == exp.symbol.tolist()
        assert _q(demo_target, "SELECT count(*) FROM latest_scan_results_by_preset "
                               "WHERE preset = :p", p=p.name)[0][0] == len(exp)
        kept = read_scan_results(demo_target, outcome.run_id, parse_filter("close < 20"))
        assert sorted(kept.symbol) == sorted(exp.symbol[exp.close < 20])
    finally:
        delete_preset(demo_target, p.name)
    with pytest.raises(PresetNotFound, match="momentum-leaders"):
        get_preset(demo_target, p.name)
    with pytest.raises(PresetReadOnly):
        save_preset(demo_target, Preset("momentum-leaders", where="close > 1"))
    with pytest.raises(PresetReadOnly):
        delete_preset(demo_target, "oversold-quality")
    with pytest.raises(PresetReadOnly, match="reserved"):
        save_preset(demo_target, Preset("default", where="close > 1"))
    with pytest.raises(ValueError, match="default filter only"):
        ScanParams(preset="default", where="close > 1")


def test_tc_scan_writes_nothing(demo_target):
    tables = ("scan_runs", "scan_results", "market_daily", "scan_presets", "features_daily")

    def counts():
        return {t: _q(demo_target, f"SELECT count(*) FROM {t}")[0][0] for t in tables}

    before = counts()
    df = tc.scan("tech_rating > 50", sort="merit", target=demo_target)
    tc.scan(preset="momentum-leaders", target=demo_target)
    tc.features("AAPL", start="2025-06-01", target=demo_target)
    tc.bars(["AAPL", "MSFT"], target=demo_target)
    assert counts() == before and df.attrs["run_id"] is None and len(df) > 10
    saved = tc.scan("tech_rating > 50", save=True, target=demo_target)
    after = counts()
    assert after["scan_runs"] == before["scan_runs"] + 1
    assert after["scan_results"] == before["scan_results"] + len(saved)
    assert saved.symbol.tolist() == sorted(df.symbol, key=lambda s: df.set_index(
        "symbol").loc[s, "rank"])


def test_as_of_after_the_data_warns(demo_target):
    with pytest.warns(UserWarning, match=r"scanned 2025-07-09, the data are \d+ days"):
        df = tc.scan(as_of="2026-01-01", top=3, target=demo_target)
    assert df.attrs["as_of"] == DAY and len(df) == 3


def test_scan_preset_option_runs_a_stored_preset(demo_target):
    import typer

    from technic.commands.screen import stored_preset_params

    got = stored_preset_params(demo_target, ScanParams(top=7, preset="momentum-leaders",
                                                       sort="rsi_14"))
    assert got.where and got.preset == "momentum-leaders" and got.top == 7
    assert got.sort == "rsi_14" and got.columns  # the command line's sort wins
    assert stored_preset_params(demo_target, ScanParams(preset="just-a-label")) is None
    with pytest.raises(typer.Exit):
        stored_preset_params(demo_target, ScanParams(preset="momentum-leaders",
                                                     where="close > 1"))


@pytest.mark.filterwarnings("ignore:no option metrics")
def test_every_registry_column_is_in_the_frames(demo_target, unfiltered):
    from technic.screen import COLUMNS, FEATURE_SCOPE
    from technic.screen.columns import OPTION_SCOPE

    plain = set(COLUMNS) - OPTION_SCOPE  # the opt_* columns come with options only
    assert plain <= set(unfiltered.columns), plain - set(unfiltered.columns)
    assert not OPTION_SCOPE & set(unfiltered.columns)
    with_opts = tc.scan(with_options=True, target=demo_target)
    assert set(COLUMNS) <= set(with_opts.columns), set(COLUMNS) - set(with_opts.columns)
    feats = read_feature_rows(demo_target, DAY, DAY, ["AAPL"])
    assert set(feats.columns) >= FEATURE_SCOPE, FEATURE_SCOPE - set(feats.columns)
    row = unfiltered.set_index("symbol").loc["AAPL"]
    assert row.dollar_volume == pytest.approx(row.close * row.volume)
    assert feats.market_cap.iloc[0] == pytest.approx(row.market_cap)


def test_fundamental_factor_filters_match_pandas(demo_target, unfiltered):
    """Fundamental factors and market-cap columns filter like any score: in the scan (pandas)
    and in SQL over a stored run, rows hand-checked against the unfiltered scan."""
    u = unfiltered
    assert u.value_score.notna().sum() > 100  # the demo has fundamentals
    cases = [
        ("value_score > 70 and rsi_14 < 40", (u.value_score > 70) & (u.rsi_14 < 40)),
        ("market_cap_source = 'FUNDAMENTALS' and quality_score >= 80 and roe > 0.2",
         (u.market_cap_source == "fundamentals") & (u.quality_score >= 80) & (u.roe > 0.2)),
        ("market_cap_pit > 200B and growth_score is not null",
         (u.market_cap_pit > 200e9) & u.growth_score.notna()),
        ("earnings_yield_sn >= 90 or book_to_price > 1", (u.earnings_yield_sn >= 90)
         | (u.book_to_price > 1)),
    ]
    saved = tc.scan(save=True, target=demo_target)
    for text, mask in cases:
        exp = u[mask.fillna(False).astype(bool)]
        assert len(exp) >= 3, text
        got = tc.scan(text, target=demo_target)
        assert got.symbol.tolist() == exp.symbol.tolist(), text  # TechRating order kept
        assert got["rank"].tolist() == list(range(1, len(exp) + 1)), text
        rows = read_scan_results(demo_target, saved.attrs["run_id"], where=parse_filter(text))
        assert rows.symbol.tolist() == exp.symbol.tolist(), text
    top = read_scan_results(demo_target, saved.attrs["run_id"], where=parse_filter(
        "value_score is not null"), sort="value_score", descending=True, limit=5, offset=2)
    exp = u[u.value_score.notna()].sort_values(["value_score", "rank"],
                                               ascending=[False, True])
    assert top.symbol.tolist() == exp.symbol.iloc[2:7].tolist()


def test_option_column_in_the_filter_turns_options_on(demo_target, unfiltered):
    """A filter naming an opt_* column scans with the option metrics (no --with-options
    needed); without metrics that day the columns are NULL and a warning says why."""
    from technic.store.options import write_option_metrics

    p = ScanParams(where="opt_iv_rv_20 >= 1.2 and tech_rating > 0")
    assert p.with_options and p.option_columns == {"opt_iv_rv_20"}
    assert ScanParams(sort="opt_skew_25d").with_options
    assert ScanParams(columns=("symbol", "opt_atm_iv_30d")).with_options
    assert not ScanParams(where="value_score > 70").with_options
    # other tests may have stored metrics for the day: use symbols without any
    taken = {r[0] for r in _q(demo_target, "SELECT underlying FROM option_metrics "
                                           "WHERE date = :d", d=DAY)}
    syms = [s for s in unfiltered.symbol if s not in taken][2:5]
    if not taken:
        out = run_scan(demo_target, p, save=False)
        assert out.results.empty and out.counts["with_options"] == 0
        assert any("no option metrics for 2025-07-09" in w for w in out.warnings)
    write_option_metrics(demo_target, pd.DataFrame([
        {"date": DAY, "underlying": s, "n_contracts": 10, "atm_iv_30d": iv,
         "realized_vol_20": 0.25, "iv_rv_20": iv / 0.25, "reasons": {}}
        for s, iv in zip(syms, (0.40, 0.20, 0.30), strict=True)]))
    try:
        where = f"opt_iv_rv_20 >= 1.2 and symbol in ({', '.join(map(repr, syms))})"
        got = tc.scan(where, target=demo_target)
        assert got.symbol.tolist() == [syms[0], syms[2]]  # iv/rv 1.6 and 1.2; 0.8 dropped
        assert got.opt_atm_iv_30d.tolist() == [0.40, 0.30]
        assert got["rank"].tolist() == [1, 2]
    finally:
        with get_engine(demo_target).begin() as c:
            c.execute(sa.text("DELETE FROM option_metrics WHERE date = :d AND underlying = "
                              "ANY(:s)"), {"d": DAY, "s": syms})
