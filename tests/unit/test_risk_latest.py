"""The scan's risk helpers of technic/scoring/risk.py: own-bar returns and the last date's
beta and residual volatility (NaN with too little history)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from technic.scoring.risk import latest_beta_residual_vol, own_bar_returns


def test_own_bar_returns_skip_gaps_like_pandas() -> None:
    rng = np.random.default_rng(1)
    c = rng.uniform(5, 50, (40, 6))
    c[rng.random(c.shape) < 0.25] = np.nan
    d = pd.DataFrame(c)
    ref = (d / d.ffill().shift(1) - 1).where(d.notna()).to_numpy()
    np.testing.assert_array_equal(own_bar_returns(c), ref)


def test_latest_beta_and_residual_vol_by_hand_and_short_history() -> None:
    rng = np.random.default_rng(2)
    t = 61
    m = rng.normal(0, 0.01, t)
    r = 1.5 * m[:, None] + rng.normal(0, 0.02, (t, 3))
    close = 20 * np.cumprod(1 + r, axis=0)
    close[:t - 30, 2] = np.nan  # a listing with 29 returns: below min_obs
    beta, resid = latest_beta_residual_vol(close, m, 60, 40)
    ret = own_bar_returns(close)[1:, 0]
    mm = m[1:]
    b = np.mean((ret - ret.mean()) * (mm - mm.mean())) / mm.var()
    assert np.isclose(beta[0], b, rtol=1e-10)
    assert np.isclose(resid[0], np.sqrt((ret.var() - b * b * mm.var()) * 252), rtol=1e-10)
    assert np.isnan(beta[2]) and np.isnan(resid[2])
    # fewer dates than the window: every estimate NaN, no error
    b2, r2 = latest_beta_residual_vol(close[-20:], m[-20:], 60, 40)
    assert np.isnan(b2).all() and np.isnan(r2).all()


def test_migration_27_adds_the_risk_columns_at_the_end_and_recreates_the_views() -> None:
    from technic.store.migrations import MIGRATIONS, RISK_RESULT_COLUMNS
    from technic.store.results import RESULT_COLUMNS

    # the ADBC append maps columns by position: the new ones come last, in ALTER order
    assert RESULT_COLUMNS[-len(RISK_RESULT_COLUMNS):] == RISK_RESULT_COLUMNS
    m27 = next(m for m in MIGRATIONS if m.version == 27)
    for timescale in (False, True):
        sql = m27.render("technic", timescale)  # type: ignore[operator]
        adds = [s for s in sql if "ADD COLUMN" in s]
        assert adds == [f'ALTER TABLE "technic".scan_results ADD COLUMN IF NOT EXISTS {c} '
                        "double precision" for c in RISK_RESULT_COLUMNS]
        assert sql[-1].startswith('CREATE VIEW "technic".latest_scan_results_by_preset')
