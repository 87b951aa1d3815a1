"""One description of a retrieved passage for every adapter that hands zhiwen's hits to someone else.

The LangChain retriever, the llama-index retriever and the MCP ``search`` tool all describe a hit the
same way, from this one function, so a field added here (or a refusal signal fixed here) reaches all
three: where the passage is (source, page, character offsets into the cleaned document text), how it
scored (fused score, absolute relevance, dense and BM25 sides) and whether it clears the refusal floor.
"""

from __future__ import annotations

from typing import Any

from core.models import Hit
from retrieval.retriever import RetrievalResult


def hit_metadata(hit: Hit, result: RetrievalResult) -> dict[str, Any]:
    """The metadata of ``hit`` within ``result``: JSON-serialisable, without the passage text itself.

    ``relevant`` / ``below_floor`` carry the refusal signal zhiwen's own answer path uses: a hit below
    ``floor`` is not good enough to answer from, and when no hit is relevant zhiwen refuses.
    """
    c = hit.chunk
    relevant = result.is_relevant(hit)
    return {
        "source": c.source, "title": c.title, "page": c.page, "start": c.start, "end": c.end,
        "heading_path": list(c.heading_path), "chunk_id": c.id, "doc_id": c.doc_id,
        "score": hit.score, "relevance": hit.relevance, "dense": hit.dense, "bm25": hit.bm25,
        "relevant": relevant, "below_floor": not relevant, "floor": result.floor,
    }


def selected_hits(result: RetrievalResult, include_irrelevant: bool = False) -> list[Hit]:
    """The hits an adapter passes on: only those above the floor (as zhiwen answers), or all of them."""
    return list(result.hits) if include_irrelevant else result.relevant
