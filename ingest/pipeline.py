"""The ingest job: files → documents and chunks in the catalogue → indexes.

Each file is its own transaction: a bad file is reported by name and the batch goes on; a crash
leaves every earlier file committed and the indexes stale-but-rebuildable (see ingest.kb). The
indexes are saved once, at the end of the batch.
"""

from __future__ import annotations

import bisect
import hashlib
import logging
import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from core.errors import LoadError
from core.models import Chunk, Document, IngestResult
from core.services import Services
from core.settings import Settings
from core.text import search_tokens
from ingest.archives import ArchiveLimits, archive_limits
from ingest.catalog import utcnow
from ingest.chunking import chunk_text, index_text, sentence_texts
from ingest.clean import clean_pages
from ingest.kb import KnowledgeBase
from ingest.loaded import LoadedDocument
from ingest.loaders import LOADERS, SUPPORTED_SUFFIXES, load_bytes
from ingest.ocr import ocr_warning
from moderation.moderator import Moderator, moderator_for
from retrieval.embedders import Embedder

log = logging.getLogger(__name__)

ProgressCallback = Callable[[IngestResult, int, int], None]


@dataclass
class SourceFile:
    path: Path  # where the bytes are read from
    source: str  # the path as the user gave it (or as found under a folder they gave); for an upload, its name


def discover(paths: Iterable[str | Path | SourceFile]) -> tuple[list[SourceFile], list[IngestResult]]:
    """Expand folders (recursively, supported types only, hidden files skipped); report missing paths.
    A SourceFile is taken as it is: a stored copy whose name for users differs from its path (an upload)."""
    found: list[SourceFile] = []
    missing: list[IngestResult] = []
    for raw in paths:
        if isinstance(raw, SourceFile):
            if raw.path.is_file():
                found.append(raw)
            else:
                missing.append(IngestResult(source=raw.source, status="failed", reason="文件不存在 (no such file)"))
            continue
        path = Path(raw)
        if path.is_dir():
            found += [SourceFile(p, str(p)) for p in _walk_folder(path) if p.suffix.lower() in SUPPORTED_SUFFIXES]
        elif path.is_file():
            found.append(SourceFile(path, str(raw)))
        else:
            missing.append(IngestResult(source=str(raw), status="failed", reason="文件不存在 (no such file or folder)"))
    unique = list({f.source: f for f in found}.values())  # a path given twice is ingested once
    return unique, missing


def _walk_folder(folder: Path) -> Iterator[Path]:
    """Every file under a folder, sorted, hidden files and folders left out."""
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                yield Path(root) / name


def unsupported_files(paths: Iterable[str | Path]) -> list[str]:
    """The files under the given folders that ``discover`` leaves out because no loader reads their type,
    so a report can name them instead of skipping them silently. (A file named on its own is tried, and
    fails with the supported types in its reason.)"""
    return [str(p) for raw in paths if not isinstance(raw, SourceFile) and Path(raw).is_dir()
            for p in _walk_folder(Path(raw)) if p.suffix.lower() not in SUPPORTED_SUFFIXES]


