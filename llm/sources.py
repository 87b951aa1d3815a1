"""What a surface shows under an answer: each cited passage with the cited span inside it, the wider
context in its document, and, for an LLM answer that cited nothing, the passages it was given.

Offsets: a Citation's start/end index the document's cleaned text; a chunk's text is that text's
[chunk.start:chunk.end]; so the cited span inside the chunk is [start - chunk.start, end - chunk.start].
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from core.models import Answer, Citation
from core.services import Services
from core.settings import Settings
from ingest.kb import shared_kb
from llm.guard import masked_for_display
from moderation.moderator import moderator_for

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


def _shown(settings: Settings, services: Services) -> Callable[[str], str]:
    """Text as the answer's rules let a user see it (llm.guard.masked_for_display): passages beside an
    answer mask what the answer masks. Masks keep lengths, so the offsets below still hold."""
    moderator = moderator_for(settings, services)
    return lambda text: masked_for_display(moderator, text)


def cited_passage(kb_name: str, citation: Citation, settings: Settings, services: Services) -> Passage:
    """The chunk the citation points into, with the cited span marked by offsets; the quote alone when
    the chunk is gone (the document was re-indexed or removed since the answer)."""
    shown = _shown(settings, services)
    quote = shown(citation.quote)
    chunk = shared_kb(kb_name, settings, services).catalog.chunk_by_id(citation.chunk_id)
    text = shown(chunk.text) if chunk is not None else ""
    if chunk is None or text[citation.start - chunk.start : citation.end - chunk.start] != quote:
        return Passage(quote, 0, len(quote))
    return Passage(text, citation.start - chunk.start, citation.end - chunk.start)


def document_context(kb_name: str, citation: Citation, settings: Settings, services: Services, chars: int = 600) -> Passage | None:
    """The cited span in its document: up to ``chars`` characters of the cleaned text either side."""
    shown = _shown(settings, services)
    catalog = shared_kb(kb_name, settings, services).catalog
    document = catalog.document_by_source(citation.source)
    text = catalog.document_text(document.id) if document is not None else None
    if text is None or shown(text[citation.start : citation.end]) != shown(citation.quote):
        return None
    window = Passage.window(text, citation.start, citation.end, chars)
    return Passage(shown(window.text), window.start, window.end, window.clipped_before, window.clipped_after)


def uncited_sources(answer: Answer, kb_name: str, settings: Settings, services: Services, limit: int = UNCITED_LIMIT) -> list[Citation]:
    """The passages an answer was given but did not cite (``flags.uncited_sources``, set by the RAG
    chain), as citations of whole passages numbered in retrieval order, so they can be shown marked as
    not cited instead of leaving the reader with no source at all."""
    shown = _shown(settings, services)
    catalog = shared_kb(kb_name, settings, services).catalog
    out = []
    for chunk_id in answer.flags.uncited_sources[:limit]:
        chunk = catalog.chunk_by_id(chunk_id)
        if chunk is not None:
            quote = shown(chunk.text)
            out.append(Citation(n=len(out) + 1, source=chunk.source, page=chunk.page, start=chunk.start, end=chunk.end,
                                quote=quote, chunk_id=chunk.id, score=0.0, masked=quote != chunk.text))
    return out
