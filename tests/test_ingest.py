"""Ingest end to end with the real embedder, real FAISS and BM25 files on disk, real SQLite."""

import os
import shutil

import pytest

from ingest.documents import remove_document
from ingest.kb import BM25_FILE, FAISS_FILE, KnowledgeBase
from ingest.pipeline import ingest_paths
from llm.answer import ask
from retrieval.faiss_store import FaissStore
from tests.conftest import SAMPLES, assert_consistent, write
from tests.test_loaders import make_pdf


@pytest.fixture(scope="module")
def sample_kb(tmp_path_factory):
    """The bundled corpus ingested once, for the read-only tests below."""
    from core.settings import load_settings

    root = tmp_path_factory.mktemp("sample")
    corpus = root / "corpus"
    shutil.copytree(SAMPLES, corpus)
    s = load_settings(data_dir=root / "data")
    ingest_paths([corpus], "kb", s)
    return s, corpus


def _by_name(results):
    return {os.path.basename(r.source): r for r in results}




def test_bad_files_are_named_and_skipped_while_good_ones_are_indexed(settings, corpus, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "损坏.pdf").write_bytes(make_pdf(["正常内容。"])[:300] + os.urandom(500))
    (bad / "junk.txt").write_bytes(os.urandom(3000))
    (bad / "空文件.md").write_bytes(b"")
    results = _by_name(ingest_paths([corpus, bad], "kb", settings))

    for good in ["员工手册.txt", "資訊安全規範.txt", "客户服务规范.pdf", "差旅报销制度.md", "数据备份指南.docx",
                 "常见问题.csv", "更新日志.jsonl", "知问网关产品说明.html"]:
        assert results[good].status == "indexed", results[good]
        assert results[good].n_chunks > 0
    assert results["损坏.pdf"].status == "failed" and "PDF" in results["损坏.pdf"].reason
    assert results["junk.txt"].status == "failed" and results["junk.txt"].reason
    assert results["空文件.md"].status == "failed" and "empty" in results["空文件.md"].reason

    with KnowledgeBase.open("kb", settings) as kb:
        n_docs, _ = assert_consistent(kb)
        assert n_docs == 8


def test_reingest_unchanged_skips_and_changed_replaces_without_duplicates(settings, tmp_path):
    docs = tmp_path / "docs"
    a = write(docs / "制度.md", "# 住宿\n一线城市每晚不超过600元。二线城市每晚不超过400元。\n# 报销\n出差结束后15个工作日内提交。")
    write(docs / "手册.txt", "年休假：满1年不满10年的，年休假5天。", "gbk")

    first = _by_name(ingest_paths([docs], "kb", settings))
    with KnowledgeBase.open("kb", settings) as kb:
        _, n_chunks_before = assert_consistent(kb)
        version_before = kb.catalog.version()

    again = _by_name(ingest_paths([docs], "kb", settings))
    assert {r.status for r in again.values()} == {"unchanged"}
    with KnowledgeBase.open("kb", settings) as kb:
        assert kb.catalog.counts()[1] == n_chunks_before
        assert kb.catalog.version() == version_before, "an unchanged batch writes nothing"

    write(a, "# 住宿\n一线城市每晚不超过700元。\n# 报销\n出差结束后10个工作日内提交。\n# 餐补\n每天100元。")
    changed = _by_name(ingest_paths([docs], "kb", settings))
    assert changed["制度.md"].status == "updated"
    assert changed["手册.txt"].status == "unchanged"
    with KnowledgeBase.open("kb", settings) as kb:
        _, n_chunks_after = assert_consistent(kb)
        assert n_chunks_after == changed["制度.md"].n_chunks + first["手册.txt"].n_chunks
        texts = " ".join(c.text for d in kb.catalog.list_documents() for c in kb.catalog.chunks_of_document(d.id))
        assert "700元" in texts and "600元" not in texts, "old chunks are gone"
        hits = kb.retriever().search("一线城市住宿每晚多少钱", 10).hits
        assert len({h.chunk.id for h in hits}) == len(hits)
        assert all("600元" not in h.chunk.text for h in hits), "no stale vector survives"


def test_same_content_under_another_name_is_not_duplicated(settings, tmp_path):
    write(tmp_path / "a" / "制度.md", "一线城市每晚不超过600元。")
    write(tmp_path / "b" / "制度副本.md", "一线城市每晚不超过600元。")
    results = ingest_paths([tmp_path / "a", tmp_path / "b"], "kb", settings)
    assert [r.status for r in results] == ["indexed", "duplicate"]
    assert "制度.md" in results[1].reason


