"""Chunking on sentence boundaries.

Sizes are counted in jieba tokens (see core.text.count_tokens). A chunk never cuts inside a sentence
unless that sentence alone is longer than the chunk size; then it is cut on jieba word boundaries.
Chunks never span two pages or cross a heading: a heading starts a new chunk and sets the heading path.
Overlap repeats the previous chunk's last whole sentences, up to ``overlap`` tokens. ``index_text`` is
what the indexes (BM25, the embedder, Milvus's own BM25) see of a chunk: its title and heading path above
its text.

A table row is one unit however many sentences its cells hold (``ingest.tables.split_units``): a chunk
ends between rows, never inside one (a row alone over the size is cut on words, as a long sentence is).
A chunk that starts inside a table (``a | b`` rows below the table's header row) gets that header row as
the last entry of its heading path. Not in its text: ``Chunk.text`` must stay exactly
``cleaned_text[start:end]``, since citations quote those offsets. The heading path is what
``ingest.pipeline.index_text`` puts above the text for the embedder and BM25, it is stored with the
chunk (a re-embed rebuilds the same index text from the catalogue) and the LLM prompt shows it as the
passage's place, so "二线城市 | 450元" is indexed and read under "城市级别 | 普通员工". Records
(``列名: 值；…``, from spreadsheets) repeat their header in every row and need nothing more.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.text import count_tokens, fold, split_sentences, trim_span, word_spans
from ingest.tables import split_units

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
    table_header: tuple[int, int] | None = None  # a table row's header row (start, end), for rows below it


def _sentences(text: str, start: int, end: int) -> list[_Sentence]:
    out = []
    for unit in split_units(text, start, end):
        a, b = unit.start, unit.end
        m = None if unit.row else _HEADING_RE.match(text[a:b])
        heading = (len(m.group(1)), m.group(2).strip()) if m else None
        out.append(_Sentence(a, b, count_tokens(text[a:b]), heading, unit.header))
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
    return [_Sentence(*trim_span(text, p.start, p.end), p.n_tokens, table_header=s.table_header)
            for p in pieces if text[p.start : p.end].strip()]


def _table_header(text: str, first: _Sentence) -> list[str]:
    """The header row of the table a chunk starts inside, as a heading-path entry (see the module doc)."""
    return [text[first.table_header[0] : first.table_header[1]]] if first.table_header is not None else []


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
                        [title for _, title in heading_stack] + _table_header(text, current[0]),
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


def index_text(title: str, heading_path: list[str], text: str) -> str:
    """What the indexes see for a chunk: its document title and headings, then the text. Context in
    the header lets "差旅制度里住宿标准" match a chunk that only says "一线城市每晚600元"."""
    header = " / ".join(dict.fromkeys([title, *heading_path]))
    return fold(f"{header}\n{text}")


def sentence_texts(text: str) -> list[str]:
    """What a chunk's sentence vectors embed (``retrieval.sentences``): each sentence, folded, without
    the title header (with it, every sentence looked like its chunk and the gain on dev was gone)."""
    return [fold(text[a:b]) for a, b in split_sentences(text)]
