"""A deterministic stand-in encoder for tests of indexing and storage (never shipped): each
text's words hashed into 384 signed buckets, L2-normalised, so equal texts give equal vectors
and texts sharing words are similar. Named by AIA_SEARCH_ENCODER=tests.search_stub:get_encoder
in the workers a test starts.

Environment knobs for those workers: AIA_TEST_ENCODE_DELAY_S sleeps before each batch (to kill
a worker mid-batch), AIA_TEST_ENCODE_FAIL refuses any text containing that word.

Until `aia_engine.search.texts` exists on this branch (the encoder helper's), importing this
module provides a stand-in with the documented default (the type, then every string property
and every number with its key); once it exists, the real one is used.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import time
import types
from collections.abc import Sequence
from typing import Any

import numpy as np

DIM = 384


class HashingEncoder:
    name = "test-hashing@1"
    dim = DIM

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        delay = float(os.environ.get("AIA_TEST_ENCODE_DELAY_S", "0") or 0)
        if delay:
            time.sleep(delay)
        refused = os.environ.get("AIA_TEST_ENCODE_FAIL")
        out = np.zeros((len(texts), DIM), np.float32)
        for i, value in enumerate(texts):
            if refused and refused in value.split():
                raise ValueError(f"refused text {value[:40]!r}")
            out[i] = hashed(value)
        return out


def hashed(value: str) -> np.ndarray:
    vector = np.zeros(DIM, np.float32)
    for word in value.lower().split() or [""]:
        digest = hashlib.sha256(word.encode()).digest()
        bucket = int.from_bytes(digest[:4], "big") % DIM
        vector[bucket] += 1.0 if digest[4] % 2 else -1.0
        vector[(bucket + 1 + digest[5]) % DIM] += 0.5
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm else vector


_ENCODER = HashingEncoder()


def get_encoder() -> HashingEncoder:
    return _ENCODER


def entity_text(node_type: str, properties: dict[str, Any], settings: Any = None) -> str:
    parts = [node_type]
    for key, value in properties.items():
        if isinstance(value, str):
            parts.append(value)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            parts.append(f"{key} {value}")
    return " ".join(parts)


def text_hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _install_texts() -> None:
    name = "aia_engine.search.texts"
    if name in sys.modules or importlib.util.find_spec(name) is not None:
        return
    module = types.ModuleType(name)
    module.entity_text = entity_text  # type: ignore[attr-defined]
    module.text_hash = text_hash  # type: ignore[attr-defined]
    sys.modules[name] = module


_install_texts()


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
