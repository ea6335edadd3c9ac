"""Option metrics per (session, underlying) from end-of-day chains: vectorized NumPy over
every chain at once (no per-chain Python loop), no database.

Definitions (docs/options.md has the worked example). ``S`` is the chain's underlying price,
``t`` = calendar days to expiration / 365; expirations on the session itself (0 DTE) are left
out of every IV metric and of "next expiration".

* **ATM IV of an expiration**: for calls and for puts separately, IV linearly interpolated
  in strike between the two listed strikes around ``S`` (the last strike ≤ S and the next
  one) among contracts with an IV; the mean of the call and put values (one side if only one
  exists).
* **atm_iv_30d / atm_iv_90d**: ATM IV at 30 (90) days, interpolated linearly in total
  variance ``w = σ²t`` between the two expirations around the horizon, ``σ = sqrt(w/T)``;
  beyond the listed expirations the nearest one's IV is used (flat, noted in ``reasons``).
* **term_slope** = atm_iv_90d − atm_iv_30d (vol points over 60 days; > 0 = contango).
* **skew_25d** = IV(put, Δ = −0.25) − IV(call, Δ = +0.25) on the expiration nearest 30 days;
  each IV interpolated linearly in delta between the last strike whose delta ≥ the target and
  the next strike (deltas fall with strike for calls and puts alike).
* **put_call_volume**, **put_call_oi**: Σ put / Σ call volume (open interest) of the chain.
* **volume_oi** = Σ volume / Σ open interest; **n_unusual**: contracts with volume ≥
  :data:`UNUSUAL_MIN_VOLUME` and volume > open interest.
* **expected_move** to ``next_expiration`` (first one after the session): the ATM straddle
  (call + put last price at the listed strike nearest S) when both legs traded in the
  session (``expected_move_method = 'straddle'``), else ``S · ATM IV · sqrt(t)`` of that
  expiration (``'iv'``: a one-standard-deviation move; a straddle prices ≈ 0.8 of it);
  **expected_move_pct** = expected_move / S.
* **realized_vol_20**: standard deviation (ddof 1) of the 20 daily log returns of
  ``bars_daily`` closes ending on the session, × sqrt(252); **iv_rv_20** = atm_iv_30d /
  realized_vol_20.
* **iv_rank_252** = (IV − min) / (max − min) and **iv_percentile_252** = share of earlier
  sessions with a lower IV, over the last 252 sessions of atm_iv_30d (this one included);
  NULL until :data:`IV_RANK_MIN_SESSIONS` sessions of history exist.

**Stale-price rule.** ``last_price`` is the last trade, possibly from an earlier session at
another underlying price. Price-based metrics use a contract's price only when it traded in
the session (``volume > 0``): the straddle, and IV recomputed from price. IV-based metrics use
the source's IV.

**Recomputed IV and delta.** Where the source has no IV, it is recomputed from the last price
with :mod:`technic.options.bs` (vollib, rate 4 %, no dividends) for contracts that traded in
the session, expire after it, and have source |delta| in [0.05, 0.95] (the only ones the
metrics read; deep in/out-of-the-money quotes are left alone); a missing delta is recomputed
from the IV. ``n_iv_recomputed`` counts them.

Every NULL metric has its reason in ``reasons`` (a dict per row).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from technic.options.bs import DIVIDEND_YIELD, RISK_FREE_RATE, deltas, implied_vols

#: Minimum session volume of an "unusual" contract (besides volume > open interest).
UNUSUAL_MIN_VOLUME = 100
#: Sessions of atm_iv_30d history the IV rank and percentile look back over.
IV_RANK_LOOKBACK = 252
#: Sessions with an atm_iv_30d needed before IV rank/percentile are given (a 1-year rank).
IV_RANK_MIN_SESSIONS = 252
#: Daily returns of the realized volatility.
RV_WINDOW = 20
#: Source |delta| band where a missing IV is recomputed from price.
RECOMPUTE_DELTA_BAND = (0.05, 0.95)

METRIC_COLUMNS = ("n_contracts", "underlying_price", "atm_iv_30d", "atm_iv_90d", "term_slope",
                  "skew_25d", "put_call_volume", "put_call_oi", "volume_oi", "n_unusual",
                  "next_expiration", "expected_move", "expected_move_pct",
                  "expected_move_method", "realized_vol_20", "iv_rv_20", "iv_rank_252",
                  "iv_percentile_252", "n_iv_recomputed")


def _col(t: pa.Table, name: str) -> np.ndarray:
    c = t[name].combine_chunks()
    if pa.types.is_date(c.type):
        return c.cast(pa.int32()).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    return c.cast(pa.float64()).to_numpy(zero_copy_only=False)


def _is_put(t: pa.Table) -> np.ndarray:
    """``option_type == 'P'`` per row (an Arrow kernel: no Python strings)."""
    return pc.equal(t["option_type"], "P").combine_chunks().fill_null(False) \
        .to_numpy(zero_copy_only=False)


def _starts(ids: np.ndarray) -> np.ndarray:
    """Start index of each run of equal consecutive ``ids`` (``ids`` non-empty)."""
    return np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])


def _seg_sum(x: np.ndarray, starts: np.ndarray) -> np.ndarray:
    return np.add.reduceat(x, starts) if len(starts) else np.zeros(0, dtype=x.dtype)


def _bracket(x: np.ndarray, target: np.ndarray, seg: np.ndarray, n_seg: int,
             monotone: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Per segment (``seg`` = segment id per row, rows grouped by segment in ascending id
    order), the index of the last row with ``x <= target`` and of the row after it (the
    first row of the segment when none is ≤ target); -1 where there is none.

    ``monotone``: ``x`` ascending within each segment (the rows ≤ target are a prefix: a
    count finds the last one); otherwise the highest such index is searched."""
    lo = np.full(n_seg, -1, dtype=np.int64)
    hi = np.full(n_seg, -1, dtype=np.int64)
    if len(x) == 0:
        return lo, hi
    below = x <= target
    size = np.bincount(seg, minlength=n_seg)
    first = np.r_[0, np.cumsum(size)[:-1]]
    if monotone:
        cnt = np.bincount(seg, weights=below, minlength=n_seg).astype(np.int64)
        lo = np.where(cnt > 0, first + cnt - 1, -1)
    else:
        idx = np.flatnonzero(below)
        np.maximum.at(lo, seg[idx], idx)
    nxt = np.where(lo >= 0, lo + 1, first)
    ok = (size > 0) & (nxt <= first + size - 1)
    hi[ok] = nxt[ok]
    return lo, hi


