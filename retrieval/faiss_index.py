"""Which FAISS index a knowledge base's vectors live in, chosen by size (setting ``faiss_index``).

- ``flat``: exact inner product. Best up to tens of thousands of chunks: no training, exact, and a
  query scans every vector (≈ 2 ms per 10k × 512-dim vectors on one core).
- ``ivf``: IVF-Flat, inverted lists over k-means cells, vectors stored uncompressed so scores stay
  exact cosines. A query scans ``nprobe`` of ``nlist`` cells. Chosen over HNSW because FAISS's HNSW
  cannot remove vectors (a re-ingested document removes its old chunks) and builds several times
  slower on 2 cores; IVF removes ids natively and reconstructs by id (a hash-table direct map), which
  the retriever needs for the cosines of BM25-only candidates.

``auto`` is flat below ``IVF_THRESHOLD`` chunks and IVF from there. Why 50,000: exact search costs
about 9 ms a query at 100k × 512 dims on one core (bench/stores.py), so ≈ 4–5 ms at 50k, about what IVF
costs with the nprobe that recall needs (5.5 ms at 100k in bench/scale.py), and below it there is
nothing to train or tune. nlist ≈ √N; nprobe is calibrated on every build (``calibrate_nprobe``): the
smallest that keeps recall@10 against exact search ≥ 0.97 on probe queries shaped like real
questions, a margin over the 0.95 required. A GPU (faiss-gpu, the ``gpu`` extra) serves the same index
when ``faiss_gpu`` is set: see ``FaissStore``.
"""

from __future__ import annotations

import math
from typing import Literal

import faiss
import numpy as np

IndexKind = Literal["auto", "flat", "ivf"]

IVF_THRESHOLD = 50_000  # chunks; below it exact search is fast enough and needs no training
RECALL_TARGET = 0.97  # recall@10 the calibration asks of probe queries, a margin over the 0.95 required
TRAIN_PER_CELL = 64  # k-means training points per cell: FAISS's floor is 39, more only costs time


def resolve_kind(setting: IndexKind, n: int, threshold: int = IVF_THRESHOLD) -> Literal["flat", "ivf"]:
    """The index for ``n`` vectors under the ``faiss_index`` setting."""
    if setting == "auto":
        return "ivf" if n >= threshold else "flat"
    return setting


