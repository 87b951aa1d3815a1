"""BM25 answered by Milvus (full-text search on a ``MilvusStore`` created with ``full_text=True``), behind
the same candidate interface as the in-process index (``retrieval.lexical``), so the retriever fuses
with the same weights and computes the same relevance features on either.

Per query: one BM25 search for the candidates; one read of the query terms' document frequencies
(zhiwen's tokens, counted in a small collection beside the chunks: ``retrieval.milvus_terms``; IDF
weights coverage and the unseen share); the candidates' stored text, tokenised by zhiwen
(``core.text.search_tokens``) for their coverage. Nothing proportional to the knowledge base lives in
this process.

Why not Milvus's ``hybrid_search`` with its RRF or weighted ranker: both rankers see only ranks or
squashed scores, while zhiwen fuses max-normalised BM25 with min-max cosine, the dense weight gated on
BM25 coverage (``retrieval.fusion``), and its refusal calibration reads raw cosines and coverage. The
dense and sparse requests go to Milvus separately and are fused here, exactly as on FAISS.
"""

from __future__ import annotations

import math
from pathlib import Path

from core.text import fold, search_tokens
from retrieval.lexical import LexicalHits
from retrieval.milvus_store import MilvusStore


class MilvusBM25:
    kind = "milvus-bm25"

    def __init__(self, store: MilvusStore) -> None:
        if not store.full_text:
            raise ValueError("该 Milvus 集合没有全文检索字段 (collection has no full-text field)")
        self.store = store
        self._df: dict[str, int] = {}  # term → document frequency, for self._df_count chunks
        self._df_count = -1

    def count(self) -> int:
        return self.store.count()

    def _frequencies(self, terms: list[str]) -> tuple[int, dict[str, int]]:
        """(chunk count, document frequency of each term), remembered until the count changes (the
        extractive answer asks the IDF of every word of its candidate sentences)."""
        n = self.store.count()
        if n != self._df_count or len(self._df) > 100_000:
            self._df, self._df_count = {}, n
        missing = [t for t in terms if t not in self._df]
        if missing:
            self._df.update(self.store.document_frequencies(missing))
        return n, {t: self._df[t] for t in terms}

    def idf(self, token: str) -> float:
        """BM25's IDF of ``token``, as ``BM25Index.idf``."""
        n, df = self._frequencies([token])
        return math.log(1 + (n - df[token] + 0.5) / (df[token] + 0.5))

    def candidates(self, query: str, tokens: list[str], k: int, allowed_ids: list[int] | None = None) -> LexicalHits:
        terms = list(dict.fromkeys(tokens))
        if not terms:
            return LexicalHits()
        n, df = self._frequencies(terms)
        idf = {t: math.log(1 + (n - d + 0.5) / (d + 0.5)) for t, d in df.items()}
        total = sum(idf.values())
        unseen = sum(w for t, w in idf.items() if df[t] == 0) / total if total > 0 else 1.0

        def coverage_of(ids: list[int]) -> dict[int, float]:
            out = {}
            for i, text in self.store.texts(ids).items():
                present = set(search_tokens(text))
                out[i] = sum(w for t, w in idf.items() if t in present) / total if total > 0 else 0.0
            return out

        def scores_of(ids: list[int]) -> tuple[dict[int, float], dict[int, float]]:
            raw = dict(self.store.full_text_search(fold(query), len(ids), allowed_ids=ids)) if ids else {}
            return raw, coverage_of(ids)

        top = dict(self.store.full_text_search(fold(query), k, allowed_ids))
        return LexicalHits(top=top, coverage=coverage_of(list(top)), unseen=unseen, scores_of=scores_of)

    def save(self, path: Path, version: int) -> None:
        """BM25 lives in the collection, which the vector store flushes and stamps: nothing to write."""
