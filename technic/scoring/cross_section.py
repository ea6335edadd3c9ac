"""Cross-sectional operations on one date's values across the universe."""

from __future__ import annotations

import numpy as np


def percentile_rank(x: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Cross-sectional percentile rank in (0, 1].

    The rank of each finite, masked-in value among the finite masked-in values, as
    ``average_rank / count`` (ties share their average rank; the highest value gets 1.0),
    the convention of ``pandas.Series.rank(pct=True)``.

    Args:
        x: ``(N,) float64`` values of one date.
        mask: ``(N,) bool`` universe; ``None`` = all.

    Returns:
        ``(N,) float64``; NaN outside the mask and where ``x`` is not finite.

    Raises:
        ValueError: ``mask`` shape differs from ``x``.
    """
    x = np.asarray(x, dtype=np.float64)
    m = np.ones(x.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if m.shape != x.shape:
        raise ValueError(f"mask shape {m.shape} != values shape {x.shape}")
    out = np.full(x.shape, np.nan)
    sel = m & np.isfinite(x)
    v = x[sel]
    k = v.size
    if k == 0:
        return out
    order = np.argsort(v, kind="mergesort")
    ranks = np.empty(k)
    sv = v[order]
    # average rank of ties: group equal sorted values
    boundaries = np.flatnonzero(np.diff(sv) != 0) + 1
    starts = np.concatenate(([0], boundaries))
    ends = np.concatenate((boundaries, [k]))
    avg = (starts + ends + 1) / 2.0  # 1-based average rank of each tie group
    ranks[order] = np.repeat(avg, ends - starts)
    out[sel] = ranks / k
    return out