def _interp(x: np.ndarray, y: np.ndarray, lo: np.ndarray, hi: np.ndarray,
            target: np.ndarray) -> np.ndarray:
    """Linear interpolation of ``y`` in ``x`` at ``target`` between rows ``lo`` and ``hi``
    (NaN where either is -1, except an exact hit on ``x[lo]``)."""
    out = np.full(len(lo), np.nan)
    both = (lo >= 0) & (hi >= 0)
    a, b = lo[both], hi[both]
    w = (target[both] - x[a]) / (x[b] - x[a])
    out[both] = y[a] + w * (y[b] - y[a])
    exact = (lo >= 0) & ~both
    exact_hit = exact & (x[np.maximum(lo, 0)] == target)
    out[exact_hit] = y[lo[exact_hit]]
    return out


def _grouped_table(chains: pa.Table | pd.DataFrame) -> tuple[pa.Table, dict | None]:
    """``chains`` with each (date, underlying) chain contiguous and, inside it, rows ordered
    by expiration, type, strike — as stored, or as the real file (sorted by underlying
    first). Only an input not already so is sorted (a sort of millions of rows costs
    seconds). Also returns the key columns as NumPy when they were read for the check
    (None after a sort)."""
    t = chains if isinstance(chains, pa.Table) else pa.Table.from_pandas(
        chains, preserve_index=False)
    if t.num_rows < 2:
        return t, None
    day = _col(t, "date")
    und = t["underlying"].combine_chunks().dictionary_encode()
    u = und.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    gkey = day * 1_000_003 + u
    same = gkey[1:] == gkey[:-1]
    run_keys = gkey[np.r_[True, ~same]]
    if len(np.unique(run_keys)) == len(run_keys):  # no chain split into two runs
        e = _col(t, "expiration")
        p = _is_put(t)
        k = _col(t, "strike")
        inner = (e[1:] > e[:-1]) | ((e[1:] == e[:-1]) & (
            (p[1:] > p[:-1]) | ((p[1:] == p[:-1]) & (k[1:] > k[:-1]))))
        if bool(np.all(inner | ~same)):
            return t, {"day": day, "und": und, "exp": e, "is_put": p, "strike": k}
    keys = [("date", "ascending"), ("underlying", "ascending"), ("expiration", "ascending"),
            ("option_type", "ascending"), ("strike", "ascending")]
    return t.sort_by(keys), None


