"""zhiwen's hybrid retriever as a LangChain ``BaseRetriever``, so a zhiwen knowledge base plugs into
chains people already have: ``KnowledgeBase.open("demo", settings).as_langchain_retriever()``."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever

from core.models import Hit
from retrieval.hits import hit_metadata, selected_hits
from retrieval.retriever import RetrievalResult


def hit_to_document(hit: Hit, result: RetrievalResult) -> Document:
    """The passage as a LangChain ``Document``; metadata as in ``retrieval.hits.hit_metadata``."""
    return Document(page_content=hit.chunk.text, id=hit.chunk.id, metadata=hit_metadata(hit, result))


class ZhiwenRetriever(BaseRetriever):
    retriever: Any  # retrieval.retriever.HybridRetriever (Any: pydantic need not validate it)
    top_k: int = 5
    include_irrelevant: bool = False  # True: hits below the floor too, marked ``below_floor``

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        """Hits below the retriever's floor are dropped, as zhiwen's own answer path does."""
        result = self.retriever.search(query, self.top_k)
        return [hit_to_document(h, result) for h in selected_hits(result, self.include_irrelevant)]