def test_crash_between_catalogue_commit_and_index_save_leaves_a_consistent_kb(settings, tmp_path, monkeypatch):
    write(tmp_path / "d1" / "一.md", "一线城市每晚不超过600元。")
    ingest_paths([tmp_path / "d1"], "kb", settings)

    def crash(self, vectors, bm25):
        raise SystemExit("simulated crash: power lost before the indexes were saved")

    monkeypatch.setattr(KnowledgeBase, "commit_indexes", crash)
    write(tmp_path / "d2" / "二.md", "资安事件须于1小时内通报资讯安全部。")
    with pytest.raises(SystemExit):
        ingest_paths([tmp_path / "d2"], "kb", settings)
    monkeypatch.undo()

    with KnowledgeBase.open("kb", settings) as kb:
        stale = FaissStore.load(kb.dir / FAISS_FILE)[1]
        assert stale["version"] < kb.catalog.version(), "the crash left the index stamp behind the catalogue"
        n_docs, n_chunks = assert_consistent(kb)  # opening catches up
        assert (n_docs, n_chunks) == (2, 2)
        hits = kb.retriever().search("资安事件多久通报", 3).hits
        assert hits and hits[0].chunk.source.endswith("二.md")


def test_corrupt_index_files_are_rebuilt_from_the_catalogue(settings, tmp_path):
    write(tmp_path / "d" / "一.md", "一线城市每晚不超过600元。")
    ingest_paths([tmp_path / "d"], "kb", settings)
    with KnowledgeBase.open("kb", settings) as kb:
        (kb.dir / FAISS_FILE).write_bytes(b"garbage")
        (kb.dir / BM25_FILE).write_bytes(b"")
    with KnowledgeBase.open("kb", settings) as kb:
        assert_consistent(kb)
        assert kb.retriever().search("一线城市住宿", 1).hits


def test_citation_quote_is_the_cleaned_text_at_its_offsets(sample_kb):
    settings, _ = sample_kb
    for question in ["一线城市住宿标准是多少？", "客户投诉要多久给出处理方案？", "知问网关的P99延迟是多少？"]:
        answer = ask(question, "kb", settings)
        assert not answer.refused and answer.citations
        with KnowledgeBase.open("kb", settings) as kb:
            for c in answer.citations:
                doc = kb.catalog.document_by_source(c.source)
                assert kb.catalog.document_text(doc.id)[c.start : c.end] == c.quote
                assert f"[{c.n}]" in answer.text


def test_pdf_citation_carries_its_page(sample_kb):
    settings, _ = sample_kb
    answer = ask("客户投诉要多久给出处理方案？", "kb", settings)
    assert answer.citations[0].source.endswith("客户服务规范.pdf")
    assert answer.citations[0].page == 2
    assert "48小时" in answer.text


def test_simplified_question_finds_traditional_document(sample_kb):
    settings, _ = sample_kb
    answer = ask("资安事件多久内要通报？", "kb", settings)
    assert not answer.refused
    assert answer.citations[0].source.endswith("資訊安全規範.txt")
    assert "1小时内通报" in answer.text  # a Simplified question gets a Simplified answer
    assert "1小時內通報" in answer.citations[0].quote  # the quote stays the document's own text



def test_fusion_setting_reaches_the_retriever(sample_kb):
    settings, _ = sample_kb
    rrf = settings.model_copy(update={"fusion": "rrf"})
    with KnowledgeBase.open("kb", settings) as kb:
        retriever = kb.retriever(rrf)
        assert retriever.fusion == "rrf"
        hits = retriever.search("资安事件多久内要通报？", 3).hits
    assert hits and hits[0].chunk.source.endswith("資訊安全規範.txt")
    assert all(h.score <= 2 / 61 + 1e-9 for h in hits)  # reciprocal ranks, k=60, two rankings


SAMPLE_QUESTIONS = [
    ("一线城市住宿标准是多少？", "差旅报销制度.md", "600元"),
    ("出差回来多久内要提交报销？", "差旅报销制度.md", "15个工作日"),
    ("工作满5年有几天年假？", "员工手册.txt", "年休假5天"),
    ("知问网关的P99延迟是多少？", "知问网关产品说明.html", "低于5毫秒"),
    ("全量备份在什么时候做？", "数据备份指南.docx", "每周日"),
    ("如何重置API Key？", "常见问题.csv", "密钥管理"),
    # The FAQ states it too ("gRPC支持从v2.3.0版本开始提供"): either document is the right one.
    ("哪个版本开始支持gRPC？", ("更新日志.jsonl", "常见问题.csv"), "v2.3.0"),
]


@pytest.mark.parametrize("question, source, fact", SAMPLE_QUESTIONS)
def test_sample_questions_are_answered_from_the_right_document(sample_kb, question, source, fact):
    settings, _ = sample_kb
    answer = ask(question, "kb", settings)
    assert not answer.refused
    assert answer.citations[0].source.endswith(source)  # str.endswith takes one name or a tuple of them
    assert fact in answer.text


def test_nothing_relevant_is_refused(sample_kb):
    settings, _ = sample_kb
    for question in ["火星上有多少颗卫星？", "如何做红烧肉？", "What is the capital of France?"]:
        answer = ask(question, "kb", settings)
        assert answer.refused and not answer.citations, question
    assert "抱歉" in ask("火星上有多少颗卫星？", "kb", settings).text
    assert "Sorry" in ask("What is the capital of France?", "kb", settings).text


