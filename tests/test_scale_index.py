"""A knowledge base that grows (issue 19): the approximate FAISS index past a threshold, recall against
exact search, opening without re-reading the catalogue's embeddings, BM25 scored from its postings,
and BM25 inside Milvus answering like zhiwen's own."""

from __future__ import annotations

import importlib.util
import shutil

import bm25s
import numpy as np
import pytest

from core.settings import load_settings
from core.text import search_tokens
from ingest.catalog import Catalog
from ingest.kb import BM25_FILE, KnowledgeBase
from ingest.pipeline import ingest_paths
from retrieval.bm25 import BM25Index
from retrieval.faiss_index import probe_queries, recall_at_k
from retrieval.faiss_store import FaissStore
from tests.conftest import SAMPLES

HAS_MILVUS = importlib.util.find_spec("pymilvus") is not None and importlib.util.find_spec("milvus_lite") is not None
QUESTIONS = ["资安事件多久内要通报？", "一线城市住宿每晚多少钱", "年假有几天", "报销需要什么材料"]


def clustered(n: int, dim: int = 64, centres: int = 40, seed: int = 0) -> np.ndarray:
    """Unit vectors around a few centres, as embeddings of a corpus about a few topics are."""
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centres, dim)).astype(np.float32)
    v = c[rng.integers(0, centres, n)] + 0.6 * rng.normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_auto_index_turns_ivf_past_the_threshold_and_keeps_recall(tmp_path):
    vectors = clustered(6000)
    ids = np.arange(100, 6100)
    store = FaissStore(64, ivf_threshold=500)
    store.add(ids[:400], vectors[:400])
    assert store.structure == "flat", "exact below the threshold"
    store.add(ids[400:600], vectors[400:600])  # crossing the threshold trains IVF over everything
    assert store.structure == "ivf" and store.count() == 600
    small_nlist = store.index.nlist
    store.add(ids[600:], vectors[600:])  # ten times the size it was trained for: retrained with more cells
    assert store.count() == 6000 and store.index.nlist > small_nlist

    queries = probe_queries(vectors, 100, np.random.default_rng(1))
    exact = ids[np.argsort(-(queries @ vectors.T), axis=1)[:, :10]]
    approx = np.array([([i for i, _ in store.search(q, 10)] + [-1] * 10)[:10] for q in queries])
    assert recall_at_k(approx, exact) >= 0.95

    # what the knowledge base relies on still works on IVF: ids, cosines by id, filters, removal, files
    assert store.search(vectors[7], 1)[0] == (107, pytest.approx(1.0, abs=1e-5))
    assert store.similarity(vectors[0], [100])[100] == pytest.approx(1.0, abs=1e-5)
    assert {i for i, _ in store.search(vectors[7], 5, allowed_ids=[5000, 5001, 107])} == {5000, 5001, 107}
    store.remove([107])
    assert 107 not in dict(store.search(vectors[7], 10)) and store.count() == 5999
    store.save(tmp_path / "faiss.index", version=2, model="test")
    loaded, header = FaissStore.load(tmp_path / "faiss.index")
    assert header["count"] == 5999 and loaded.structure == "ivf" and loaded.index.nprobe == store.index.nprobe
    assert loaded.search(vectors[8], 1)[0][0] == 108
    writer = loaded.clone()  # the loaded lists are memory-mapped: a writer gets an in-memory copy
    writer.remove([108])
    writer.add(np.array([9999]), vectors[8:9])
    assert writer.search(vectors[8], 1)[0][0] == 9999 and loaded.search(vectors[8], 1)[0][0] == 108


def test_flat_setting_stays_exact():
    store = FaissStore(64, index_kind="flat", ivf_threshold=10)
    store.add(np.arange(100), clustered(100))
    assert store.structure == "flat"


def test_gpu_setting_without_a_gpu_falls_back_to_cpu(caplog):
    """faiss-gpu is not installed here (no GPU): the setting must degrade, not break search."""
    store = FaissStore(64, gpu=True)
    vectors = clustered(50)
    store.add(np.arange(50), vectors)
    assert store.search(vectors[3], 1)[0][0] == 3 and not store.gpu
    assert "faiss_gpu" in caplog.text


