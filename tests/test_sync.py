"""`ingest DIR --sync`: the knowledge base mirrors a folder. Real files, real SQLite catalogue, real FAISS
and BM25 files, the real embedder; the CLI as a subprocess."""

import json
import os

import pytest

from core.settings import Settings
from ingest.documents import ingest_upload
from ingest.kb import KnowledgeBase
from ingest.pipeline import ingest_paths
from ingest.sync import KEPT_NOTE, NotAFolder, sync_folder
from tests.conftest import assert_consistent, write
from tests.test_cli import run

TEXTS = {
    "甲.md": "雪豹保护区的巡护员每月巡山二十次。",
    "乙.txt": "年休假：满1年不满10年的，年休假5天。",
    "丙.md": "出差结束后15个工作日内提交报销单。",
}
NEW = "机房温度应保持在18到27摄氏度之间。"
OUTSIDE = "客服热线每天早上八点到晚上十点有人接听。"
SNOW_LEOPARD = "雪豹保护区的巡护员每月巡山几次"


def _folder(root):
    docs = root / "docs"
    for name, text in TEXTS.items():
        write(docs / name, text)
    return docs


def _statuses(results) -> dict[str, str]:
    return {os.path.basename(r.source): r.status for r in results}


def _found(kb: KnowledgeBase, settings: Settings, query: str, mode: str) -> list[str]:
    """Sources of the hits for ``query`` with one retriever alone (bm25 or dense)."""
    hits = kb.retriever(settings.model_copy(update={"retrieval_mode": mode})).search(query, 10).hits
    return [os.path.basename(h.chunk.source) for h in hits]




def test_sync_indexes_new_and_changed_removes_deleted_and_leaves_other_sources(settings, tmp_path):
    docs = _folder(tmp_path)
    outside = write(tmp_path / "elsewhere" / "外部.md", OUTSIDE)
    ingest_paths([docs, outside], "kb", settings)
    with KnowledgeBase.open("kb", settings) as kb:
        assert kb.catalog.counts() == (4, 4)
        gone_rowids = kb.catalog.rowids_of_sources([str(docs / "甲.md")])
        before_outside = kb.catalog.document_by_source(str(outside))
        assert _found(kb, settings, SNOW_LEOPARD, "bm25")[0] == "甲.md"
        assert _found(kb, settings, SNOW_LEOPARD, "dense")[0] == "甲.md"

    (docs / "甲.md").unlink()
    write(docs / "乙.txt", "年休假：满1年不满10年的，年休假7天。")
    write(docs / "丁.md", NEW)
    report = sync_folder("kb", docs, settings)

    assert _statuses(report.results) == {"甲.md": "removed", "乙.txt": "updated", "丙.md": "unchanged", "丁.md": "indexed"}
    assert report.counts() == {"indexed": 1, "updated": 1, "unchanged": 1, "duplicate": 0, "failed": 0, "removed": 1}
    assert all(r.reason == "" for r in report.results)
    removed = next(r for r in report.results if r.status == "removed")
    assert removed.source == str(docs / "甲.md") and removed.n_chunks == 1
    with KnowledgeBase.open("kb", settings) as kb:
        assert assert_consistent(kb) == (4, 4)
        assert {d.source for d in kb.catalog.list_documents()} == {str(docs / n) for n in ("乙.txt", "丙.md", "丁.md")} | {str(outside)}
        assert kb.catalog.document_by_source(str(outside)) == before_outside, "a source outside the folder is untouched"
        vectors, bm25 = kb.indexes()
        assert not set(gone_rowids) & {int(i) for i in bm25.ids}
        qvec = kb.embedder().embed_query(SNOW_LEOPARD)
        assert not set(gone_rowids) & {i for i, _ in vectors.search(qvec, 10)}
        assert "甲.md" not in _found(kb, settings, SNOW_LEOPARD, "bm25")
        assert "甲.md" not in _found(kb, settings, SNOW_LEOPARD, "dense")
        assert _found(kb, settings, "机房温度应保持在多少度", "bm25")[0] == "丁.md"
        assert "7天" in kb.catalog.chunks_of_document(kb.catalog.document_by_source(str(docs / "乙.txt")).id)[0].text
        version = kb.catalog.version()

    again = sync_folder("kb", docs, settings)
    assert _statuses(again.results) == {"乙.txt": "unchanged", "丙.md": "unchanged", "丁.md": "unchanged"}
    with KnowledgeBase.open("kb", settings) as kb:
        assert kb.catalog.version() == version, "a sync with nothing to do writes nothing"
        assert kb.catalog.counts() == (4, 4)


