"""The points of a collection of any size: the collection's own MiniLM vectors, then perturbed copies of them."""

from __future__ import annotations

import numpy as np


def vectors_of(base: np.ndarray, start: int, stop: int, sigma: float, seed: int) -> np.ndarray:
    """Rows ``start:stop`` of the collection: the SciFact vectors, then their perturbed copies.

    Row r >= len(base) is ``normalise(base[r % len(base)] + sigma * g)``, g drawn from a generator seeded
    with (seed, r), so any slice is the same whichever process makes it.
    """
    rows = []
    for row in range(start, stop):
        if row < len(base):
            rows.append(base[row])
            continue
        noise = np.random.default_rng([seed, row]).standard_normal(base.shape[1]).astype(np.float32)
        vector = base[row % len(base)] + sigma * noise
        rows.append(vector / np.linalg.norm(vector))
    return np.asarray(rows, dtype=np.float32)
