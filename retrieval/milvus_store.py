"""Dense vectors in Milvus: Milvus Lite (a local .db file, embedded, from pymilvus) on one machine and
in tests, a Milvus standalone/cluster URI (+ token) for teams. Same interface as FaissStore
(``retrieval.stores.VectorStore``).

Schema: the chunk's catalogue row id (INT64 primary key), doc_id (for deletes and filters by
document) and the L2-normalised vector; inner-product metric, so scores are cosines as with FAISS.
Index: FLAT on Milvus Lite (exact, what it supports), HNSW on a server.

Full-text search (``full_text=True``, setting ``milvus_bm25``; new collections only): the folded index
text of each chunk (title, headings, text: what zhiwen's own BM25 tokenises) in a ``text`` field with a
jieba analyzer in search mode and zhiwen's stop words, a BM25 function filling a sparse ``sparse``
field, and a sparse inverted index with bm25s's k1/b. So BM25 lives in Milvus and no replica loads a
lexical index; ``retrieval.milvus_bm25`` asks it for candidates. Milvus Lite 3.2.2 supports this with
``tokenizer: jieba`` (its ``type: chinese`` analyzer is server-only). Measured on 300 CMRC paragraphs
× 100 questions against zhiwen's BM25: the same top-1 for 99 of 100, scores (k1 + 1) = 2.5 times
bm25s's (Lucene's formula drops that constant; ``full_text_search`` divides it out), 65 % of the top
10 shared (jieba-rs and Python jieba split some words differently, and the tail of low scores
reorders).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from core.atomic import atomic_write_bytes
from core.text import search_tokens
from retrieval.milvus_terms import TermFrequencies

COLLECTION = "zhiwen_chunks"
BM25_K1, BM25_B = 1.5, 0.75  # bm25s's defaults, so Milvus's scores are zhiwen's up to the constant (k1 + 1)
TEXT_MAX = 60_000  # VARCHAR limit (bytes) kept under Milvus's 65,535


def text_analyzer() -> dict[str, Any]:
    """jieba in search mode minus zhiwen's stop words: the analyzer closest to ``core.text.search_tokens``
    that Milvus Lite accepts."""
    from core.text import stop_words

    return {"tokenizer": {"type": "jieba", "mode": "search", "hmm": True},
            "filter": ["cnalphanumonly", {"type": "stop", "stop_words": sorted(stop_words())}]}


class MilvusStore:
    kind = "milvus"

    def __init__(self, uri: str, dim: int, token: str | None = None, collection: str = COLLECTION,
                 full_text: bool = False) -> None:
        """``full_text`` applies when the collection is created; an existing one keeps its schema
        (``self.full_text`` says which it has)."""
        from pymilvus import DataType, Function, FunctionType, MilvusClient

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
            if full_text:
                schema.add_field("text", DataType.VARCHAR, max_length=65_535, enable_analyzer=True,
                                 analyzer_params=text_analyzer())
                schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
                schema.add_function(Function(name="bm25", function_type=FunctionType.BM25,
                                             input_field_names=["text"], output_field_names=["sparse"]))
            index = self.client.prepare_index_params()
            lite = not uri.startswith(("http://", "https://", "tcp://"))
            index.add_index("vector", index_type="FLAT" if lite else "HNSW", metric_type="IP",
                            **({} if lite else {"params": {"M": 16, "efConstruction": 200}}))
            if full_text:
                index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                                params={"bm25_k1": BM25_K1, "bm25_b": BM25_B})
            self.client.create_collection(collection, schema=schema, index_params=index)
        fields = {f["name"] for f in self.client.describe_collection(collection)["fields"]}
        self.full_text = "sparse" in fields
        self.client.load_collection(collection)
        # zhiwen's own token counts, for IDF-weighted coverage (retrieval.milvus_terms)
        self.terms = TermFrequencies(self.client, collection + "_terms") if self.full_text else None

    def add(self, ids: np.ndarray, vectors: np.ndarray, meta: list[dict] | None = None) -> None:
        """``meta``: per vector, doc_id and the citation fields (chunk_id, source, page, start, end)."""
        if not len(ids):
            return
        meta = meta or [{}] * len(ids)
        rows = [
            {"id": int(i), "doc_id": m.get("doc_id", ""), "chunk_id": m.get("chunk_id", ""), "source": m.get("source", ""),
             "page": m.get("page") if m.get("page") is not None else -1, "start": m.get("start", 0), "end": m.get("end", 0),
             "vector": v.tolist(), **({"text": _clip(m.get("text", ""))} if self.full_text else {})}
            for i, m, v in zip(ids, meta, np.asarray(vectors, np.float32))
        ]
        for start in range(0, len(rows), 1000):
            self.client.insert(self.collection, rows[start : start + 1000])  # row ids are never reused: no upsert
        if self.terms is not None:
            self.terms.adjust((m.get("tokens") or search_tokens(m.get("text", "")) for m in meta), +1)

    def remove(self, ids: list[int] | np.ndarray) -> None:
        if len(ids):
            if self.terms is not None:  # their tokens leave the document frequencies first
                self.terms.adjust((search_tokens(t) for t in self.texts([int(i) for i in ids]).values()), -1)
            self.client.delete(self.collection, ids=[int(i) for i in ids])

    def delete_doc(self, doc_id: str) -> None:
        if self.terms is not None:
            rows = self.client.query(self.collection, filter=f'doc_id == "{doc_id}"', output_fields=["id"])
            self.remove([int(r["id"]) for r in rows])
            return
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

    def full_text_search(self, text: str, k: int, allowed_ids: list[int] | None = None) -> list[tuple[int, float]]:
        """Top-k (id, BM25) by Milvus's BM25 over ``text`` (folded), on bm25s's scale."""
        if k <= 0 or not text.strip() or (allowed_ids is not None and not allowed_ids):
            return []
        expr = "id in [" + ",".join(str(int(i)) for i in allowed_ids) + "]" if allowed_ids is not None else ""
        hits = self.client.search(self.collection, data=[text], anns_field="sparse", limit=k, filter=expr, output_fields=[],
                                  search_params={"metric_type": "BM25"})
        # Milvus Lite reports BM25 negated (a distance); a server reports it as is.
        return [(int(h["id"]), abs(float(h["distance"])) / (BM25_K1 + 1)) for h in hits[0] if h["distance"] != 0]

    def texts(self, ids: list[int]) -> dict[int, str]:
        """The indexed (folded) text of chunks, for coverage of the few hits a query returns."""
        if not ids:
            return {}
        rows = self.client.get(self.collection, ids=[int(i) for i in ids], output_fields=["text"])
        return {int(r["id"]): r["text"] for r in rows}

    def document_frequencies(self, terms: list[str]) -> dict[str, int]:
        """How many chunks hold each of zhiwen's tokens ``terms`` (0 when none does)."""
        found = self.terms.get(terms) if self.terms is not None else {}
        return {t: found.get(t, 0) for t in terms}

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
        if self.terms is not None:
            self.terms.drop()

    def close(self) -> None:
        self.client.close()


def _clip(text: str) -> str:
    """``text`` cut to the VARCHAR limit in UTF-8 bytes (a chunk is far smaller; a pathological one is not)."""
    data = text.encode("utf-8")
    return text if len(data) <= TEXT_MAX else data[:TEXT_MAX].decode("utf-8", "ignore")
