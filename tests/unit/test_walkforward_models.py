"""A scan of a past date uses a model whose training ended on or before that date; universe
membership on a past date comes from the bars that existed, not today's ``active`` flag."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd

from technic.ml.walkforward import available_models, choose_model, half_year_cutoffs
from technic.universe import UniverseRules, apply_rules


def _model_dir(tmp_path: Path) -> Path:
    wf = tmp_path / "walkforward"
    wf.mkdir()
    models = []
    for d in ("2023-12-29", "2024-06-28", "2024-12-31"):
        for h in (5, 10):
            (wf / f"alpha_{h}d_{d}.json").write_text("{}")
            models.append({"file": f"alpha_{h}d_{d}.json", "horizon": h,
                           "trained_through": d})
    (wf / "alpha_5d_2025-06-30.json").write_text("{}")  # incomplete set: never chosen
    models.append({"file": "alpha_5d_2025-06-30.json", "horizon": 5,
                   "trained_through": "2025-06-30"})
    (wf / "index.json").write_text(json.dumps({"models": models}))
    for h in (5, 10):
        (tmp_path / f"alpha_{h}d.json").write_text("{}")
    (tmp_path / "metrics.json").write_text(json.dumps({"data": {"end": "2025-07-09"}}))
    return tmp_path


def test_past_scan_uses_a_model_trained_before_it(tmp_path):
    md = _model_dir(tmp_path)
    assert [m.name for m in available_models(md)] == [
        "walkforward/2023-12-29", "walkforward/2024-06-28", "walkforward/2024-12-31", "final"]
    for day in pd.bdate_range("2023-06-01", "2025-08-01"):
        m = choose_model(day.date(), md)
        if day.date() < dt.date(2023, 12, 29):
            assert m is None  # every model saw later labels: no alpha rather than a leak
            continue
        assert m is not None and m.trained_through <= day.date()
        later = [x for x in available_models(md) if m.trained_through < x.trained_through
                 <= day.date()]
        assert not later  # the newest one allowed
    assert choose_model(dt.date(2025, 3, 3), md).name == "walkforward/2024-12-31"
    assert choose_model(dt.date(2025, 7, 9), md).name == "final"
    assert choose_model(dt.date(2025, 3, 3), md).files[10].name == "alpha_10d_2024-12-31.json"


def test_repository_models_never_leak_into_a_past_scan():
    """The shipped registry: every walk-forward model's training ended before its use."""
    md = Path(__file__).resolve().parents[2] / "models"
    for day in pd.bdate_range("2015-01-02", "2025-07-09", freq="21B"):
        m = choose_model(day.date(), md)
        if m is not None:
            assert m.trained_through <= day.date()
            if day.date() < dt.date(2025, 7, 9):
                assert m.name != "final"  # the final models saw labels up to 2025-07-09


def test_half_year_cutoffs():
    cal = pd.bdate_range("2022-07-11", "2025-07-09")
    assert half_year_cutoffs(cal, cal[cal >= "2023-07-12"]) == [
        dt.date(2023, 12, 29), dt.date(2024, 6, 28), dt.date(2024, 12, 31),
        dt.date(2025, 6, 30)]  # the data's last date (2025-07-09) is never a cut-off


def test_universe_membership_is_point_in_time():
    day = pd.DataFrame({"symbol": ["AAA", "GONE", "BBB"], "close": [10.0, 12.0, 20.0],
                        "dollar_volume_20": [1e7, 1e7, 1e7], "sector": ["x"] * 3,
                        "security_type": [None] * 3, "is_etf": [False] * 3,
                        "active": [True, False, None], "name": ["a", "g", "b"]})
    today, _ = apply_rules(day, UniverseRules())
    past, counts = apply_rules(day, UniverseRules(), point_in_time=True)
    assert today.tolist() == [True, False, True]  # today: the delisted name is out
    assert past.tolist() == [True, True, True]  # on a date it traded, it is in
    assert counts["passed"] == 3
    # rows exist only for symbols with a bar on the date: a symbol without one is absent
    # from the frame and so from the universe (technic.features.compute_features)
    assert np.all(past[day["close"].notna().to_numpy()])
