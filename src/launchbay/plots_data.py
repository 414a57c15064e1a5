"""Plot data from long series: deterministic min/max downsampling that keeps spikes.

Used by the notebook widget, the sidebar's REST API and the CLI alike.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def downsample_minmax(steps: Any, values: Any, buckets: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """At most ``2 * buckets`` points (from 2 buckets up): each bucket of consecutive points keeps
    its min and its max (in their original order), so a one-point spike in a million stays
    visible; the first and the last point are always kept (the last is the value a live chart
    is read for). The values kept are those given (an integer series' stay int64)."""
    steps = np.asarray(steps)
    kept = np.asarray(values)
    values = kept.astype(np.float64, copy=False)
    n = len(values)
    if buckets <= 0 or n <= 2 * buckets:
        return steps, kept
    size = -(-n // max(1, buckets - 1))  # ceil: points per bucket, leaving room for the first and last
    full = (n // size) * size
    body = values[:full].reshape(-1, size)
    base = np.arange(0, full, size)
    lo, hi = body.argmin(axis=1), body.argmax(axis=1)  # two passes, no copy
    rows = np.arange(len(body))
    nan_rows = np.flatnonzero(np.isnan(body[rows, lo]))  # argmin/argmax pick a bucket's first NaN
    if len(nan_rows):  # NaNs would win every argmin/argmax: rank them last, in those buckets only
        some = body[nan_rows]
        lo[nan_rows] = np.argmin(np.where(np.isnan(some), np.inf, some), axis=1)
        hi[nan_rows] = np.argmax(np.where(np.isnan(some), -np.inf, some), axis=1)
    lo, hi = base + lo, base + hi
    picks = [np.minimum(lo, hi), np.maximum(lo, hi)]
    if full < n:
        tail = values[full:]
        picks.append(np.array([full + int(np.argmin(tail)), full + int(np.argmax(tail))]))
    picks.append(np.array([0, n - 1]))
    index = np.unique(np.concatenate(picks))
    return steps[index], kept[index]