def option_metrics(chains: pa.Table | pd.DataFrame, closes: pd.DataFrame | None = None,
                   iv_history: pd.DataFrame | None = None, *,
                   r: float = RISK_FREE_RATE, q: float = DIVIDEND_YIELD,
                   min_rank_sessions: int = IV_RANK_MIN_SESSIONS,
                   assume_sorted: bool = False) -> pd.DataFrame:
    """Option metrics of every (session, underlying) chain in ``chains``.

    Args:
        chains: contracts with ``date``, ``underlying``, ``expiration`` (dates),
            ``option_type`` (``C``/``P``), ``strike``, ``last_price``, ``volume``,
            ``open_interest``, ``implied_vol`` (decimal), ``delta``, ``underlying_price``
            (nulls allowed in the last six), as stored in ``option_chains``.
        closes: daily closes ``symbol``, ``date``, ``close`` (``bars_daily``) for
            realized volatility; None = no bars (realized_vol_20 NULL).
        iv_history: earlier ``date``, ``underlying``, ``atm_iv_30d`` (``option_metrics``)
            for IV rank; sessions of ``chains`` itself count too.
        r, q: rate and dividend yield of recomputed IVs and deltas.
        min_rank_sessions: sessions of atm_iv_30d needed for a rank (see module doc).
        assume_sorted: each (date, underlying) chain is contiguous and ordered by
            expiration, type, strike (skips the check; unordered input is sorted).

    Returns:
        One row per (date, underlying): ``date`` (datetime.date), ``underlying``, the
        columns of :data:`METRIC_COLUMNS` (NaN/None where undefined) and ``reasons`` (dict:
        metric → why it is NULL or approximate). Sorted by date, underlying.
    """
    if assume_sorted and isinstance(chains, pa.Table):
        t, cols = chains, None
    else:
        t, cols = _grouped_table(chains)
    n = t.num_rows
    if n == 0:
        return pd.DataFrame(columns=["date", "underlying", *METRIC_COLUMNS, "reasons"])
    if cols is None:
        cols = {"day": _col(t, "date"),
                "und": t["underlying"].combine_chunks().dictionary_encode(),
                "exp": _col(t, "expiration"), "is_put": _is_put(t), "strike": _col(t, "strike")}
    day, und, exp, is_put, k = (cols[c] for c in ("day", "und", "exp", "is_put", "strike"))
    ucode = und.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    last = _col(t, "last_price")
    vol = np.nan_to_num(_col(t, "volume"))
    oi = np.nan_to_num(_col(t, "open_interest"))
    iv = _col(t, "implied_vol").copy()
    delta = _col(t, "delta").copy()
    s_row = _col(t, "underlying_price")

    gkey = day * 1_000_003 + ucode
    g_starts = _starts(gkey)
    n_g = len(g_starts)
    g = np.repeat(np.arange(n_g), np.diff(np.r_[g_starts, n]))
    spot = np.fmax.reduceat(s_row, g_starts)
    s = spot[g]
    dte = exp - day
    tt = dte / 365.0
    live = dte >= 1
    fresh = (vol > 0) & np.isfinite(last)

    # recompute missing IVs (and deltas) from prices of the session itself
    lo_d, hi_d = RECOMPUTE_DELTA_BAND
    need = (np.isnan(iv) & fresh & live & np.isfinite(s)
            & (np.abs(delta) >= lo_d) & (np.abs(delta) <= hi_d))
    idx = np.flatnonzero(need)
    if len(idx):
        iv[idx] = implied_vols(last[idx], s[idx], k[idx], tt[idx], is_put[idx], r, q)
    recomputed = need & np.isfinite(iv)
    nd = np.flatnonzero(np.isnan(delta) & np.isfinite(iv) & live)
    if len(nd):
        delta[nd] = deltas(s[nd], k[nd], tt[nd], iv[nd], is_put[nd], r, q)

    # slices: one (date, underlying, expiration, type) each
    skey_change = np.r_[True, (gkey[1:] != gkey[:-1]) | (exp[1:] != exp[:-1])
                        | (is_put[1:] != is_put[:-1])]
    sl = np.cumsum(skey_change) - 1
    n_sl = int(sl[-1]) + 1
    sl_first = np.flatnonzero(skey_change)
    sl_g, sl_dte, sl_put = g[sl_first], dte[sl_first], is_put[sl_first]
    sl_s = spot[sl_g]

    # ATM IV per slice: interpolated in strike at S among rows with an IV
    v = np.flatnonzero(np.isfinite(iv) & live & np.isfinite(s))
    lo, hi = _bracket(k[v], s[v], sl[v], n_sl) if len(v) else (
        np.full(n_sl, -1), np.full(n_sl, -1))
    sl_atm = _interp(k[v], iv[v], lo, hi, sl_s) if len(v) else np.full(n_sl, np.nan)

    # expirations: (date, underlying, expiration), call and put slices merged
    ekey_change = np.r_[True, (sl_g[1:] != sl_g[:-1]) | (sl_dte[1:] != sl_dte[:-1])]
    ex = np.cumsum(ekey_change) - 1
    n_ex = int(ex[-1]) + 1
    with np.errstate(invalid="ignore"):
        cnt = np.bincount(ex, weights=np.isfinite(sl_atm), minlength=n_ex)
        tot = np.bincount(ex, weights=np.nan_to_num(sl_atm), minlength=n_ex)
        ex_atm = np.where(cnt > 0, tot / np.maximum(cnt, 1), np.nan)
    ex_first = np.flatnonzero(ekey_change)
    ex_g, ex_dte = sl_g[ex_first], sl_dte[ex_first]
    ex_t = ex_dte / 365.0

    reasons: list[dict[str, str]] = [{} for _ in range(n_g)]

    def note(mask: np.ndarray, metric: str, why: str) -> None:
        for i in np.flatnonzero(mask):
            reasons[i].setdefault(metric, why)

    no_spot = ~np.isfinite(spot)

    def at_horizon(days: int) -> np.ndarray:
        T = days / 365.0
        ok = np.flatnonzero(np.isfinite(ex_atm) & (ex_dte >= 1))
        out = np.full(n_g, np.nan)
        if not len(ok):
            note(np.ones(n_g, bool), f"atm_iv_{days}d", "no expiration with an ATM IV")
            return out
        eg, et, ew = ex_g[ok], ex_t[ok], ex_atm[ok] ** 2 * ex_t[ok]
        seg_lo, seg_hi = _bracket(et, np.full(len(ok), T), eg, n_g)
        has = np.bincount(eg, minlength=n_g) > 0
        both = (seg_lo >= 0) & (seg_hi >= 0)
        a, b = seg_lo[both], seg_hi[both]
        w = ew[a] + (ew[b] - ew[a]) * (T - et[a]) / (et[b] - et[a])
        out[both] = np.sqrt(np.maximum(w, 0) / T)
        only_lo = (seg_lo >= 0) & ~both
        out[only_lo] = np.sqrt(ew[seg_lo[only_lo]] / et[seg_lo[only_lo]])
        exact = only_lo & (et[np.maximum(seg_lo, 0)] == T)
        note(only_lo & ~exact, f"atm_iv_{days}d",
             f"flat extrapolation: no expiration beyond {days} days")
        only_hi = (seg_hi >= 0) & (seg_lo < 0)
        out[only_hi] = np.sqrt(ew[seg_hi[only_hi]] / et[seg_hi[only_hi]])
        note(only_hi, f"atm_iv_{days}d",
             f"flat extrapolation: no expiration within {days} days")
        note(~has & no_spot, f"atm_iv_{days}d", "no underlying price in the chain")
        note(~has & ~no_spot, f"atm_iv_{days}d", "no expiration with an ATM IV")
        return out

    iv30 = at_horizon(30)
    iv90 = at_horizon(90)

    # 25-delta skew on the expiration nearest 30 days (with an ATM IV)
    cand = np.flatnonzero(np.isfinite(ex_atm) & (ex_dte >= 1))
    best_ex = np.full(n_g, -1, dtype=np.int64)
    if len(cand):
        dist = np.abs(ex_dte[cand] - 30) * 10_000 + ex_dte[cand]  # ties: the earlier one
        order = np.lexsort((dist, ex_g[cand]))
        firsts = _starts(ex_g[cand][order])
        best_ex[ex_g[cand][order][firsts]] = cand[order][firsts]
    call_sl = np.full(n_ex, -1, dtype=np.int64)
    put_sl = np.full(n_ex, -1, dtype=np.int64)
    call_sl[ex[~sl_put]] = np.flatnonzero(~sl_put)
    put_sl[ex[sl_put]] = np.flatnonzero(sl_put)
    # 25-delta IVs on the chosen expirations' slices only
    chosen = np.zeros(n_sl, dtype=bool)
    for arr in (call_sl, put_sl):
        sel = arr[best_ex[best_ex >= 0]]
        chosen[sel[sel >= 0]] = True
    dv = np.flatnonzero(np.isfinite(iv) & np.isfinite(delta) & live & chosen[sl])
    sl_skew = np.full(n_sl, np.nan)
    if len(dv):
        target = np.where(is_put[dv], -0.25, 0.25)
        # "last row with delta >= target" = bracket of -delta <= -target
        blo, bhi = _bracket(-delta[dv], -target, sl[dv], n_sl, monotone=False)
        tgt_sl = np.where(sl_put, 0.25, -0.25)
        sl_skew = _interp(-delta[dv], iv[dv], blo, bhi, tgt_sl)
    skew = np.full(n_g, np.nan)
    gb = np.flatnonzero(best_ex >= 0)
    cs, ps = call_sl[best_ex[gb]], put_sl[best_ex[gb]]
    okb = (cs >= 0) & (ps >= 0)
    skew[gb[okb]] = sl_skew[ps[okb]] - sl_skew[cs[okb]]
    note(np.isnan(skew) & (best_ex < 0), "skew_25d", "no expiration with an ATM IV")
    note(np.isnan(skew) & (best_ex >= 0), "skew_25d",
         "no contracts around the 25-delta strikes")

    # volumes and open interest
    gv_put = np.bincount(g, weights=vol * is_put, minlength=n_g)
    gv_call = np.bincount(g, weights=vol * ~is_put, minlength=n_g)
    go_put = np.bincount(g, weights=oi * is_put, minlength=n_g)
    go_call = np.bincount(g, weights=oi * ~is_put, minlength=n_g)
    with np.errstate(invalid="ignore", divide="ignore"):
        pcv = np.where(gv_call > 0, gv_put / gv_call, np.nan)
        pco = np.where(go_call > 0, go_put / go_call, np.nan)
        voi = np.where(go_put + go_call > 0, (gv_put + gv_call) / (go_put + go_call), np.nan)
    note(gv_call == 0, "put_call_volume", "no call volume")
    note(go_call == 0, "put_call_oi", "no call open interest")
    note(go_put + go_call == 0, "volume_oi", "no open interest")
    unusual = np.bincount(g, weights=(vol >= UNUSUAL_MIN_VOLUME) & (vol > oi), minlength=n_g)

    # expected move to the next expiration
    nxt = np.full(n_g, -1, dtype=np.int64)
    live_ex = np.flatnonzero(ex_dte >= 1)
    if len(live_ex):
        f = _starts(ex_g[live_ex])
        nxt[ex_g[live_ex][f]] = live_ex[f]
    # nearest strike to S per slice, among all listed strikes
    nx_sl = np.zeros(n_sl, dtype=bool)
    for arr in (call_sl, put_sl):
        sel = arr[nxt[nxt >= 0]]
        nx_sl[sel[sel >= 0]] = True
    rows_nx = np.flatnonzero(nx_sl[sl])
    alo_r, ahi_r = _bracket(k[rows_nx], s[rows_nx], sl[rows_nx], n_sl)
    alo = np.where(alo_r >= 0, rows_nx[np.maximum(alo_r, 0)], -1)
    ahi = np.where(ahi_r >= 0, rows_nx[np.maximum(ahi_r, 0)], -1)
    ks = np.where(alo >= 0, k[np.maximum(alo, 0)], np.inf)
    kh = np.where(ahi >= 0, k[np.maximum(ahi, 0)], np.inf)
    pick = np.where(np.abs(kh - sl_s) < np.abs(ks - sl_s), ahi, alo)
    move = np.full(n_g, np.nan)
    method = np.full(n_g, None, dtype=object)
    next_exp = np.full(n_g, None, dtype=object)
    gn = np.flatnonzero(nxt >= 0)
    ce, pe = call_sl[nxt[gn]], put_sl[nxt[gn]]
    okc = (ce >= 0) & (pe >= 0)
    cr = np.where(okc, pick[np.maximum(ce, 0)], -1)
    pr = np.where(okc, pick[np.maximum(pe, 0)], -1)
    straddle = okc & (cr >= 0) & (pr >= 0)
    straddle[straddle] &= (k[cr[straddle]] == k[pr[straddle]]) & fresh[cr[straddle]] \
        & fresh[pr[straddle]]
    move[gn[straddle]] = last[cr[straddle]] + last[pr[straddle]]
    method[gn[straddle]] = "straddle"
    nx_atm = ex_atm[nxt[gn]]
    use_iv = ~straddle & np.isfinite(nx_atm) & np.isfinite(spot[gn])
    move[gn[use_iv]] = spot[gn[use_iv]] * nx_atm[use_iv] * np.sqrt(ex_t[nxt[gn[use_iv]]])
    method[gn[use_iv]] = "iv"
    g_day = day[g_starts]
    nx_days = (g_day[gn] + ex_dte[nxt[gn]]).astype("datetime64[D]")
    next_exp[gn] = [x.item() for x in nx_days]
    note(nxt < 0, "expected_move", "no expiration after the session")
    note((nxt >= 0) & np.isnan(move), "expected_move",
         "straddle legs did not both trade in the session and no ATM IV")
    with np.errstate(invalid="ignore", divide="ignore"):
        move_pct = move / spot

    out = pd.DataFrame({
        "date": g_day.astype("datetime64[D]"),
        "underlying": und.dictionary.to_numpy(zero_copy_only=False)[ucode[g_starts]],
        "n_contracts": np.diff(np.r_[g_starts, n]),
        "underlying_price": spot, "atm_iv_30d": iv30, "atm_iv_90d": iv90,
        "term_slope": iv90 - iv30, "skew_25d": skew, "put_call_volume": pcv,
        "put_call_oi": pco, "volume_oi": voi, "n_unusual": unusual.astype(np.int64),
        "next_expiration": next_exp, "expected_move": move, "expected_move_pct": move_pct,
        "expected_move_method": method,
        "n_iv_recomputed": np.bincount(g, weights=recomputed, minlength=n_g).astype(np.int64),
    })
    out["date"] = [d.item() for d in out["date"].to_numpy().astype("datetime64[D]")]
    note(~np.isfinite(iv30) | ~np.isfinite(iv90), "term_slope", "atm_iv_30d or 90d is NULL")
    out["reasons"] = reasons
    out = _add_realized(out, closes)
    out = _add_rank(out, iv_history, min_rank_sessions)
    return out[["date", "underlying", *METRIC_COLUMNS, "reasons"]]


