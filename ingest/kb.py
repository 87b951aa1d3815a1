"""A knowledge base on disk: ``$ZHIWEN_DATA_DIR/kbs/NAME/`` with the catalogue and its derived indexes.

Readers never see half an index: index files are replaced atomically and stamped with the catalogue
version they reflect. When a stamp lags the catalogue (a crash between commit and save, or another
process ingested), the indexes are rebuilt from the catalogue, which stores embeddings and tokens.
Writers take a file lock, so two ingests into one knowledge base run one after the other.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import threading
from datetime import datetime
from pathlib import Path

from filelock import FileLock, Timeout

from core.errors import (
    DocumentNotFound,
    InvalidName,
    KnowledgeBaseExists,
    KnowledgeBaseNotFound,
)
from core.models import Document, KnowledgeBaseInfo
from core.services import Services
from core.settings import Settings
from ingest.catalog import Catalog, utcnow
from ingest.chunking import index_text
from retrieval.answerability import (
    DEFAULT_DENSE_WEIGHT,
    Background,
    load_calibration,
    measure_background,
)
from retrieval.bm25 import BM25Index
from retrieval.embedders import Embedder, canonical_embedder_name, get_embedder
from retrieval.faiss_store import FaissStore
from retrieval.milvus_bm25 import MilvusBM25
from retrieval.milvus_store import MilvusStore
from retrieval.retriever import HybridRetriever
from retrieval.sentences import SENTENCE_VECTORS_BY_DEFAULT, SentenceBlendedVectors
from retrieval.stores import VectorStore

_NAME_RE = re.compile(r"^[\w\u4e00-\u9fff][\w\u4e00-\u9fff.\-]{0,63}$")
CATALOG_FILE = "catalog.sqlite3"
FAISS_FILE = "faiss.index"
MILVUS_LITE_FILE = "milvus.db"
MILVUS_STAMP_FILE = "milvus.stamp.json"
BM25_FILE = "bm25.index"
# The file, in the knowledge base's directory, that holds (FAISS) or stamps (Milvus) each backend's vectors.
VECTOR_STAMP_FILES = {"faiss": FAISS_FILE, "milvus": MILVUS_STAMP_FILE}


def validate_name(name: str) -> str:
    if not _NAME_RE.match(name or ""):
        raise InvalidName(
            f"知识库名称不合法: {name!r} (invalid name): 用 1-64 个字母、数字、汉字、'-'、'_' 或 '.'，不能以 '.' 或 '-' 开头"
        )
    return name


class KnowledgeBase:
    def __init__(self, name: str, directory: Path, settings: Settings) -> None:
        self.name = name
        self.dir = directory
        self.settings = settings
        self.catalog = Catalog(directory / CATALOG_FILE)
        self.write_lock = FileLock(str(directory / ".write.lock"))
        self._index_lock = threading.Lock()
        self._indexes: tuple[int, VectorStore, BM25Index] | None = None
        self._background: tuple[VectorStore, Background] | None = None

    # -- opening -----------------------------------------------------------------------------------
    @classmethod
    def open(cls, name: str, settings: Settings, create: bool = False) -> "KnowledgeBase":
        directory = settings.kbs_dir / validate_name(name)
        if (directory / CATALOG_FILE).exists() and not create:
            return cls(name, directory, settings)
        if not create:
            raise KnowledgeBaseNotFound(name)
        directory.mkdir(parents=True, exist_ok=True)
        # Two connections switching a brand-new SQLite file to WAL at once fail with "database is locked":
        # creators (threads or processes) take turns.
        with FileLock(str(directory / ".create.lock")):
            kb = cls(name, directory, settings)
            if kb.catalog.get_meta("embedding_model") is None:
                kb.catalog.set_meta("embedding_model", canonical_embedder_name(settings.embedding_model))
                kb.catalog.set_meta("vector_store", settings.vector_store)
                kb.catalog.set_meta("created_at", utcnow().isoformat())
        return kb

    def close(self) -> None:
        self.catalog.close()

    def __enter__(self) -> "KnowledgeBase":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- models and indexes ------------------------------------------------------------------------
    @property
    def embedding_model(self) -> str:
        """The model the knowledge base was built with: queries must be embedded by the same one."""
        return self.catalog.get_meta("embedding_model") or self.settings.embedding_model

    def embedder(self) -> Embedder:
        return get_embedder(self.embedding_model, self.settings.embedding_batch_size)

    def indexes(self) -> tuple[VectorStore, BM25Index]:
        """Indexes that reflect the current catalogue version: loaded, or rebuilt when stale."""
        version = self.catalog.version()
        with self._index_lock:
            if self._indexes is not None and (self._indexes[0] == version or self._writer_active()):
                # Mid-ingest, keep serving the last consistent snapshot: the writer saves fresh
                # indexes when its batch ends, and rebuilding after every file would cost O(N) each.
                return self._indexes[1], self._indexes[2]
            _, n_chunks = self.catalog.counts()
            vectors = self._load_vectors(version, n_chunks)
            # BM25 inside Milvus when the collection has full text: no local lexical index at all.
            bm25 = self._milvus_bm25(vectors) or self._load_bm25(version, n_chunks)
            if vectors is None or bm25 is None:
                vectors, bm25 = self._rebuild(vectors, bm25)
                self._save(vectors, bm25, version)
            self._indexes = (version, vectors, bm25)
            return vectors, bm25

    def _writer_active(self) -> bool:
        """Whether another KnowledgeBase (in any process) holds the write lock right now."""
        if self.write_lock.is_locked:
            return False  # we are the writer
        try:
            self.write_lock.acquire(timeout=0)
        except Timeout:
            return True
        self.write_lock.release()
        return False

    @property
    def vector_store_kind(self) -> str:
        """The backend this knowledge base was built on (recorded at creation; `kb migrate` changes it)."""
        return self.catalog.get_meta("vector_store") or "faiss"

    def _milvus(self, model: str | None = None) -> MilvusStore:
        model = model or self.embedding_model
        uri = self.settings.milvus_uri or str(self.dir / MILVUS_LITE_FILE)
        # One collection per knowledge base; names must be ASCII, knowledge-base names need not be.
        # Named by embedder too (USE-m3's name predates that): re-embedding builds the new collection
        # beside the old one and switches only once it is filled.
        key = str(self.dir.resolve()) + ("" if model == "usem3" else f"\x00{model}")
        collection = "zhiwen_" + hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]
        dim = get_embedder(model, self.settings.embedding_batch_size).dim
        return MilvusStore(uri, dim, token=self.settings.milvus_token, collection=collection,
                           full_text=self.settings.milvus_bm25)

    @staticmethod
    def _milvus_bm25(vectors: VectorStore | None) -> MilvusBM25 | None:
        """Milvus's own BM25 over ``vectors``' collection, when it was created with full-text search."""
        return MilvusBM25(vectors) if isinstance(vectors, MilvusStore) and vectors.full_text else None

    def vector_stamp_path(self, kind: str | None = None) -> Path:
        """Where the vectors of this knowledge base's backend (or ``kind``'s) are saved or stamped."""
        return self.dir / VECTOR_STAMP_FILES[kind or self.vector_store_kind]

    def _load_vectors(self, version: int, n_chunks: int) -> VectorStore | None:
        """The vector store, if it reflects this catalogue version (else None: rebuild)."""
        if self.vector_store_kind == "milvus":
            store = self._milvus()
            stamp = MilvusStore.read_stamp(self.dir / MILVUS_STAMP_FILE)
            fresh = stamp is not None and stamp.get("version") == version and store.count() == n_chunks
            if not fresh:
                store.drop()  # rebuilt from the catalogue below
                return None
            return store
        loaded = FaissStore.load(self.dir / FAISS_FILE, **self._faiss_options())
        if loaded is None:
            return None
        store, header = loaded
        fresh = header.get("version") == version and store.count() == n_chunks and header.get("model") == self.embedding_model
        return store if fresh else None

    def new_vector_store(self, kind: str | None = None) -> VectorStore:
        """An empty store of this knowledge base's kind (or ``kind``) filled from the catalogue."""
        kind = kind or self.vector_store_kind
        dim = self.embedder().dim
        # FAISS keeps vectors only: a million citation-metadata dicts would cost seconds and a gigabyte.
        ids, matrix, *meta = self.catalog.all_embeddings(dim, with_meta=kind != "faiss")
        meta = meta[0] if meta else None
        if meta is not None:  # Milvus's BM25 indexes what zhiwen's does: title, headings and text, folded
            _, tokens = self.catalog.all_tokens()  # zhiwen's tokens, for the term counts (no re-tokenising)
            for m, (_, title, heading_path, text), toks in zip(meta, self.catalog.embedding_inputs(), tokens):
                m["text"], m["tokens"] = index_text(title, heading_path, text), toks
        store: VectorStore = FaissStore(dim, **self._faiss_options()) if kind == "faiss" else self._milvus()
        store.add(ids, matrix, meta)
        return store

    def _faiss_options(self) -> dict:
        """Index choice and GPU use from the settings (retrieval.faiss_index)."""
        s = self.settings
        return {"index_kind": s.faiss_index, "gpu": s.faiss_gpu, "ivf_threshold": s.faiss_ivf_threshold}

    def _load_bm25(self, version: int, n_chunks: int) -> BM25Index | None:
        loaded = BM25Index.load(self.dir / BM25_FILE)
        if loaded is None:
            return None
        index, header = loaded
        return index if header.get("version") == version and index.count() == n_chunks else None

    def _rebuild(self, vectors: VectorStore | None, bm25: BM25Index | None) -> tuple[VectorStore, BM25Index]:
        if vectors is None:
            vectors = self.new_vector_store()
        return vectors, self._milvus_bm25(vectors) or (bm25 if bm25 is not None else self.fresh_bm25())

    def fresh_bm25(self) -> BM25Index:
        """BM25 over every chunk's stored tokens: a full build (new knowledge bases, stale or unreadable
        index files, migrations). Writers that know what changed call ``updated_bm25`` instead."""
        if self._indexes is not None and (lexical := self._milvus_bm25(self._indexes[1])) is not None:
            return lexical  # BM25 lives in Milvus: nothing to rebuild here (commit_indexes rebinds it)
        ids, tokens = self.catalog.all_tokens()
        return BM25Index(ids, tokens)

    def updated_bm25(self, bm25: BM25Index, added: list[int], removed: list[int]) -> BM25Index:
        """``bm25`` (the index the writer started from) after the catalogue added and removed these row
        ids: postings for the added chunks only, read from the catalogue (so a chunk added and removed
        again within one batch is simply absent), the removed ones tombstoned (retrieval.bm25). Falls
        back to a full build if the result does not count what the catalogue holds."""
        if not isinstance(bm25, BM25Index):  # BM25 inside Milvus: commit_indexes rebinds it
            return self.fresh_bm25()
        rowids, tokens = self.catalog.tokens_of(added)
        present = set(rowids)
        updated = bm25.updated(rowids, tokens, list(removed) + [i for i in added if i not in present])
        if updated.count() != self.catalog.counts()[1]:
            return self.fresh_bm25()
        return updated

    def _save(self, vectors: VectorStore, bm25: BM25Index, version: int) -> None:
        vectors.save(self.vector_stamp_path(), version, self.embedding_model)
        bm25.save(self.dir / BM25_FILE, version)

    def commit_indexes(self, vectors: VectorStore, bm25: BM25Index) -> None:
        """Persist indexes brought up to date by a writer, stamped with the catalogue version now."""
        version = self.catalog.version()
        bm25 = self._milvus_bm25(vectors) or bm25
        self._save(vectors, bm25, version)
        with self._index_lock:
            self._indexes = (version, vectors, bm25)

    def retriever(self, settings: Settings | None = None) -> HybridRetriever:
        s = settings or self.settings
        vectors, bm25 = self.indexes()
        calibration = load_calibration(self.embedding_model)
        dense_weight = s.dense_weight
        if dense_weight is None:
            dense_weight = calibration.dense_weight if calibration is not None else DEFAULT_DENSE_WEIGHT
        return HybridRetriever(
            self.embedder(), self.dense_view(vectors), bm25, self.catalog.chunks_by_rowid,
            mode=s.retrieval_mode, fusion=s.fusion, bm25_weight=s.bm25_weight, dense_weight=dense_weight,
            calibration=calibration, floor=s.relevance_floor,
            background=self.background(vectors) if calibration is not None else None,
            translate_english=s.translate_english_questions, check_unstated=s.refuse_unstated_facts,
        )

    def background(self, vectors: VectorStore) -> Background:
        """This index's off-topic baseline (retrieval.answerability.Background), once per index
        (``vectors``: the store itself; it is measured through ``dense_view``, as questions search it)."""
        with self._index_lock:
            if self._background is None or self._background[0] is not vectors:
                self._background = (vectors, measure_background(self.dense_view(vectors), self.embedder()))
            return self._background[1]

    def dense_view(self, vectors: VectorStore) -> VectorStore:
        """The store as questions search it: each chunk's cosine blended with its best sentence's where
        the chunk has sentence vectors (retrieval.sentences); unchanged where none has."""
        dim = self.embedder().dim
        return SentenceBlendedVectors(vectors, lambda ids: self.catalog.sentence_vectors(ids, dim))  # type: ignore[return-value]

    @property
    def keeps_sentence_vectors(self) -> bool:
        """Whether ingest embeds each chunk's sentences too (retrieval.sentences)."""
        return self.keeps_sentence_vectors_for(self.embedding_model)

    def keeps_sentence_vectors_for(self, model: str) -> bool:
        """The ``sentence_vectors`` setting, or by default on for the embedders where it was measured to
        pay (retrieval.sentences)."""
        if self.settings.sentence_vectors is not None:
            return self.settings.sentence_vectors
        return model in SENTENCE_VECTORS_BY_DEFAULT

    def as_langchain_retriever(self, settings: Settings | None = None, include_irrelevant: bool = False):
        """This knowledge base as a LangChain retriever (hybrid search, relevance floor applied)."""
        from retrieval.langchain import ZhiwenRetriever

        s = settings or self.settings
        return ZhiwenRetriever(retriever=self.retriever(s), top_k=s.top_k, include_irrelevant=include_irrelevant)

    def as_llama_index_retriever(self, settings: Settings | None = None, include_irrelevant: bool = False):
        """This knowledge base as a llama-index retriever (the same search, metadata and floor)."""
        from retrieval.llama_index import ZhiwenLlamaIndexRetriever

        s = settings or self.settings
        return ZhiwenLlamaIndexRetriever(self.retriever(s), top_k=s.top_k, include_irrelevant=include_irrelevant)

    # -- info --------------------------------------------------------------------------------------
    def info(self) -> KnowledgeBaseInfo:
        n_docs, n_chunks = self.catalog.counts()
        created = self.catalog.get_meta("created_at")
        updated = self.catalog.get_meta("updated_at")
        return KnowledgeBaseInfo(
            name=self.name, path=str(self.dir), n_documents=n_docs, n_chunks=n_chunks,
            version=self.catalog.version(), embedding_model=self.embedding_model,
            created_at=datetime.fromisoformat(created) if created else None,
            updated_at=datetime.fromisoformat(updated) if updated else None,
        )