def test_a_file_that_fails_to_load_keeps_its_previous_document(settings, tmp_path):
    docs = _folder(tmp_path)
    ingest_paths([docs], "kb", settings)
    with KnowledgeBase.open("kb", settings) as kb:
        before = kb.catalog.document_by_source(str(docs / "乙.txt"))
    (docs / "乙.txt").write_bytes(os.urandom(3000))  # corrupt: binary junk where text was
    report = sync_folder("kb", docs, settings)
    assert _statuses(report.results) == {"甲.md": "unchanged", "乙.txt": "failed", "丙.md": "unchanged"}
    failed = next(r for r in report.results if r.status == "failed")
    assert failed.reason.endswith(KEPT_NOTE)
    with KnowledgeBase.open("kb", settings) as kb:
        assert assert_consistent(kb) == (3, 3)
        assert kb.catalog.document_by_source(str(docs / "乙.txt")) == before
        assert _found(kb, settings, "年休假几天", "bm25")[0] == "乙.txt"


def test_sources_match_however_the_folder_was_spelt_and_a_rename_is_not_lost(settings, tmp_path, monkeypatch):
    _folder(tmp_path)
    monkeypatch.chdir(tmp_path)
    ingest_paths(["docs"], "kb", settings)  # sources stored relative: "docs/甲.md"
    link = tmp_path / "link-to-docs"
    link.symlink_to(tmp_path / "docs")

    same = sync_folder("kb", link, settings)  # absolute, through a symlink
    assert _statuses(same.results) == {name: "unchanged" for name in TEXTS}
    assert {r.source for r in same.results} == {os.path.join("docs", n) for n in TEXTS}, "existing sources are kept"

    (tmp_path / "docs" / "甲.md").rename(tmp_path / "docs" / "戊.md")
    renamed = sync_folder("kb", tmp_path / "docs", settings)
    assert _statuses(renamed.results) == {"甲.md": "removed", "戊.md": "indexed", "乙.txt": "unchanged", "丙.md": "unchanged"}
    with KnowledgeBase.open("kb", settings) as kb:
        assert assert_consistent(kb) == (3, 3)
        assert _found(kb, settings, SNOW_LEOPARD, "bm25")[0] == "戊.md", "the renamed file's text is still there"


def test_hidden_files_and_uploads_are_left_alone(settings, tmp_path):
    docs = _folder(tmp_path)
    draft = write(docs / ".草稿.md", "草稿：食堂午餐时间改为十一点半。")
    write(docs / ".git" / "说明.md", "版本库内部文件。")
    ingest_paths([docs, draft], "kb", settings)  # the hidden file by name: a plain folder walk skips it
    assert ingest_upload("kb", "上传的.md", "上传文件：停车场晚上十点关闭。".encode(), settings).status == "indexed"

    report = sync_folder("kb", docs, settings)
    assert _statuses(report.results) == {name: "unchanged" for name in TEXTS}
    with KnowledgeBase.open("kb", settings) as kb:
        assert {os.path.basename(d.source) for d in kb.catalog.list_documents()} == set(TEXTS) | {".草稿.md", "上传的.md"}

    draft.unlink()
    report = sync_folder("kb", docs, settings)
    assert _statuses(report.results) == {**{name: "unchanged" for name in TEXTS}, ".草稿.md": "removed"}
    with KnowledgeBase.open("kb", settings) as kb:
        assert assert_consistent(kb) == (4, 4)


def test_sync_of_a_file_or_missing_folder_is_a_clear_error_and_creates_nothing(settings, tmp_path):
    docs = _folder(tmp_path)
    with pytest.raises(NotAFolder, match="不是文件夹"):
        sync_folder("kb", docs / "甲.md", settings)
    with pytest.raises(NotAFolder, match="不存在"):
        sync_folder("kb", tmp_path / "no-such-folder", settings)
    assert not (settings.kbs_dir / "kb").exists()


