"""Cross-sectional operations on one date's values across the universe.

A small API in the style of zipline's Pipeline factor methods (``Factor.rank``,
``.zscore``, ``.demean``, ``.winsorize``, each with ``mask`` and ``groupby``;
https://zipline.ml4trading.io/api-reference.html), on plain numpy arrays of one date:

* every function takes ``x`` — ``(N,) float64`` values of one date, one per symbol;
* ``mask`` — ``(N,) bool``, the filtered universe (``None`` = all rows). Rows outside the mask
  are NaN in the output and never influence the statistics of other rows;
* ``groupby`` — ``(N,)`` labels (e.g. sector names); statistics are then taken within each
  group separately. A missing label (``None``/NaN) puts the row outside every group: NaN out,
  as zipline does for a missing classifier value;
* non-finite inputs are treated like masked-out rows (NaN out, excluded from statistics).

Everything is vectorised (sorts and ``bincount``), no Python loop over symbols or groups.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _prepare(x: np.ndarray, mask: np.ndarray | None, groupby) -> tuple[np.ndarray, np.ndarray,
                                                                        np.ndarray]:
    """``(x, sel, codes)``: float values, rows taking part, group code per row (0 without
    ``groupby``; -1 = no group)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"values must be one-dimensional, got shape {x.shape}")
    m = np.ones(x.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if m.shape != x.shape:
        raise ValueError(f"mask shape {m.shape} != values shape {x.shape}")
    if groupby is None:
        codes = np.zeros(x.shape, dtype=np.int64)
    else:
        g = np.asarray(groupby, dtype=object)
        if g.shape != x.shape:
            raise ValueError(f"groupby shape {g.shape} != values shape {x.shape}")
        codes = pd.factorize(g, use_na_sentinel=True)[0].astype(np.int64)
    sel = m & np.isfinite(x) & (codes >= 0)
    return x, sel, codes


def _sorted_groups(v: np.ndarray, c: np.ndarray):
    """Sort selected values by (group, value); return order, sorted values/codes, the start
    index of each row's group in the sorted array and each row's group size."""
    order = np.lexsort((v, c))
    sv, sc = v[order], c[order]
    k = sv.size
    new_group = np.concatenate(([True], sc[1:] != sc[:-1])) if k else np.zeros(0, bool)
    gstart_idx = np.flatnonzero(new_group)
    gid = np.cumsum(new_group) - 1
    gsize = np.diff(np.concatenate((gstart_idx, [k])))
    return order, sv, sc, gstart_idx[gid], gsize[gid]


def rank(x: np.ndarray, mask: np.ndarray | None = None, groupby=None,
         ascending: bool = True) -> np.ndarray:
    """Average rank (1 = lowest when ``ascending``) within the mask, per group.

    Ties share their average rank (``scipy.stats.rankdata(method="average")``, the default of
    ``pandas.Series.rank``).

    Args:
        x: ``(N,) float64``. mask: ``(N,) bool`` or None. groupby: ``(N,)`` labels or None.
        ascending: False ranks the highest value 1.

    Returns:
        ``(N,) float64`` ranks in ``[1, group size]``; NaN outside the mask, for non-finite
        values and rows without a group.

    Raises:
        ValueError: shapes differ or ``x`` is not 1-D.
    """
    x, sel, codes = _prepare(x, mask, groupby)
    out = np.full(x.shape, np.nan)
    v = x[sel] if ascending else -x[sel]
    if v.size == 0:
        return out
    order, sv, sc, gstart, _ = _sorted_groups(v, codes[sel])
    k = sv.size
    brk = np.concatenate(([True], (sv[1:] != sv[:-1]) | (sc[1:] != sc[:-1])))
    tie_start = np.flatnonzero(brk)
    tie_end = np.concatenate((tie_start[1:], [k]))
    tid = np.cumsum(brk) - 1
    # 1-based average position of each tie run, relative to its group's first row
    avg = (tie_start + tie_end + 1) / 2.0
    ranks_sorted = avg[tid] - gstart
    ranks = np.empty(k)
    ranks[order] = ranks_sorted
    out[sel] = ranks
    return out


def percentile_rank(x: np.ndarray, mask: np.ndarray | None = None, groupby=None
                    ) -> np.ndarray:
    """Cross-sectional percentile rank in (0, 1].

    The rank of each finite, masked-in value among the finite masked-in values (of its group),
    as ``average_rank / count`` (ties share their average rank; the highest value gets 1.0),
    the convention of ``pandas.Series.rank(pct=True)``.

    Args:
        x: ``(N,) float64`` values of one date.
        mask: ``(N,) bool`` universe; ``None`` = all.
        groupby: ``(N,)`` group labels (e.g. sector); ``None`` = one group.

    Returns:
        ``(N,) float64``; NaN outside the mask, where ``x`` is not finite and without a group.

    Raises:
        ValueError: ``mask`` or ``groupby`` shape differs from ``x``.
    """
    x, sel, codes = _prepare(x, mask, groupby)
    r = rank(x, sel, None if groupby is None else groupby)
    counts = np.bincount(codes[sel], minlength=int(codes.max(initial=0)) + 1)
    out = np.full(x.shape, np.nan)
    out[sel] = r[sel] / counts[codes[sel]]
    return out


def _group_stat(x: np.ndarray, sel: np.ndarray, codes: np.ndarray):
    """Per-row group mean, population std (ddof=0) and count of the selected values."""
    c = codes[sel]
    n_groups = int(codes.max(initial=0)) + 1
    cnt = np.bincount(c, minlength=n_groups).astype(np.float64)
    s1 = np.bincount(c, weights=x[sel], minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s1 / cnt
        dev = x[sel] - mean[c]
        var = np.bincount(c, weights=dev * dev, minlength=n_groups) / cnt
    return mean[c], np.sqrt(var)[c], cnt[c]


def demean(x: np.ndarray, mask: np.ndarray | None = None, groupby=None) -> np.ndarray:
    """Subtract the mean of the masked-in values (of the row's group): ``x − mean``.

    With ``groupby=sector`` this is the sector-neutral value (zipline ``Factor.demean``).

    Returns:
        ``(N,) float64``, same unit as ``x``; NaN outside the mask / non-finite / no group.

    Raises:
        ValueError: shapes differ.
    """
    x, sel, codes = _prepare(x, mask, groupby)
    out = np.full(x.shape, np.nan)
    if sel.any():
        mean, _, _ = _group_stat(x, sel, codes)
        out[sel] = x[sel] - mean
    return out


def zscore(x: np.ndarray, mask: np.ndarray | None = None, groupby=None) -> np.ndarray:
    """Standard score ``(x − mean) / std`` within the mask (per group), population std
    (``ddof=0``, as zipline's ``Factor.zscore``).

    A group whose values are all equal (std 0, including a group of one) gets 0.0, the neutral
    score, instead of a division by zero.

    Returns:
        ``(N,) float64`` (unitless); NaN outside the mask / non-finite / no group.

    Raises:
        ValueError: shapes differ.
    """
    x, sel, codes = _prepare(x, mask, groupby)
    out = np.full(x.shape, np.nan)
    if sel.any():
        mean, std, _ = _group_stat(x, sel, codes)
        with np.errstate(invalid="ignore", divide="ignore"):
            z = (x[sel] - mean) / std
        out[sel] = np.where(std > 0, z, 0.0)
    return out


def winsorize(x: np.ndarray, min_percentile: float = 0.01, max_percentile: float = 0.99,
              mask: np.ndarray | None = None, groupby=None) -> np.ndarray:
    """Clip values to the ``[min_percentile, max_percentile]`` quantiles of the masked-in values
    (per group).

    Quantiles use linear interpolation between order statistics (``numpy.quantile``'s default
    ``method="linear"``: position ``q · (k − 1)`` in the sorted ``k`` values). zipline's
    ``Factor.winsorize`` clips at the same bounds.

    Args:
        min_percentile, max_percentile: quantile bounds in ``[0, 1]``, ``min ≤ max``.

    Returns:
        ``(N,) float64``, same unit as ``x``; NaN outside the mask / non-finite / no group.

    Raises:
        ValueError: bounds outside ``[0, 1]`` or reversed; shapes differ.
    """
    if not 0.0 <= min_percentile <= max_percentile <= 1.0:
        raise ValueError("need 0 <= min_percentile <= max_percentile <= 1, got "
                         f"{min_percentile}, {max_percentile}")
    x, sel, codes = _prepare(x, mask, groupby)
    out = np.full(x.shape, np.nan)
    v = x[sel]
    if v.size == 0:
        return out
    order, sv, _, gstart, gsize = _sorted_groups(v, codes[sel])

    def q(p: float) -> np.ndarray:
        pos = p * (gsize - 1)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, gsize - 1)
        frac = pos - lo
        return sv[gstart + lo] + frac * (sv[gstart + hi] - sv[gstart + lo])

    lo_b, hi_b = np.empty(v.size), np.empty(v.size)
    lo_b[order], hi_b[order] = q(min_percentile), q(max_percentile)
    out[sel] = np.clip(v, lo_b, hi_b)
    return out


def group_mean(x: np.ndarray, mask: np.ndarray | None = None, groupby=None) -> np.ndarray:
    """The mean of the masked-in values of each row's group, broadcast to the row (an
    equal-weighted group average, e.g. a sector's equal-weighted return).

    Returns:
        ``(N,) float64``, same unit as ``x``; NaN outside the mask / non-finite / no group.

    Raises:
        ValueError: shapes differ.
    """
    x, sel, codes = _prepare(x, mask, groupby)
    out = np.full(x.shape, np.nan)
    if sel.any():
        out[sel] = _group_stat(x, sel, codes)[0]
    return out


def mean_points(ranks: np.ndarray) -> np.ndarray:
    """Mean of percentile ranks across rows, as points: ``100 × nanmean(ranks, axis=0)``.

    The arithmetic of :func:`numpy.nanmean` (the sum of the non-NaN values divided by their
    count, same summation), without its "Mean of empty slice" warning: silencing that with
    :class:`warnings.catch_warnings` is process-global and not thread-safe, and scans run
    concurrently (HTTP API workers, Dask threads).

    Args:
        ranks: ``(K, N) float64`` — K component ranks (0–1) of N symbols, NaN where undefined.

    Returns:
        ``(N,) float64`` points 0–100; NaN where all K are NaN.
    """
    valid = ~np.isnan(ranks)
    total = np.where(valid, ranks, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return 100.0 * (total / valid.sum(axis=0))
