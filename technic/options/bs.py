"""Black-Scholes-Merton prices, implied volatility and greeks through :mod:`vollib`.

vollib (MIT, the maintained successor of ``py_vollib``) wraps Peter Jäckel's *Let's Be
Rational* implied-volatility algorithm (machine-precision inversion in two iterations), so
IV → price → IV round-trips to ~1e-12. It is pure Python and scalar: the array helpers below
loop over rows (~50 µs each), which is why the metrics recompute IV only where it matters
(see :mod:`technic.options.metrics`). The greeks of whole chains (:func:`bsm_greeks`) use
vollib's reference analytical greeks (``vollib.ref_python``: the same closed forms, NumPy and
``scipy.stats.norm``), which take arrays: ~0.3 µs a contract, equal to vollib's scalar
analytical greeks to ~1e-15.

Assumptions (European exercise; the listed US equity options are American, so deep
in-the-money puts are slightly under-valued — irrelevant near the money, where the metrics
read IV):

* risk-free rate :data:`RISK_FREE_RATE` = 4 % a year, continuously compounded, flat
  (close to the 1–3 month US Treasury bill yields of mid-2026; the sources carry no rate);
* dividend yield :data:`DIVIDEND_YIELD` = 0 (the chains carry no dividend data);
* time to expiry in years = calendar days from the session to the expiration / 365.

Greek units (vollib's, the same as Polygon's snapshot ``greeks``): delta and gamma per 1 USD
of the underlying; **theta in USD per calendar day** (the annual figure / 365); **vega in USD
per 1 volatility point** (per 0.01 of sigma, the annual-sigma derivative × 0.01). All per
share (× 100 for a standard contract).
"""

from __future__ import annotations

import numpy as np
from vollib.black_scholes_merton import black_scholes_merton
from vollib.black_scholes_merton.greeks.analytical import delta as _bsm_delta
from vollib.black_scholes_merton.implied_volatility import implied_volatility as _bsm_iv
from vollib.ref_python.black_scholes_merton.greeks import analytical as _ref_greeks

#: Continuously compounded risk-free rate used for every recomputation (decimal a year).
RISK_FREE_RATE = 0.04
#: Continuous dividend yield used for every recomputation (decimal a year).
DIVIDEND_YIELD = 0.0


def bs_price(flag: str, s: float, k: float, t: float, sigma: float,
             r: float = RISK_FREE_RATE, q: float = DIVIDEND_YIELD) -> float:
    """Black-Scholes-Merton price of a European option (USD per share).

    Args:
        flag: ``"c"`` or ``"p"``. s: underlying price; k: strike (> 0); t: years to expiry
        (> 0); sigma: volatility (decimal a year); r, q: rate and dividend yield.
    """
    return float(black_scholes_merton(flag, s, k, t, r, sigma, q))


def implied_vol(price: float, s: float, k: float, t: float, flag: str,
                r: float = RISK_FREE_RATE, q: float = DIVIDEND_YIELD) -> float:
    """Black-Scholes-Merton implied volatility of ``price`` (decimal), NaN when no volatility
    reproduces it (price below the discounted intrinsic value or above the maximum, t ≤ 0,
    non-positive inputs)."""
    if not (price > 0 and s > 0 and k > 0 and t > 0):
        return float("nan")
    try:
        v = float(_bsm_iv(price, s, k, t, r, q, flag))
    except Exception:  # vollib raises PriceIsBelowIntrinsic / PriceIsAboveMaximum
        return float("nan")
    return v if np.isfinite(v) and v > 0 else float("nan")


def bs_delta(flag: str, s: float, k: float, t: float, sigma: float,
             r: float = RISK_FREE_RATE, q: float = DIVIDEND_YIELD) -> float:
    """Black-Scholes-Merton delta (call 0…1, put −1…0)."""
    return float(_bsm_delta(flag, s, k, t, r, sigma, q))


def implied_vols(price: np.ndarray, s: np.ndarray, k: np.ndarray, t: np.ndarray,
                 is_put: np.ndarray, r: float = RISK_FREE_RATE,
                 q: float = DIVIDEND_YIELD) -> np.ndarray:
    """:func:`implied_vol` of each row (arrays of equal shape ``(n,)``); NaN where none."""
    out = np.full(len(price), np.nan)
    for i in range(len(price)):
        out[i] = implied_vol(float(price[i]), float(s[i]), float(k[i]), float(t[i]),
                             "p" if is_put[i] else "c", r, q)
    return out


def deltas(s: np.ndarray, k: np.ndarray, t: np.ndarray, sigma: np.ndarray,
           is_put: np.ndarray, r: float = RISK_FREE_RATE,
           q: float = DIVIDEND_YIELD) -> np.ndarray:
    """:func:`bs_delta` of each row; NaN where an input is missing or t ≤ 0."""
    out = np.full(len(s), np.nan)
    for i in range(len(s)):
        if s[i] > 0 and k[i] > 0 and t[i] > 0 and sigma[i] > 0:
            out[i] = bs_delta("p" if is_put[i] else "c", float(s[i]), float(k[i]),
                              float(t[i]), float(sigma[i]), r, q)
    return out


#: Greeks returned by :func:`bsm_greeks`, in ``option_chains`` column names.
GREEKS = ("delta", "gamma", "theta", "vega")


def bsm_greeks(s: np.ndarray, k: np.ndarray, t: np.ndarray, sigma: np.ndarray,
               is_put: np.ndarray, r: float = RISK_FREE_RATE,
               q: float = DIVIDEND_YIELD) -> dict[str, np.ndarray]:
    """Black-Scholes-Merton delta, gamma, theta and vega of each row, vectorised.

    Formulas: vollib's analytical greeks (Hull, *Options, Futures and Other Derivatives*,
    "The Greek Letters"; ``vollib.ref_python.black_scholes_merton.greeks.analytical``),
    evaluated on whole arrays (calls and puts in one call each).

    Args:
        s: underlying price (USD), k: strike (USD), t: years to expiry, sigma: volatility
            (decimal a year) — float arrays of shape ``(n,)``; is_put: bool ``(n,)``.
        r, q: continuously compounded rate and dividend yield (decimal a year).

    Returns:
        ``{"delta", "gamma", "theta", "vega"}`` → float ``(n,)``, units in the module doc
        (theta per calendar day, vega per vol point); NaN where an input is missing or
        not positive (s, k, t, sigma).
    """
    n = len(s)
    out = {g: np.full(n, np.nan) for g in GREEKS}
    ok = (s > 0) & (k > 0) & (t > 0) & (sigma > 0)  # NaN compares False
    for flag, side in (("c", ok & ~is_put), ("p", ok & is_put)):
        if not side.any():
            continue
        args = (s[side], k[side], t[side], r, sigma[side], q)
        for g in GREEKS:
            out[g][side] = getattr(_ref_greeks, g)(flag, *args)
    return out
