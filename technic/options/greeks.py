"""Greeks for every stored contract: fill what the source lacks, keep what it gives.

The real chain file carries IV and delta but no gamma, theta or vega; Polygon snapshots carry
all four where Polygon computed them. Before chains are stored, :func:`fill_greeks` computes,
with :func:`technic.options.bs.bsm_greeks` (vollib's analytical Black-Scholes-Merton greeks,
rate :data:`~technic.options.bs.RISK_FREE_RATE` = 4 %, dividend yield
:data:`~technic.options.bs.DIVIDEND_YIELD` = 0, European exercise, t = calendar days / 365),
each greek that is NULL in a row whose inputs are usable:

* **volatility**: the row's own IV; where it is NULL, the IV of the session's price, under
  the stale-price rule of :mod:`technic.options.metrics` (the contract traded in the session,
  ``volume > 0``, and a positive last price; vollib's Let's Be Rational inversion, NaN below
  intrinsic value). That recomputed IV is used for the greeks only: ``implied_vol`` keeps the
  source's value (NULL), so the metrics still tell source from recomputed IVs
  (``option_metrics.n_iv_recomputed``);
* **underlying price**: the row's, else the chain's (the highest of the session and
  underlying, as the metrics use);
* **expiry**: at least one calendar day after the session (0-DTE contracts get none).

A greek the source gives is never overwritten (a row may then mix the source's delta with
computed gamma/theta/vega; the source's delta comes from its own model, within ~0.01 of the
Black-Scholes one on the real file). Units: :mod:`technic.options.bs` (theta per calendar day,
vega per volatility point, as Polygon's).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from technic.options.bs import (
    DIVIDEND_YIELD,
    GREEKS,
    RISK_FREE_RATE,
    bsm_greeks,
    implied_vols,
)


@dataclass
class GreeksFill:
    """What :func:`fill_greeks` computed: rows that got at least one greek
    (``rows_filled``), per-greek counts (``filled``), rows whose greeks came from an IV
    recomputed from the session's price (``iv_recomputed``), rows left without greeks for
    lack of a usable volatility, underlying price or expiry (``rows_unusable``)."""

    rows_filled: int = 0
    filled: dict[str, int] | None = None
    iv_recomputed: int = 0
    rows_unusable: int = 0


def _f64(t: pa.Table, name: str) -> np.ndarray:
    return t[name].combine_chunks().cast(pa.float64()).to_numpy(zero_copy_only=False).copy()


def _days(t: pa.Table, name: str) -> np.ndarray:
    return t[name].combine_chunks().cast(pa.int32()).fill_null(0) \
        .to_numpy(zero_copy_only=False).astype(np.int64)


def fill_greeks(chains: pa.Table, r: float = RISK_FREE_RATE, q: float = DIVIDEND_YIELD
                ) -> tuple[pa.Table, GreeksFill]:
    """``chains`` with NULL ``delta``/``gamma``/``theta``/``vega`` computed where possible.

    Args:
        chains: validated rows (:data:`technic.options.chains.OPTION_SCHEMA`: ``date``,
            ``underlying``, ``expiration``, ``option_type`` C/P, ``strike``, ``last_price``,
            ``volume``, ``implied_vol``, the four greeks, ``underlying_price``), any order.
        r, q: continuously compounded rate and dividend yield (decimal a year).

    Returns:
        ``(table, fill)``: the same rows, in the same order and schema, with the four greek
        columns completed as the module doc says (other columns untouched), and the counts.
    """
    n = chains.num_rows
    fill = GreeksFill(filled={g: 0 for g in GREEKS})
    if n == 0:
        return chains, fill
    day, exp = _days(chains, "date"), _days(chains, "expiration")
    k = _f64(chains, "strike")
    is_put = pc.equal(chains["option_type"], "P").combine_chunks().fill_null(False) \
        .to_numpy(zero_copy_only=False)
    have = {g: _f64(chains, g) for g in GREEKS}
    missing = np.zeros(n, dtype=bool)
    for g in GREEKS:
        missing |= np.isnan(have[g])
    if not missing.any():
        return chains, fill
    s = _f64(chains, "underlying_price")
    if np.isnan(s).any():  # the chain's price where the row has none
        und = chains["underlying"].combine_chunks().dictionary_encode().indices
        key = day * 1_000_003 + und.to_numpy(zero_copy_only=False).astype(np.int64)
        chain_s = pd.Series(s).groupby(key).transform("max").to_numpy()
        s = np.where(np.isnan(s), chain_s, s)
    t = (exp - day) / 365.0
    live = exp - day >= 1
    sigma = _f64(chains, "implied_vol")
    last = _f64(chains, "last_price")
    vol = chains["volume"].combine_chunks().cast(pa.float64()).fill_null(0) \
        .to_numpy(zero_copy_only=False)
    need_iv = np.flatnonzero(missing & np.isnan(sigma) & live & (vol > 0) & (last > 0)
                             & (s > 0))
    if len(need_iv):
        sigma[need_iv] = implied_vols(last[need_iv], s[need_iv], k[need_iv], t[need_iv],
                                      is_put[need_iv], r, q)
        fill.iv_recomputed = int(np.isfinite(sigma[need_iv]).sum())
    rows = np.flatnonzero(missing & live & (sigma > 0) & (s > 0))
    fill.rows_unusable = int(missing.sum()) - len(rows)
    if not len(rows):
        return chains, fill
    got = bsm_greeks(s[rows], k[rows], t[rows], sigma[rows], is_put[rows], r, q)
    out = chains
    any_filled = np.zeros(len(rows), dtype=bool)
    for g in GREEKS:
        col = have[g]
        hole = np.isnan(col[rows]) & np.isfinite(got[g])
        if not hole.any():
            continue
        col[rows[hole]] = got[g][hole]
        any_filled |= hole
        fill.filled[g] = int(hole.sum())  # type: ignore[index]
        out = out.set_column(out.schema.get_field_index(g), out.schema.field(g),
                             pa.array(col, pa.float64(), mask=np.isnan(col)))
    fill.rows_filled = int(any_filled.sum())
    fill.iv_recomputed = int((any_filled & np.isnan(_f64(chains, "implied_vol")[rows])).sum())
    return out, fill
