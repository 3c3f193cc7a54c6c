"""Seeded random unit vectors as test data for the storage paths (pgvector vs numpy): unrelated
vectors have no ties, the hard case for approximate search. Indexing and search tests use the
shipped model."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

DIM = 384


class RandomEncoder:
    """Unrelated random unit vectors, one per distinct text (seeded by the text): no ties, the
    hard case for approximate search."""

    name = "test-random@1"
    dim = DIM

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), DIM), np.float32)
        for i, value in enumerate(texts):
            seed = int.from_bytes(hashlib.sha256(value.encode()).digest()[:8], "big")
            row = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
            out[i] = row / np.linalg.norm(row)
        return out