class KnowledgeBaseReaders:
    """The knowledge bases a process keeps open for reading (a ``Services`` slot): indexes stay in memory
    between questions and are reloaded only when the catalogue version moves."""

    def __init__(self) -> None:
        self._open: dict[tuple[str, str], KnowledgeBase] = {}
        self._lock = threading.Lock()

    def get(self, name: str, settings: Settings) -> KnowledgeBase:
        key = (str(settings.kbs_dir.resolve()), validate_name(name))
        with self._lock:
            kb = self._open.get(key)
            if kb is None or not (kb.dir / CATALOG_FILE).exists():
                if kb is not None:
                    kb.close()
                kb = KnowledgeBase.open(name, settings)
                self._open[key] = kb
            return kb

    def forget(self, name: str, settings: Settings) -> None:
        with self._lock:
            kb = self._open.pop((str(settings.kbs_dir.resolve()), name), None)
        if kb is not None:
            kb.close()

    def close(self) -> None:
        with self._lock:
            kbs, self._open = list(self._open.values()), {}
        for kb in kbs:
            kb.close()


def shared_kb(name: str, settings: Settings, services: Services) -> KnowledgeBase:
    """The reader ``services`` keeps open for ``name`` (servers, repeated asks). Never close it yourself:
    ``services.close()`` does."""
    return _readers(services).get(name, settings)


