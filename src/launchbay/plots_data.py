"""Plot data from long series: deterministic min/max downsampling that keeps spikes.

Used by the notebook widget, the sidebar's REST API and the CLI alike.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def downsample_minmax(steps: Any, values: Any, buckets: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """At most ``2 * buckets`` points: each bucket of consecutive points keeps its min and its max
    (in their original order), so a one-point spike in a million stays visible."""
    steps = np.asarray(steps)
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    if buckets <= 0 or n <= 2 * buckets:
        return steps, values
    size = -(-n // buckets)  # ceil: points per bucket
    full = (n // size) * size
    body = values[:full].reshape(-1, size)
    base = np.arange(0, full, size)
    if np.isnan(body).any():  # NaNs would win every argmin/argmax: rank them last
        lo = base + np.argmin(np.where(np.isnan(body), np.inf, body), axis=1)
        hi = base + np.argmax(np.where(np.isnan(body), -np.inf, body), axis=1)
    else:
        lo = base + body.argmin(axis=1)
        hi = base + body.argmax(axis=1)
    picks = [np.minimum(lo, hi), np.maximum(lo, hi)]
    if full < n:
        tail = values[full:]
        picks.append(np.array([full + int(np.argmin(tail)), full + int(np.argmax(tail))]))
    index = np.unique(np.concatenate(picks))
    return steps[index], values[index]
