"""The data model shared by ingest, retrieval, generation and every surface."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field


class Document(BaseModel):
    id: str  # sha256 of the cleaned text
    source: str  # path as given at ingest
    title: str
    mime: str
    pages: int = 1
    ingested_at: datetime
    content_hash: str  # sha256 of the raw file bytes: decides "unchanged" before any parsing
    size_bytes: int = 0
    n_chunks: int = 0
    metadata: dict[str, Any] = Field(default_factory=dict)


class Chunk(BaseModel):
    id: str  # doc id + ordinal
    doc_id: str
    ordinal: int
    text: str  # == cleaned document text[start:end]
    start: int
    end: int
    page: int | None = None  # 1-based; None for formats without pages
    heading_path: list[str] = Field(default_factory=list)
    n_tokens: int
    source: str = ""
    title: str = ""


class Hit(BaseModel):
    chunk: Chunk
    score: float  # fused ranking score (relative within one query)
    relevance: float  # absolute relevance in [0, 1], compared with the refusal floor
    dense: float | None = None  # cosine similarity
    bm25: float | None = None  # raw BM25 score
    coverage: float | None = None  # IDF-weighted share of the query's terms found in the chunk
    rank: int


class Citation(BaseModel):
    n: int
    source: str
    page: int | None
    start: int
    end: int
    quote: str  # == cleaned document text[start:end]
    chunk_id: str
    score: float


class Answer(BaseModel):
    text: str
    refused: bool = False
    mode: Literal["llm", "extractive"] = "extractive"
    model: str | None = None
    citations: list[Citation] = Field(default_factory=list)
    timings_ms: dict[str, float] = Field(default_factory=dict)
    flags: dict[str, Any] = Field(default_factory=dict)

    def to_public_json(self) -> dict[str, Any]:
        """The stable `zhiwen ask --json` shape."""
        return {
            "answer": self.text,
            "refused": self.refused,
            "mode": self.mode,
            "model": self.model,
            "citations": [c.model_dump() for c in self.citations],
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
        }


class IngestResult(BaseModel):
    """What happened to one file in an ingest batch."""

    source: str
    status: Literal["indexed", "updated", "unchanged", "duplicate", "failed"]
    n_chunks: int = 0
    reason: str = ""
    doc_id: str | None = None


class KnowledgeBaseInfo(BaseModel):
    name: str
    path: str
    n_documents: int
    n_chunks: int
    version: int
    embedding_model: str
    created_at: datetime | None = None
    updated_at: datetime | None = None
