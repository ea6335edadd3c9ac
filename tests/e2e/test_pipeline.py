"""Features → scan → results on the bundled real data, the Dask path, the CLI and the flow."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import requests
import sqlalchemy as sa

from technic.config import Settings
from technic.jobs.scan import NoFeaturesError, ScanParams, rank_frame, run_scan
from technic.store.db import get_engine
from technic.universe import UniverseRules
from tests.conftest import cli_env


def _q(target, sql, **p):
    with get_engine(target).connect() as c:
        return c.execute(sa.text(sql), p).all()


def test_features_written_for_latest_date(demo_target):
    rows = _q(demo_target, "SELECT date, count(*) FROM features_daily GROUP BY date")
    assert rows == [(dt.date(2025, 7, 9), 1000)]
    # RSI(14) is defined from the 15th bar on: NULL exactly for the recent listings
    (bad,) = _q(demo_target, "SELECT count(*) FROM features_daily "
                             "WHERE (rsi_14 IS NULL) <> (n_bars <= 14)")[0]
    assert bad == 0
    (short,) = _q(demo_target, "SELECT count(*) FROM features_daily WHERE n_bars <= 14")[0]
    assert 0 < short < 10  # a few 2025 IPOs (e.g. GTERU with a single bar)


def test_feature_values_match_a_direct_computation(demo_target):
    """Spot check a few stored features against plain pandas on the stored bars."""
    sym = "AAPL"
    bars = pd.DataFrame(_q(demo_target, "SELECT date, close, volume FROM bars_daily "
                                        "WHERE symbol = :s ORDER BY date", s=sym),
                        columns=["date", "close", "volume"])
    f = dict(zip(["sma_20", "ret_21d", "dollar_volume_20", "high_52w"], _q(
        demo_target, "SELECT sma_20, ret_21d, dollar_volume_20, high_52w FROM features_daily "
                     "WHERE symbol = :s", s=sym)[0], strict=True))
    c = bars["close"]
    assert f["sma_20"] == pytest.approx(c.tail(20).mean(), rel=1e-12)
    assert f["ret_21d"] == pytest.approx(c.iloc[-1] / c.iloc[-22] - 1, rel=1e-12)
    assert f["dollar_volume_20"] == pytest.approx((c * bars["volume"]).tail(20).mean(), rel=1e-12)


def test_dask_path_equals_single_process(demo_target):
    """Same features on Dask as in one process; the cluster's dashboard link answers 200."""
    from technic.compute import dashboard_link, dask_client
    from technic.jobs.refresh import refresh_features

    _, local = refresh_features(demo_target, chunk_size=300, write=False)
    with dask_client(Settings(dask_workers=2)) as client:
        _, dist = refresh_features(demo_target, chunk_size=300, client=client, write=False)
        dashboard = requests.get(dashboard_link(client) or "http://127.0.0.1:9", timeout=60)
    pd.testing.assert_frame_equal(local, dist, check_exact=True)  # chunking-independent
    assert dashboard.status_code == 200 and "Dask" in dashboard.text  # bokeh is installed


def test_scan_results_are_complete_and_ranked(demo_target):
    out = run_scan(demo_target, ScanParams(top=10))
    rows = _q(demo_target, "SELECT rank, symbol, ics FROM scan_results "
                           "WHERE run_id = :r ORDER BY rank", r=out.run_id)
    assert len(rows) == out.counts["passed"] > 100
    assert [r[0] for r in rows] == list(range(1, len(rows) + 1))
    ratings = [r[2] for r in rows]
    assert ratings == sorted(ratings, reverse=True)  # the default rank: ICS
    assert all(0 <= x <= 100 for x in ratings)
    (orphans,) = _q(demo_target, "SELECT count(*) FROM scan_results r LEFT JOIN symbols s "
                                 "USING (symbol) WHERE r.run_id = :r AND s.symbol IS NULL",
                    r=out.run_id)[0]
    assert orphans == 0
    run = _q(demo_target, "SELECT status, as_of, counts, timings FROM scan_runs "
                          "WHERE run_id = :r", r=out.run_id)[0]
    assert {"read_features", "filter_score_rank", "write_results", "total"} <= set(run[3])
    assert run[0] == "ok" and run[1] == dt.date(2025, 7, 9)
    c = run[2]
    assert c["input"] - sum(v for k, v in c.items() if k.startswith("dropped_")) == c["passed"]
    latest = _q(demo_target, "SELECT count(*) FROM latest_scan_results")[0][0]
    assert latest == len(rows)
    (with_alpha,) = _q(demo_target, "SELECT count(*) FROM scan_results WHERE run_id = :r "
                                    "AND alpha_5d IS NOT NULL AND alpha_10d IS NOT NULL",
                       r=out.run_id)[0]
    assert with_alpha == len(rows)  # the XGBoost models in models/ scored every row