def _readers(services: Services) -> KnowledgeBaseReaders:
    return services.slot("ingest.kb_readers", KnowledgeBaseReaders)


def list_kbs(settings: Settings) -> list[KnowledgeBaseInfo]:
    root = settings.kbs_dir
    if not root.exists():
        return []
    out = []
    for d in sorted(root.iterdir()):
        if (d / CATALOG_FILE).exists() and _NAME_RE.match(d.name):
            with KnowledgeBase.open(d.name, settings) as kb:
                out.append(kb.info())
    return out


# -- what the surfaces read: CLI, UI and API call these, never the SQLite catalogue --------------------
def kb_info(name: str, settings: Settings) -> KnowledgeBaseInfo:
    """Counts, version and embedder of an existing knowledge base (KnowledgeBaseNotFound otherwise)."""
    with KnowledgeBase.open(name, settings) as kb:
        return kb.info()


def kb_documents(name: str, settings: Settings) -> tuple[KnowledgeBaseInfo, list[Document]]:
    """The knowledge base's info and its documents, read in one go (the counts match the list)."""
    with KnowledgeBase.open(name, settings) as kb:
        return kb.info(), kb.catalog.list_documents()


def kb_document(name: str, doc_id: str, settings: Settings) -> Document:
    """One document by id; DocumentNotFound names the knowledge base and the id."""
    with KnowledgeBase.open(name, settings) as kb:
        document = kb.catalog.document_by_id(doc_id)
    if document is None:
        raise DocumentNotFound(name, doc_id)
    return document


