"""Parsing the LLM's [n] markers into citations that map to real passages.

Markers the model may write: [1], [1][2], [1, 2], [1，2], 【1】, ［1］. A marker that names no source
(out of range, or zero) is removed from the text and counted; an answer that cites nothing while
sources exist is flagged, never silently trusted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.models import Citation, Hit

_MARKER_RE = re.compile(r"[\[【［]\s*(\d{1,3}(?:\s*[,，、]\s*\d{1,3})*)\s*[\]】］]")


@dataclass
class ParsedCitations:
    text: str  # the answer with invalid markers removed and valid ones normalised to [n]
    citations: list[Citation]
    dropped_markers: int
    uncited: bool


def citation_for(n: int, hit: Hit) -> Citation:
    """The whole passage as a citation: start/end are the chunk's offsets into the cleaned text."""
    c = hit.chunk
    return Citation(n=n, source=c.source, page=c.page, start=c.start, end=c.end, quote=c.text, chunk_id=c.id, score=round(hit.score, 4))


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
    citations = [citation_for(n, sources[n - 1]) for n in sorted(cited)]
    return ParsedCitations(cleaned, citations, dropped, uncited=bool(sources) and not cited)