def ivf_shape(n: int) -> tuple[int, int]:
    """(nlist, nprobe) for ``n`` vectors: √N cells balances the coarse scan against the list scan."""
    nlist = max(16, int(math.sqrt(max(n, 1))))
    return nlist, max(16, nlist // 8)


def build_ivf(dim: int, ids: np.ndarray, vectors: np.ndarray, seed: int = 0) -> faiss.Index:
    """An IVF-Flat (inner product) index over ``vectors``, trained on a sample of them."""
    nlist, nprobe = ivf_shape(len(vectors))
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    index.own_fields = True
    quantizer.this.disown()  # the IVF index owns (and frees) its quantizer
    sample = vectors
    if len(vectors) > TRAIN_PER_CELL * nlist:
        rng = np.random.default_rng(seed)
        sample = vectors[np.sort(rng.choice(len(vectors), TRAIN_PER_CELL * nlist, replace=False))]
    index.train(np.ascontiguousarray(sample, dtype=np.float32))
    index.set_direct_map_type(faiss.DirectMap.Hashtable)  # reconstruct and remove by chunk id
    index.nprobe = nprobe
    add_in_batches(index, ids, vectors)
    index.nprobe = calibrate_nprobe(index, ids, vectors, seed=seed)
    return index


def probe_queries(vectors: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Queries that sit between chunks, as questions do: the mean of five random vectors plus noise,
    normalised. Measured on bench/scale.py's 100k chunks with USE-m3: their best and 10th cosines
    (medians .50 / .45) match 200 real CMRC questions' (.51 / .45), and so does IVF recall at a given
    nprobe (.953 vs .944); queries made from one or three vectors overstate recall."""
    picks = vectors[rng.choice(len(vectors), (n, 5))].mean(axis=1)
    q = picks + rng.normal(size=picks.shape).astype(np.float32) * (0.5 / np.sqrt(vectors.shape[1]))
    return (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)


def calibrate_nprobe(index: faiss.IndexIVF, ids: np.ndarray, vectors: np.ndarray, target: float = RECALL_TARGET,
                     n_queries: int = 100, seed: int = 0) -> int:
    """The smallest nprobe (from nlist/8, ×1.5 a step) whose recall@10 against exact search reaches
    ``target`` on probe queries: recall is measured on this index's own vectors, not assumed."""
    rng = np.random.default_rng(seed)
    queries = probe_queries(vectors, n_queries, rng)
    exact = faiss.IndexFlatIP(vectors.shape[1])
    add_in_batches_plain(exact, vectors)
    _, rows = exact.search(queries, 10)
    truth = np.asarray(ids)[rows]
    nprobe = max(16, index.nlist // 8)
    while True:
        _, found = index.search(queries, 10, params=faiss.SearchParametersIVF(nprobe=min(nprobe, index.nlist)))
        if nprobe >= index.nlist or recall_at_k(found, truth) >= target:
            return min(nprobe, index.nlist)
        nprobe = int(nprobe * 1.5)


def add_in_batches_plain(index: faiss.Index, vectors: np.ndarray, batch: int = 65_536) -> None:
    for start in range(0, len(vectors), batch):
        index.add(np.ascontiguousarray(vectors[start : start + batch], dtype=np.float32))


def add_in_batches(index: faiss.Index, ids: np.ndarray, vectors: np.ndarray, batch: int = 65_536) -> None:
    """Add without a second float32 copy of the whole matrix (1M × 512 is 2 GB)."""
    for start in range(0, len(ids), batch):
        index.add_with_ids(
            np.ascontiguousarray(vectors[start : start + batch], dtype=np.float32),
            np.asarray(ids[start : start + batch], dtype=np.int64),
        )


def in_memory_copy(index: faiss.Index) -> faiss.Index:
    """A writable in-memory copy of ``index``. ``faiss.clone_index`` cannot copy IVF lists mapped from a
    file (``IO_FLAG_MMAP``), so those are copied cell by cell into a new IVF with the same quantizer."""
    try:
        return faiss.clone_index(index)
    except RuntimeError:
        if not is_ivf(index):
            raise
    quantizer = faiss.clone_index(index.quantizer)
    copy = faiss.IndexIVFFlat(quantizer, index.d, index.nlist, index.metric_type)
    copy.own_fields = True
    quantizer.this.disown()
    lists = index.invlists
    for cell in range(index.nlist):
        size = lists.list_size(cell)
        if size:
            copy.invlists.add_entries(cell, size, lists.get_ids(cell), lists.get_codes(cell))
    copy.ntotal = index.ntotal
    copy.is_trained = True
    copy.set_direct_map_type(faiss.DirectMap.Hashtable)
    copy.nprobe = index.nprobe
    return copy


def is_ivf(index: faiss.Index) -> bool:
    return isinstance(index, faiss.IndexIVF)


def outgrown(index: faiss.Index, n: int) -> bool:
    """Whether ``n`` vectors have outgrown an IVF index's cells (trained for about nlist² vectors):
    past 4× that, lists are long and each probe scans too much, so the index is retrained."""
    return is_ivf(index) and n > 4 * index.nlist**2


def all_vectors(index: faiss.Index) -> tuple[np.ndarray, np.ndarray]:
    """(ids, vectors) of a flat ``IndexIDMap2`` or an IVF-Flat index, to rebuild it: as IVF when it
    outgrows exact search, with more cells when it outgrows its training."""
    if is_ivf(index):
        lists = index.invlists
        ids, vectors = [], []
        for cell in range(index.nlist):
            size = lists.list_size(cell)
            if size:
                ids.append(faiss.rev_swig_ptr(lists.get_ids(cell), size).copy())
                codes = faiss.rev_swig_ptr(lists.get_codes(cell), size * lists.code_size)
                vectors.append(np.frombuffer(codes, dtype=np.float32).reshape(size, index.d).copy())
        if not ids:
            return np.empty(0, np.int64), np.empty((0, index.d), np.float32)
        return np.concatenate(ids).astype(np.int64), np.concatenate(vectors)
    ids = faiss.vector_to_array(index.id_map).astype(np.int64)
    inner = faiss.downcast_index(index.index)
    vectors = faiss.rev_swig_ptr(inner.get_xb(), inner.ntotal * inner.d).reshape(inner.ntotal, inner.d).copy()
    return ids, vectors


def recall_at_k(approx: np.ndarray, exact: np.ndarray) -> float:
    """Mean share of the exact top-k ids that the approximate search also returned (rows = queries)."""
    hits = [len(set(a[a >= 0]) & set(e[e >= 0])) / max(1, (e >= 0).sum()) for a, e in zip(approx, exact)]
    return float(np.mean(hits)) if hits else 1.0
