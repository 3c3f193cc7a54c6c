"""How an embedding batch treats failures (aia_engine.search.indexing._encode_each): a text the
encoder refuses is that text's failure; an encoder that cannot encode anything is the task's
failure (no attempt counted, the sweep retries), so no entity is marked failed for good because
the model was missing or broken. And the stored model name follows the text settings."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from aia_engine.errors import EmbeddingModelUnavailable
from aia_engine.search.indexing import _encode_each
from aia_engine.search.query import FieldVectors
from aia_engine.search.texts import vector_model
from aia_engine.settings import Settings


class Refusing:
    """Encodes every text but those containing `bad` (a property of the texts, not the model)."""

    name, dim = "refusing@1", 384

    def __init__(self, bad: str = "", broken: Exception | None = None) -> None:
        self.bad, self.broken, self.calls = bad, broken, 0

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        if self.broken is not None:
            raise self.broken
        if self.bad and any(self.bad in t for t in texts):
            raise ValueError("refused")
        out = np.ones((len(texts), 384), np.float32)
        normalised: np.ndarray = out / np.linalg.norm(out, axis=1, keepdims=True)
        return normalised


def test_one_bad_text_fails_alone_and_the_rest_are_encoded() -> None:
    done, vectors, errors = _encode_each(Refusing(bad="poison"), ["a", "poison", "b"])
    assert done == [0, 2] and vectors.shape == (2, 384)
    assert [i for i, _ in errors] == [1] and "refused" in errors[0][1]


def test_an_encoder_that_encodes_nothing_fails_the_task_not_the_texts() -> None:
    with pytest.raises(RuntimeError, match="no text of a batch of 2"):
        _encode_each(Refusing(bad="x"), ["x1", "x2"])


@pytest.mark.parametrize(
    "broken",
    [EmbeddingModelUnavailable("no model", install="pip install -e ."), MemoryError()],
    ids=["E055", "memory"],
)
def test_a_missing_model_or_no_memory_is_raised_at_once(broken: Exception) -> None:
    encoder = Refusing(broken=broken)
    with pytest.raises(type(broken)):
        _encode_each(encoder, ["a", "b", "c"])
    assert encoder.calls == 1  # not retried text by text


def test_the_stored_model_name_follows_the_text_settings() -> None:
    assert vector_model("m@1", Settings()) == "m@1"
    chosen = vector_model("m@1", Settings(search_text_fields={"customer": ["name"]}))
    assert chosen.startswith("m@1+text.") and chosen != vector_model(
        "m@1", Settings(search_text_fields={"customer": ["industry"]})
    )
    assert vector_model("m@1", Settings(search_text_max_chars=500)).startswith("m@1+text.")


def test_the_field_cache_is_kept_per_client() -> None:
    cache, encoder = FieldVectors(), Refusing()
    cache.vectors(encoder, ["industry: Technology"], owner="a")
    cache.vectors(encoder, ["industry: Technology"], owner="a")
    assert cache.encoded == 1
    cache.vectors(encoder, ["industry: Technology"], owner="b")
    assert cache.encoded == 2  # b's search learns nothing from a's