def test_scan_without_models_still_works(demo_target, tmp_path, caplog):
    from technic.jobs.scan import add_alpha
    from technic.store.features import read_features

    feats = read_features(demo_target, dt.date(2025, 7, 9))
    ranked, _ = rank_frame(feats, UniverseRules())
    out = add_alpha(ranked, model_dir=tmp_path)  # empty folder: no models
    assert out["alpha_5d"].isna().all() and "unavailable" in caplog.text
    assert out["symbol"].tolist() == ranked["symbol"].tolist()


def test_filter_rules_drop_what_they_say(demo_target):
    from technic.store.features import read_features

    feats = read_features(demo_target, dt.date(2025, 7, 9))
    ranked, counts = rank_frame(feats, UniverseRules(min_price=50, sectors=("Technology",)))
    assert (ranked["close"] >= 50).all() and (ranked["sector"] == "Technology").all()
    assert (ranked["dollar_volume_20"] >= 500_000).all()
    assert counts["dropped_sector"] > 0 and counts["dropped_min_price"] > 0
    assert not ranked["symbol"].str.contains(r"\.WS$|\.U$").any()


def test_scan_without_features_fails_cleanly(fresh_target):
    with pytest.raises(NoFeaturesError):
        run_scan(fresh_target, ScanParams())
    (status, err) = _q(fresh_target, "SELECT status, error FROM scan_runs")[0]
    assert status == "failed" and "features refresh" in err
    assert _q(fresh_target, "SELECT count(*) FROM scan_results")[0][0] == 0


def test_bad_scan_parameters_are_rejected():
    with pytest.raises(ValueError, match="top"):
        ScanParams(top=0)
    with pytest.raises(ValueError, match="min_price"):
        UniverseRules(min_price=float("nan"))


def test_cli_scan_json(db_url, demo_target):
    r = subprocess.run([sys.executable, "-m", "technic.cli", "scan", "--json", "--top", "5",
                        "--sector", "Technology"], env=cli_env(db_url, demo_target.schema),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert set(doc) == {"run_id", "as_of", "counts", "timings_s", "results"}
    assert [x["rank"] for x in doc["results"]] == [1, 2, 3, 4, 5]
    assert doc["as_of"] == "2025-07-09" and doc["counts"]["dropped_sector"] > 0
    bad = subprocess.run([sys.executable, "-m", "technic.cli", "scan", "--as-of", "yesterday"],
                         env=cli_env(db_url, demo_target.schema), capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 2 and "ISO date" in bad.stderr


def test_flow_runs_in_process(prefect_on_demo):
    """The Prefect flow runs ingest → refresh → scan in-process (temporary local API)."""
    from flows.daily_pipeline import daily_pipeline

    t = prefect_on_demo
    before = _q(t, "SELECT count(*) FROM bars_daily")[0][0]
    result = daily_pipeline(top=5, use_dask=False)
    assert result["as_of"] == "2025-07-09" and len(result["results"]) == 5
    assert _q(t, "SELECT count(*) FROM bars_daily")[0][0] == before
    assert _q(t, "SELECT status FROM scan_runs WHERE run_id = :r",
              r=result["run_id"])[0][0] == "ok"
    runs = _q(t, "SELECT count(*) FROM scan_runs")[0][0]
    with pytest.raises(ValueError):
        daily_pipeline(top=0, use_dask=False)
    assert _q(t, "SELECT count(*) FROM scan_runs")[0][0] == runs


def test_demo_twice_keeps_bar_count(db_url):
    schema = "demo_cli"
    env = cli_env(db_url, schema)
    counts = []
    for _ in range(2):
        r = subprocess.run([sys.executable, "-m", "technic.cli", "demo", "--top", "5"], env=env,
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-3000:]
        assert "technic scan" in r.stdout and "scan_results WHERE run_id" in r.stdout
        with sa.create_engine(db_url).connect() as c:
            counts.append(c.execute(sa.text(f"SELECT count(*) FROM {schema}.bars_daily")).scalar())
    assert counts[0] == counts[1] == 492_743
    assert np.all(np.array(counts) > 0)
