"""BM25 over jieba search-mode tokens of folded text (bm25s: sparse matrices, fast).

Besides the score, each candidate gets its *coverage*: the IDF-weighted share of the query's distinct
terms that the chunk contains. Raw BM25 is unbounded and means nothing across queries; coverage is in
[0, 1] and comparable across queries, which is what a refusal floor needs. A query term the knowledge
base has never seen keeps its full IDF in the denominator, so "火星卫星" asked of an HR handbook
scores near zero.
"""

from __future__ import annotations

import math
import mmap
import pickle
from pathlib import Path

import bm25s
import numpy as np

from retrieval.lexical import LexicalHits
from retrieval.stamped import open_stamped, write_stamped_stream

MMAP_FORMAT = "pickle5-mapped"
ALIGN = 64


class BM25Index:
    kind = "bm25"

    def __init__(self, ids: list[int], corpus_tokens: list[list[str]]) -> None:
        self.ids = np.asarray(ids, dtype=np.int64)
        self._retriever: bm25s.BM25 | None = None
        self._position: dict[int, int] | None = None
        self._sorted = False
        if len(ids):
            self._retriever = bm25s.BM25()
            # A chunk with no indexable token still needs a row so positions line up with ids.
            self._retriever.index([t or [""] for t in corpus_tokens], show_progress=False)

    def count(self) -> int:
        return len(self.ids)

    def position(self, chunk_id: int) -> int | None:
        """Row of a chunk id in the score arrays. The catalogue hands ids in row-id order, so a binary
        search finds it without a million-entry dict built on the first query; any other order falls
        back to the dict (built once per index)."""
        if self._position is None:
            ordered = len(self.ids) < 2 or bool(np.all(self.ids[1:] > self.ids[:-1]))
            self._position = {} if ordered else {int(i): j for j, i in enumerate(self.ids)}
            self._sorted = ordered
        if self._sorted:
            j = int(np.searchsorted(self.ids, int(chunk_id)))
            return j if j < len(self.ids) and self.ids[j] == chunk_id else None
        return self._position.get(int(chunk_id))

    def _df(self, token: str) -> int:
        r = self._retriever
        tid = r.vocab_dict.get(token) if r is not None else None
        if tid is None:
            return 0
        indptr = r.scores["indptr"]
        return int(indptr[tid + 1] - indptr[tid])

    def idf(self, token: str) -> float:
        n = len(self.ids)
        df = self._df(token)
        return math.log(1 + (n - df + 0.5) / (df + 0.5))

    def score(self, query_tokens: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """BM25 score and coverage for every chunk, aligned with ``self.ids``."""
        n = len(self.ids)
        scores = np.zeros(n, dtype=np.float32)
        covered = np.zeros(n, dtype=np.float32)
        terms = list(dict.fromkeys(query_tokens))
        if not terms or self._retriever is None:
            return scores, covered
        # Straight from the postings (bm25s keeps per-term doc scores in CSC arrays): one pass over the
        # query terms' postings instead of one pass over every chunk per term, which is what keeps a
        # query over a million chunks in milliseconds.
        r = self._retriever
        data, indices, indptr = r.scores["data"], r.scores["indices"], r.scores["indptr"]
        weights = [self.idf(t) for t in terms]
        total_idf = float(sum(weights))
        spans = [(indptr[tid], indptr[tid + 1], w) for t, w in zip(terms, weights)
                 if (tid := r.vocab_dict.get(t)) is not None]
        if spans:
            docs = np.concatenate([indices[a:b] for a, b, _ in spans])
            term_scores = np.concatenate([data[a:b] for a, b, _ in spans])
            idf_of_posting = np.concatenate([np.full(b - a, w, dtype=np.float32) for a, b, w in spans])
            positive = term_scores > 0
            scores = np.bincount(docs, weights=term_scores, minlength=n).astype(np.float32)
            covered = np.bincount(docs[positive], weights=idf_of_posting[positive], minlength=n).astype(np.float32)
        return scores, covered / total_idf if total_idf > 0 else covered

    def candidates(self, query: str, tokens: list[str], k: int, allowed_ids: list[int] | None = None) -> LexicalHits:
        """The best ``k`` chunks for ``tokens`` (``retrieval.lexical``); ``query`` is for remote stores
        that tokenise it themselves."""
        scores, coverage = self.score(tokens)
        if allowed_ids is not None and len(scores):
            scores = np.where(np.isin(self.ids, np.asarray(allowed_ids, dtype=np.int64)), scores, 0.0)
        top: dict[int, float] = {}
        if len(scores) and k > 0:
            k = min(k, len(scores))
            order = np.argpartition(-scores, k - 1)[:k]  # O(N), not a full sort of every chunk
            order = order[np.argsort(-scores[order], kind="stable")]
            top = {int(self.ids[j]): float(scores[j]) for j in order if scores[j] > 0}

        def scores_of(ids: list[int]) -> tuple[dict[int, float], dict[int, float]]:
            rows = {i: self.position(i) for i in ids}
            return ({i: float(scores[j]) for i, j in rows.items() if j is not None},
                    {i: float(coverage[j]) for i, j in rows.items() if j is not None})

        raw, cov = scores_of(list(top))
        return LexicalHits(top=top, coverage=cov, unseen=self.unseen_share(tokens) if tokens else 1.0, scores_of=scores_of)

    def unseen_share(self, query_tokens: list[str]) -> float:
        """IDF share of the query's distinct terms that no chunk contains: high for off-topic questions."""
        terms = list(dict.fromkeys(query_tokens))
        if not terms:
            return 1.0
        weights = {t: self.idf(t) for t in terms}
        total = sum(weights.values())
        unseen = sum(w for t, w in weights.items() if self._df(t) == 0)
        return unseen / total if total > 0 else 1.0

    def save(self, path: Path, version: int) -> None:
        """Pickle protocol 5 with the arrays out of band, each 64-byte aligned after the pickle, so
        ``load`` maps them instead of copying: a million chunks' postings (≈ 0.6 GB) open in
        milliseconds, and processes that open the same file share its pages."""
        buffers: list[pickle.PickleBuffer] = []
        pickled = pickle.dumps((self.ids, self._retriever), protocol=5, buffer_callback=buffers.append)
        raws = [b.raw() for b in buffers]
        spans, pos = [], len(pickled)
        for raw in raws:
            pos += -pos % ALIGN
            spans.append([pos, raw.nbytes])
            pos += raw.nbytes

        def write_payload(f) -> None:
            start = f.tell()
            f.write(pickled)
            for (offset, _), raw in zip(spans, raws):
                f.write(b"\0" * (start + offset - f.tell()))
                f.write(raw)

        header = {"version": version, "count": self.count(), "format": MMAP_FORMAT, "pickle": len(pickled), "buffers": spans}
        write_stamped_stream(path, header, write_payload, align=ALIGN)

    @classmethod
    def load(cls, path: Path) -> tuple["BM25Index", dict] | None:
        opened = open_stamped(path)
        if opened is None:
            return None
        header, f = opened
        try:
            with f:
                if header.get("format") == MMAP_FORMAT:
                    start = f.tell()
                    view = memoryview(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ))
                    buffers = [view[start + a : start + a + n] for a, n in header["buffers"]]
                    ids, retriever = pickle.loads(view[start : start + header["pickle"]], buffers=buffers)
                else:  # a file written before the mapped format
                    ids, retriever = pickle.loads(f.read())
        except Exception:  # any unreadable file means "rebuild", never "crash"
            return None
        index = cls([], [])
        index.ids, index._retriever, index._position = ids, retriever, None
        return index, header