def test_bm25_from_postings_matches_bm25s():
    texts = ["员工每年享有带薪年假十天", "一线城市住宿每晚不超过600元", "资安事件须在1小时内通报", "年假可以跨年使用"] * 3
    index = BM25Index(list(range(len(texts))), [search_tokens(t) for t in texts])
    tokens = search_tokens("年假有几天，住宿多少钱")
    scores, coverage = index.score(tokens)
    reference = bm25s.BM25()  # what this index was until it kept raw term frequencies
    reference.index([search_tokens(t) or [""] for t in texts], show_progress=False)
    expected = sum(reference.get_scores([t]) for t in dict.fromkeys(tokens) if t in reference.vocab_dict)
    assert np.allclose(scores, expected, atol=1e-5)
    assert coverage.max() <= 1.0 and coverage[0] > 0 and coverage[2] == 0


def test_bm25_file_maps_its_arrays(tmp_path):
    texts = ["员工每年享有带薪年假十天", "一线城市住宿每晚不超过600元", "资安事件须在1小时内通报"]
    index = BM25Index([3, 5, 9], [search_tokens(t) for t in texts])
    index.save(tmp_path / "bm25.index", version=2)
    loaded, header = BM25Index.load(tmp_path / "bm25.index")
    assert header["version"] == 2 and header["format"] == "bm25-postings-delta-1"
    assert not loaded.ids.flags.writeable, "arrays are views of the mapped file, not copies"
    assert not loaded._base.rows.flags.writeable and not loaded._base.tf.flags.writeable
    tokens = search_tokens("住宿每晚多少钱")
    assert np.array_equal(loaded.score(tokens)[0], index.score(tokens)[0]) and loaded.position(5) == 1


def test_knowledge_base_opens_without_rereading_embeddings(tmp_path, monkeypatch):
    settings = load_settings(data_dir=tmp_path / "data", faiss_ivf_threshold=16)
    shutil.copytree(SAMPLES, tmp_path / "corpus")
    ingest_paths([tmp_path / "corpus"], "kb", settings)
    with KnowledgeBase.open("kb", settings) as kb:
        vectors, _ = kb.indexes()
        before = [h.chunk.id for h in kb.retriever().search(QUESTIONS[0], 3).hits]
    assert vectors.structure == "ivf", "the sample corpus is past this test's threshold"

    def forbidden(*args, **kwargs):
        raise AssertionError("索引戳记相符时不应重读目录 (stamps match: the catalogue must not be re-read)")

    monkeypatch.setattr(Catalog, "all_embeddings", forbidden)
    monkeypatch.setattr(Catalog, "all_tokens", forbidden)
    with KnowledgeBase.open("kb", settings) as kb:  # a fresh reader: both indexes come from their files
        assert [h.chunk.id for h in kb.retriever().search(QUESTIONS[0], 3).hits] == before


@pytest.mark.skipif(not HAS_MILVUS, reason="milvus extra not installed: pip install -e '.[milvus]'")
def test_milvus_bm25_answers_like_local_bm25(tmp_path):
    from retrieval.milvus_bm25 import MilvusBM25

    shutil.copytree(SAMPLES, tmp_path / "corpus")
    results = {}
    for kind in ("faiss", "milvus"):
        settings = load_settings(data_dir=tmp_path / kind, vector_store=kind)
        ingest_paths([tmp_path / "corpus"], "kb", settings)
        with KnowledgeBase.open("kb", settings) as kb:
            _, bm25 = kb.indexes()
            assert isinstance(bm25, MilvusBM25) == (kind == "milvus")
            assert (kb.dir / BM25_FILE).exists() == (kind == "faiss"), "no local lexical index beside Milvus"
            retriever = kb.retriever()
            results[kind] = [retriever.search(q, 5) for q in QUESTIONS]
    for local, milvus in zip(results["faiss"], results["milvus"]):
        assert milvus.hits[0].chunk.id == local.hits[0].chunk.id, "the same first citation"
        assert (milvus.best_relevance >= milvus.floor) == (local.best_relevance >= local.floor), "the same refusal decision"
        assert milvus.hits[0].bm25 == pytest.approx(local.hits[0].bm25, rel=0.25)
        assert milvus.hits[0].coverage == pytest.approx(local.hits[0].coverage, abs=0.15)


@pytest.mark.skipif(not HAS_MILVUS, reason="milvus extra not installed: pip install -e '.[milvus]'")
def test_milvus_without_full_text_keeps_local_bm25(tmp_path):
    settings = load_settings(data_dir=tmp_path / "data", vector_store="milvus", milvus_bm25=False)
    shutil.copytree(SAMPLES, tmp_path / "corpus")
    ingest_paths([tmp_path / "corpus"], "kb", settings)
    with KnowledgeBase.open("kb", settings) as kb:
        vectors, bm25 = kb.indexes()
        assert not vectors.full_text and isinstance(bm25, BM25Index)
        assert kb.retriever().search(QUESTIONS[0], 3).hits
