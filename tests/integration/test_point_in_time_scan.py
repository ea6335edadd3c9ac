"""A scan of a past date: universe from the bars that existed then (today's ``active`` flag
ignored), alphas from a model trained on or before that date, stored in
``scan_results.alpha_model`` (migration 19, also shown by ``latest_scan_results``)."""

from __future__ import annotations

import datetime as dt
import json
import shutil

import pandas as pd
import sqlalchemy as sa

from technic.jobs.ingest import ingest_files
from technic.jobs.refresh import backfill_features
from technic.jobs.scan import ScanParams, add_alpha, run_scan
from technic.ml.inference import DEFAULT_MODEL_DIR
from technic.store.db import get_engine
from tests.conftest import BUNDLED

PAST = dt.date(2025, 3, 3)
LATEST = dt.date(2025, 7, 9)


def test_past_scan_model_and_membership_are_point_in_time(fresh_target, tmp_path,
                                                          monkeypatch):
    t = fresh_target
    ingest_files(t, BUNDLED)
    backfill_features(t, PAST, PAST)
    backfill_features(t, LATEST, LATEST)
    # a model folder: the final models plus one walk-forward set trained through 2024-12-31
    md = tmp_path / "models"
    (md / "walkforward").mkdir(parents=True)
    for h in (5, 10):
        shutil.copy(DEFAULT_MODEL_DIR / f"alpha_{h}d.json", md / f"alpha_{h}d.json")
        shutil.copy(DEFAULT_MODEL_DIR / f"alpha_{h}d.json",
                    md / "walkforward" / f"alpha_{h}d_2024-12-31.json")
    (md / "metrics.json").write_text(json.dumps({"data": {"end": str(LATEST)}}))
    (md / "walkforward" / "index.json").write_text(json.dumps({"models": [
        {"file": f"alpha_{h}d_2024-12-31.json", "horizon": h, "trained_through": "2024-12-31"}
        for h in (5, 10)]}))
    from technic.config import get_settings
    monkeypatch.setattr(get_settings(), "model_dir", md)
    # a symbol that traded on both dates but is delisted "today"
    with get_engine(t).begin() as c:
        gone = c.execute(sa.text(
            "SELECT f.symbol FROM features_daily f JOIN features_daily g USING (symbol) "
            "WHERE f.date = :p AND g.date = :l AND f.close > 20 "
            "AND f.dollar_volume_20 > 1e8 ORDER BY f.symbol LIMIT 1"),
            {"p": PAST, "l": LATEST}).scalar()
        c.execute(sa.text("UPDATE symbols SET active = false WHERE symbol = :s"), {"s": gone})
    past = run_scan(t, ScanParams(as_of=PAST))
    latest = run_scan(t, ScanParams(as_of=LATEST))
    assert gone in set(past.results["symbol"])  # it traded then
    assert gone not in set(latest.results["symbol"])  # today it is inactive
    with get_engine(t).connect() as c:
        rows = c.execute(sa.text(
            "SELECT run_id, alpha_model, count(*), count(alpha_5d) FROM scan_results "
            "GROUP BY run_id, alpha_model ORDER BY run_id")).all()
        view = c.execute(sa.text("SELECT DISTINCT alpha_model FROM latest_scan_results")).all()
    assert [(r[1], r[2] == r[3]) for r in rows] == [("walkforward/2024-12-31", True),
                                                    ("final", True)]
    assert view == [("final",)]
    # before every model's training end: no alpha at all (never a model that saw the date)
    early = add_alpha(past.results[["symbol", *past.results.columns[1:]]].head(5), md,
                      as_of=dt.date(2024, 6, 3))
    assert early["alpha_5d"].isna().all() and early["alpha_model"].isna().all()
    assert pd.isna(early["alpha_10d"]).all()
