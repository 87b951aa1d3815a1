"""One contract for every vector store: the same tests against FAISS and Milvus Lite, at the store
level and through whole knowledge bases (ingest, re-ingest, delete, reopen, ask)."""

from __future__ import annotations

import importlib.util
import shutil

import numpy as np
import pytest

from core.settings import load_settings
from ingest.documents import remove_document
from ingest.kb import KnowledgeBase
from ingest.pipeline import ingest_paths
from llm.answer import ask
from retrieval.faiss_store import FaissStore
from retrieval.stores import VectorStore
from tests.conftest import SAMPLES, write

HAS_MILVUS = importlib.util.find_spec("pymilvus") is not None and importlib.util.find_spec("milvus_lite") is not None
BACKENDS = ["faiss", pytest.param("milvus", marks=pytest.mark.skipif(not HAS_MILVUS, reason="milvus extra not installed: pip install -e '.[milvus]'"))]


def make_store(kind: str, tmp_path, dim: int = 8):
    if kind == "faiss":
        return FaissStore(dim)
    from retrieval.milvus_store import MilvusStore

    return MilvusStore(str(tmp_path / "contract.db"), dim)


def unit_vectors(n: int, dim: int = 8) -> np.ndarray:
    v = np.random.default_rng(0).normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.mark.parametrize("kind", BACKENDS)
def test_store_add_search_filter_remove_persist(kind, tmp_path):
    vectors = unit_vectors(6)
    store = make_store(kind, tmp_path)
    assert isinstance(store, VectorStore) and store.kind == kind, "every backend implements the protocol"
    store.add(np.arange(10, 16), vectors, [{"doc_id": d, "chunk_id": f"{d}-{i}", "source": f"{d}.md", "page": None, "start": 0, "end": 5}
                                           for i, d in enumerate("aabbcc")])
    assert store.count() == 6
    assert store.search(vectors[2], 1)[0][0] == 12
    assert store.search(vectors[2], 1)[0][1] == pytest.approx(1.0, abs=1e-5)
    assert store.similarity(vectors[0], [10, 13])[10] == pytest.approx(1.0, abs=1e-5)
    filtered = store.search(vectors[2], 3, allowed_ids=[14, 15])
    assert {i for i, _ in filtered} == {14, 15}, "a filter restricts the candidates"
    store.remove([12, 13])
    assert store.count() == 4 and 12 not in dict(store.search(vectors[2], 6))
    store.save(tmp_path / f"{kind}.stamp", version=3, model="test")
    if kind == "faiss":
        reopened, header = FaissStore.load(tmp_path / "faiss.stamp")
        assert header["version"] == 3
    else:
        store.close()
        reopened = make_store(kind, tmp_path)
        assert reopened.read_stamp(tmp_path / "milvus.stamp")["version"] == 3
    assert reopened.count() == 4 and reopened.search(vectors[4], 1)[0][0] == 14


@pytest.mark.parametrize("kind", BACKENDS)
def test_knowledge_base_contract(kind, tmp_path):
    settings = load_settings(data_dir=tmp_path / "data", vector_store=kind)
    shutil.copytree(SAMPLES, tmp_path / "corpus")
    first = ingest_paths([tmp_path / "corpus"], "kb", settings)
    assert all(r.status == "indexed" for r in first)
    with KnowledgeBase.open("kb", settings) as kb:
        assert kb.vector_store_kind == kind
        vectors, bm25 = kb.indexes()
        assert vectors.count() == bm25.count() == kb.catalog.counts()[1]

    answer = ask("资安事件多久内要通报？", "kb", settings)
    assert answer.citations[0].source.endswith("資訊安全規範.txt") and "1小時內通報" in answer.citations[0].quote
    assert ask("火星上有多少颗卫星？", "kb", settings).refused

    # incremental: unchanged skipped, changed replaced, removed gone, nothing duplicated
    assert {r.status for r in ingest_paths([tmp_path / "corpus"], "kb", settings)} == {"unchanged"}
    write(tmp_path / "corpus" / "差旅报销制度.md", "# 住宿\n一线城市每晚不超过700元。")
    assert ingest_paths([tmp_path / "corpus" / "差旅报销制度.md"], "kb", settings)[0].status == "updated"
    assert remove_document("kb", str(tmp_path / "corpus" / "常见问题.csv"), settings)
    with KnowledgeBase.open("kb", settings) as kb:  # a fresh reader: loads from disk / Milvus
        vectors, bm25 = kb.indexes()
        n_chunks = kb.catalog.counts()[1]
        assert vectors.count() == bm25.count() == n_chunks
        hits = kb.retriever().search("一线城市住宿每晚多少钱", 10).hits
        assert any("700元" in h.chunk.text for h in hits) and not any("600元" in h.chunk.text for h in hits)
        assert all(not h.chunk.source.endswith(".csv") for h in hits)
        if kind == "milvus":  # the collection itself carries what a citation needs
            rows = vectors.client.query(vectors.collection, filter="id >= 0", output_fields=["chunk_id", "source", "start", "end"], limit=5)
            for row in rows:
                chunk = kb.catalog.chunk_by_id(row["chunk_id"])
                assert chunk is not None and (row["source"], row["start"], row["end"]) == (chunk.source, chunk.start, chunk.end)
        only = str(tmp_path / "corpus" / "员工手册.txt")
        filtered = kb.retriever().search("一线城市住宿每晚多少钱", 5, allowed_ids=kb.catalog.rowids_of_sources([only])).hits
        assert filtered and all(h.chunk.source == only for h in filtered), "metadata filter by document"


@pytest.mark.skipif(not HAS_MILVUS, reason="milvus extra not installed: pip install -e '.[milvus]'")
def test_migrate_between_backends_loses_nothing(tmp_path):
    from ingest.migrate import migrate_kb

    settings = load_settings(data_dir=tmp_path / "data")
    shutil.copytree(SAMPLES, tmp_path / "corpus")
    ingest_paths([tmp_path / "corpus"], "kb", settings)
    before = ask("资安事件多久内要通报？", "kb", settings.model_copy(update={"answer_cache_size": 0}))
    report = migrate_kb("kb", "milvus", settings)
    assert report.count_before == report.count_after and report.samples_agree == report.samples
    with KnowledgeBase.open("kb", settings) as kb:
        assert kb.vector_store_kind == "milvus"
    after = ask("资安事件多久内要通报？", "kb", settings.model_copy(update={"answer_cache_size": 0}))
    assert [c.chunk_id for c in after.citations] == [c.chunk_id for c in before.citations]
    back = migrate_kb("kb", "faiss", settings)
    assert back.count_after == report.count_before
