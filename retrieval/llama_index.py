"""zhiwen's hybrid retriever as a llama-index ``BaseRetriever``, so a zhiwen knowledge base plugs into
query engines people already have::

    retriever = KnowledgeBase.open("demo", settings).as_llama_index_retriever()
    engine = RetrieverQueryEngine.from_args(retriever, llm=OpenAILike(...))

Thin on purpose: the same core search as ``zhiwen ask`` and the LangChain adapter, the same metadata
(``retrieval.hits.hit_metadata``), and the same refusal signal: by default only hits at or above the
relevance floor come back, so an off-topic question gives a query engine no source nodes to answer from.
"""

from __future__ import annotations

from typing import Any

from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from core.models import Hit
from retrieval.hits import hit_metadata, selected_hits
from retrieval.retriever import HybridRetriever, RetrievalResult


def hit_to_node(hit: Hit, result: RetrievalResult) -> NodeWithScore:
    """The passage as a scored llama-index node; its text is the chunk, exactly the cleaned document
    text between ``start`` and ``end``, so citations built from it quote the document."""
    node = TextNode(text=hit.chunk.text, id_=hit.chunk.id, metadata=hit_metadata(hit, result))
    # Offsets and scores are for the application, not for the LLM's prompt.
    node.excluded_llm_metadata_keys = [k for k in node.metadata if k not in ("source", "title", "page", "heading_path")]
    node.excluded_embed_metadata_keys = list(node.metadata)
    return NodeWithScore(node=node, score=hit.relevance)


class ZhiwenLlamaIndexRetriever(BaseRetriever):
    """A zhiwen knowledge base's hybrid retriever behind llama-index's retriever interface."""

    def __init__(self, retriever: HybridRetriever, top_k: int = 5, include_irrelevant: bool = False, **kwargs: Any) -> None:
        """``include_irrelevant``: also return hits below the floor (marked ``below_floor``), e.g. to
        show what was close; by default they are dropped, as zhiwen's own answer path does."""
        self.retriever = retriever
        self.top_k = top_k
        self.include_irrelevant = include_irrelevant
        super().__init__(**kwargs)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        result = self.retriever.search(query_bundle.query_str, self.top_k)
        return [hit_to_node(h, result) for h in selected_hits(result, self.include_irrelevant)]
