"""A refused question is told which document came closest, when one did (llm.refusal.nearest_document),
in the question's language; every answer path builds its refusal there.

Hand-built retrieval results for the rule; real jieba, the default USE-m3 embedder and a FAISS index on
disk for the end-to-end checks."""

from __future__ import annotations

from typer.testing import CliRunner

from app.cli import app
from core.models import Chunk, Hit
from ingest.pipeline import ingest_paths
from llm.answer import ask
from llm.refusal import NEAR_REFUSAL_EN, NEAR_REFUSAL_ZH, NEAREST_SHARE, REFUSAL_ZH, nearest_document, refusal_message
from retrieval.retriever import RetrievalResult
from retrieval.stated_facts import Unstated


def hit(relevance: float, rank: int = 1, title: str = "差旅报销制度") -> Hit:
    chunk = Chunk(id=f"d:{rank}", doc_id="d", ordinal=rank, text="x", start=0, end=1, n_tokens=1,
                  source="/kb/差旅报销制度.md", title=title)
    return Hit(chunk=chunk, score=1.0 / rank, relevance=relevance, rank=rank)


def test_the_nearest_document_is_named_only_when_it_came_close():
    close = RetrievalResult([hit(0.15), hit(0.05, 2)], {}, floor=0.2)
    assert nearest_document(close) == "差旅报销制度"
    assert nearest_document(RetrievalResult([hit(0.2 * NEAREST_SHARE - 0.01)], {}, floor=0.2)) is None  # far off
    assert nearest_document(RetrievalResult([hit(0.5)], {}, floor=0.2)) is None  # not refused
    assert nearest_document(RetrievalResult([], {}, floor=0.2)) is None
    assert nearest_document(RetrievalResult([hit(0.15, title="")], {}, floor=0.2)) == "差旅报销制度.md"  # untitled: the file
    near_miss = RetrievalResult([hit(0.9)], {}, floor=0.2, unstated=Unstated("month"))
    assert nearest_document(near_miss) is None  # its own message already says the documents were found


def test_the_refusal_names_it_in_the_questions_language():
    close = RetrievalResult([hit(0.15)], {}, floor=0.2)
    zh = refusal_message("出差住酒店一晚最多报多少？", close)
    assert zh.startswith(NEAR_REFUSAL_ZH) and "《差旅报销制度》" in zh and zh.startswith("抱歉，知识库中没有找到")
    en = refusal_message("How much can I claim for a hotel night?", close)
    assert en.startswith(NEAR_REFUSAL_EN) and "“差旅报销制度”" in en
    far = RetrievalResult([hit(0.01)], {}, floor=0.2)
    assert refusal_message("猫为什么喜欢晒太阳？", far) == REFUSAL_ZH
    assert refusal_message("猫为什么喜欢晒太阳？") == REFUSAL_ZH


def test_every_answer_path_names_the_nearest_document(tmp_path, corpus, settings, monkeypatch):
    ingest_paths([corpus], "kb", settings)
    strict = settings.model_copy(update={"relevance_floor": 0.95})  # a probability: almost nothing clears it
    answer = ask("一线城市出差住宿每晚能报多少钱？", "kb", strict)
    assert answer.refused and "最接近的资料是《" in answer.text and "差旅" in answer.text
    off_topic = ask("家里的小猫一天应该喂几顿猫粮？", "kb", settings)
    assert off_topic.refused and off_topic.text == REFUSAL_ZH  # nowhere near: no document named
    monkeypatch.setenv("ZHIWEN_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("ZHIWEN_RELEVANCE_FLOOR", "0.95")
    out = CliRunner().invoke(app, ["ask", "一线城市出差住宿每晚能报多少钱？", "--kb", "kb"])
    assert out.exit_code == 0, out.output
    assert "最接近的资料是《" in out.output and "差旅" in out.output