class _IndexWriter:
    """Keeps the in-memory indexes in step with catalogue writes during one batch."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb
        vectors, bm25 = kb.indexes()
        self.vectors = vectors.clone()
        self.bm25 = bm25  # never changed in place (readers share it): commit builds its successor
        self.added: list[int] = []
        self.removed: list[int] = []
        self.dirty = False

    def apply(self, added: list[int], removed: list[int], embeddings: np.ndarray, chunks: list[Chunk]) -> None:
        self.vectors.remove(removed)
        meta = [{"doc_id": c.doc_id, "chunk_id": c.id, "source": c.source, "page": c.page, "start": c.start, "end": c.end,
                 "text": index_text(c.title, c.heading_path, c.text)} for c in chunks]  # text: Milvus's BM25
        self.vectors.add(np.asarray(added, dtype=np.int64), embeddings, meta)
        self.added += added
        self.removed += removed
        self.dirty = True

    def commit(self) -> None:
        if not self.dirty:
            return
        # BM25: postings for this batch's chunks only, not a rebuild over every chunk (retrieval.bm25)
        self.kb.commit_indexes(self.vectors, self.kb.updated_bm25(self.bm25, self.added, self.removed))
        self.dirty = False


@dataclass
class PreparedDocument:
    """A file loaded, cleaned, chunked and tokenised: everything but the embeddings."""

    document: Document
    text: str
    page_spans: list[tuple[int, int, int]]
    chunks: list[Chunk]
    index_texts: list[str]
    tokens: list[list[str]]
    replaces: bool  # a document with this source existed (status "updated")
    sentence_texts: list[list[str]] | None = None  # per chunk (retrieval.sentences); None: the KB keeps none


@dataclass
class Embedded:
    """One document's (or group's) vectors: per chunk, its vector, the hash of the embedded text, and
    its sentence vectors (None where the knowledge base keeps none)."""

    vectors: np.ndarray
    hashes: list[str]
    sentences: list[np.ndarray | None]

    def __getitem__(self, part: slice) -> "Embedded":
        return Embedded(self.vectors[part], self.hashes[part], self.sentences[part])


def prepare_file(
    kb: KnowledgeBase, file: SourceFile, in_flight: dict[str, str], force: bool = False, moderator: Moderator | None = None
) -> PreparedDocument | IngestResult:
    """Load → clean → chunk → tokenise, or the reason there is nothing to embed (unchanged, duplicate).
    ``in_flight`` maps doc ids prepared but not yet committed to their sources, for duplicate checks;
    ``moderator`` applies the rules' "ingest" surface (None: none)."""
    settings = kb.settings
    try:
        raw = file.path.read_bytes()
    except OSError as exc:
        raise LoadError(file.source, f"无法读取文件 (cannot read: {exc.strerror})")
    content_hash = hashlib.sha256(raw).hexdigest()
    existing = kb.catalog.document_by_source(file.source)
    if existing is not None and existing.content_hash == content_hash and not force:
        return IngestResult(source=file.source, status="unchanged", n_chunks=existing.n_chunks, doc_id=existing.id)

    with archive_limits(ArchiveLimits.of(settings)):
        loaded = _load(raw, file)
    cleaned = clean_pages(loaded.pages, pdf_layout=loaded.paged if loaded.pdf_layout is None else loaded.pdf_layout,
                          drop_repeated_lines=loaded.pdf_layout is not False)
    if not cleaned.text.strip():
        raise LoadError(file.source, "清洗后没有文字内容 (no text left after cleaning)")
    moderated = _moderate_ingested(moderator, file.source, cleaned.text)
    if moderated != cleaned.text:
        # The original holds what is masked here: those pages are never shown as they are (ingest.originals).
        loaded.metadata["masked_pages"] = _pages_changed(cleaned.text, moderated, cleaned.page_spans)
    cleaned.text = moderated
    doc_id = hashlib.sha256(cleaned.text.encode("utf-8")).hexdigest()

    if existing is not None and existing.id == doc_id and not force:
        kb.catalog.touch_content_hash(file.source, content_hash, len(raw))
        return IngestResult(source=file.source, status="unchanged", n_chunks=existing.n_chunks, doc_id=doc_id)
    twin = kb.catalog.document_by_id(doc_id)
    twin_source = in_flight.get(doc_id) or (twin.source if twin is not None else None)
    if twin_source is not None and twin_source != file.source:
        return IngestResult(
            source=file.source, status="duplicate", doc_id=doc_id,
            reason=f"内容与已导入的 {twin_source} 相同，已跳过 (same content as {twin_source})",
        )

    spans = chunk_text(cleaned.text, cleaned.page_spans, settings.chunk_size, settings.chunk_overlap, paged=loaded.paged)
    chunks = [
        Chunk(
            id=f"{doc_id[:16]}-{i}", doc_id=doc_id, ordinal=i, text=cleaned.text[s.start : s.end], start=s.start,
            end=s.end, page=s.page, heading_path=s.heading_path, n_tokens=s.n_tokens, source=file.source, title=loaded.title,
        )
        for i, s in enumerate(spans)
    ]
    texts = [index_text(loaded.title, c.heading_path, c.text) for c in chunks]
    document = Document(
        id=doc_id, source=file.source, title=loaded.title, mime=loaded.mime, pages=len(loaded.pages),
        ingested_at=utcnow(), content_hash=content_hash, size_bytes=len(raw), n_chunks=len(chunks),
        metadata=loaded.metadata,
    )
    sentences = [sentence_texts(c.text) for c in chunks] if kb.keeps_sentence_vectors else None
    return PreparedDocument(document, cleaned.text, cleaned.page_spans, chunks, texts, [search_tokens(t) for t in texts],
                            existing is not None, sentences)


