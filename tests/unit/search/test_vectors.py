"""The pure parts of semantic-search storage and indexing: the numpy scan against a brute-force
oracle, the binary array decoding, the vector literals, the partial-failure encoding."""

from __future__ import annotations

import itertools
import struct
from collections.abc import Sequence

import numpy as np
import pytest

from aia_engine.search.indexing import DIMENSIONS, _encode_each, vector_literal
from aia_engine.search.store import ClientVectors, _normalised, check_filters, decode_array


def unit_rows(n: int, seed: int = 1) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((n, DIMENSIONS)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def array_send(values: Sequence[float]) -> bytes:
    """PostgreSQL's binary form of a one-dimensional real[] (what `array_send` answers)."""
    head = struct.pack(">iiiii", 1, 0, 700, len(values), 1)
    return head + b"".join(struct.pack(">if", 4, v) for v in values)


def test_decode_array_reads_postgres_binary_real_arrays() -> None:
    values = [0.5, -1.25, 2.0**-30, 123456.0]
    assert decode_array(array_send(values)).tolist() == values
    assert decode_array(array_send(values)).dtype == np.float32


def test_vector_literal_round_trips_float32_exactly() -> None:
    row = unit_rows(1)[0]
    parsed = np.array(vector_literal(row).strip("{}").split(","), dtype=np.float32)
    assert np.array_equal(parsed, row)


def test_the_scan_answers_the_brute_force_top_k_best_first() -> None:
    rows = unit_rows(500)
    cache = ClientVectors(model=None)
    for i, row in enumerate(rows):
        cache.put(f"n{i}", row * 3.0)  # stored unnormalised: the cache normalises
    q = _normalised(unit_rows(1, seed=7)[0])
    hits = cache.top(q, 10, None)
    expected = np.argsort(-(rows @ q))[:10]
    assert [h.node_id for h in hits] == [f"n{i}" for i in expected]
    assert [h.score for h in hits] == pytest.approx(
        [float(rows[i] @ q) for i in expected], abs=1e-5
    )
    assert all(a.score >= b.score for a, b in itertools.pairwise(hits))


def test_removed_rows_are_never_answered_and_their_slots_are_reused() -> None:
    rows = unit_rows(20)
    cache = ClientVectors(model=None)
    for i, row in enumerate(rows):
        cache.put(f"n{i}", row)
    q = rows[3]
    assert cache.top(q, 1, None)[0].node_id == "n3"
    cache.remove("n3")
    assert "n3" not in [h.node_id for h in cache.top(q, 20, None)]
    cache.put("new", rows[3])
    assert cache.size == 20 and len(cache.ids) == 20  # the freed row held the new id
    assert cache.top(q, 1, None)[0].node_id == "new"
    cache.put("n5", rows[3])  # a new vector for an id replaces the old one
    assert {h.node_id for h in cache.top(q, 2, None)} == {"new", "n5"}


def test_allowed_ids_filter_the_scan_and_fewer_than_limit_come_back() -> None:
    rows = unit_rows(50)
    cache = ClientVectors(model=None)
    for i, row in enumerate(rows):
        cache.put(f"n{i}", row)
    hits = cache.top(rows[0], 10, {"n1", "n2", "unknown"})
    assert sorted(h.node_id for h in hits) == ["n1", "n2"]
    assert cache.top(rows[0], 10, set()) == []
    assert ClientVectors(model=None).top(rows[0], 10, None) == []


def test_query_vectors_and_filters_are_checked() -> None:
    with pytest.raises(ValueError, match="384"):
        _normalised([1.0, 2.0])
    with pytest.raises(ValueError, match="zeros"):
        _normalised(np.zeros(DIMENSIONS))
    with pytest.raises(ValueError, match="finite"):
        _normalised(np.full(DIMENSIONS, np.nan))
    assert check_filters({"industry": "Technology", "tier": 2, "active": True, "x": None}) == {
        "industry": "Technology", "tier": 2, "active": True, "x": None,
    }  # fmt: skip
    for bad in ({"tags": ["a"]}, {"o": {"k": 1}}, {"": "x"}):
        with pytest.raises(ValueError):
            check_filters(bad)


class Picky:
    """Encodes like the real one, refusing any text that says 'bad'."""

    name, dim = "picky@1", DIMENSIONS

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if any("bad" in t for t in texts):
            raise ValueError("bad text")
        return unit_rows(len(texts), seed=len(texts))


def test_a_batch_with_a_refused_text_keeps_the_good_ones() -> None:
    done, vectors, errors = _encode_each(Picky(), ["a", "bad one", "c"])
    assert done == [0, 2] and vectors.shape == (2, DIMENSIONS)
    assert errors == [(1, "ValueError: bad text")]
    done, vectors, errors = _encode_each(Picky(), ["a", "b"])
    assert done == [0, 1] and not errors


def test_an_encoder_answering_the_wrong_shape_is_an_error_per_text() -> None:
    class Short(Picky):
        def encode(self, texts: Sequence[str]) -> np.ndarray:
            return np.zeros((len(texts), 12), np.float32)

    done, _, errors = _encode_each(Short(), ["a"])
    assert done == [] and "384" in errors[0][1]
