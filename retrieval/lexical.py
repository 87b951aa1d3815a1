"""What the retriever asks of a lexical (BM25) side, whichever holds it: the BM25 index in this process
(``retrieval.bm25.BM25Index``) or Milvus's full-text search (``retrieval.milvus_bm25.MilvusBM25``).

Only candidates travel: the best ``k`` chunks with their raw BM25 scores and coverage, the query's
unseen share, and, for the few hits the dense side adds, their scores on demand. So a store that ranks
BM25 remotely never has to hand over a score for every chunk, and the retriever fuses and computes
relevance features the same way for both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

ScoresOf = Callable[[list[int]], tuple[dict[int, float], dict[int, float]]]


def _nothing(ids: list[int]) -> tuple[dict[int, float], dict[int, float]]:
    return {}, {}


@dataclass
class LexicalHits:
    top: dict[int, float] = field(default_factory=dict)  # chunk id → raw BM25, best first, scores > 0
    coverage: dict[int, float] = field(default_factory=dict)  # chunk id → IDF-weighted share of query terms
    unseen: float = 1.0  # IDF share of the query's terms no chunk contains
    scores_of: ScoresOf = _nothing  # (raw BM25, coverage) of any chunk ids, e.g. dense-only hits

    @property
    def best_coverage(self) -> float:
        return max((self.coverage.get(i, 0.0) for i in self.top), default=0.0)

    def for_ids(self, ids: list[int]) -> tuple[dict[int, float], dict[int, float]]:
        """(raw BM25, coverage) of ``ids``: known candidates from memory, the others asked for once."""
        missing = [i for i in ids if i not in self.top]
        raw, cov = self.scores_of(missing) if missing else ({}, {})
        raw = {**raw, **{i: self.top[i] for i in ids if i in self.top}}
        cov = {**cov, **{i: self.coverage[i] for i in ids if i in self.coverage}}
        return {i: raw.get(i, 0.0) for i in ids}, {i: cov.get(i, 0.0) for i in ids}
