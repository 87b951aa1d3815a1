"""zhiwen's hybrid retriever as a LangChain ``BaseRetriever``, so a zhiwen knowledge base plugs into
chains people already have: ``KnowledgeBase.open("demo", settings).as_langchain_retriever()``."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever

from core.models import Hit


def hit_to_document(hit: Hit) -> Document:
    c = hit.chunk
    return Document(
        page_content=c.text,
        id=c.id,
        metadata={
            "source": c.source, "title": c.title, "page": c.page, "start": c.start, "end": c.end,
            "heading_path": c.heading_path, "chunk_id": c.id, "score": hit.score, "relevance": hit.relevance,
        },
    )


class ZhiwenRetriever(BaseRetriever):
    retriever: Any  # retrieval.retriever.HybridRetriever (Any: pydantic need not validate it)
    top_k: int = 5

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        """Hits below the retriever's floor are dropped, as zhiwen's own answer path does."""
        return [hit_to_document(h) for h in self.retriever.search(query, self.top_k).relevant]