def realized_vol(closes: pd.DataFrame, window: int = RV_WINDOW) -> pd.DataFrame:
    """Annualized realized volatility of daily closes: std (ddof 1) of the last ``window``
    log returns × sqrt(252), on each date with ``window + 1`` closes up to it.

    Args:
        closes: ``symbol``, ``date``, ``close`` (one row per symbol and session).

    Returns:
        ``symbol``, ``date`` (datetime.date), ``realized_vol`` (decimal a year).
    """
    c = closes[["symbol", "date", "close"]].copy()
    c["date"] = pd.to_datetime(c["date"])
    c = c.sort_values(["symbol", "date"])
    lr = np.log(c["close"].astype("float64")).groupby(c["symbol"]).diff()
    rv = lr.groupby(c["symbol"]).rolling(window, min_periods=window).std(ddof=1) \
        .reset_index(level=0, drop=True)
    c["realized_vol"] = rv.reindex(c.index) * math.sqrt(252)
    c["date"] = c["date"].dt.date
    return c[["symbol", "date", "realized_vol"]]


def _add_realized(out: pd.DataFrame, closes: pd.DataFrame | None) -> pd.DataFrame:
    if closes is None or closes.empty:
        out["realized_vol_20"] = np.nan
    else:
        rv = realized_vol(closes[closes["symbol"].isin(set(out["underlying"]))]).rename(
            columns={"symbol": "underlying", "realized_vol": "realized_vol_20"})
        out = out.merge(rv, on=["date", "underlying"], how="left")
    known = set() if closes is None else set(closes["symbol"])
    with np.errstate(invalid="ignore", divide="ignore"):
        out["iv_rv_20"] = out["atm_iv_30d"] / out["realized_vol_20"]
    for i, row in enumerate(out.itertuples()):
        if not np.isfinite(row.realized_vol_20):
            why = ("no daily bars for the underlying" if row.underlying not in known
                   else f"fewer than {RV_WINDOW + 1} daily closes up to the session")
            out["reasons"].iat[i].setdefault("realized_vol_20", why)
            out["reasons"].iat[i].setdefault("iv_rv_20", why)
        elif not np.isfinite(row.atm_iv_30d):
            out["reasons"].iat[i].setdefault("iv_rv_20", "atm_iv_30d is NULL")
    return out


