"""`zhiwen kb migrate NAME --to milvus|faiss`: move a knowledge base's vectors between backends.

The catalogue (documents, chunks, embeddings) stays where it is; the new store is filled from it, then
checked before the switch: same count, and the same nearest chunk for a sample of stored vectors.
Only then does the knowledge base point at the new store and the old one go.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.errors import ZhiwenError
from core.settings import Settings
from ingest.kb import FAISS_FILE, MILVUS_STAMP_FILE, KnowledgeBase

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
        if source == "milvus":
            old.drop()
            (kb.dir / MILVUS_STAMP_FILE).unlink(missing_ok=True)
        else:
            (kb.dir / FAISS_FILE).unlink(missing_ok=True)
    return report

