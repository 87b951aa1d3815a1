"""Chunking on sentence boundaries.

Sizes are counted in jieba tokens (see core.text.count_tokens). A chunk never cuts inside a sentence
unless that sentence alone is longer than the chunk size; then it is cut on jieba word boundaries.
Chunks never span two pages or cross a heading: a heading starts a new chunk and sets the heading path.
Overlap repeats the previous chunk's last whole sentences, up to ``overlap`` tokens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.text import count_tokens, split_sentences, trim_span, word_spans

_HEADING_RE = re.compile(r"^(#{1,6})\s+(.+)$")


@dataclass
class ChunkSpan:
    start: int
    end: int
    page: int | None
    heading_path: list[str]
    n_tokens: int


@dataclass
class _Sentence:
    start: int
    end: int
    n_tokens: int
    heading: tuple[int, str] | None = None  # (level, title) when the sentence is a heading line


def _sentences(text: str, start: int, end: int) -> list[_Sentence]:
    out = []
    for a, b in split_sentences(text, start, end):
        m = _HEADING_RE.match(text[a:b])
        heading = (len(m.group(1)), m.group(2).strip()) if m else None
        out.append(_Sentence(a, b, count_tokens(text[a:b]), heading))
    return out


def _split_long(text: str, s: _Sentence, size: int) -> list[_Sentence]:
    """Cut an over-long sentence into windows of at most ``size`` jieba tokens, on word boundaries."""
    pieces: list[_Sentence] = []
    piece_start, n = s.start, 0
    for word, w_start, w_end in word_spans(text[s.start : s.end]):
        if word.isspace():
            continue
        if n >= size:
            pieces.append(_Sentence(piece_start, s.start + w_start, n))
            piece_start, n = s.start + w_start, 0
        n += 1
    if pieces and n <= 2:
        pieces[-1] = _Sentence(pieces[-1].start, s.end, pieces[-1].n_tokens + n)  # no lone "。" piece
    else:
        pieces.append(_Sentence(piece_start, s.end, n))
    return [_Sentence(*trim_span(text, p.start, p.end), p.n_tokens) for p in pieces if text[p.start : p.end].strip()]


def chunk_text(
    text: str,
    page_spans: list[tuple[int, int, int]] | None,
    size: int,
    overlap: int,
    paged: bool = False,
) -> list[ChunkSpan]:
    """Chunk spans over ``text``. ``page_spans`` are (start, end, page) ranges; chunks stay inside one."""
    out: list[ChunkSpan] = []
    heading_stack: list[tuple[int, str]] = []
    for p_start, p_end, page in page_spans or [(0, len(text), 1)]:
        current: list[_Sentence] = []  # the chunk being built: overlap sentences, then new ones
        n_new = 0

        def flush(keep_overlap: bool) -> None:
            nonlocal current, n_new
            if n_new:
                out.append(
                    ChunkSpan(
                        current[0].start,
                        current[-1].end,
                        page if paged else None,
                        [title for _, title in heading_stack],
                        sum(s.n_tokens for s in current),
                    )
                )
            tail: list[_Sentence] = []
            if keep_overlap and n_new:
                budget = overlap
                for s in reversed(current):
                    if s.n_tokens > budget or s.heading is not None:
                        break
                    tail.insert(0, s)
                    budget -= s.n_tokens
            current, n_new = tail, 0

        for s in _sentences(text, p_start, p_end):
            if s.heading is not None:
                # A heading opens a new chunk, unless the current one holds only headings so far
                # ("# 制度\n## 住宿" stays together with the text under it).
                if any(c.heading is None for c in current[len(current) - n_new :]):
                    flush(keep_overlap=False)
                elif n_new == 0:
                    current = []
                level, title = s.heading
                heading_stack[:] = [h for h in heading_stack if h[0] < level] + [(level, title)]
            if s.n_tokens > size:
                flush(keep_overlap=False)
                for piece in _split_long(text, s, size):
                    current, n_new = [piece], 1
                    flush(keep_overlap=False)
                continue
            while current and sum(c.n_tokens for c in current) + s.n_tokens > size:
                if n_new:
                    flush(keep_overlap=True)
                else:
                    current.pop(0)  # overlap that no longer fits beside the new sentence
            current.append(s)
            n_new += 1
        flush(keep_overlap=False)
    return out