def _add_rank(out: pd.DataFrame, history: pd.DataFrame | None, min_sessions: int
              ) -> pd.DataFrame:
    cur = out[["date", "underlying", "atm_iv_30d"]].assign(_cur=True)
    if history is not None and not history.empty:
        h = history[["date", "underlying", "atm_iv_30d"]].assign(_cur=False)
        h = h[~h.set_index(["date", "underlying"]).index.isin(
            cur.set_index(["date", "underlying"]).index)]
        allv = pd.concat([h, cur], ignore_index=True)
    else:
        allv = cur
    allv = allv.sort_values(["underlying", "date"]).reset_index(drop=True)
    rank = np.full(len(allv), np.nan)
    pct = np.full(len(allv), np.nan)
    have = np.zeros(len(allv), dtype=np.int64)
    is_cur = allv["_cur"].to_numpy(dtype=bool)
    all_vals = allv["atm_iv_30d"].to_numpy(dtype=float)
    for _, idx in allv.groupby("underlying", sort=False).indices.items():
        vals = all_vals[idx]
        for j in np.flatnonzero(is_cur[idx]):  # stored history rows are only read
            w = vals[max(0, j - IV_RANK_LOOKBACK + 1): j + 1]
            w = w[np.isfinite(w)]
            have[idx[j]] = len(w)
            x = vals[j]
            if not np.isfinite(x) or len(w) < min_sessions:
                continue
            lo_, hi_ = w.min(), w.max()
            rank[idx[j]] = (x - lo_) / (hi_ - lo_) if hi_ > lo_ else np.nan
            pct[idx[j]] = float(np.mean(w[:-1] < x)) if len(w) > 1 else np.nan
    allv["iv_rank_252"], allv["iv_percentile_252"], allv["_have"] = rank, pct, have
    got = allv[allv["_cur"]].set_index(["date", "underlying"])
    key = pd.MultiIndex.from_frame(out[["date", "underlying"]])
    out["iv_rank_252"] = got["iv_rank_252"].reindex(key).to_numpy()
    out["iv_percentile_252"] = got["iv_percentile_252"].reindex(key).to_numpy()
    n_have = got["_have"].reindex(key).to_numpy()
    for i in range(len(out)):
        if np.isnan(out["iv_rank_252"].iat[i]):
            if not np.isfinite(out["atm_iv_30d"].iat[i]):
                why = "atm_iv_30d is NULL"
            elif n_have[i] < min_sessions:
                why = (f"{int(n_have[i])} session(s) of IV history, {min_sessions} needed")
            else:
                why = "IV constant over the lookback"
            out["reasons"].iat[i].setdefault("iv_rank_252", why)
            out["reasons"].iat[i].setdefault("iv_percentile_252", why)
    return out
