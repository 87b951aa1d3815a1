"""A zhiwen knowledge base inside llama-index, as a llama-index user would wire it: zhiwen's retriever in a
``RetrieverQueryEngine`` with llama-index's own ``OpenAILike`` LLM talking to a real llama.cpp server
(SmolLM2 on CPU). What is checked is zhiwen's part: the source nodes are zhiwen's passages, quoting
the cleaned document at their offsets, and the refusal floor holds (an off-topic question gets none)."""

from __future__ import annotations

import pytest
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.schema import QueryBundle
from llama_index.llms.openai_like import OpenAILike

from ingest.kb import KnowledgeBase
from tests.conftest import sample_kb


@pytest.fixture(scope="module")
def kb_settings(tmp_path_factory):
    return sample_kb(tmp_path_factory.mktemp("llamakb"), "kb", top_k=3)


def _assert_quotes_the_document(kb: KnowledgeBase, node) -> None:
    meta = node.metadata
    doc = kb.catalog.document_by_source(meta["source"])
    assert node.node_id == meta["chunk_id"] and meta["chunk_id"].startswith(doc.id[:16])
    assert node.text == kb.catalog.document_text(doc.id)[meta["start"] : meta["end"]]
    assert meta["relevant"] is True and meta["below_floor"] is False and meta["relevance"] >= meta["floor"]


def test_query_engine_cites_zhiwen_passages_and_honours_the_floor(llm_server, kb_settings):
    llm = OpenAILike(model="zhiwen", api_base=llm_server.base_url, api_key="none", is_chat_model=True,
                     temperature=0.0, max_tokens=48, context_window=1024)
    with KnowledgeBase.open("kb", kb_settings) as kb:
        engine = RetrieverQueryEngine.from_args(kb.as_llama_index_retriever(), llm=llm)

        response = engine.query("一线城市住宿标准是多少？")
        assert response.source_nodes, "an on-topic question is answered from zhiwen's passages"
        assert response.source_nodes[0].metadata["source"].endswith("差旅报销制度.md")
        assert "600元" in response.source_nodes[0].text
        for node in response.source_nodes:
            _assert_quotes_the_document(kb, node)
        assert str(response).strip(), "the LLM answered"

        off_topic = engine.query("火星上有多少颗卫星？")
        assert off_topic.source_nodes == [], "below the floor: nothing to answer from"


def test_include_irrelevant_returns_hits_below_the_floor_marked(kb_settings):
    with KnowledgeBase.open("kb", kb_settings) as kb:
        strict = kb.as_llama_index_retriever().retrieve(QueryBundle("火星上有多少颗卫星？"))
        everything = kb.as_llama_index_retriever(include_irrelevant=True).retrieve("火星上有多少颗卫星？")
        langchain = kb.as_langchain_retriever(include_irrelevant=True).invoke("火星上有多少颗卫星？")
    assert strict == []
    assert everything and all(n.metadata["below_floor"] and not n.metadata["relevant"] for n in everything)
    # The two adapters describe a hit the same way (retrieval.hits.hit_metadata).
    assert [n.metadata for n in everything] == [d.metadata for d in langchain]
    assert {"source", "page", "start", "end", "chunk_id", "relevance", "dense", "bm25", "heading_path", "floor"} <= set(everything[0].metadata)
