"""Document frequencies of zhiwen's own BM25 tokens, kept in a small Milvus collection beside a
full-text chunk collection.

Why: coverage and the unseen share (what the refusal calibration reads) weight the query's terms by
IDF. Milvus's text match re-tokenises a term with its analyzer and matches any piece, so a query-only
jieba word such as 内要 (from 多久内要通报) counted every chunk with 要 and lifted coverage from .66 to
.75 on the sample corpus. Counting zhiwen's tokens as chunks are added and removed gives the IDF
zhiwen's in-process BM25 would give, with nothing proportional to the knowledge base in memory: a query
reads the rows of its few terms.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

TERM_MAX = 200  # bytes; longer tokens (pasted hashes, URLs) are not counted and weigh as unseen
BATCH = 1000


class TermFrequencies:
    def __init__(self, client, name: str) -> None:
        from pymilvus import DataType

        self.client = client
        self.name = name
        if not client.has_collection(name):
            schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
            schema.add_field("term", DataType.VARCHAR, is_primary=True, max_length=TERM_MAX + 16)
            schema.add_field("df", DataType.INT64)
            schema.add_field("v", DataType.FLOAT_VECTOR, dim=2)  # Milvus requires a vector field; unused
            index = client.prepare_index_params()
            index.add_index("v", index_type="FLAT", metric_type="L2")
            client.create_collection(name, schema=schema, index_params=index)
        client.load_collection(name)

    def get(self, terms: Iterable[str]) -> dict[str, int]:
        """Document frequency of each term (0 for terms no chunk contains)."""
        terms = [t for t in dict.fromkeys(terms) if len(t.encode("utf-8")) <= TERM_MAX]
        out: dict[str, int] = {}
        for start in range(0, len(terms), BATCH):
            rows = self.client.get(self.name, ids=terms[start : start + BATCH], output_fields=["df"])
            out.update({r["term"]: int(r["df"]) for r in rows})
        return out

    def adjust(self, token_lists: Iterable[list[str]], sign: int) -> None:
        """Add (sign=+1) or remove (sign=-1) chunks' tokens: each distinct token counts once per chunk."""
        delta = Counter(t for tokens in token_lists for t in set(tokens) if len(t.encode("utf-8")) <= TERM_MAX)
        if not delta:
            return
        current = self.get(delta)
        rows = [{"term": t, "df": max(0, current.get(t, 0) + sign * d), "v": [0.0, 0.0]} for t, d in delta.items()]
        for start in range(0, len(rows), BATCH):
            self.client.upsert(self.name, rows[start : start + BATCH])

    def drop(self) -> None:
        self.client.drop_collection(self.name)
