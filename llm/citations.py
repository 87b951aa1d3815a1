"""Parsing the LLM's [n] markers into citations that map to real passages.

Markers the model may write: [1], [1][2], [1, 2], [1，2], 【1】, ［1］. A marker that names no source
(out of range, or zero) is removed from the text and counted; an answer that cites nothing while
sources exist is flagged, never silently trusted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.models import Citation, Hit
from core.text import search_tokens, split_sentences

_MARKER_RE = re.compile(r"[\[【［]\s*(\d{1,3}(?:\s*[,，、]\s*\d{1,3})*)\s*[\]】］]")


@dataclass
class ParsedCitations:
    text: str  # the answer with invalid markers removed and valid ones normalised to [n]
    citations: list[Citation]
    dropped_markers: int
    uncited: bool


def citation_for(n: int, hit: Hit, claim: str = "") -> Citation:
    """A citation of the passage's sentence that best supports ``claim`` (the answer's sentences that
    carry [n]); the whole passage when no sentence shares a word with it. Offsets index the cleaned text."""
    c = hit.chunk
    a, b = _supporting_span(c.text, claim) if claim else (0, len(c.text))
    return Citation(
        n=n, source=c.source, page=c.page, start=c.start + a, end=c.start + b, quote=c.text[a:b], chunk_id=c.id,
        score=round(hit.score, 4),
    )


def _supporting_span(text: str, claim: str) -> tuple[int, int]:
    wanted = set(search_tokens(claim))
    best, best_score = (0, len(text)), 0
    for a, b in split_sentences(text):
        score = len(wanted.intersection(search_tokens(text[a:b])))
        if score > best_score:
            best, best_score = (a, b), score
    return best


def _claims(text: str) -> dict[int, str]:
    """For each marker number, the answer sentences that carry it."""
    out: dict[int, list[str]] = {}
    for a, b in split_sentences(text):
        sentence = text[a:b]
        for m in re.finditer(r"\[(\d+)\]", sentence):
            out.setdefault(int(m.group(1)), []).append(_MARKER_RE.sub("", sentence))
    return {n: " ".join(parts) for n, parts in out.items()}


def parse_citations(text: str, sources: list[Hit]) -> ParsedCitations:
    cited: set[int] = set()
    dropped = 0

    def replace(m: re.Match[str]) -> str:
        nonlocal dropped
        kept = []
        for raw in re.split(r"[,，、]", m.group(1)):
            n = int(raw)
            if 1 <= n <= len(sources):
                kept.append(n)
                cited.add(n)
            else:
                dropped += 1
        return "".join(f"[{n}]" for n in dict.fromkeys(kept))

    cleaned = _MARKER_RE.sub(replace, text)
    cleaned = re.sub(r"[ \t]+([。，！？；,.!?;])", r"\1", cleaned).strip()
    claims = _claims(cleaned)
    citations = [citation_for(n, sources[n - 1], claims.get(n, "")) for n in sorted(cited)]
    return ParsedCitations(cleaned, citations, dropped, uncited=bool(sources) and not cited)
