"""BM25 over jieba search-mode tokens of folded text, from raw term-frequency postings
(``retrieval.bm25_segments``), scored at query time with bm25s's formula and parameters (the index was
bm25s until issue 19: its scores, and the answerability calibration fitted on them, are unchanged).

Incremental: adding chunks writes postings for them only (a small delta segment beside the
memory-mapped base), removing chunks tombstones their rows, and a merge rewrites the base when the
delta and tombstones pass ``MERGE_FRACTION`` of the index. A full build and any sequence of updates
give the same scores.

Besides the score, each candidate gets its *coverage*: the IDF-weighted share of the query's distinct
terms that the chunk contains. Raw BM25 is unbounded and means nothing across queries; coverage is in
[0, 1] and comparable across queries, which is what a refusal floor needs. A query term the knowledge
base has never seen keeps its full IDF in the denominator, so "火星卫星" asked of an HR handbook
scores near zero.
"""

from __future__ import annotations

import math
import uuid
from pathlib import Path

import numpy as np

from retrieval.bm25_segments import (
    Segment,
    build_segment,
    empty_segment,
    merge_segments,
    read_header,
    read_mapped,
    segment_from,
    write_mapped,
)
from retrieval.lexical import LexicalHits

# bm25s's defaults, which this index computed its scores with until it kept raw term frequencies (and
# which the answerability calibration was fitted on): method "lucene", k1 = 1.5, b = 0.75,
# idf = ln(1 + (N − df + 0.5) / (df + 0.5)), tf part = tf / (tf + k1 · (1 − b + b · len / avg len)).
K1, B = 1.5, 0.75
BASE_FORMAT = "bm25-postings-base-1"
DELTA_FORMAT = "bm25-postings-delta-1"
# Merge (rewrite the base) once the delta's rows plus the base's tombstones pass this share of the live
# chunks, or MERGE_MIN_ROWS, whichever is larger. Every update rewrites the delta file and every query
# reads the delta's postings and the tombstoned rows' postings (masked), so the share bounds both the
# per-ingest rewrite and the query overhead to ~10 % of a full index; a merge costs one full build from
# postings (no re-tokenising) and comes once per 10 % of the corpus changed, so amortised over the chunks
# that caused it each changed chunk pays for ~10 chunks' postings: O(1) per chunk. The floor keeps small
# knowledge bases from merging on every ingest (10k chunks' postings rewrite in well under a second);
# a delta bigger than the live base merges regardless (see ``updated``).
MERGE_FRACTION = 0.10
MERGE_MIN_ROWS = 10_000


def delta_path(path: Path) -> Path:
    """Where the delta segment and tombstones of the index saved at ``path`` live."""
    return path.with_name(path.name + ".delta")