def test_remove_document_removes_its_chunks_everywhere(settings, corpus):
    ingest_paths([corpus], "kb", settings)
    source = str(corpus / "客户服务规范.pdf")
    assert remove_document("kb", source, settings)
    assert not remove_document("kb", source, settings)
    with KnowledgeBase.open("kb", settings) as kb:
        assert_consistent(kb)
        assert kb.catalog.document_by_source(source) is None
        assert all(h.chunk.source != source for h in kb.retriever().search("客户投诉处理方案", 10).hits)


def test_edited_document_reuses_embeddings_of_unchanged_chunks(settings, tmp_path, monkeypatch):
    doc = write(tmp_path / "d" / "长文.md", "\n".join(f"# 第{i}节\n第{i}节规定每晚不超过{i}00元。" for i in range(1, 6)))
    ingest_paths([doc], "kb", settings)
    from retrieval import embedders

    calls: list[list[str]] = []
    real = embedders.USEEmbedder.embed_documents

    def counting(self, texts):
        calls.append(list(texts))
        return real(self, texts)

    monkeypatch.setattr(embedders.USEEmbedder, "embed_documents", counting)
    write(doc, doc.read_text(encoding="utf-8").replace("第3节规定每晚不超过300元", "第3节规定每晚不超过350元"))
    ingest_paths([doc], "kb", settings)
    chunk_texts, sentences = calls  # the edited chunk, then its sentences (retrieval.sentences)
    assert len(chunk_texts) == 1 and "350元" in chunk_texts[0]
    assert sentences and all("第3节" in t for t in sentences) and any("350元" in t for t in sentences)


def test_readers_keep_a_consistent_snapshot_while_a_writer_is_busy(settings, tmp_path, services):
    from ingest.kb import shared_kb
    from ingest.pipeline import (
        SourceFile,
        _embed_with_reuse,
        _IndexWriter,
        commit_prepared,
        prepare_file,
    )

    write(tmp_path / "d1" / "一.md", "一线城市每晚不超过600元。")
    ingest_paths([tmp_path / "d1"], "kb", settings)
    reader = shared_kb("kb", settings, services)
    assert reader.retriever().search("一线城市住宿", 1).hits
    with KnowledgeBase.open("kb", settings) as writer, writer.write_lock:
        f = write(tmp_path / "d2" / "二.md", "资安事件须于1小时内通报资讯安全部。")
        prepared = prepare_file(writer, SourceFile(f, str(f)), {})
        commit_prepared(writer, prepared, _embed_with_reuse(writer, prepared.index_texts, prepared.sentence_texts), _IndexWriter(writer))
        # the catalogue moved on, the index files did not: the reader serves its old snapshot
        vectors, bm25 = reader.indexes()
        assert vectors.count() == bm25.count() == 1
    # writer gone, index files stale: the reader catches up from the catalogue
    vectors, bm25 = reader.indexes()
    assert vectors.count() == bm25.count() == 2


def test_extractive_answer_skips_table_headers(sample_kb):
    settings, _ = sample_kb
    answer = ask("一线城市住宿标准是多少？", "kb", settings)
    assert "城市级别" not in answer.text and "600元" in answer.text


def test_small_files_are_embedded_in_groups_and_committed_in_order(tmp_path, settings, monkeypatch):
    """Many one-chunk files share embedding calls (groups of EMBED_GROUP_TEXTS chunks); every file is
    still reported and committed in the order given, and each one is found by its own fact."""
    import ingest.pipeline as pipeline

    monkeypatch.setattr(pipeline, "EMBED_GROUP_TEXTS", 4)
    calls: list[int] = []
    embed = pipeline._embed_with_reuse
    monkeypatch.setattr(pipeline, "_embed_with_reuse", lambda kb, texts, sentences=None: (calls.append(len(texts)), embed(kb, texts, sentences))[1])
    cities = ["北京", "上海", "广州", "深圳", "杭州", "南京", "成都", "武汉", "西安", "重庆", "天津"]
    paths = [write(tmp_path / "d" / f"{i:02d}.txt", f"{city}分公司的门禁密码每{i + 2}天更换一次。")
             for i, city in enumerate(cities)]
    results = ingest_paths(paths, "kb", settings)
    assert [r.source for r in results] == [str(p) for p in paths]
    assert all(r.status == "indexed" and r.n_chunks == 1 for r in results)
    assert calls == [4, 4, 3]  # three calls for eleven files, not eleven
    with KnowledgeBase.open("kb", settings) as kb:
        assert kb.catalog.counts() == (11, 11)
        hits = kb.retriever(settings).search("成都分公司的门禁密码多久换一次？", 1).hits
    assert hits[0].chunk.source.endswith("06.txt")