def _load(raw: bytes, file: SourceFile) -> LoadedDocument:
    """Load by the source's name, except a stored copy whose own suffix names its content: an upload
    called 报告.txt that is really a PDF is stored as <hash>.pdf (see ingest.uploads)."""
    stored_as = file.path.suffix.lower()
    if stored_as != Path(file.source).suffix.lower() and stored_as in LOADERS:
        return LOADERS[stored_as](raw, file.source)
    return load_bytes(raw, file.source)


def _pages_changed(before: str, after: str, page_spans: list[tuple[int, int, int]]) -> list[int]:
    """The pages (1-based; [1] for a file without pages) where ``after`` differs from ``before``."""
    changed = [i for i, (a, b) in enumerate(zip(before, after)) if a != b]
    pages = {page for start, end, page in page_spans if bisect.bisect_left(changed, start) < bisect.bisect_left(changed, end)}
    return sorted(pages) or [1]


def _moderate_ingested(moderator: Moderator | None, source: str, text: str) -> str:
    """The "ingest" surface of the moderation rules (off by default): PII masked before anything is
    indexed, or the file refused. Masks keep lengths, so offsets stay valid."""
    if moderator is None:
        return text
    result = moderator.check(text, "ingest")
    if result.blocked:
        raise LoadError(source, "内容审核拒绝导入 (blocked by moderation rules)", "见 zhiwen moderation check")
    return result.text


def commit_prepared(kb: KnowledgeBase, p: PreparedDocument, embedded: Embedded, writer: _IndexWriter) -> IngestResult:
    added, removed = kb.catalog.replace_document(p.document, p.text, p.page_spans, p.chunks, p.tokens, embedded.hashes,
                                                 embedded.vectors, embedded.sentences)
    writer.apply(added, removed, embedded.vectors, p.chunks)
    return IngestResult(
        source=p.document.source, status="updated" if p.replaces else "indexed", n_chunks=len(p.chunks), doc_id=p.document.id,
        reason=ocr_warning(p.document.metadata),  # went in, but partly by OCR: doubtful lines, pages left out
    )


def embedding_hash(model: str, text: str) -> str:
    """Key of a stored embedding: the same text embedded by another model is another vector."""
    return hashlib.sha1(f"{model}\x00{text}".encode("utf-8")).hexdigest()


def _embed_with_reuse(kb: KnowledgeBase, texts: list[str], sentences: list[list[str]] | None = None) -> Embedded:
    """Embed only texts the knowledge base has not embedded before: re-ingesting an edited document
    re-embeds its edited chunks, not all of them. ``sentences`` (per text; None: keep none) are
    embedded where the stored copy has none (a chunk from before sentence vectors)."""
    model = kb.embedding_model
    hashes = [embedding_hash(model, t) for t in texts]
    known = kb.catalog.embeddings_by_text_hash(hashes)
    todo = [i for i, h in enumerate(hashes) if h not in known]
    embedder = kb.embedder()
    fresh = embedder.embed_documents([texts[i] for i in todo]) if todo else np.zeros((0, embedder.dim), np.float32)
    out = np.zeros((len(texts), embedder.dim), dtype=np.float32)
    for row, i in enumerate(todo):
        out[i] = fresh[row]
    stored: list[np.ndarray | None] = [None] * len(texts)
    for i, h in enumerate(hashes):
        if h in known:
            out[i], stored[i] = known[h]
    if sentences is None:
        return Embedded(out, hashes, [None] * len(texts))
    missing = [i for i in range(len(texts)) if stored[i] is None]
    for i, matrix in zip(missing, embed_sentences(embedder, [sentences[i] for i in missing])):
        stored[i] = matrix
    return Embedded(out, hashes, stored)


def embed_sentences(embedder: Embedder, per_chunk: list[list[str]]) -> list[np.ndarray]:
    """Every chunk's sentences in one embedder call, split back per chunk (retrieval.sentences)."""
    flat = [t for sentences in per_chunk for t in sentences]
    vectors = embedder.embed_documents(flat) if flat else np.zeros((0, embedder.dim), np.float32)
    out, start = [], 0
    for sentences in per_chunk:
        out.append(vectors[start : start + len(sentences)])
        start += len(sentences)
    return out


EMBED_GROUP_TEXTS = 64  # chunks per embedding call across files (see ingest_paths)


