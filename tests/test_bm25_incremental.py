"""Incremental local BM25 (issue 19): adding, removing and merging give exactly a full build's scores,
coverage and ranking, which are bm25s's (the answerability calibration was fitted on them); the files
reopen memory-mapped; an index file from before is rebuilt, never a crash. Real jieba tokens of the
sample corpus, real files on disk."""

from __future__ import annotations

import shutil
from pathlib import Path

import bm25s
import numpy as np
import pytest

from core.text import search_tokens, split_sentences
from ingest.documents import remove_document
from ingest.kb import BM25_FILE, KnowledgeBase
from ingest.pipeline import ingest_paths
from retrieval.bm25 import BASE_FORMAT, DELTA_FORMAT, BM25Index, delta_path
from retrieval.bm25_segments import read_header, write_mapped
from tests.conftest import SAMPLES, assert_consistent

QUERIES = ["员工年假有几天", "一线城市住宿标准是多少", "资安事件多久通报", "知问网关的P99延迟是多少", "数据备份保留多久",
           "客户投诉处理时限", "报销需要哪些发票", "火星上有多少颗卫星", "密码多久更换一次", "出差 住宿 每晚"]


def _sample_sentences() -> list[str]:
    sentences = []
    for path in sorted(SAMPLES.iterdir()):
        if path.suffix not in (".txt", ".md", ".csv", ".jsonl", ".html"):
            continue
        raw = path.read_bytes()
        for encoding in ("utf-8", "gb18030", "big5"):
            try:
                text = raw.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
        sentences += [text[a:b].strip() for a, b in split_sentences(text) if text[a:b].strip()]
    return sentences


@pytest.fixture(scope="module")
def corpus() -> tuple[list[int], list[list[str]]]:
    """600 chunks of 1–4 sample sentences each (a few empty: they still get a row), jieba-tokenised."""
    sentences = _sample_sentences()
    rng = np.random.default_rng(0)
    texts = []
    for k in range(600):
        if k % 97 == 5:
            texts.append("")
            continue
        start = int(rng.integers(0, len(sentences)))
        texts.append("".join(sentences[start : start + int(rng.integers(1, 5))]))
    ids = list(range(1000, 1000 + 3 * len(texts), 3))  # catalogue row ids: ascending, with gaps
    return ids, [search_tokens(t) for t in texts]


