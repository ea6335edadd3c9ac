"""`technic scan` screens, presets, sectors and columns from the command line on the bundled
data: each output format, the table fitted to 80 columns, and one-line errors that store
nothing."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pandas as pd
import sqlalchemy as sa

import technic as tc
from technic.store.db import get_engine
from tests.conftest import cli_env


def _cli(db_url, schema, *args, columns="200", **env):
    return subprocess.run([sys.executable, "-m", "technic.cli", *args],
                          env=cli_env(db_url, schema, COLUMNS=columns, **env),
                          capture_output=True, text=True, timeout=180)


def _count(t, sql: str) -> int:
    with get_engine(t).connect() as c:
        return int(c.execute(sa.text(sql)).scalar_one())


def test_scan_csv_json_and_fitted_table(db_url, demo_target, tmp_path):
    where = "rsi_14 < 40 and close > sma_200"
    exp = tc.scan(where, sort="rsi_14", descending=False, target=demo_target)
    out = tmp_path / "oversold.csv"
    r = _cli(db_url, demo_target.schema, "scan", "--where", where, "--sort", "rsi_14", "--asc",
             "--format", "csv", "--output", str(out), "--top", "100")
    assert r.returncode == 0, r.stderr
    got = pd.read_csv(out)
    assert got.symbol.tolist() == exp.symbol.tolist() and len(got) >= 10
    assert {"rsi_14", "sma_200", "tech_rating", "merit"} <= set(got.columns)
    pd.testing.assert_series_equal(got.close, exp.close, check_names=False)
    assert got["rank"].tolist() == exp["rank"].tolist()

    r = _cli(db_url, demo_target.schema, "scan", "--where", where, "--format", "json",
             "--columns", "symbol,rsi_14,ics", "--top", "3", "--as-of", "2026-03-01")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert [list(x) for x in doc["results"]] == [["symbol", "rsi_14", "ics"]] * 3
    assert [x["symbol"] for x in doc["results"]] == exp.sort_values("rank").symbol[:3].tolist()
    assert doc["as_of"] == "2025-07-09" and "data are 235 days" in doc["warnings"][0]
    assert "warning: --as-of 2026-03-01 is after the last feature date" in r.stderr

    r = _cli(db_url, demo_target.schema, "scan", "-n", "12", columns="80")
    assert r.returncode == 0, r.stderr
    lines = [x for x in r.stdout.splitlines() if x[:1] in "┏┃┡│└"]  # the table's lines
    assert len(lines) == 12 + 4 and max(len(x) for x in lines) <= 80, r.stdout
    assert "…" not in r.stdout and "hidden to fit 80 columns:" in " ".join(r.stdout.split())
    top = tc.scan(top=12, target=demo_target)
    for sym, close in zip(top.symbol, top.close, strict=True):
        row = next(x for x in lines if f" {sym} " in x)
        assert f"{close:,.2f}" in row, row


def test_presets_from_the_cli(db_url, demo_target):
    s = demo_target.schema
    r = _cli(db_url, s, "preset", "save", "cli-value", "--where",
             "ret_12_1 > 0 and natr_14 < 2.5", "--sort", "natr_14", "--asc", "--columns",
             "symbol,natr_14,ret_12_1", "--min-market-cap", "1e10", "--description", "calm")
    assert r.returncode == 0, r.stderr
    r = _cli(db_url, s, "preset", "list", "--format", "json")
    names = {p["name"]: p for p in json.loads(r.stdout)["results"]}
    assert {"momentum-leaders", "oversold-quality", "breakout-52w-high", "cli-value"} <= set(names)
    assert names["cli-value"]["builtin"] is False and names["momentum-leaders"]["builtin"]
    runs = _count(demo_target, "SELECT count(*) FROM scan_runs")
    r = _cli(db_url, s, "preset", "run", "cli-value", "--format", "csv", "--top", "500")
    assert r.returncode == 0, r.stderr
    got = pd.read_csv(io.StringIO(r.stdout))
    u = tc.scan(target=demo_target)
    exp = u[(u.ret_12_1 > 0) & (u.natr_14 < 2.5) & (u.market_cap >= 1e10)].sort_values(
        ["natr_14", "rank"])
    assert list(got.columns) == ["symbol", "natr_14", "ret_12_1"]
    assert got.symbol.tolist() == exp.symbol.tolist() and len(got) > 5
    assert _count(demo_target, "SELECT count(*) FROM scan_runs") == runs + 1
    assert _count(demo_target, "SELECT count(*) FROM scan_runs WHERE preset = 'cli-value' "
                               "AND status = 'ok'") == 1
    r = _cli(db_url, s, "preset", "delete", "momentum-leaders")
    assert r.returncode == 2 and "built in" in r.stderr
    r = _cli(db_url, s, "preset", "delete", "cli-value")
    assert r.returncode == 0, r.stderr
    r = _cli(db_url, s, "preset", "run", "cli-value")
    assert r.returncode == 2 and "unknown preset 'cli-value'; stored presets:" in r.stderr


def test_sectors_columns_and_one_line_errors(db_url, demo_target):
    s = demo_target.schema
    r = _cli(db_url, s, "sectors", "--format", "csv")
    sec = pd.read_csv(io.StringIO(r.stdout))
    assert r.returncode == 0 and "Technology" in set(sec.sector) and sec.symbols.sum() == 1000
    r = _cli(db_url, s, "columns", "--format", "json")
    cols = {c["column"]: c for c in json.loads(r.stdout)["results"]}
    assert cols["rsi_14"]["unit"].startswith("0-100") and cols["merit"]["scope"] == "scan"
    runs = _count(demo_target, "SELECT count(*) FROM scan_runs")
    cases = (
        (["scan", "--sector", "Tech"], "unknown sector(s) 'Tech'; known sectors: "
                                       "Basic Materials"),
        (["scan", "--where", "rsi14 < 30"], "--where: unknown column 'rsi14'; did you "
                                            "mean rsi_14?"),
        (["scan", "--where", "close > 5; DROP TABLE symbols"], "unexpected character ';'"),
        (["scan", "--industry", "Semiconductor"], "closest: "),
        (["scan", "--sort", "tech_ratng"], "did you mean tech_rating"),
        (["preset", "save", "x", "--where", "sector < 'A'"], "compare with = and !="))
    # independent and quick to fail: run them side by side
    procs = [subprocess.Popen([sys.executable, "-m", "technic.cli", *args], text=True,
                              env=cli_env(db_url, s, COLUMNS="80"), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for args, _ in cases]
    for (args, message), p in zip(cases, procs, strict=True):
        stdout, stderr = p.communicate(timeout=180)
        r = subprocess.CompletedProcess(args, p.returncode, stdout, stderr)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert r.stderr.startswith("error: ") and len(r.stderr.strip().splitlines()) == 1, \
            r.stderr
        assert message in r.stderr, r.stderr
    assert _count(demo_target, "SELECT count(*) FROM scan_runs") == runs

    r = _cli(db_url, s, "scan", TECHNIC_DASK_WORKERS="abc")
    assert r.returncode == 2 and r.stderr.startswith(
        "error: invalid setting TECHNIC_DASK_WORKERS='abc': Input should be a valid integer"), \
        r.stderr
    assert "database" not in r.stderr
    r = _cli(db_url, "no_such_schema", "scan")
    assert r.returncode == 1 and "run `technic db init`" in r.stderr, r.stderr
    r = _cli(db_url, "no_such_schema", "preset", "list")
    assert r.returncode == 1 and "does not exist" in r.stderr
    with get_engine(demo_target).connect() as c:
        assert c.execute(sa.text("SELECT count(*) FROM pg_namespace WHERE nspname = "
                                 "'no_such_schema'")).scalar_one() == 0


def test_fundamental_and_option_columns_from_the_cli(db_url, demo_target):
    """`technic scan --where` on a fundamental factor and a score; `technic columns` lists
    the fundamental and option columns with units; an opt_* filter turns options on."""
    s = demo_target.schema
    where = "value_score > 70 and rsi_14 < 40"
    u = tc.scan(target=demo_target)
    exp = u[(u.value_score > 70) & (u.rsi_14 < 40)]
    r = _cli(db_url, s, "scan", "--where", where, "--format", "csv", "--top", "1000")
    assert r.returncode == 0, r.stderr
    got = pd.read_csv(io.StringIO(r.stdout))
    assert got.symbol.tolist() == exp.symbol.tolist() and len(got) >= 3
    assert {"value_score", "rsi_14"} <= set(got.columns)
    r = _cli(db_url, s, "columns", "--format", "json")
    cols = {c["column"]: c for c in json.loads(r.stdout)["results"]}
    assert cols["value_score"]["source"] == "fundamental"
    assert cols["value_score"]["unit"].startswith("0-100 points")
    assert cols["opt_iv_rv_20"]["scope"] == "options" and "ratio" in cols["opt_iv_rv_20"]["unit"]
    r = _cli(db_url, s, "columns", "--scope", "options", "--format", "csv")
    assert r.returncode == 0 and len(pd.read_csv(io.StringIO(r.stdout))) == 8
    r = _cli(db_url, s, "scan", "--where", "opt_iv_rv_20 > 1", "--format", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)  # other tests may have stored metrics for a symbol or two
    assert "with_options" in doc["counts"] and len(doc["results"]) <= 5
    assert _count(demo_target, f"SELECT count(*) FROM scan_runs WHERE run_id = {doc['run_id']} "
                               "AND (params->>'with_options')::boolean") == 1
