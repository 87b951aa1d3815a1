"""What the surfaces (CLI, web UI, HTTP API) do to single documents: upload one, remove one, re-index
one. It sits above both ``ingest.pipeline`` (ingesting files) and ``ingest.uploads`` (checking and
storing uploaded bytes), so neither of those imports the other.

Bad input is a result, not an exception: ``ingest_upload`` returns an ``IngestResult`` with status
"failed" and the reason (hint included), as ``ingest_paths`` does for a file it cannot read.
"""

from __future__ import annotations

from pathlib import Path

from core.errors import DocumentNotFound, LoadError
from core.models import IngestResult
from core.services import Services
from core.settings import Settings
from ingest.kb import KnowledgeBase
from ingest.pipeline import SourceFile, failed_result, ingest_paths
from ingest.uploads import (
    check_upload,
    discard_upload,
    staged_upload,
    stored_upload,
    upload_lock,
    upload_source,
)


def ingest_upload(
    kb_name: str, filename: str, data: bytes, settings: Settings, content_type: str | None = None,
    services: Services | None = None,
) -> IngestResult:
    """Check, store and ingest one uploaded file into ``kb_name`` (created if needed); see ingest.uploads.

    Returns the IngestResult: indexed / updated / unchanged / duplicate, or failed with the reason when
    the upload is refused (too large, empty, content not a supported type, archive bomb, the same name
    busy) or the loader could not read it; a refused upload's source is its display name (no "上传/").
    Raises InvalidName for a bad knowledge-base name. ``content_type`` is what the client claimed; it is
    never trusted and plays no part in the decision."""
    del content_type  # the bytes decide
    try:
        name, suffix = check_upload(kb_name, filename, data, settings)
        source = upload_source(name)
        KnowledgeBase.open(kb_name, settings, create=True).close()
        with upload_lock(kb_name, source, settings), staged_upload(kb_name, source, suffix, data, settings) as (staging, keep):
            result = ingest_paths([SourceFile(staging, source)], kb_name, settings, services=services)[0]
            if result.status in ("indexed", "updated", "unchanged"):
                keep()  # the catalogue now holds these bytes' text: they become the stored copy
    except LoadError as exc:
        return failed_result(exc.source, exc)
    return result


def remove_document(kb_name: str, source: str, settings: Settings) -> bool:
    """Remove one document (by its source path) from a knowledge base; False when it was not there.
    An uploaded document's stored copy goes with it."""
    with upload_lock(kb_name, source, settings):
        with KnowledgeBase.open(kb_name, settings) as kb, kb.write_lock:
            if not drop_documents(kb, [source]):
                return False
        discard_upload(kb_name, source, settings)
        return True


def drop_documents(kb: KnowledgeBase, sources: list[str]) -> list[str]:
    """Remove documents (by source) from an open knowledge base whose write lock the caller holds; returns
    the sources that were there. Each removal is its own catalogue transaction and the indexes are saved
    once at the end, so a crash in between leaves index stamps behind the catalogue: rebuilt on open.
    Stored upload copies are the caller's business (remove_document discards them)."""
    if not sources:
        return []
    vectors, bm25 = kb.indexes()
    vectors = vectors.clone()
    gone, rows = [], []
    for source in sources:
        removed = kb.catalog.remove_document(source)
        if removed is not None:
            vectors.remove(removed)
            gone.append(source)
            rows += removed
    if gone:
        kb.commit_indexes(vectors, kb.updated_bm25(bm25, [], rows))  # tombstones, not a BM25 rebuild
    return gone


def reindex_document(kb_name: str, source: str, settings: Settings) -> IngestResult:
    """Re-read, re-chunk and re-embed one document from its source file (an upload: its stored copy).
    Raises DocumentNotFound, or LoadError when the source file is gone or the document is busy."""
    with upload_lock(kb_name, source, settings):
        with KnowledgeBase.open(kb_name, settings) as kb:
            if kb.catalog.document_by_source(source) is None:
                raise DocumentNotFound(kb_name, source)
        path = stored_upload(kb_name, source, settings) or Path(source)
        if not path.is_file():
            raise LoadError(source, "源文件已不存在，无法重新索引 (source file is gone)", "重新上传该文件")
        return ingest_paths([SourceFile(path, source)], kb_name, settings, force=True)[0]
