"""Folder sync (`zhiwen ingest DIR --sync`): afterwards the knowledge base mirrors one folder. New and
changed files are indexed, documents whose file is gone from the folder are removed, and everything
else in the knowledge base (uploads, documents from other folders) is left alone.

Which documents belong to the folder: sources are stored as the user gave them, relative or absolute
(``docs/a.md``, ``/home/u/docs/a.md``), so a source belongs to DIR when its path, made absolute and with
its directories resolved (symlinks, ``..``), lies under DIR resolved the same way. The file name itself
is not resolved: a symlinked file in DIR is a file of DIR. A file found in DIR that an earlier ingest
stored under another spelling of the same path keeps that document's source, so it is "unchanged" or
"updated", never re-indexed as a stranger that duplicates itself.

Knowledge is removed only when its file is gone. A file that is still there but fails to load this
time (unreadable, corrupt, a type no loader reads any more) is reported as failed and its document
kept: a transient read error must not delete anything. Hidden files are skipped as a plain ingest
skips them (and a document ingested from one by name stays while its file exists).

Order and crash safety: documents whose files are gone are removed first, under the knowledge base's
write lock, each in its own catalogue transaction, with the indexes saved once afterwards; then the
folder is ingested by ``ingest_paths`` (its own lock and transactions). Removing first matters for a
renamed file: indexed first, b.md would be skipped as a duplicate of a.md and then a.md removed, losing
the text. A crash in between leaves a consistent knowledge base (stale index stamps are rebuilt on open)
that the next sync completes.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

from core.errors import KnowledgeBaseNotFound, ZhiwenError
from core.models import Document, IngestResult
from core.settings import Settings
from ingest.documents import drop_documents
from ingest.kb import KnowledgeBase, validate_name
from ingest.loaders import SUPPORTED_SUFFIXES
from ingest.pipeline import (
    ProgressCallback,
    SourceFile,
    discover,
    ingest_paths,
    unsupported_files,
)
from ingest.uploads import is_upload_source

SyncStatus = Literal["indexed", "updated", "unchanged", "duplicate", "failed", "removed"]
KEPT_NOTE = "；已保留上次导入的版本 (previous version kept)"


class NotAFolder(ZhiwenError):
    """`--sync` mirrors a folder; a file or a missing path cannot be mirrored (and a vanished mount must
    not read as "every file was deleted")."""

    def __init__(self, path: Path) -> None:
        what = "是文件，不是文件夹 (is a file, not a folder)" if path.exists() else "不存在 (no such folder)"
        super().__init__(f"同步需要一个文件夹：{path} {what}；导入单个文件请去掉 --sync (--sync mirrors a folder)")


class SyncResult(IngestResult):
    """One line of a sync report: an ingest outcome, or "removed" (its file is gone from the folder)."""

    status: SyncStatus  # type: ignore[assignment]


@dataclass
class SyncReport:
    kb: str
    folder: str
    results: list[SyncResult]
    unsupported: list[str] = field(default_factory=list)  # files no loader reads and no document came from
    dry_run: bool = False

    def counts(self) -> dict[str, int]:
        return {s: sum(r.status == s for r in self.results) for s in get_args(SyncStatus)}

    def to_json(self) -> dict:
        return {"kb": self.kb, "folder": self.folder, "dry_run": self.dry_run,
                "results": [r.model_dump() for r in self.results], "unsupported": self.unsupported}


@dataclass
class SyncPlan:
    files: list[SourceFile]  # to ingest, each under its existing document's source when it has one
    removals: list[Document]  # documents of this folder whose file is gone
    kept: list[SyncResult]  # documents whose file is there but no loader takes its type now
    unsupported: list[str]  # other files of unsupported types (named, as a plain ingest names them)
    existing: dict[str, Document]  # every document of this folder, by source


def path_key(path: str | Path) -> Path:
    """The absolute path with its directories resolved and its own name kept: the identity of a file
    in a folder however its path was spelt (relative, through a symlinked folder, with ``..``)."""
    absolute = Path(os.path.abspath(path))
    return absolute.parent.resolve() / absolute.name


def _under(key: Path, root: Path) -> bool:
    return key != root and key.is_relative_to(root)


def _hidden(key: Path, root: Path) -> bool:
    """Whether the folder walk skips this file: it or a folder on its way down from ``root`` is hidden."""
    return any(part.startswith(".") for part in key.relative_to(root).parts)


def folder_documents(documents: list[Document], folder: Path) -> dict[Path, Document]:
    """The documents whose source lies under ``folder``, by path key (uploads never do)."""
    root = folder.resolve()
    out: dict[Path, Document] = {}
    for doc in documents:
        if is_upload_source(doc.source):
            continue
        key = path_key(doc.source)
        if _under(key, root):
            out.setdefault(key, doc)
    return out


def plan_sync(documents: list[Document], folder: Path) -> SyncPlan:
    """What a sync of ``folder`` has to do, given the knowledge base's documents. Reads no file content."""
    root = folder.resolve()
    ours = folder_documents(documents, folder)
    found, _ = discover([folder])
    keys = [path_key(f.path) for f in found]
    files = [SourceFile(f.path, ours[k].source if k in ours else f.source) for f, k in zip(found, keys)]
    seen = set(keys)
    removals, kept = [], []
    for key, doc in ours.items():
        if key in seen:
            continue
        if not os.path.isfile(key):
            removals.append(doc)
        elif key.suffix.lower() not in SUPPORTED_SUFFIXES and not _hidden(key, root):
            kept.append(SyncResult(source=doc.source, status="failed", n_chunks=doc.n_chunks, doc_id=doc.id,
                                   reason=f"不支持的文件类型 {key.suffix or '(无扩展名)'} (unsupported type)" + KEPT_NOTE))
        # else: still there but not walked (a hidden file ingested by name): left alone, as a plain ingest
        # of the folder leaves it
    kept_keys = {path_key(r.source) for r in kept}
    unsupported = [p for p in unsupported_files([folder]) if path_key(p) not in kept_keys]
    return SyncPlan(files, removals, kept, unsupported, {d.source: d for d in ours.values()})


