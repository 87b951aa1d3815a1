"""Retrieval pieces on their own: fusion arithmetic, BM25 coverage, the FAISS file, LangChain adapter."""

import numpy as np
import pytest

from core.text import search_tokens
from retrieval.bm25 import BM25Index
from retrieval.faiss_store import FaissStore
from retrieval.fusion import (
    CoverageGatedWeight,
    reciprocal_rank_fusion,
    weighted_fusion,
)


def test_weighted_fusion_max_normalises_bm25_and_min_max_normalises_cosine():
    fused = weighted_fusion({1: 10.0, 2: 5.0}, {2: 0.9, 3: 0.5}, bm25_weight=1.0, dense_weight=0.5)
    # BM25 / max: {1: 1.0, 2: 0.5}; cosine min-max over {2: 0.9, 3: 0.5}: {2: 1.0, 3: 0.0}
    assert fused[1] == pytest.approx(1.0)
    assert fused[2] == pytest.approx(0.5 + 0.5 * 1.0)
    assert fused[3] == pytest.approx(0.0)
    assert weighted_fusion({}, {4: 0.7}, 1.0, 0.5) == {4: 0.5}


def test_rrf_sums_reciprocal_ranks():
    fused = reciprocal_rank_fusion([[1, 2], [2, 3]], k=60)
    assert fused[2] == pytest.approx(1 / 62 + 1 / 61)
    assert fused[1] == pytest.approx(1 / 61)


def test_bm25_coverage_is_idf_weighted_share_of_query_terms():
    docs = ["一线城市住宿标准每晚600元", "资安事件一小时内通报", "员工年假五天"]
    index = BM25Index([10, 11, 12], [search_tokens(d) for d in docs])
    scores, coverage = index.score(search_tokens("一线城市住宿标准"))
    assert int(np.argmax(scores)) == 0
    assert coverage[0] == pytest.approx(1.0)
    assert coverage[1] == 0.0
    _, partial = index.score(search_tokens("住宿 火星"))
    assert 0.0 < partial[0] < 0.6, "a term the knowledge base never saw keeps its weight"


def test_faiss_store_round_trips_through_its_stamped_file(tmp_path):
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(5, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    store = FaissStore(8)
    store.add(np.array([3, 5, 7, 9, 11]), vectors)
    store.remove([7])
    store.save(tmp_path / "f.index", version=4, model="test")
    loaded, header = FaissStore.load(tmp_path / "f.index")
    assert header == {"version": 4, "count": 4, "dim": 8, "model": "test"}
    assert loaded.search(vectors[1], 1)[0][0] == 5
    assert 7 not in dict(loaded.search(vectors[2], 4))
    assert loaded.similarity(vectors[0], [3])[3] == pytest.approx(1.0, abs=1e-5)


def test_knowledge_base_works_as_a_langchain_retriever(settings, tmp_path):
    from ingest.kb import KnowledgeBase
    from ingest.pipeline import ingest_paths
    from tests.conftest import write

    write(tmp_path / "d" / "制度.md", "# 住宿标准\n一线城市每晚不超过600元。")
    write(tmp_path / "d" / "安全.txt", "資安事件須於1小時內通報。")
    ingest_paths([tmp_path / "d"], "kb", settings)
    with KnowledgeBase.open("kb", settings) as kb:
        docs = kb.as_langchain_retriever().invoke("资安事件多久通报")
    assert docs[0].metadata["source"].endswith("安全.txt")
    assert docs[0].page_content == "資安事件須於1小時內通報。"
    assert {"page", "start", "end", "chunk_id", "relevance"} <= set(docs[0].metadata)


def test_coverage_gated_weight_picks_by_coverage():
    weight = CoverageGatedWeight(lexical=0.5, semantic=1.5, gate=0.5)
    assert weight.for_coverage(0.8) == 0.5 and weight.for_coverage(0.5) == 0.5  # the question's words are there
    assert weight.for_coverage(0.49) == 1.5 and weight.for_coverage(0.0) == 1.5  # a paraphrase: the dense side leads