def kb_document_text(name: str, doc_id: str, settings: Settings) -> tuple[Document, str]:
    """One document and its cleaned text (what citations' offsets index into); DocumentNotFound otherwise."""
    with KnowledgeBase.open(name, settings) as kb:
        document, text = kb.catalog.document_by_id(doc_id), kb.catalog.document_text(doc_id)
    if document is None or text is None:
        raise DocumentNotFound(name, doc_id)
    return document, text


def create_kb(name: str, settings: Settings) -> KnowledgeBaseInfo:
    """A new, empty knowledge base; an existing name is an error (KnowledgeBaseExists), the same on every
    surface (the API answers 409, the UI and CLI say so), never a silent reuse."""
    if (settings.kbs_dir / validate_name(name) / CATALOG_FILE).exists():
        raise KnowledgeBaseExists(name)
    with KnowledgeBase.open(name, settings, create=True) as kb:
        return kb.info()


def delete_kb(name: str, settings: Settings, services: Services | None = None) -> None:
    directory = settings.kbs_dir / validate_name(name)
    if not (directory / CATALOG_FILE).exists():
        raise KnowledgeBaseNotFound(name)
    if services is not None:  # other readers notice the catalogue is gone and reopen (KnowledgeBaseReaders.get)
        _readers(services).forget(name, settings)
    with FileLock(str(directory / ".write.lock")):
        trash = directory.with_name(f".{name}.deleting")
        directory.rename(trash)  # atomic: the name disappears at once, then the files go
    shutil.rmtree(trash, ignore_errors=True)
    shutil.rmtree(settings.data_dir / "uploads" / name, ignore_errors=True)  # the uploaded originals go too
