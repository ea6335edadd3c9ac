"""Point-in-time evaluation of TechRating on a small real history."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from technic.evaluation import evaluate_tech_rating, load_history, markdown_report
from technic.ingest import ingest_files
from technic.refresh import backfill_features
from technic.universe import UniverseRules

from .conftest import BUNDLED


@pytest.fixture(scope="module")
def history_target(db_url):
    from .conftest import make_target

    t = make_target(db_url, "eval")
    ingest_files(t, BUNDLED)
    backfill_features(t, dt.date(2025, 4, 1), dt.date(2025, 6, 30))
    return t


def test_forward_returns_and_rank_ic_by_hand(history_target):
    hist = load_history(history_target, dt.date(2025, 4, 1), dt.date(2025, 6, 30), (5,))
    bars = pd.read_parquet(BUNDLED / "bars_daily.parquet")
    a = bars[bars["symbol"] == "AAPL"].reset_index(drop=True)
    i = a.index[a["date"].astype(str) == "2025-04-01"][0]
    row = hist[(hist["symbol"] == "AAPL") & (hist["date"] == pd.Timestamp("2025-04-01"))]
    assert row["fwd_5"].iloc[0] == pytest.approx(a["close"][i + 5] / a["close"][i] - 1,
                                                 rel=1e-12)
    reps = evaluate_tech_rating(history_target, dt.date(2025, 4, 1), dt.date(2025, 6, 30),
                                horizons=(5,), rules=UniverseRules())
    r = reps[0]
    assert 50 < r.dates <= 62  # dates with a complete 5-bar forward window
    assert -1 <= r.mean_rank_ic <= 1 and len(r.decile_mean_return) == 10
    assert 0 <= r.top_decile_hit_rate <= 1 and 0 <= r.top50_turnover <= 1
    # the first date's IC equals a direct Spearman correlation
    from technic.scoring.techrating import tech_rating
    from technic.universe import apply_rules

    day = hist[hist["date"] == pd.Timestamp("2025-04-01")].reset_index(drop=True)
    keep, _ = apply_rules(day, UniverseRules())
    score = tech_rating(day, keep)["tech_rating"]
    ok = keep & day["fwd_5"].notna().to_numpy()
    rs = pd.Series(score[ok].to_numpy()).rank()
    rf = pd.Series(day.loc[ok, "fwd_5"].to_numpy()).rank()
    direct = np.corrcoef(rs, rf)[0, 1]  # Spearman = Pearson of ranks
    assert r.ic_series.iloc[0] == pytest.approx(direct, abs=1e-12)
    md = markdown_report(reps, dt.date(2025, 4, 1), dt.date(2025, 6, 30), "test")
    assert "mean RankIC" in md and np.isfinite(r.mean_rank_ic)


def test_no_history_is_a_clear_error(fresh_target):
    with pytest.raises(LookupError, match="backfill"):
        evaluate_tech_rating(fresh_target, dt.date(2025, 1, 1), dt.date(2025, 2, 1))
