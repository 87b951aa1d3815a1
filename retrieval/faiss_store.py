"""Dense vectors in FAISS (exact inner product on normalised vectors = cosine), persisted on disk.

Ids are the catalogue's chunk row ids, which are never reused, so a removed chunk can never come back
under another chunk's id. Exact search below ``retrieval.faiss_index.IVF_THRESHOLD`` chunks, IVF
above it (setting ``faiss_index``). The file is written as a stream with its stamp at the end, and IVF
lists are memory-mapped on load: a million-chunk knowledge base opens in a fraction of a second and never
re-reads the catalogue's embeddings (README "Scale").

GPU (setting ``faiss_gpu``, the ``gpu`` extra's faiss-gpu): the CPU index stays the one that is written
and saved; a GPU copy of it (``faiss.index_cpu_to_all_gpus``) answers searches and is rebuilt after
writes. Not exercised here (no GPU on the CI machines): without a GPU, or with faiss-cpu, the setting
is ignored with a warning.
"""

from __future__ import annotations

import logging
from pathlib import Path

import faiss
import numpy as np

from retrieval.faiss_index import (
    IVF_THRESHOLD,
    IndexKind,
    add_in_batches,
    all_vectors,
    build_ivf,
    in_memory_copy,
    is_ivf,
    outgrown,
    resolve_kind,
)
from retrieval.stamped import open_stamped, read_stamp_tail, write_stamped_tail

log = logging.getLogger(__name__)

EXACT_FILTER_LIMIT = 20_000  # allowed ids up to which a filtered IVF search scores them one by one

# One query at a time is memory-bound: OpenMP worker threads only spin and steal the cores the
# embedder needs next (measured: 8.6 ms → 2.0 ms for embed + search over 1,792 vectors on 2 cores).
faiss.omp_set_num_threads(1)


class FaissStore:
    kind = "faiss"

    def __init__(self, dim: int, index_kind: IndexKind = "auto", gpu: bool = False,
                 ivf_threshold: int = IVF_THRESHOLD) -> None:
        self.dim = dim
        self.index_kind = index_kind
        self.ivf_threshold = ivf_threshold
        self.gpu = gpu
        self._gpu_index: faiss.Index | None = None
        self.index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))

    @property
    def structure(self) -> str:
        """``flat`` or ``ivf``: what the index is now (``index_kind`` is what the settings asked for)."""
        return "ivf" if is_ivf(self.index) else "flat"

    def add(self, ids: np.ndarray, vectors: np.ndarray, meta: list[dict] | None = None) -> None:
        """``meta`` is for stores that keep metadata (Milvus); FAISS keeps vectors only. An exact index
        that grows past the IVF threshold is rebuilt as IVF (trained on what it holds) on the way."""
        if not len(ids):
            return
        ids = np.asarray(ids, dtype=np.int64)
        want = resolve_kind(self.index_kind, self.count() + len(ids), self.ivf_threshold)
        if want == "ivf" and (not is_ivf(self.index) or outgrown(self.index, self.count() + len(ids))):
            if self.count():
                old_ids, old_vectors = all_vectors(self.index)
                ids, vectors = np.concatenate([old_ids, ids]), np.concatenate([old_vectors, np.asarray(vectors, np.float32)])
            self.index = build_ivf(self.dim, ids, vectors)
        else:
            add_in_batches(self.index, ids, vectors)
        self._gpu_index = None

    def remove(self, ids: list[int] | np.ndarray) -> None:
        if len(ids):
            self.index.remove_ids(np.asarray(ids, dtype=np.int64))
            self._gpu_index = None

    def clone(self) -> "FaissStore":
        """A private copy for a writer, so readers keep searching the old index until the swap."""
        copy = FaissStore(self.dim, self.index_kind, self.gpu, self.ivf_threshold)
        copy.index = in_memory_copy(self.index)
        return copy

    def _searcher(self) -> faiss.Index:
        """The index that answers searches: a GPU copy when configured and available, else the index."""
        if not self.gpu:
            return self.index
        if self._gpu_index is None:
            n_gpus = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
            if n_gpus == 0:
                log.warning("faiss_gpu 已设置但没有可用的 GPU 或 faiss-gpu，改用 CPU (faiss_gpu set, no GPU/faiss-gpu: using CPU)")
                self.gpu = False
                return self.index
            try:
                self._gpu_index = faiss.index_cpu_to_all_gpus(in_memory_copy(self.index))
            except (RuntimeError, AttributeError) as exc:  # an index type the GPU cloner does not take
                log.warning("FAISS 索引无法复制到 GPU，改用 CPU (cannot clone index to GPU: %s)", exc)
                self.gpu = False
                return self.index
        return self._gpu_index

    def count(self) -> int:
        return int(self.index.ntotal)

    def search(self, vector: np.ndarray, k: int, allowed_ids: list[int] | None = None) -> list[tuple[int, float]]:
        """Top-k (id, cosine); ``allowed_ids`` restricts the search (metadata filters resolve to ids
        in the catalogue, so every store filters the same way)."""
        if self.index.ntotal == 0 or k <= 0:
            return []
        params = None
        if allowed_ids is not None and is_ivf(self.index) and len(allowed_ids) <= EXACT_FILTER_LIMIT:
            # IVF scans only nprobe cells: a few allowed chunks may all sit in cells it skips. Scoring
            # them directly is exact and, for a few documents' chunks, faster.
            scored = sorted(self.similarity(vector, list(allowed_ids)).items(), key=lambda p: (-p[1], p[0]))
            return scored[:k]
        if allowed_ids is not None:
            selector = faiss.IDSelectorBatch(np.asarray(allowed_ids, dtype=np.int64))
            params = (faiss.SearchParametersIVF(sel=selector, nprobe=self.index.nprobe) if is_ivf(self.index)
                      else faiss.SearchParameters(sel=selector))
            index = self.index  # GPU indexes take no id selector: filtered searches stay on the CPU
        else:
            index = self._searcher()
        scores, ids = index.search(
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
        """Streamed into the file (no in-memory copy of the serialised index, 2 GB at a million chunks),
        stamp last, so the file stays a FAISS index file that ``load`` can memory-map."""
        header = {"version": version, "count": self.count(), "dim": self.dim, "model": model}
        write_stamped_tail(path, header, lambda f: faiss.write_index(self.index, faiss.PyCallbackIOWriter(f.write)))

    @classmethod
    def load(cls, path: Path, index_kind: IndexKind = "auto", gpu: bool = False,
             ivf_threshold: int = IVF_THRESHOLD) -> tuple["FaissStore", dict] | None:
        """The index from its file. IVF lists are memory-mapped (``IO_FLAG_MMAP``): a million chunks'
        vectors open in milliseconds instead of seconds, are paged in by the queries that touch them, and
        processes serving the same knowledge base share the pages. Files stamped in front (older
        versions) are streamed in."""
        header = read_stamp_tail(path)
        if header is not None:
            try:
                index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP)
            except RuntimeError:
                return None
            store = cls(int(header["dim"]), index_kind, gpu, ivf_threshold)
            store.index = index
            return store, header
        stamped = open_stamped(path)
        if stamped is None:
            return None
        header, f = stamped
        try:
            with f:
                index = faiss.read_index(faiss.PyCallbackIOReader(f.read, 1 << 24))
        except (RuntimeError, OSError, ValueError):
            return None
        store = cls(int(header["dim"]), index_kind, gpu, ivf_threshold)
        store.index = index
        return store, header

    def drop(self) -> None:
        """Nothing lives outside the index file, which the knowledge base removes or replaces."""
