"""The hybrid retriever: one query vector, BM25 scores, fusion, top-k, and an absolute relevance.

The retriever knows nothing about how chunks are stored: the knowledge base hands it its indexes and
a function that turns chunk ids into ``Chunk`` objects. That keeps retrieval free of ingest imports.

Relevance (what the refusal floor compares against) is the mean of coverage and cosine in hybrid
mode: coverage rewards questions that reuse the document's words, the cosine paraphrases. Both are
absolute scales, unlike the fused score, which only orders the candidates of one query. On CMRC 2018
with half the articles held out (``python -m eval.bench_refusal``), the mean separated answerable
from unanswerable questions better than either signal alone or their maximum (see README).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Literal

import numpy as np

from core.models import Chunk, Hit
from core.text import fold, search_tokens
from retrieval.bm25 import BM25Index
from retrieval.embedders import Embedder
from retrieval.faiss_store import FaissStore
from retrieval.fusion import reciprocal_rank_fusion, weighted_fusion

ChunkLookup = Callable[[list[int]], dict[int, Chunk]]
Mode = Literal["hybrid", "dense", "bm25"]


@dataclass
class RetrievalResult:
    hits: list[Hit]
    timings_ms: dict[str, float]

    @property
    def best_relevance(self) -> float:
        return max((h.relevance for h in self.hits), default=0.0)


class HybridRetriever:
    def __init__(
        self,
        embedder: Embedder,
        vectors: FaissStore,
        bm25: BM25Index,
        lookup: ChunkLookup,
        mode: Mode = "hybrid",
        bm25_weight: float = 1.0,
        dense_weight: float = 0.5,
        fusion: Literal["weighted", "rrf"] = "weighted",
    ) -> None:
        self.embedder = embedder
        self.vectors = vectors
        self.bm25 = bm25
        self.lookup = lookup
        self.mode = mode
        self.bm25_weight = bm25_weight
        self.dense_weight = dense_weight
        self.fusion = fusion

    def search(self, query: str, top_k: int = 5, allowed_ids: list[int] | None = None) -> RetrievalResult:
        """``allowed_ids`` (chunk row ids, e.g. the chunks of some documents) restricts both retrievers."""
        timings: dict[str, float] = {}
        n_candidates = max(top_k * 4, 20)
        t0 = time.perf_counter()
        tokens = search_tokens(query) if self.mode != "dense" else []
        bm25_scores, coverage = self.bm25.score(tokens)
        if allowed_ids is not None and len(bm25_scores):
            keep = np.isin(self.bm25.ids, np.asarray(allowed_ids, dtype=np.int64))
            bm25_scores = np.where(keep, bm25_scores, 0.0)
        bm25_top: dict[int, float] = {}
        if self.mode != "dense" and len(bm25_scores):
            k = min(n_candidates, len(bm25_scores))
            order = np.argpartition(-bm25_scores, k - 1)[:k]  # O(N), not a full sort of every chunk
            bm25_top = {int(self.bm25.ids[j]): float(bm25_scores[j]) for j in order if bm25_scores[j] > 0}
        timings["bm25"] = (time.perf_counter() - t0) * 1000

        dense_top: dict[int, float] = {}
        if self.mode != "bm25":
            t1 = time.perf_counter()
            qvec = self.embedder.embed_query(fold(query))
            timings["embed"] = (time.perf_counter() - t1) * 1000
            t2 = time.perf_counter()
            dense_top = dict(self.vectors.search(qvec, n_candidates, allowed_ids=allowed_ids))
            if self.mode == "hybrid":
                missing = [i for i in bm25_top if i not in dense_top]
                dense_top.update(self.vectors.similarity(qvec, missing))
            timings["dense"] = (time.perf_counter() - t2) * 1000

        if self.mode == "bm25":
            fused = bm25_top
        elif self.mode == "dense":
            fused = dense_top
        elif self.fusion == "rrf":
            fused = reciprocal_rank_fusion(
                [sorted(bm25_top, key=bm25_top.__getitem__, reverse=True), sorted(dense_top, key=dense_top.__getitem__, reverse=True)]
            )
        else:
            fused = weighted_fusion(bm25_top, dense_top, self.bm25_weight, self.dense_weight)

        ranked = sorted(fused, key=lambda i: (-fused[i], i))[:top_k]
        chunks = self.lookup(ranked)
        hits = []
        for i in ranked:
            if i not in chunks:  # deleted between index and catalogue read: never cite a ghost
                continue
            j = self.bm25.position(i)
            cov = float(coverage[j]) if j is not None else 0.0
            raw_bm25 = float(bm25_scores[j]) if j is not None else 0.0
            cos = dense_top.get(i)
            relevance = _relevance(self.mode, cov, cos)
            hits.append(
                Hit(chunk=chunks[i], score=float(fused[i]), relevance=relevance, dense=cos, bm25=raw_bm25, coverage=cov, rank=len(hits) + 1)
            )
        timings["retrieve"] = (time.perf_counter() - t0) * 1000
        return RetrievalResult(hits, timings)


def _relevance(mode: Mode, coverage: float, cosine: float | None) -> float:
    cos = max(cosine or 0.0, 0.0)
    if mode == "bm25":
        return coverage
    if mode == "dense":
        return cos
    return (coverage + cos) / 2
