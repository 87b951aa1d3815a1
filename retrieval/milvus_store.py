"""Dense vectors in Milvus: Milvus Lite (a local .db file, embedded, from pymilvus) on one machine and
in tests, a Milvus standalone/cluster URI (+ token) for teams. Same interface as FaissStore
(``retrieval.stores.VectorStore``).

Schema: the chunk's catalogue row id (INT64 primary key), doc_id (for deletes and filters by
document) and the L2-normalised vector; inner-product metric, so scores are cosines as with FAISS.
Index: FLAT on Milvus Lite (exact, what it supports), HNSW on a server. Hybrid search keeps our jieba
BM25: Milvus's built-in full-text search tokenises Chinese with its own analyzer, and one BM25 for both
backends keeps their results comparable (the catalogue holds the tokens either way).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from core.atomic import atomic_write_bytes

COLLECTION = "zhiwen_chunks"


class MilvusStore:
    kind = "milvus"

    def __init__(self, uri: str, dim: int, token: str | None = None, collection: str = COLLECTION) -> None:
        from pymilvus import DataType, MilvusClient

        self.uri = uri
        self.dim = dim
        self.collection = collection
        self.client = MilvusClient(uri=uri, token=token or "")
        if not self.client.has_collection(collection):
            schema = self.client.create_schema(auto_id=False, enable_dynamic_field=False)
            schema.add_field("id", DataType.INT64, is_primary=True)
            schema.add_field("doc_id", DataType.VARCHAR, max_length=80)
            # What a citation needs, so other tools reading the collection can cite too.
            schema.add_field("chunk_id", DataType.VARCHAR, max_length=96)
            schema.add_field("source", DataType.VARCHAR, max_length=2048)
            schema.add_field("page", DataType.INT64)  # -1: no page
            schema.add_field("start", DataType.INT64)
            schema.add_field("end", DataType.INT64)
            schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
            index = self.client.prepare_index_params()
            lite = not uri.startswith(("http://", "https://", "tcp://"))
            index.add_index("vector", index_type="FLAT" if lite else "HNSW", metric_type="IP",
                            **({} if lite else {"params": {"M": 16, "efConstruction": 200}}))
            self.client.create_collection(collection, schema=schema, index_params=index)
        self.client.load_collection(collection)

    def add(self, ids: np.ndarray, vectors: np.ndarray, meta: list[dict] | None = None) -> None:
        """``meta``: per vector, doc_id and the citation fields (chunk_id, source, page, start, end)."""
        if not len(ids):
            return
        meta = meta or [{}] * len(ids)
        rows = [
            {"id": int(i), "doc_id": m.get("doc_id", ""), "chunk_id": m.get("chunk_id", ""), "source": m.get("source", ""),
             "page": m.get("page") if m.get("page") is not None else -1, "start": m.get("start", 0), "end": m.get("end", 0),
             "vector": v.tolist()}
            for i, m, v in zip(ids, meta, np.asarray(vectors, np.float32))
        ]
        for start in range(0, len(rows), 1000):
            self.client.insert(self.collection, rows[start : start + 1000])  # row ids are never reused: no upsert

    def remove(self, ids: list[int] | np.ndarray) -> None:
        if len(ids):
            self.client.delete(self.collection, ids=[int(i) for i in ids])

    def delete_doc(self, doc_id: str) -> None:
        self.client.delete(self.collection, filter=f'doc_id == "{doc_id}"')

    def count(self) -> int:
        result = self.client.query(self.collection, filter="", output_fields=["count(*)"])
        return int(result[0]["count(*)"])

    def search(self, vector: np.ndarray, k: int, allowed_ids: list[int] | None = None) -> list[tuple[int, float]]:
        if k <= 0:
            return []
        expr = "id in [" + ",".join(str(int(i)) for i in allowed_ids) + "]" if allowed_ids is not None else ""
        hits = self.client.search(self.collection, data=[np.asarray(vector, np.float32).tolist()], limit=k, filter=expr,
                                  output_fields=[])
        return [(int(h["id"]), float(h["distance"])) for h in hits[0]]

    def similarity(self, vector: np.ndarray, ids: list[int]) -> dict[int, float]:
        if not ids:
            return {}
        rows = self.client.get(self.collection, ids=[int(i) for i in ids], output_fields=["vector"])
        q = np.asarray(vector, np.float32)
        return {int(r["id"]): float(np.asarray(r["vector"], np.float32) @ q) for r in rows}

    def clone(self) -> "MilvusStore":
        """Milvus applies writes itself; a writer shares the store (readers may see a batch land
        file by file, each file whole)."""
        return self

    def save(self, path: Path, version: int, model: str) -> None:
        """Vectors persist in Milvus; the stamp records which catalogue version they reflect."""
        self.client.flush(self.collection)
        stamp = {"version": version, "count": self.count(), "dim": self.dim, "model": model, "uri": self.uri}
        atomic_write_bytes(path, json.dumps(stamp).encode("utf-8"))

    @staticmethod
    def read_stamp(path: Path) -> dict | None:
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def drop(self) -> None:
        self.client.drop_collection(self.collection)

    def close(self) -> None:
        self.client.close()
