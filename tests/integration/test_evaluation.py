"""Point-in-time evaluation of TechRating on a small real history."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from technic.jobs.evaluate import evaluate_tech_rating, load_history, markdown_report
from technic.jobs.ingest import ingest_files
from technic.jobs.refresh import backfill_features
from technic.universe import UniverseRules, apply_rules
from tests.conftest import BUNDLED


@pytest.fixture(scope="module")
def history_target(db_url):
    from tests.conftest import make_target

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


# ------------------------------------------- every score, out-of-sample alphas, leakage, plots
OOS_START = dt.date(2025, 5, 15)


def _oos_file(target, path, leak: bool = False):
    """A stand-in ``oos_alpha.parquet`` for dates from OOS_START: alpha_5d = ret_21d (a real
    feature of the date), alpha_10d = the date's own 10-bar forward return when ``leak`` (a
    deliberately leaking score), else −ret_21d."""
    hist = load_history(target, OOS_START, dt.date(2025, 6, 30), (10,))
    df = pd.DataFrame({"date": pd.to_datetime(hist["date"]), "symbol": hist["symbol"],
                       "fold_5": 0, "alpha_5d": hist["ret_21d"].astype("float32"),
                       "fold_10": 0,
                       "alpha_10d": (hist["fwd_10"] if leak else -hist["ret_21d"]
                                     ).astype("float32")})
    df.to_parquet(path)
    return path


def test_every_score_on_the_same_out_of_sample_dates(history_target, tmp_path):
    from technic.jobs.evaluate import evaluate, evaluation_report, ic_table, write_plots

    ev = evaluate(history_target, dt.date(2025, 4, 1), dt.date(2025, 6, 30),
                  oos_path=_oos_file(history_target, tmp_path / "oos.parquet"))
    assert set(ev.full) == {"tech_rating", "ics", "merit"}
    # the protocol: the store's locked test is its last 12 months; these dates all lie in it
    assert ev.split.test_end == dt.date(2025, 7, 9) and ev.split.test_start.year == 2024
    assert set(ev.protocol["period"]) == {"test"}
    assert {"nw_t", "ci_lo", "top_median_net", "designed_on"} <= set(ev.protocol.columns)
    assert "Design period vs locked test period" in evaluation_report(ev, "bundled")
    assert set(ev.oos) == {"tech_rating", "ics", "merit", "alpha_5d", "alpha_10d"}
    assert ev.oos_span[0] == OOS_START
    for reps in ev.oos.values():  # the same dates for every score
        for r in reps:
            assert r.ic_series.index.min() >= pd.Timestamp(OOS_START)
            assert len(r.ic_series) == len(ev.oos["tech_rating"][reps.index(r)].ic_series)
    # the alpha IC of a date is the Spearman correlation of the file's alpha and fwd_5
    hist = load_history(history_target, OOS_START, OOS_START, (5,))
    keep, _ = apply_rules(hist, UniverseRules())
    day = hist[keep & hist["fwd_5"].notna().to_numpy()]
    direct = np.corrcoef(day["ret_21d"].rank(), day["fwd_5"].rank())[0, 1]
    assert ev.oos["alpha_5d"][0].ic_series.iloc[0] == pytest.approx(direct, abs=1e-6)
    # TechRating over the full period is what evaluate_tech_rating reports
    alone = evaluate_tech_rating(history_target, dt.date(2025, 4, 1), dt.date(2025, 6, 30))
    assert ev.full["tech_rating"][0].mean_rank_ic == pytest.approx(alone[0].mean_rank_ic)
    assert sum(ev.regimes.values()) == ev.full["tech_rating"][0].dates  # bars run to July
    plots = write_plots(ev, tmp_path / "eval")
    assert [p.name for p in plots] == ["eval.deciles_5.png", "eval.deciles_10.png",
                                       "eval.cum_ic.png"]
    for p in plots:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 10_000
    md = evaluation_report(ev, "test", [str(p) for p in plots])
    assert "Out of sample" in md and "MERIT" in md and "eval.cum_ic.png" in md
    assert "merit_ic_5" in ic_table(ev).column_names


def test_shuffled_forward_returns_destroy_the_ic(history_target, tmp_path):
    from technic.jobs.evaluate import evaluate

    oos = _oos_file(history_target, tmp_path / "leak.parquet", leak=True)
    real = evaluate(history_target, dt.date(2025, 4, 1), dt.date(2025, 6, 30), oos_path=oos)
    assert real.oos["alpha_10d"][1].mean_rank_ic == pytest.approx(1.0)  # the leak is seen
    shuf = evaluate(history_target, dt.date(2025, 4, 1), dt.date(2025, 6, 30), oos_path=oos,
                    shuffle_seed=7)
    for period in (shuf.full, shuf.oos):
        for reps in period.values():
            for r in reps:
                assert abs(r.mean_rank_ic) < 0.02, (r.score, r.horizon, r.mean_rank_ic)
                assert abs(r.t_stat_nonoverlap) < 3, (r.score, r.horizon)


def test_walkforward_alphas_come_from_models_trained_before_each_date(history_target):
    """Without an oos file, every date is scored by the latest repository model trained on or
    before it (models/walkforward), never by the final models (trained through 2025-07-09)."""
    from technic.jobs.evaluate import walkforward_alphas

    hist = load_history(history_target, dt.date(2025, 6, 20), dt.date(2025, 6, 30), (5,),
                        model_inputs=True)
    out = walkforward_alphas(hist)
    per_date = out.groupby("date")["alpha_model"].unique()
    for day, names in per_date.items():
        assert len(names) == 1 and names[0].startswith("walkforward/")
        assert dt.date.fromisoformat(names[0].split("/")[1]) <= day.date()
    assert per_date.iloc[-1][0] == "walkforward/2025-06-30"  # on its own cut-off date
    assert out["alpha_5d"].notna().mean() > 0.9


def test_replayed_ics_equals_the_scan_of_that_date(history_target):
    """evaluate's replay sizes ICS with the fundamentals public on the date, as a scan does."""
    from technic.jobs.evaluate import _score_dates, fundamental_events
    from technic.jobs.scan import ScanParams, run_scan
    from technic.store.market import market_caps

    day = dt.date(2025, 5, 1)
    events = fundamental_events(history_target)
    assert events is not None  # the bundled data hold fundamentals
    hist = load_history(history_target, day, day, (5,))
    hist["date"] = pd.to_datetime(hist["date"])
    replay = _score_dates(hist, UniverseRules(), market_caps(history_target), None, events)
    scan = run_scan(history_target, ScanParams(as_of=day), save=False).results
    assert scan["market_cap_source"].eq("fundamentals").sum() > 100
    both = replay.set_index("symbol")[["ics", "ics_size"]].join(
        scan.set_index("symbol")[["ics", "ics_size"]], rsuffix="_scan", how="inner")
    assert len(both) == len(scan) == len(replay)
    np.testing.assert_allclose(both["ics"], both["ics_scan"], rtol=1e-12)
    np.testing.assert_allclose(both["ics_size"], both["ics_size_scan"], rtol=1e-12,
                               equal_nan=True)