def test_dry_run_reports_the_sync_and_changes_nothing(settings, tmp_path):
    docs = _folder(tmp_path)
    preview_new = sync_folder("fresh", docs, settings, dry_run=True)
    assert _statuses(preview_new.results) == {name: "indexed" for name in TEXTS} and preview_new.dry_run
    assert not (settings.kbs_dir / "fresh").exists(), "a dry run creates no knowledge base"

    ingest_paths([docs], "kb", settings)
    (docs / "甲.md").unlink()
    write(docs / "乙.txt", "年休假：满1年不满10年的，年休假7天。")
    write(docs / "丁.md", NEW)
    with KnowledgeBase.open("kb", settings) as kb:
        version, counts = kb.catalog.version(), kb.catalog.counts()
    preview = sync_folder("kb", docs, settings, dry_run=True)
    with KnowledgeBase.open("kb", settings) as kb:
        assert (kb.catalog.version(), kb.catalog.counts()) == (version, counts)
    real = sync_folder("kb", docs, settings)
    expected = {"甲.md": "removed", "乙.txt": "updated", "丙.md": "unchanged", "丁.md": "indexed"}
    assert _statuses(preview.results) == _statuses(real.results) == expected


def test_a_crash_after_removing_leaves_a_consistent_kb_and_the_next_sync_finishes(settings, tmp_path, monkeypatch):
    docs = _folder(tmp_path)
    ingest_paths([docs], "kb", settings)
    (docs / "甲.md").unlink()
    write(docs / "丁.md", NEW)

    def crash(self, vectors, bm25):
        raise SystemExit("simulated crash: power lost before the indexes were saved")

    monkeypatch.setattr(KnowledgeBase, "commit_indexes", crash)
    with pytest.raises(SystemExit):
        sync_folder("kb", docs, settings)
    monkeypatch.undo()
    with KnowledgeBase.open("kb", settings) as kb:
        assert assert_consistent(kb) == (2, 2)  # the removal committed; opening rebuilt the stale indexes
        assert "甲.md" not in _found(kb, settings, SNOW_LEOPARD, "bm25")
    report = sync_folder("kb", docs, settings)
    assert _statuses(report.results) == {"乙.txt": "unchanged", "丙.md": "unchanged", "丁.md": "indexed"}
    with KnowledgeBase.open("kb", settings) as kb:
        assert assert_consistent(kb) == (3, 3)


def test_cli_sync_end_to_end(tmp_path):
    data = tmp_path / "data"
    docs = _folder(tmp_path)
    assert run(["ingest", str(docs), "--kb", "k"], data).returncode == 0
    (docs / "甲.md").unlink()
    write(docs / "丁.md", NEW)
    write(docs / "图.xyz", "not an image loader's type")

    preview = run(["ingest", str(docs), "--kb", "k", "--sync", "--dry-run"], data)
    assert preview.returncode == 0, preview.stderr
    assert "预演" in preview.stdout and "将删除" in preview.stdout and "甲.md" in preview.stdout
    assert "图.xyz" in preview.stdout and "不支持" in preview.stdout

    synced = run(["ingest", str(docs), "--kb", "k", "--sync", "--json"], data)
    assert synced.returncode == 0, synced.stderr
    out = json.loads(synced.stdout)
    assert out["dry_run"] is False and out["kb"] == "k"
    assert {os.path.basename(r["source"]): r["status"] for r in out["results"]} == {
        "甲.md": "removed", "乙.txt": "unchanged", "丙.md": "unchanged", "丁.md": "indexed"}
    assert [os.path.basename(p) for p in out["unsupported"]] == ["图.xyz"]
    shown = json.loads(run(["kb", "show", "k", "--json"], data).stdout)
    assert sorted(os.path.basename(d["source"]) for d in shown["documents"]) == ["丁.md", "丙.md", "乙.txt"]

    again = run(["ingest", str(docs), "--kb", "k", "--sync"], data)
    assert again.returncode == 0 and "删除 0" in again.stdout and "未变化 3" in again.stdout

    on_file = run(["ingest", str(docs / "丙.md"), "--kb", "k", "--sync"], data)
    assert on_file.returncode == 1 and "不是文件夹" in on_file.stderr
    assert run(["ingest", str(docs), "--kb", "k", "--dry-run"], data).returncode == 1
