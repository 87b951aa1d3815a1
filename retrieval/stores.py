"""The interface every dense vector store implements (``retrieval.faiss_store.FaissStore``,
``retrieval.milvus_store.MilvusStore``), so the retriever, the knowledge base and migrations depend
on the protocol, not on a backend. ``tests/test_store_contract.py`` runs the same checks on each."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class VectorStore(Protocol):
    kind: str  # "faiss" | "milvus": what the catalogue records as the knowledge base's backend
    dim: int

    def add(self, ids: np.ndarray, vectors: np.ndarray, meta: list[dict] | None = None) -> None: ...

    def remove(self, ids: list[int] | np.ndarray) -> None: ...

    def clone(self) -> VectorStore:
        """A copy a writer may change while readers keep searching this one (or the store itself,
        when the backend applies writes on its own)."""
        ...

    def count(self) -> int: ...

    def search(self, vector: np.ndarray, k: int, allowed_ids: list[int] | None = None) -> list[tuple[int, float]]: ...

    def similarity(self, vector: np.ndarray, ids: list[int]) -> dict[int, float]: ...

    def save(self, path: Path, version: int, model: str) -> None:
        """Persist (or stamp) the store as reflecting catalogue ``version`` embedded with ``model``."""
        ...

    def drop(self) -> None:
        """Release what the store keeps outside its stamp file once it has been replaced (a Milvus
        collection); a no-op for stores that live in the stamp file itself."""
        ...
