"""Postings segments of the local BM25 index (``retrieval.bm25.BM25Index``): raw term frequencies, not
scores, so a segment never goes stale when the corpus around it grows.

A segment is a column-compressed term × chunk matrix of term frequencies: ``indptr`` (per term id, where
its postings start), ``rows`` (chunk rows, ascending within a term) and ``tf``, plus each chunk's id and
length in tokens and the vocabulary (term → term id, the dict's order is the id order). BM25 is computed
at query time from the index's current N, document frequencies and average length, so adding chunks
writes postings for the new chunks only, and every score equals a full rebuild's.

Everything here is numpy over whole arrays; the only per-token Python is turning new chunks' tokens
into term ids, which is the O(new chunks) part of an update.
"""

from __future__ import annotations

import mmap
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from retrieval.stamped import open_stamped, write_stamped_stream

ALIGN = 64
BUILD_BATCH = 65_536  # chunks tokenised into (term, row, tf) triples at a time: bounds a full build's memory


@dataclass
class Segment:
    ids: np.ndarray  # int64 [n]: chunk (catalogue row) ids
    lengths: np.ndarray  # int32 [n]: tokens per chunk (an empty chunk is one "" token, as bm25s indexed it)
    vocab: dict[str, int]  # term → term id; insertion order is id order
    indptr: np.ndarray  # int64 [V + 1]
    rows: np.ndarray  # int32 [P]: chunk rows, ascending within each term
    tf: np.ndarray  # float32 [P]: term frequency in that chunk

    @property
    def n(self) -> int:
        return len(self.ids)

    def span(self, term: str) -> tuple[int, int] | None:
        tid = self.vocab.get(term)
        if tid is None:
            return None
        a, b = int(self.indptr[tid]), int(self.indptr[tid + 1])
        return (a, b) if b > a else None

    def arrays(self) -> dict[str, Any]:
        return {"ids": self.ids, "lengths": self.lengths, "vocab": self.vocab, "indptr": self.indptr,
                "rows": self.rows, "tf": self.tf}


def empty_segment() -> Segment:
    return Segment(np.zeros(0, np.int64), np.zeros(0, np.int32), {}, np.zeros(1, np.int64),
                   np.zeros(0, np.int32), np.zeros(0, np.float32))


def _csc(vocab: dict[str, int], terms: np.ndarray, rows: np.ndarray, tf: np.ndarray) -> tuple[np.ndarray, ...]:
    """(indptr, rows, tf) from triples in row order: a stable sort by term keeps rows ascending."""
    order = np.argsort(terms, kind="stable")
    counts = np.bincount(terms, minlength=len(vocab)) if len(terms) else np.zeros(len(vocab), np.int64)
    indptr = np.zeros(len(vocab) + 1, np.int64)
    np.cumsum(counts, out=indptr[1:])
    return indptr, rows[order].astype(np.int32, copy=False), tf[order].astype(np.float32, copy=False)


