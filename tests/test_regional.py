"""Mainland and Taiwan words for one thing (软件 / 軟體) meet on the BM25 side (retrieval.regional).

Real OpenCC phrase tables, real jieba, the default USE-m3 embedder and a FAISS index on disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.settings import load_settings
from ingest.kb import KnowledgeBase
from ingest.pipeline import ingest_paths
from llm.answer import ask
from retrieval.regional import regional_terms

TAIWAN_SOFTWARE = (
    "本公司授權的軟體一律安裝於公司配發的筆記型電腦。"
    "執行這套軟體至少需要 16 GB 記憶體，建議搭配固態硬碟。"
    "軟體授權每年續約一次，由資訊部統一採購。"
)
MAINLAND_CANTEEN = (
    "公司食堂每天中午十一点半开饭，员工凭工牌刷卡就餐。"
    "每月餐补三百元，直接充值到工牌里，月底清零。"
)


def test_a_question_gets_the_other_phrasings_words_the_kb_uses():
    everything = regional_terms("这个软件需要多大内存？", known=lambda w: True)
    assert {"软体", "记忆体"} <= set(everything)  # 软件 → 軟體, 内存 → 記憶體, folded as the index folds them
    assert "软件" not in everything  # what the question already says is not added again
    taiwan = regional_terms("這個軟體需要多大記憶體？", known=lambda w: True)
    assert {"软件", "内存"} <= set(taiwan)  # and the reverse, for a question in Taiwan's words
    assert regional_terms("这个软件需要多大内存？", known=lambda w: w == "软体") == ["软体"]  # only known words
    assert regional_terms("How much memory does the software need?", known=lambda w: True) == []


@pytest.fixture(scope="module")
def office(tmp_path_factory):
    root = tmp_path_factory.mktemp("regional")
    corpus = root / "corpus"
    corpus.mkdir()
    (corpus / "軟體使用規範.txt").write_text(TAIWAN_SOFTWARE, encoding="utf-8")
    (corpus / "食堂.txt").write_text(MAINLAND_CANTEEN, encoding="utf-8")
    settings = load_settings(data_dir=root / "data")
    results = ingest_paths([corpus], "office", settings)
    assert all(r.status == "indexed" for r in results), results
    return settings


def test_a_simplified_question_in_mainland_words_finds_a_taiwan_document(office):
    question = "跑这个软件起码得多大内存？"
    with KnowledgeBase.open("office", office) as kb:
        retriever = kb.retriever()
        found = retriever.search(question, 2)
        retriever.regional_variants = False
        plain = retriever.search(question, 2)
    first = found.hits[0]
    assert Path(first.chunk.source).name == "軟體使用規範.txt"
    assert first.coverage > 0 and first.bm25 > 0  # 软体 / 记忆体 matched lexically
    taiwan = next(h for h in plain.hits if Path(h.chunk.source).name == "軟體使用規範.txt")
    assert taiwan.bm25 == 0  # without the variants BM25 had nothing to go on
    answer = ask(question, "office", office)
    assert not answer.refused and Path(answer.citations[0].source).name == "軟體使用規範.txt"
    assert "16 GB" in answer.text
