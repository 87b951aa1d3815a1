"""The knowledge-base catalogue in SQLite (WAL): documents, chunks, cleaned texts, embeddings, BM25
tokens and a version counter. It is the source of truth: the FAISS and BM25 files are derived from it
and can always be rebuilt from it without re-reading or re-embedding a single file."""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from core.models import Chunk, Document

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    id TEXT PRIMARY KEY,
    source TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    mime TEXT NOT NULL,
    pages INTEGER NOT NULL,
    ingested_at TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    metadata TEXT NOT NULL,
    text TEXT NOT NULL,
    page_spans TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    rowid INTEGER PRIMARY KEY AUTOINCREMENT,  -- vector id; AUTOINCREMENT: never reused after a delete
    id TEXT NOT NULL UNIQUE,
    doc_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    ordinal INTEGER NOT NULL,
    text TEXT NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    page INTEGER,
    heading_path TEXT NOT NULL,
    n_tokens INTEGER NOT NULL,
    tokens TEXT NOT NULL,        -- BM25 tokens, space-joined
    text_hash TEXT NOT NULL,     -- hash of the embedded text: lets a re-ingest reuse embeddings
    embedding BLOB NOT NULL,     -- float32, L2-normalised
    sentence_vectors BLOB        -- float16, one L2-normalised row per sentence (retrieval.sentences), NULL for none
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id);
CREATE INDEX IF NOT EXISTS chunks_text_hash ON chunks(text_hash);
"""


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Catalog:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        with self._lock:
            self._conn.executescript(_SCHEMA)
            columns = {row[1] for row in self._conn.execute("PRAGMA table_info(chunks)")}
            if "sentence_vectors" not in columns:  # a catalogue from before sentence vectors: its chunks have none
                self._conn.execute("ALTER TABLE chunks ADD COLUMN sentence_vectors BLOB")
            self._conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('version', '0')")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- meta --------------------------------------------------------------------------------------
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        with self._lock:
            self._conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def version(self) -> int:
        return int(self.get_meta("version", "0") or 0)

    def bump_version(self) -> None:
        """Tell every reader its derived indexes are stale (e.g. after a vector-store migration)."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            self._bump_version()
            self._conn.execute("COMMIT")

    def _bump_version(self) -> None:
        self._conn.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'version'")
        self._conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('updated_at', ?)", (utcnow().isoformat(),))

    # -- documents ---------------------------------------------------------------------------------
    def _document(self, row: sqlite3.Row | tuple, n_chunks: int) -> Document:
        (id_, source, title, mime, pages, ingested_at, content_hash, size_bytes, metadata) = row
        return Document(
            id=id_, source=source, title=title, mime=mime, pages=pages,
            ingested_at=datetime.fromisoformat(ingested_at), content_hash=content_hash,
            size_bytes=size_bytes, n_chunks=n_chunks, metadata=json.loads(metadata),
        )

    _DOC_COLUMNS = "d.id, d.source, d.title, d.mime, d.pages, d.ingested_at, d.content_hash, d.size_bytes, d.metadata"

    def document_by_source(self, source: str) -> Document | None:
        return next(iter(self._documents("WHERE d.source = ?", (source,))), None)

    def document_by_id(self, doc_id: str) -> Document | None:
        return next(iter(self._documents("WHERE d.id = ?", (doc_id,))), None)

    def list_documents(self) -> list[Document]:
        return self._documents("", ())

    def _documents(self, where: str, args: tuple) -> list[Document]:
        sql = (
            f"SELECT {self._DOC_COLUMNS}, (SELECT COUNT(*) FROM chunks c WHERE c.doc_id = d.id) "
            f"FROM documents d {where} ORDER BY d.source"
        )
        with self._lock:
            rows = self._conn.execute(sql, args).fetchall()
        return [self._document(r[:-1], r[-1]) for r in rows]

    def document_text(self, doc_id: str) -> str | None:
        with self._lock:
            row = self._conn.execute("SELECT text FROM documents WHERE id = ?", (doc_id,)).fetchone()
        return row[0] if row else None

    def touch_content_hash(self, source: str, content_hash: str, size_bytes: int) -> None:
        """Bytes changed but the cleaned text did not (re-encoded file): remember the new hash only."""
        with self._lock:
            self._conn.execute(
                "UPDATE documents SET content_hash = ?, size_bytes = ? WHERE source = ?", (content_hash, size_bytes, source)
            )

    def replace_document(
        self,
        doc: Document,
        text: str,
        page_spans: list[tuple[int, int, int]],
        chunks: list[Chunk],
        tokens: list[list[str]],
        text_hashes: list[str],
        embeddings: np.ndarray,
        sentence_vectors: list[np.ndarray | None] | None = None,
    ) -> tuple[list[int], list[int]]:
        """Insert ``doc`` (replacing whatever had its source) in one transaction.
        Returns (row ids added, row ids removed) so the vector index can follow."""
        sentences = sentence_vectors if sentence_vectors is not None else [None] * len(chunks)
        with self._lock:
            cur = self._conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                removed = [r[0] for r in cur.execute(
                    "SELECT c.rowid FROM chunks c JOIN documents d ON c.doc_id = d.id WHERE d.source = ?", (doc.source,)
                )]
                cur.execute("DELETE FROM chunks WHERE doc_id IN (SELECT id FROM documents WHERE source = ?)", (doc.source,))
                cur.execute("DELETE FROM documents WHERE source = ?", (doc.source,))
                cur.execute(
                    "INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (doc.id, doc.source, doc.title, doc.mime, doc.pages, doc.ingested_at.isoformat(), doc.content_hash,
                     doc.size_bytes, json.dumps(doc.metadata, ensure_ascii=False), text, json.dumps(page_spans)),
                )
                added = []
                for chunk, toks, th, vec, sent in zip(chunks, tokens, text_hashes, embeddings, sentences):
                    cur.execute(
                        'INSERT INTO chunks(id, doc_id, ordinal, text, start, "end", page, heading_path, n_tokens, tokens, text_hash, '
                        "embedding, sentence_vectors) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (chunk.id, chunk.doc_id, chunk.ordinal, chunk.text, chunk.start, chunk.end, chunk.page,
                         json.dumps(chunk.heading_path, ensure_ascii=False), chunk.n_tokens, " ".join(toks), th,
                         np.asarray(vec, dtype=np.float32).tobytes(), _sentence_blob(sent)),
                    )
                    added.append(int(cur.lastrowid))
                self._bump_version()
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        return added, removed

    def remove_document(self, source: str) -> list[int] | None:
        """Remove one document and its chunks; returns their row ids, or None if there was none."""
        with self._lock:
            cur = self._conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                row = cur.execute("SELECT id FROM documents WHERE source = ?", (source,)).fetchone()
                if row is None:
                    cur.execute("ROLLBACK")
                    return None
                removed = [r[0] for r in cur.execute("SELECT rowid FROM chunks WHERE doc_id = ?", (row[0],))]
                cur.execute("DELETE FROM chunks WHERE doc_id = ?", (row[0],))
                cur.execute("DELETE FROM documents WHERE id = ?", (row[0],))
                self._bump_version()
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        return removed

    # -- chunks ------------------------------------------------------------------------------------
    def embeddings_by_text_hash(self, hashes: Iterable[str]) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
        """Stored (chunk vector, sentence vectors or None) by embedded-text hash: what re-ingest reuses."""
        wanted = list(set(hashes))
        out: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
        with self._lock:
            for i in range(0, len(wanted), 500):
                part = wanted[i : i + 500]
                sql = f"SELECT text_hash, embedding, sentence_vectors FROM chunks WHERE text_hash IN ({','.join('?' * len(part))})"
                for th, blob, sentences in self._conn.execute(sql, part):
                    vector = np.frombuffer(blob, dtype=np.float32)
                    out[th] = (vector, _sentence_matrix(sentences, len(vector)))
        return out

    def chunks_without_sentence_vectors(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM chunks WHERE sentence_vectors IS NULL").fetchone()[0])

    def sentence_vectors(self, rowids: list[int], dim: int) -> dict[int, np.ndarray]:
        """The sentence vectors (float16, sentences × dim) of those of ``rowids`` that have them."""
        if not rowids:
            return {}
        sql = f"SELECT rowid, sentence_vectors FROM chunks WHERE sentence_vectors IS NOT NULL AND rowid IN ({','.join('?' * len(rowids))})"
        with self._lock:
            rows = self._conn.execute(sql, [int(r) for r in rowids]).fetchall()
        return {r[0]: _sentence_matrix(r[1], dim) for r in rows}

    def all_embeddings(self, dim: int, with_meta: bool = False):
        """(row ids, vectors) of every chunk, plus each chunk's citation metadata when asked (Milvus
        stores it beside the vector)."""
        with self._lock:
            rows = self._conn.execute(
                'SELECT c.rowid, c.embedding, c.doc_id, c.id, d.source, c.page, c.start, c."end" '
                "FROM chunks c JOIN documents d ON c.doc_id = d.id ORDER BY c.rowid"
            ).fetchall()
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        vecs = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), dim) if rows else np.zeros((0, dim), np.float32)
        if not with_meta:
            return ids, vecs
        meta = [{"doc_id": r[2], "chunk_id": r[3], "source": r[4], "page": r[5], "start": r[6], "end": r[7]} for r in rows]
        return ids, vecs, meta

    def embedding_inputs(self) -> list[tuple[int, str, list[str], str]]:
        """(row id, document title, heading path, text) of every chunk: what re-embedding needs."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT c.rowid, d.title, c.heading_path, c.text FROM chunks c JOIN documents d ON c.doc_id = d.id ORDER BY c.rowid"
            ).fetchall()
        return [(r[0], r[1], json.loads(r[2]), r[3]) for r in rows]

    def replace_embeddings(self, model: str, rowids: list[int], text_hashes: list[str], vectors: np.ndarray,
                           sentence_vectors: list[np.ndarray | None] | None = None) -> None:
        """Every chunk's vectors and the knowledge base's embedder switch in one transaction: a crash
        leaves either the old model's vectors or the new one's, never a mix."""
        vectors = np.asarray(vectors, dtype=np.float32)
        sentences = sentence_vectors if sentence_vectors is not None else [None] * len(rowids)
        with self._lock:
            cur = self._conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                if int(cur.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]) != len(rowids):
                    raise RuntimeError("chunks changed while re-embedding")
                cur.executemany(
                    "UPDATE chunks SET embedding = ?, text_hash = ?, sentence_vectors = ? WHERE rowid = ?",
                    [(v.tobytes(), h, _sentence_blob(m), int(r)) for r, h, v, m in zip(rowids, text_hashes, vectors, sentences)],
                )
                cur.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('embedding_model', ?)", (model,))
                self._bump_version()
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise

    def all_tokens(self) -> tuple[list[int], list[list[str]]]:
        with self._lock:
            rows = self._conn.execute("SELECT rowid, tokens FROM chunks ORDER BY rowid").fetchall()
        return [r[0] for r in rows], [r[1].split() for r in rows]

    def tokens_of(self, rowids: Iterable[int]) -> tuple[list[int], list[list[str]]]:
        """The stored BM25 tokens of those of ``rowids`` that exist, in row-id order."""
        wanted = sorted(set(int(i) for i in rowids))
        rows: list[tuple[int, str]] = []
        with self._lock:
            for start in range(0, len(wanted), 500):
                part = wanted[start : start + 500]
                rows += self._conn.execute(
                    f"SELECT rowid, tokens FROM chunks WHERE rowid IN ({','.join('?' * len(part))}) ORDER BY rowid", part
                ).fetchall()
        return [r[0] for r in rows], [r[1].split() for r in rows]

    def chunks_by_rowid(self, rowids: list[int]) -> dict[int, Chunk]:
        if not rowids:
            return {}
        sql = (
            'SELECT c.rowid, c.id, c.doc_id, c.ordinal, c.text, c.start, c."end", c.page, c.heading_path, c.n_tokens, d.source, d.title '
            f"FROM chunks c JOIN documents d ON c.doc_id = d.id WHERE c.rowid IN ({','.join('?' * len(rowids))})"
        )
        with self._lock:
            rows = self._conn.execute(sql, [int(r) for r in rowids]).fetchall()
        return {
            r[0]: Chunk(id=r[1], doc_id=r[2], ordinal=r[3], text=r[4], start=r[5], end=r[6], page=r[7],
                        heading_path=json.loads(r[8]), n_tokens=r[9], source=r[10], title=r[11])
            for r in rows
        }

    def rowids_of_sources(self, sources: list[str]) -> list[int]:
        """Chunk row ids of the given documents: what a metadata filter hands the retriever."""
        if not sources:
            return []
        marks = ",".join("?" * len(sources))
        with self._lock:
            rows = self._conn.execute(
                f"SELECT c.rowid FROM chunks c JOIN documents d ON c.doc_id = d.id WHERE d.source IN ({marks})", sources
            ).fetchall()
        return [r[0] for r in rows]

    def chunk_by_id(self, chunk_id: str) -> Chunk | None:
        with self._lock:
            row = self._conn.execute("SELECT rowid FROM chunks WHERE id = ?", (chunk_id,)).fetchone()
        return self.chunks_by_rowid([row[0]]).get(row[0]) if row else None

    def chunks_of_document(self, doc_id: str) -> list[Chunk]:
        with self._lock:
            ids = [r[0] for r in self._conn.execute("SELECT rowid FROM chunks WHERE doc_id = ? ORDER BY ordinal", (doc_id,))]
        found = self.chunks_by_rowid(ids)
        return [found[i] for i in ids]

    def counts(self) -> tuple[int, int]:
        with self._lock:
            n_docs = self._conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
            n_chunks = self._conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        return int(n_docs), int(n_chunks)

    def stats(self) -> dict[str, Any]:
        n_docs, n_chunks = self.counts()
        return {"documents": n_docs, "chunks": n_chunks, "version": self.version()}


def _sentence_blob(matrix: np.ndarray | None) -> bytes | None:
    """Sentence vectors as stored: float16 halves their size (a chunk has several) and moves a cosine
    by about 1e-3, far below what separates two candidates."""
    return None if matrix is None or not len(matrix) else np.asarray(matrix, dtype=np.float16).tobytes()


def _sentence_matrix(blob: bytes | None, dim: int) -> np.ndarray | None:
    return None if blob is None else np.frombuffer(blob, dtype=np.float16).reshape(-1, dim)
