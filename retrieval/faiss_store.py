"""Dense vectors in FAISS (exact inner product on normalised vectors = cosine), persisted on disk.

Ids are the catalogue's chunk row ids, which are never reused, so a removed chunk can never come back
under another chunk's id. Exact search is the right default up to a few hundred thousand chunks on CPU
(milliseconds per query); beyond that the Milvus store (HNSW/IVF) takes over.
"""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

from retrieval.stamped import read_stamped, write_stamped

# One query at a time is memory-bound: OpenMP worker threads only spin and steal the cores the
# embedder needs next (measured: 8.6 ms → 2.0 ms for embed + search over 1,792 vectors on 2 cores).
faiss.omp_set_num_threads(1)


class FaissStore:
    kind = "faiss"

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))

    def add(self, ids: np.ndarray, vectors: np.ndarray, meta: list[dict] | None = None) -> None:
        """``meta`` is for stores that keep metadata (Milvus); FAISS keeps vectors only."""
        if len(ids):
            self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))

    def remove(self, ids: list[int] | np.ndarray) -> None:
        if len(ids):
            self.index.remove_ids(np.asarray(ids, dtype=np.int64))

    def clone(self) -> "FaissStore":
        """A private copy for a writer, so readers keep searching the old index until the swap."""
        copy = FaissStore(self.dim)
        copy.index = faiss.clone_index(self.index)
        return copy

    def count(self) -> int:
        return int(self.index.ntotal)

    def search(self, vector: np.ndarray, k: int, allowed_ids: list[int] | None = None) -> list[tuple[int, float]]:
        """Top-k (id, cosine); ``allowed_ids`` restricts the search (metadata filters resolve to ids
        in the catalogue, so every store filters the same way)."""
        if self.index.ntotal == 0 or k <= 0:
            return []
        params = None
        if allowed_ids is not None:
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(np.asarray(allowed_ids, dtype=np.int64)))
        scores, ids = self.index.search(
            np.asarray(vector, dtype=np.float32).reshape(1, -1), min(k, self.index.ntotal), params=params
        )
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i != -1]

    def similarity(self, vector: np.ndarray, ids: list[int]) -> dict[int, float]:
        """Cosine of the query with given chunks (for fusing BM25 candidates that dense search missed)."""
        out = {}
        q = np.asarray(vector, dtype=np.float32)
        for i in ids:
            try:
                out[i] = float(self.index.reconstruct(int(i)) @ q)
            except RuntimeError:  # id not in the index
                continue
        return out

    def save(self, path: Path, version: int, model: str) -> None:
        header = {"version": version, "count": self.count(), "dim": self.dim, "model": model}
        write_stamped(path, header, faiss.serialize_index(self.index).tobytes())

    @classmethod
    def load(cls, path: Path) -> tuple["FaissStore", dict] | None:
        stamped = read_stamped(path)
        if stamped is None:
            return None
        header, payload = stamped
        try:
            index = faiss.deserialize_index(np.frombuffer(payload, dtype=np.uint8))
        except RuntimeError:
            return None
        store = cls(int(header["dim"]))
        store.index = index
        return store, header

    def drop(self) -> None:
        """Nothing lives outside the index file, which the knowledge base removes or replaces."""
