"""A small Sobol sequence (Joe & Kuo direction numbers, up to 12 dimensions), no SciPy needed.

Point ``i`` is computed directly (Gray-code order, as SciPy's unscrambled sequence), so a
resumed sweep gets the same points; a seed applies a random digital shift, which keeps
the sequence's stratification.
"""

from __future__ import annotations

import random

BITS = 32
# (degree s, coefficients a, initial m_1..m_s) for dimensions 2.. (new-joe-kuo-6.21201)
_TABLE = (
    (1, 0, (1,)),
    (2, 1, (1, 3)),
    (3, 1, (1, 3, 1)),
    (3, 2, (1, 1, 1)),
    (4, 1, (1, 1, 3, 3)),
    (4, 4, (1, 3, 5, 13)),
    (5, 2, (1, 1, 5, 5, 17)),
    (5, 4, (1, 1, 5, 5, 5)),
    (5, 7, (1, 1, 7, 11, 19)),
    (5, 11, (1, 1, 5, 1, 1)),
    (5, 13, (1, 1, 1, 3, 11)),
)
MAX_DIMENSIONS = len(_TABLE) + 1


def _directions(dim: int) -> list[int]:
    """The direction numbers v_1..v_BITS of dimension ``dim`` (0-based), as BITS-bit integers."""
    if dim == 0:
        return [1 << (BITS - k) for k in range(1, BITS + 1)]
    s, a, m_init = _TABLE[dim - 1]
    m = list(m_init)
    for k in range(s, BITS):
        value = m[k - s] ^ (m[k - s] << s)
        for j in range(1, s):
            if (a >> (s - 1 - j)) & 1:
                value ^= m[k - j] << j
        m.append(value)
    return [m[k] << (BITS - 1 - k) for k in range(BITS)]


_CACHE: dict[int, list[int]] = {}


def sobol_point(index: int, dimensions: int, seed: int | None = None) -> list[float]:
    """Point ``index`` (0-based) of the ``dimensions``-dimensional sequence, in [0, 1)."""
    if not 1 <= dimensions <= MAX_DIMENSIONS:
        raise ValueError(f"Sobol points have 1 to {MAX_DIMENSIONS} dimensions, not {dimensions}.")
    gray = index ^ (index >> 1)
    shifts = [0] * dimensions
    if seed is not None:
        rng = random.Random(f"sobol:{seed}")
        shifts = [rng.getrandbits(BITS) for _ in range(dimensions)]
    point = []
    for dim in range(dimensions):
        v = _CACHE.get(dim) or _CACHE.setdefault(dim, _directions(dim))
        x, bit, g = 0, 0, gray
        while g:
            if g & 1:
                x ^= v[bit]
            g >>= 1
            bit += 1
        point.append((x ^ shifts[dim]) / 2**BITS)
    return point
