"""What a surface shows under an answer: each cited passage with the cited span inside it, the wider
context in its document, and, for an LLM answer that cited nothing, the passages it was given.

Offsets: a Citation's start/end index the document's cleaned text; a chunk's text is that text's
[chunk.start:chunk.end]; so the cited span inside the chunk is [start - chunk.start, end - chunk.start].
"""

from __future__ import annotations

from dataclasses import dataclass

from core.models import Answer, Citation
from core.services import Services
from core.settings import Settings
from ingest.kb import shared_kb

UNCITED_LIMIT = 3


@dataclass
class Passage:
    """Text around a citation with the cited span's offsets inside it."""

    text: str
    start: int
    end: int
    clipped_before: bool = False  # text was cut at the start / the end
    clipped_after: bool = False

    @classmethod
    def window(cls, text: str, start: int, end: int, chars: int) -> Passage:
        """At most ``chars`` characters either side of [start, end), cut at a line break when one is near."""
        start, end = max(0, min(start, len(text))), max(0, min(end, len(text)))
        a, b = max(0, start - chars), min(len(text), end + chars)
        if a > 0:
            newline = text.find("\n", a, start)
            a = newline + 1 if newline >= 0 else a
        if b < len(text):
            newline = text.rfind("\n", end, b)
            b = newline if newline >= 0 else b
        return cls(text[a:b], start - a, end - a, a > 0, b < len(text))


def cited_passage(kb_name: str, citation: Citation, settings: Settings, services: Services) -> Passage:
    """The chunk the citation points into, with the cited span marked by offsets; the quote alone when
    the chunk is gone (the document was re-indexed or removed since the answer)."""
    chunk = shared_kb(kb_name, settings, services).catalog.chunk_by_id(citation.chunk_id)
    if chunk is None or chunk.text[citation.start - chunk.start : citation.end - chunk.start] != citation.quote:
        return Passage(citation.quote, 0, len(citation.quote))
    return Passage(chunk.text, citation.start - chunk.start, citation.end - chunk.start)


def document_context(kb_name: str, citation: Citation, settings: Settings, services: Services, chars: int = 600) -> Passage | None:
    """The cited span in its document: up to ``chars`` characters of the cleaned text either side."""
    catalog = shared_kb(kb_name, settings, services).catalog
    document = catalog.document_by_source(citation.source)
    text = catalog.document_text(document.id) if document is not None else None
    if text is None or text[citation.start : citation.end] != citation.quote:
        return None
    return Passage.window(text, citation.start, citation.end, chars)


def uncited_sources(answer: Answer, kb_name: str, settings: Settings, services: Services, limit: int = UNCITED_LIMIT) -> list[Citation]:
    """The passages an answer was given but did not cite (``flags.uncited_sources``, set by the RAG
    chain), as citations of whole passages numbered in retrieval order, so they can be shown marked as
    not cited instead of leaving the reader with no source at all."""
    catalog = shared_kb(kb_name, settings, services).catalog
    out = []
    for chunk_id in answer.flags.uncited_sources[:limit]:
        chunk = catalog.chunk_by_id(chunk_id)
        if chunk is not None:
            out.append(Citation(n=len(out) + 1, source=chunk.source, page=chunk.page, start=chunk.start, end=chunk.end,
                                quote=chunk.text, chunk_id=chunk.id, score=0.0))
    return out