def _embed_documents(kb: KnowledgeBase, documents: list[PreparedDocument]) -> list[Embedded]:
    """One embedding call for several documents' chunks, split back per document."""
    flat = [t for d in documents for t in d.index_texts]
    keep = all(d.sentence_texts is not None for d in documents)
    embedded = _embed_with_reuse(kb, flat, [s for d in documents for s in d.sentence_texts] if keep else None)  # type: ignore[union-attr]
    out, start = [], 0
    for d in documents:
        end = start + len(d.index_texts)
        out.append(embedded[start:end])
        start = end
    return out


def failed_result(source: str, exc: Exception) -> IngestResult:
    """The "failed" result for ``source``: a LoadError's reason and hint, or an internal error (logged)."""
    if isinstance(exc, LoadError):
        return IngestResult(source=source, status="failed", reason=exc.reason + (f"（{exc.hint}）" if exc.hint else ""))
    log.exception("ingest failed for %s", source, exc_info=exc)
    return IngestResult(source=source, status="failed", reason=f"内部错误 (internal error): {type(exc).__name__}: {exc}")


def ingest_paths(
    paths: Iterable[str | Path],
    kb_name: str,
    settings: Settings,
    on_progress: ProgressCallback | None = None,
    force: bool = False,
    services: Services | None = None,
) -> list[IngestResult]:
    """Ingest files and folders into a knowledge base (created if needed). Never raises for one bad
    file: every file gets an IngestResult, failures carry the reason. ``force`` re-indexes files whose
    content did not change (new chunking settings, say).

    Two stages overlap: while a worker thread embeds one group of files (numpy / C, outside the GIL),
    the main thread loads, cleans, chunks and tokenises the next group (Python, jieba). A group gathers
    files until it holds ``EMBED_GROUP_TEXTS`` chunks: e5's engine spreads one call over every core and
    is ~4× faster on a batch of 24 short passages than on 24 single calls, and a folder of small files
    would otherwise embed one or two chunks at a time. Files are committed in order. ``services`` (a
    server's) lends its compiled moderation rules and hears their findings."""
    files, results = discover(paths)
    moderator = moderator_for(settings, services)
    total = len(files) + len(results)

    def report(result: IngestResult) -> None:
        results.append(result)
        if on_progress:
            on_progress(result, len(results), total)

    for i, r in enumerate(results):
        if on_progress:
            on_progress(r, i + 1, total)
    with KnowledgeBase.open(kb_name, settings, create=True) as kb, kb.write_lock:
        writer = _IndexWriter(kb)
        # (source, outcome, the group's embedding future or None, position in the group)
        queue: deque[tuple[str, PreparedDocument | IngestResult, Future | None, int]] = deque()
        group: list[tuple[str, PreparedDocument | IngestResult]] = []
        in_flight: dict[str, str] = {}

        def finish_oldest() -> None:
            source, outcome, future, k = queue.popleft()
            if future is None:
                report(outcome)
                return
            in_flight.pop(outcome.document.id, None)
            try:
                report(commit_prepared(kb, outcome, future.result()[k], writer))
            except Exception as exc:  # one broken file must not stop the batch
                report(failed_result(source, exc))

        def submit_group(pool: ThreadPoolExecutor) -> None:
            prepared = [o for _, o in group if isinstance(o, PreparedDocument)]
            future = pool.submit(_embed_documents, kb, prepared) if prepared else None
            k = 0
            for source, outcome in group:
                if isinstance(outcome, PreparedDocument):
                    queue.append((source, outcome, future, k))
                    k += 1
                else:
                    queue.append((source, outcome, None, 0))
            group.clear()

        try:
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="zhiwen-embed") as pool:
                for file in files:
                    try:
                        outcome = prepare_file(kb, file, in_flight, force=force, moderator=moderator)
                    except Exception as exc:
                        outcome = failed_result(file.source, exc)
                    if isinstance(outcome, PreparedDocument):
                        in_flight[outcome.document.id] = file.source
                    group.append((file.source, outcome))
                    if sum(len(o.index_texts) for _, o in group if isinstance(o, PreparedDocument)) >= EMBED_GROUP_TEXTS:
                        while queue:  # the previous group: its embeddings were computed meanwhile
                            finish_oldest()
                        submit_group(pool)
                while queue:
                    finish_oldest()
                submit_group(pool)
                while queue:
                    finish_oldest()
        finally:
            writer.commit()
    return results