def sync_folder(
    kb_name: str,
    folder: str | Path,
    settings: Settings,
    on_progress: ProgressCallback | None = None,
    dry_run: bool = False,
) -> SyncReport:
    """Make knowledge base ``kb_name`` (created if needed) mirror ``folder``; see the module docstring.
    Raises NotAFolder for a file or a missing path, InvalidName for a bad knowledge-base name.
    ``dry_run`` reports what would change and changes nothing (no knowledge base is created either).
    ``on_progress`` gets every result as it happens: removals first, then the files ingested."""
    folder = Path(folder)
    if not folder.is_dir():
        raise NotAFolder(folder)
    validate_name(kb_name)
    if dry_run:
        return _preview(kb_name, folder, settings, on_progress)
    with KnowledgeBase.open(kb_name, settings, create=True) as kb, kb.write_lock:
        plan = plan_sync(kb.catalog.list_documents(), folder)  # under the lock: no writer moves the catalogue meanwhile
        gone = set(drop_documents(kb, [d.source for d in plan.removals]))
    removed = [SyncResult(source=d.source, status="removed", n_chunks=d.n_chunks, doc_id=d.id)
               for d in plan.removals if d.source in gone]
    total = len(removed) + len(plan.kept) + len(plan.files)
    done = 0

    def report(result: SyncResult) -> None:
        nonlocal done
        done += 1
        if on_progress:
            on_progress(result, done, total)

    for r in removed + plan.kept:
        report(r)

    def on_ingested(result: IngestResult, _done: int, _total: int) -> None:
        report(_as_sync(result, plan.existing))

    ingested = ingest_paths(plan.files, kb_name, settings, on_progress=on_ingested) if plan.files else []
    results = [_as_sync(r, plan.existing) for r in ingested] + plan.kept + removed
    return SyncReport(kb_name, str(folder), results, plan.unsupported)


def _as_sync(result: IngestResult, existing: dict[str, Document]) -> SyncResult:
    """An ingest result as a sync line; a failure of a file that has a document says the old one stays."""
    out = SyncResult(**result.model_dump())
    if out.status == "failed" and out.source in existing and not out.reason.endswith(KEPT_NOTE):
        out.reason += KEPT_NOTE
    return out


def _preview(kb_name: str, folder: Path, settings: Settings, on_progress: ProgressCallback | None) -> SyncReport:
    """A dry run: the same plan, and each file's status guessed from its bytes' hash the way the
    pipeline's first check does ("updated" may turn out "unchanged" when only the encoding changed, and
    "indexed" a "duplicate"). Nothing is written, and a missing knowledge base is not created."""
    try:
        with KnowledgeBase.open(kb_name, settings) as kb:
            documents = kb.catalog.list_documents()
    except KnowledgeBaseNotFound:
        documents = []  # the sync would create it: every file is new
    plan = plan_sync(documents, folder)
    results: list[SyncResult] = []
    for f in plan.files:
        doc = plan.existing.get(f.source)
        try:
            digest = hashlib.sha256(f.path.read_bytes()).hexdigest()
        except OSError as exc:
            reason = f"无法读取文件 (cannot read: {exc.strerror})" + (KEPT_NOTE if doc else "")
            results.append(SyncResult(source=f.source, status="failed", reason=reason))
            continue
        if doc is None:
            results.append(SyncResult(source=f.source, status="indexed"))
        else:
            status = "unchanged" if doc.content_hash == digest else "updated"
            results.append(SyncResult(source=f.source, status=status, n_chunks=doc.n_chunks, doc_id=doc.id))
    results += plan.kept
    results += [SyncResult(source=d.source, status="removed", n_chunks=d.n_chunks, doc_id=d.id) for d in plan.removals]
    for i, r in enumerate(results):
        if on_progress:
            on_progress(r, i + 1, len(results))
    return SyncReport(kb_name, str(folder), results, plan.unsupported, dry_run=True)
