"""The extractive answerer: no LLM, just the best sentences of the top passages, each cited.

Used when no LLM is configured, and as the fallback when the LLM fails. It cannot paraphrase, but it
cannot hallucinate either: every word of the answer is a quote.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from core.models import Answer, Citation, Hit
from core.text import search_tokens, split_sentences

IdfFunction = Callable[[str], float]


@dataclass
class _Candidate:
    hit: Hit
    start: int  # offsets into the chunk text
    end: int
    score: float


_MIN_NEW_TERMS = 2
_TITLE_MAX_CHARS = 20


_TABLE_RULE_RE = re.compile(r"\s*\|?\s*:?-{3,}")


def _is_table_header(text: str, end: int) -> bool:
    """A Markdown table's header row (the next line is its |---| rule): column names, not an answer."""
    return "|" in text[text.rfind("\n", 0, end) + 1 : end] and bool(_TABLE_RULE_RE.match(text, end))


def _is_title(sentence: str) -> bool:
    """A Markdown heading, or a short line with no closing punctuation ("第七條 資安事件通報")."""
    s = sentence.strip()
    return s.startswith("#") or (len(s) <= _TITLE_MAX_CHARS and s[-1:].isalnum())


def _sentence_candidates(hit: Hit, query_terms: set[str], idf: IdfFunction) -> list[_Candidate]:
    text = hit.chunk.text
    out = []
    carried = 0.0  # FAQ pattern: the sentence after an echo of the question is its answer
    for a, b in split_sentences(text):
        sentence = text[a:b]
        terms = set(search_tokens(sentence))
        overlap = sum(idf(t) for t in query_terms & terms)
        if _is_title(sentence) or _is_table_header(text, b) or len(terms - query_terms) < _MIN_NEW_TERMS:
            # A heading or a repeat of the question ("问题：如何重置API Key？") does not answer it.
            carried = overlap
            continue
        score = (overlap + carried) / (1.0 + 0.15 * (hit.rank - 1))
        carried = 0.0
        out.append(_Candidate(hit, a, b, score))
    return out


def _unique(candidates: list[_Candidate]) -> list[_Candidate]:
    """Overlapping chunks share sentences: keep each document span once, from the best-ranked chunk."""
    seen: set[tuple[str, int]] = set()
    out = []
    for c in candidates:
        key = (c.hit.chunk.doc_id, c.hit.chunk.start + c.start)
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out


def extractive_answer(question: str, hits: list[Hit], max_sentences: int = 3, idf: IdfFunction | None = None, max_passages: int = 3) -> Answer:
    """Pick up to ``max_sentences`` sentences from the top ``max_passages`` hits; cite each passage."""
    idf = idf or (lambda t: 1.0 + 0.2 * len(t))
    terms = set(search_tokens(question))
    candidates = _unique([c for h in hits[:max_passages] for c in _sentence_candidates(h, terms, idf)])
    if not candidates:
        return Answer(text="", mode="extractive")
    chosen = [c for c in sorted(candidates, key=lambda c: -c.score) if c.score > 0][:max_sentences]
    if not chosen:  # matched on meaning only (dense): the top passage's first sentence
        chosen = [candidates[0]]
    best = chosen[0].score
    chosen = [c for c in chosen if c.score >= 0.5 * best]  # drop weak tag-alongs

    # Number passages in retrieval-rank order; read sentences in passage order, then text order.
    ranks = sorted({c.hit.rank for c in chosen})
    number = {rank: n for n, rank in enumerate(ranks, start=1)}
    chosen.sort(key=lambda c: (c.hit.rank, c.start))
    parts = []
    citations: dict[int, Citation] = {}
    for c in chosen:
        n = number[c.hit.rank]
        chunk = c.hit.chunk
        parts.append(f"{chunk.text[c.start:c.end]}[{n}]")
        start, end = chunk.start + c.start, chunk.start + c.end
        if n in citations:  # widen the cited span to cover every sentence taken from this passage
            old = citations[n]
            start, end = min(old.start, start), max(old.end, end)
        citations[n] = Citation(
            n=n, source=chunk.source, page=chunk.page, start=start, end=end,
            quote=chunk.text[start - chunk.start : end - chunk.start], chunk_id=chunk.id, score=round(c.hit.score, 4),
        )
    joiner = "" if all(_ends_cjk(p) for p in parts) else " "
    return Answer(text=joiner.join(parts), mode="extractive", citations=[citations[n] for n in sorted(citations)])


def _ends_cjk(part: str) -> bool:
    body = part.rsplit("[", 1)[0].rstrip()
    return bool(body) and ("\u3000" <= body[-1] <= "\u9fff" or body[-1] in "，。！？；：）")