def _bm25s_reference(tokens: list[list[str]], query: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Scores and coverage as this index computed them when it was bm25s (the pre-issue-19 code)."""
    r = bm25s.BM25()
    r.index([t or [""] for t in tokens], show_progress=False)
    n = len(tokens)
    terms = list(dict.fromkeys(query))
    scores = np.zeros(n, dtype=np.float64)
    covered = np.zeros(n, dtype=np.float64)
    total = 0.0
    for t in terms:
        df = sum(1 for doc in tokens if t in doc)
        w = float(np.log(1 + (n - df + 0.5) / (df + 0.5)))
        total += w
        if t in r.vocab_dict:
            s = r.get_scores([t])
            scores += s
            covered += np.where(s > 0, np.float32(w), 0.0)
    return scores.astype(np.float32), (covered / total if total > 0 else covered).astype(np.float32)


def _assert_same(index: BM25Index, ids: list[int], tokens: list[list[str]], reference: bool = False) -> None:
    """``index`` scores every query like a full build over (ids, tokens), chunk by chunk (and like bm25s)."""
    full = BM25Index(ids, tokens)
    assert index.count() == full.count() == len(ids)
    for q in QUERIES:
        qt = search_tokens(q)
        s, c = index.score(qt)
        fs, fc = full.score(qt)
        rows = np.array([index.position(i) for i in ids])
        assert np.allclose(s[rows], fs, atol=1e-5, rtol=0) and np.allclose(c[rows], fc, atol=1e-5, rtol=0), q
        live = np.zeros(len(index.ids), dtype=bool)
        live[rows] = True
        assert not s[~live].any() and not c[~live].any(), "removed chunks score nothing"
        if reference:
            rs, rc = _bm25s_reference(tokens, qt)
            assert np.allclose(s[rows], rs, atol=1e-5, rtol=0) and np.allclose(c[rows], rc, atol=1e-5, rtol=0), q
        for t in qt:
            assert index.idf(t) == pytest.approx(full.idf(t), abs=1e-12)
        hits, full_hits = index.candidates(q, qt, 10), full.candidates(q, qt, 10)
        # the same ranking: the same scores in the same order, each hit scored as the full build scores it
        # (chunks built from the same sentences tie, and ties may come in either order)
        assert np.allclose(list(hits.top.values()), list(full_hits.top.values()), atol=1e-5), f"same ranking for {q}"
        full_rows = {i: k for k, i in enumerate(ids)}
        assert all(abs(v - fs[full_rows[i]]) <= 1e-5 for i, v in hits.top.items())
        untied = [i for i, v in full_hits.top.items() if sum(abs(v - w) <= 1e-5 for w in full_hits.top.values()) == 1]
        assert all(list(hits.top).index(i) == list(full_hits.top).index(i) for i in untied)
        assert all(abs(c[index.position(i)] - fc[full_rows[i]]) <= 1e-5 for i in hits.coverage)
        assert hits.unseen == pytest.approx(full_hits.unseen, abs=1e-9)


def test_full_build_scores_like_bm25s(corpus):
    ids, tokens = corpus
    _assert_same(BM25Index(ids, tokens), ids, tokens, reference=True)


def test_incremental_add_equals_full_rebuild(corpus):
    ids, tokens = corpus
    index = BM25Index(ids[:400], tokens[:400])
    for a, b in ((400, 450), (450, 451), (451, 600)):
        index = index.updated(ids[a:b], tokens[a:b], [], merge_min_rows=10_000)
        assert index.pending == (b - 400, 0), "new chunks go to the delta, the base is kept"
        _assert_same(index, ids[:b], tokens[:b])
    _assert_same(index, ids, tokens, reference=True)


def test_delete_then_query(corpus):
    ids, tokens = corpus
    index = BM25Index(ids[:500], tokens[:500]).updated(ids[500:], tokens[500:], [], merge_min_rows=10_000)
    gone = set(ids[10:60]) | set(ids[520:540]) | {ids[0], ids[-1]}  # from the base and from the delta
    smaller = index.updated([], [], sorted(gone) + [7, 99_999], merge_min_rows=10_000)  # unknown ids: ignored
    assert smaller.pending == (100 - 21, 51)
    keep = [k for k, i in enumerate(ids) if i not in gone]
    _assert_same(smaller, [ids[k] for k in keep], [tokens[k] for k in keep], reference=True)
    assert all(smaller.position(i) is None for i in gone)
    for q in QUERIES:
        assert not gone & set(smaller.candidates(q, search_tokens(q), 50).top)
    assert index.count() == 600, "an update never changes the index it started from (readers share it)"
    # removing everything: an empty index that still answers
    empty = smaller.updated([], [], ids, merge_min_rows=10_000)
    assert empty.count() == 0 and not empty.candidates("年假", ["年假"], 5).top


def test_merge_is_triggered_and_keeps_scores(corpus):
    ids, tokens = corpus
    index = BM25Index(ids[:500], tokens[:500])
    small = index.updated(ids[500:520], tokens[500:520], [], merge_fraction=0.10, merge_min_rows=0)
    assert small.pending == (20, 0), "20 new rows of 520 stay under 10 %"
    merged = small.updated(ids[520:], tokens[520:], ids[:5], merge_fraction=0.10, merge_min_rows=0)
    assert merged.pending == (0, 0), "past 10 % the delta and tombstones fold into a new base"
    keep = ids[5:]
    _assert_same(merged, keep, tokens[5:], reference=True)
    # a merge drops terms only removed chunks had
    only_first = set(t for t in tokens[0] if not any(t in doc for doc in tokens[5:]))
    assert all(t not in merged._base.vocab for t in only_first)
    # tombstones alone trigger a merge too
    shrunk = merged.updated([], [], ids[5:100], merge_fraction=0.10, merge_min_rows=0)
    assert shrunk.pending == (0, 0) and shrunk.count() == 500
    _assert_same(shrunk, ids[100:], tokens[100:])


def test_reopen_from_disk_after_add(corpus, tmp_path):
    ids, tokens = corpus
    path = tmp_path / BM25_FILE
    index = BM25Index(ids[:500], tokens[:500])
    index.save(path, version=1)
    base_before = read_header(path)
    assert base_before["format"] == BASE_FORMAT
    grown = index.updated(ids[500:], tokens[500:], ids[:3], merge_min_rows=10_000)
    grown.save(path, version=2)
    assert read_header(path) == base_before, "adding chunks rewrites the delta only, never the base"
    loaded, header = BM25Index.load(path)
    assert header["version"] == 2 and header["count"] == 597 and header["format"] == DELTA_FORMAT
    assert not loaded._base.rows.flags.writeable, "the base is mapped from the file, not copied"
    _assert_same(loaded, ids[3:], tokens[3:])
    # the loaded index updates and saves like the one that wrote it
    again = loaded.updated([], [], [ids[550]], merge_min_rows=10_000)
    again.save(path, version=3)
    assert read_header(path) == base_before
    reloaded, header = BM25Index.load(path)
    assert header["version"] == 3 and reloaded.count() == 596 and reloaded.position(ids[550]) is None
    # a merge writes a new base; a delta that names another base is not trusted
    merged = reloaded.updated([], [], [], merge_fraction=0.0, merge_min_rows=-1)
    stale_delta = delta_path(path).read_bytes()
    merged.save(path, version=4)
    assert read_header(path)["uid"] != base_before["uid"] and BM25Index.load(path)[0].pending == (0, 0)
    delta_path(path).write_bytes(stale_delta)  # as if the process died between the base and the delta
    assert BM25Index.load(path) is None


def _write_bm25s_era_file(path: Path, ids: list[int], tokens: list[list[str]], version: int) -> None:
    """A bm25.index as the bm25s-based index saved it (format "pickle5-mapped": a pickled bm25s.BM25,
    written the same aligned way as today's segments)."""
    retriever = bm25s.BM25()
    retriever.index([t or [""] for t in tokens], show_progress=False)
    header = {"version": version, "count": len(ids), "format": "pickle5-mapped"}
    write_mapped(path, header, (np.asarray(ids, dtype=np.int64), retriever))


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_knowledge_base_updates_bm25_incrementally(settings, tmp_path):
    """Ingest, ingest more, re-ingest an edited file, remove a document: the base file stays as the first
    build wrote it, the delta follows, and every step scores like a rebuild from the catalogue."""
    shutil.copytree(SAMPLES, tmp_path / "corpus")
    ingest_paths([tmp_path / "corpus"], "kb", settings)
    with KnowledgeBase.open("kb", settings) as kb:
        base = read_header(kb.dir / BM25_FILE)
        assert kb.indexes()[1].pending == (0, 0), "the first ingest into a new knowledge base goes to the base"
        assert_consistent(kb)

    _write(tmp_path / "more" / "新增.md", "# 新增制度\n\n员工年假自2025年起增加到十五天。出差住宿每晚不超过800元。")
    _write(tmp_path / "more" / "备份.md", "# 备份\n\n数据备份每天凌晨两点进行，保留三十天。")
    ingest_paths([tmp_path / "more"], "kb", settings)
    _write(tmp_path / "more" / "备份.md", "# 备份\n\n数据备份每周一次，保留九十天。异地副本每月校验。")
    ingest_paths([tmp_path / "more"], "kb", settings)  # the edited file: its old chunks are tombstoned
    remove_document("kb", str(tmp_path / "more" / "新增.md"), settings)  # in the delta: dropped from it
    remove_document("kb", str(tmp_path / "corpus" / "常见问题.csv"), settings)  # in the base: tombstoned

    with KnowledgeBase.open("kb", settings) as kb:
        _, bm25 = kb.indexes()
        assert read_header(kb.dir / BM25_FILE) == base, "no ingest rewrote the base"
        assert bm25.pending[0] >= 1 and bm25.pending[1] >= 1
        assert_consistent(kb)
        ids, tokens = kb.catalog.all_tokens()
        _assert_same(bm25, ids, tokens)
        retriever = kb.retriever()
        assert any(h.chunk.source.endswith("备份.md") and "九十天" in h.chunk.text
                   for h in retriever.search("异地副本多久校验一次", 3).hits)
        assert not any("凌晨两点" in h.chunk.text or "新增制度" in h.chunk.text
                       for h in retriever.search("凌晨两点 年假十五天", 10).hits), "replaced and removed chunks are gone"


def test_old_format_index_file_is_rebuilt(settings, tmp_path):
    _write(tmp_path / "d" / "一.md", "一线城市住宿每晚不超过600元。")
    _write(tmp_path / "d" / "二.md", "资安事件须在1小时内通报信息安全部。")
    ingest_paths([tmp_path / "d"], "kb", settings)
    with KnowledgeBase.open("kb", settings) as kb:
        ids, tokens = kb.catalog.all_tokens()
        for f in (kb.dir / BM25_FILE, delta_path(kb.dir / BM25_FILE)):
            f.unlink()
        _write_bm25s_era_file(kb.dir / BM25_FILE, ids, tokens, kb.catalog.version())  # stamp matches: only the format is old
        assert BM25Index.load(kb.dir / BM25_FILE) is None
    with KnowledgeBase.open("kb", settings) as kb:
        _, bm25 = kb.indexes()
        assert isinstance(bm25, BM25Index) and bm25.count() == 2
        assert read_header(kb.dir / BM25_FILE)["format"] == BASE_FORMAT, "rebuilt in the new format"
        assert kb.retriever().search("资安事件多久通报", 1).hits[0].chunk.source.endswith("二.md")
    with KnowledgeBase.open("kb", settings) as kb:  # and a missing delta file alone means a rebuild as well
        delta_path(kb.dir / BM25_FILE).unlink()
        assert_consistent(kb)
        assert delta_path(kb.dir / BM25_FILE).exists()