def build_segment(ids: Iterable[int], token_lists: list[list[str]]) -> Segment:
    """A segment over ``token_lists`` (one list per chunk, in row order)."""
    ids = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids, dtype=np.int64)
    docs = [t or [""] for t in token_lists]  # a chunk without tokens still has a row (bm25s did the same)
    n = len(docs)
    lengths = np.fromiter((len(d) for d in docs), dtype=np.int64, count=n)
    vocab: dict[str, int] = {}
    terms_parts, rows_parts, tf_parts = [], [], []
    for start in range(0, n, BUILD_BATCH):
        part = docs[start : start + BUILD_BATCH]
        part_lengths = lengths[start : start + len(part)]
        flat = np.fromiter((vocab.setdefault(t, len(vocab)) for d in part for t in d), dtype=np.int64,
                           count=int(part_lengths.sum()))
        local = np.repeat(np.arange(len(part), dtype=np.int64), part_lengths)
        keys, tf = np.unique(local * (len(vocab) + 1) + flat, return_counts=True)  # row-major: sorted by row, then term
        terms_parts.append((keys % (len(vocab) + 1)).astype(np.int32))
        rows_parts.append((keys // (len(vocab) + 1) + start).astype(np.int32))
        tf_parts.append(tf.astype(np.float32))
    if terms_parts:
        indptr, rows, tf = _csc(vocab, np.concatenate(terms_parts), np.concatenate(rows_parts), np.concatenate(tf_parts))
    else:
        indptr, rows, tf = np.zeros(1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.float32)
    return Segment(ids, lengths.astype(np.int32), vocab, indptr, rows, tf)


def merge_segments(segments: list[Segment], keep: list[np.ndarray | None]) -> Segment:
    """One segment holding the rows of ``segments`` in order, without the rows whose ``keep`` is False
    (None: keep all). Terms left with no postings are dropped from the vocabulary. Pure numpy apart
    from one pass over the vocabularies."""
    vocab: dict[str, int] = {}
    ids, lengths, terms, rows, tfs = [], [], [], [], []
    offset = 0
    for seg, mask in zip(segments, keep):
        if seg.n == 0:
            continue
        tid_map = np.fromiter((vocab.setdefault(t, len(vocab)) for t in seg.vocab), dtype=np.int64, count=len(seg.vocab))
        seg_terms = tid_map[np.repeat(np.arange(len(seg.vocab), dtype=np.int64), np.diff(seg.indptr))]
        seg_rows, seg_tf = np.asarray(seg.rows, dtype=np.int64), seg.tf
        seg_ids, seg_lengths = seg.ids, seg.lengths
        if mask is not None and not mask.all():
            alive = mask[seg_rows]
            renumber = np.cumsum(mask, dtype=np.int64) - 1
            seg_terms, seg_rows, seg_tf = seg_terms[alive], renumber[seg_rows[alive]], seg_tf[alive]
            seg_ids, seg_lengths = seg_ids[mask], seg_lengths[mask]
        # term-major within the segment, rows ascending per term, and later segments' rows are larger:
        # the final stable sort by term keeps every term's rows ascending across segments
        terms.append(seg_terms)
        rows.append(seg_rows + offset)
        tfs.append(seg_tf)
        ids.append(np.asarray(seg_ids, dtype=np.int64))
        lengths.append(np.asarray(seg_lengths, dtype=np.int32))
        offset += len(seg_ids)
    if not ids:
        return empty_segment()
    all_terms = np.concatenate(terms)
    counts = np.bincount(all_terms, minlength=len(vocab))
    if (counts == 0).any():  # terms only deleted chunks had: out of the vocabulary
        used = counts > 0
        remap = np.cumsum(used, dtype=np.int64) - 1
        vocab = {t: int(remap[i]) for t, i in vocab.items() if used[i]}
        all_terms = remap[all_terms]
    indptr, all_rows, all_tf = _csc(vocab, all_terms, np.concatenate(rows), np.concatenate(tfs))
    return Segment(np.concatenate(ids), np.concatenate(lengths), vocab, indptr, all_rows, all_tf)


def segment_from(arrays: dict[str, Any]) -> Segment:
    return Segment(**{k: arrays[k] for k in ("ids", "lengths", "vocab", "indptr", "rows", "tf")})


# -- files: pickle protocol 5 with the arrays out of band, 64-byte aligned, memory-mapped on load -------
def write_mapped(path: Path, header: dict[str, Any], obj: Any) -> None:
    """``obj`` pickled with its arrays after the pickle, each 64-byte aligned, in one stamped file
    (``retrieval.stamped``: temp file, fsync, rename), so ``read_mapped`` maps them instead of copying."""
    buffers: list[pickle.PickleBuffer] = []
    pickled = pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
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

    write_stamped_stream(path, {**header, "pickle": len(pickled), "buffers": spans}, write_payload, align=ALIGN)


def read_header(path: Path) -> dict[str, Any] | None:
    opened = open_stamped(path)
    if opened is None:
        return None
    opened[1].close()
    return opened[0]


def read_mapped(path: Path, fmt: str) -> tuple[dict[str, Any], Any] | None:
    """(header, object) of a file ``write_mapped`` wrote with ``header["format"] == fmt``, its arrays
    read-only views of the mapped file; None when missing, of another format, or unreadable."""
    opened = open_stamped(path)
    if opened is None:
        return None
    header, f = opened
    try:
        with f:
            if header.get("format") != fmt:
                return None
            start = f.tell()
            view = memoryview(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ))
            buffers = [view[start + a : start + a + n] for a, n in header["buffers"]]
            return header, pickle.loads(view[start : start + header["pickle"]], buffers=buffers)
    except Exception:  # any unreadable file means "rebuild", never "crash"
        return None