class BM25Index:
    """A base segment (written at build or merge, memory-mapped), a delta segment for chunks added since
    (rewritten at every update: it is small) and the base rows deleted since (tombstones). Immutable:
    ``updated`` returns a new index sharing the base, so readers of this one are never disturbed.

    Rows: the base's, then the delta's. ``ids`` are the live chunks' ids in that order (tombstoned rows
    left out), and ``score``'s arrays and ``position`` are aligned with ``ids``, as they always were."""

    kind = "bm25"

    def __init__(self, ids: list[int], corpus_tokens: list[list[str]]) -> None:
        self._set(build_segment(ids, corpus_tokens), empty_segment(), np.zeros(0, np.int64), None)

    @classmethod
    def _of(cls, base: Segment, delta: Segment, dead: np.ndarray, base_uid: str | None) -> "BM25Index":
        index = cls.__new__(cls)
        index._set(base, delta, dead, base_uid)
        return index

    def _set(self, base: Segment, delta: Segment, dead: np.ndarray, base_uid: str | None) -> None:
        self._base, self._delta, self._base_uid = base, delta, base_uid
        self._dead = np.asarray(dead, dtype=np.int64)  # base rows deleted since the base was written, sorted
        self._row_ids = base.ids if delta.n == 0 else np.concatenate([base.ids, delta.ids])
        self._base_alive: np.ndarray | None = None
        self._alive: np.ndarray | None = None  # per row; None: no tombstones
        self.ids = self._row_ids
        if len(self._dead):
            self._base_alive = np.ones(base.n, dtype=bool)
            self._base_alive[self._dead] = False
            self._alive = np.concatenate([self._base_alive, np.ones(delta.n, dtype=bool)])
            self.ids = self._row_ids[self._alive]
        self._n_live = base.n - len(self._dead) + delta.n
        total = int(base.lengths.sum(dtype=np.int64)) + int(delta.lengths.sum(dtype=np.int64))
        if len(self._dead):
            total -= int(base.lengths[self._dead].sum(dtype=np.int64))
        self._avg_len = total / self._n_live if self._n_live else 1.0  # bm25s: mean of the lengths
        self._norm: np.ndarray | None = None
        self._df_cache: dict[str, int] = {}
        self._position: dict[int, int] | None = None
        self._sorted = False

    def count(self) -> int:
        """Live chunks (tombstoned rows excluded)."""
        return self._n_live

    def position(self, chunk_id: int) -> int | None:
        """Position of a chunk id in ``ids`` and the score arrays (None: not a live chunk). The catalogue
        hands ids in row-id order (and new chunks get larger ids), so a binary search finds it without a
        million-entry dict built on the first query; any other order falls back to the dict (built once
        per index)."""
        if self._position is None:
            ordered = len(self.ids) < 2 or bool(np.all(self.ids[1:] > self.ids[:-1]))
            self._position = {} if ordered else {int(i): j for j, i in enumerate(self.ids)}
            self._sorted = ordered
        if self._sorted:
            j = int(np.searchsorted(self.ids, int(chunk_id)))
            return j if j < len(self.ids) and self.ids[j] == chunk_id else None
        return self._position.get(int(chunk_id))

    def _df(self, token: str) -> int:
        """Live chunks containing ``token``."""
        df = self._df_cache.get(token)
        if df is None:
            df = 0
            span = self._base.span(token)
            if span is not None:
                a, b = span
                df += b - a if self._base_alive is None else int(np.count_nonzero(self._base_alive[self._base.rows[a:b]]))
            span = self._delta.span(token)
            if span is not None:
                df += span[1] - span[0]
            if len(self._df_cache) >= 200_000:  # query terms are open-ended: keep the cache bounded
                self._df_cache.clear()
            self._df_cache[token] = df
        return df

    def idf(self, token: str) -> float:
        n = self._n_live
        df = self._df(token)
        return math.log(1 + (n - df + 0.5) / (df + 0.5))

    def _length_norm(self) -> np.ndarray:
        """k1 · (1 − b + b · len / avg len) per row, in bm25s's order of operations (float64); once per
        index, since the average moves with every update."""
        if self._norm is None:
            lengths = self._base.lengths if self._delta.n == 0 else np.concatenate([self._base.lengths, self._delta.lengths])
            self._norm = K1 * ((1 - B) + B * lengths.astype(np.float64) / self._avg_len)
        return self._norm

    def score(self, query_tokens: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """BM25 score and coverage for every live chunk, aligned with ``self.ids``."""
        scores = np.zeros(len(self.ids), dtype=np.float32)
        covered = np.zeros(len(self.ids), dtype=np.float32)
        terms = list(dict.fromkeys(query_tokens))
        if not terms or self._n_live == 0:
            return scores, covered
        # Straight from the query terms' postings, numpy over each posting list written in place into
        # one buffer, then one bincount: what keeps a query over a million chunks in milliseconds. The
        # formula as bm25s computed it (idf rounded to float32, the tf part in float64); every posting
        # is positive (idf > 0, tf ≥ 1), so every posting counts towards coverage.
        weights = [self.idf(t) for t in terms]
        total_idf = float(sum(weights))
        spans = [(seg, offset, *span, w) for t, w in zip(terms, weights)
                 for seg, offset in ((self._base, 0), (self._delta, self._base.n)) if (span := seg.span(t)) is not None]
        if spans:
            norm = self._length_norm()
            lens = [b - a for _, _, a, b, _ in spans]
            docs = np.empty(sum(lens), dtype=np.intp)
            ts = np.empty(len(docs), dtype=np.float64)
            p = 0
            for (seg, offset, a, b, w), m in zip(spans, lens):
                d, s, tf = docs[p : p + m], ts[p : p + m], seg.tf[a:b]
                d[:] = seg.rows[a:b]
                if offset:
                    d += offset
                np.take(norm, d, out=s)
                s += tf
                np.divide(tf, s, out=s)
                s *= np.float64(np.float32(w))
                p += m
            idf_of_posting = np.repeat(np.asarray([w for *_, w in spans], dtype=np.float32).astype(np.float64), lens)
            n = len(self._row_ids)
            scores = np.bincount(docs, weights=ts, minlength=n).astype(np.float32)
            covered = np.bincount(docs, weights=idf_of_posting, minlength=n).astype(np.float32)
            if self._alive is not None:  # tombstoned rows out: aligned with ids
                scores, covered = scores[self._alive], covered[self._alive]
        return scores, covered / total_idf if total_idf > 0 else covered

    # -- updates -----------------------------------------------------------------------------------
    def updated(self, add_ids: list[int], add_tokens: list[list[str]], remove_ids: list[int],
                merge_fraction: float = MERGE_FRACTION, merge_min_rows: int = MERGE_MIN_ROWS) -> "BM25Index":
        """This index with ``remove_ids`` gone (ids it does not hold are ignored) and ``add_ids`` added
        (their tokens in ``add_tokens``): postings for the new chunks only, the delta rewritten, the
        base untouched unless the delta and tombstones pass the merge threshold (then one merged base).
        Scores equal a full build's over the resulting chunks."""
        base, delta = self._base, self._delta
        remove = np.unique(np.asarray(list(remove_ids), dtype=np.int64))
        dead = self._dead
        delta_keep: np.ndarray | None = None
        if len(remove):
            hit = _rows_of(base.ids, remove)
            dead = np.union1d(dead, hit).astype(np.int64)
            gone_in_delta = _rows_of(delta.ids, remove)
            if len(gone_in_delta):
                delta_keep = np.ones(delta.n, dtype=bool)
                delta_keep[gone_in_delta] = False
        if len(add_ids) or delta_keep is not None:
            delta = merge_segments([delta, build_segment(add_ids, add_tokens)], [delta_keep, None])
        live = base.n - len(dead) + delta.n
        # a delta larger than the base (the first ingest into a new knowledge base, say) merges at once:
        # then the merge costs less than twice the delta rewrite already paid for, and the base at
        # least doubles each time this fires, so it too stays O(1) per chunk amortised
        if delta.n + len(dead) > max(merge_min_rows, merge_fraction * live) or delta.n > base.n - len(dead):
            keep = None
            if len(dead):
                keep = np.ones(base.n, dtype=bool)
                keep[dead] = False
            return BM25Index._of(merge_segments([base, delta], [keep, None]), empty_segment(), np.zeros(0, np.int64), None)
        return BM25Index._of(base, delta, dead, self._base_uid)

    @property
    def pending(self) -> tuple[int, int]:
        """(rows in the delta, tombstoned base rows): what the next merge folds in."""
        return self._delta.n, len(self._dead)

    # -- files -------------------------------------------------------------------------------------
    def save(self, path: Path, version: int) -> None:
        """The base to ``path`` (only when it is not already there: written at build or merge), then
        the delta and tombstones to ``path.delta``, stamped with ``version`` and naming the base they go
        with. Both writes are atomic and the delta goes last, so a crash in between leaves a delta that
        names another base: ``load`` answers None and the caller rebuilds. Arrays are pickle protocol 5
        out of band, 64-byte aligned, so ``load`` maps them (a million chunks open in milliseconds, and
        processes that open the same file share its pages)."""
        on_disk = read_header(path) if self._base_uid is not None else None
        if on_disk is None or on_disk.get("format") != BASE_FORMAT or on_disk.get("uid") != self._base_uid:
            uid = uuid.uuid4().hex
            write_mapped(path, {"format": BASE_FORMAT, "uid": uid, "rows": self._base.n}, self._base.arrays())
            self._base_uid = uid
        header = {"version": version, "count": self.count(), "format": DELTA_FORMAT, "base": self._base_uid,
                  "delta_rows": self._delta.n, "tombstones": len(self._dead)}
        write_mapped(delta_path(path), header, {"delta": self._delta.arrays(), "dead": self._dead})

    @classmethod
    def load(cls, path: Path) -> tuple["BM25Index", dict] | None:
        """The index saved at ``path`` and its delta's header (version, count), or None when either file
        is missing, unreadable, of an older format (bm25s-era files included) or the two do not belong
        together: the caller rebuilds."""
        delta = read_mapped(delta_path(path), DELTA_FORMAT)
        base = read_mapped(path, BASE_FORMAT)
        if delta is None or base is None:
            return None
        header, payload = delta
        if base[0].get("uid") != header.get("base"):
            return None
        try:
            index = cls._of(segment_from(base[1]), segment_from(payload["delta"]), payload["dead"], header["base"])
        except Exception:
            return None
        return index, header

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


def _rows_of(ids: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Rows of ``ids`` holding one of ``wanted`` (sorted, unique)."""
    if len(ids) == 0 or len(wanted) == 0:
        return np.zeros(0, np.int64)
    return np.flatnonzero(np.isin(ids, wanted)).astype(np.int64)
