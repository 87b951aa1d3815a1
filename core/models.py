"""The data model shared by ingest, retrieval, generation and every surface."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


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
    quote: str  # == cleaned document text[start:end], except characters the answer's rules mask (then ＊)
    chunk_id: str
    score: float
    masked: bool = False  # the quote had characters masked for display (PII, masked terms): offsets still hold


class ModerationAction(BaseModel):
    """One moderation finding acted on while answering (the question's or the answer's)."""

    surface: str  # "question" | "answer"
    category: str
    rule_id: str
    action: str  # "block" | "mask" | "warn" | "log"


class AnswerFlags(BaseModel):
    """What happened on the way to an answer. Every surface reads these by name (the CLI's notes, the UI's
    warnings, the API's ``zhiwen.flags``, eval records), so they are typed fields, not a free dict: setting
    a misspelt flag is an error, not a silent ``None``. Unknown keys in stored answers (a conversation saved
    by an older version) are ignored on load rather than making the conversation unreadable."""

    model_config = ConfigDict(extra="ignore")

    cached: bool = False  # served from the answer cache: no retrieval, no LLM call
    llm_calls: int = 0  # LLM requests this answer cost (rewrite + answer)
    llm_error: str | None = None  # the LLM failed; the answer is the extractive fallback, and why
    truncated: bool = False  # the LLM stopped at llm_max_tokens, not by itself
    model_refused: bool = False  # the LLM itself said the sources do not answer
    uncited: bool = False  # an LLM answer with no valid [n] marker
    uncited_sources: list[str] = Field(default_factory=list)  # chunk ids the uncited answer was given
    dropped_markers: int = 0  # [n] markers that pointed at no source and were removed
    standalone_question: str | None = None  # what was searched, when not the question as asked
    rejected_rewrite: str | None = None  # an LLM rewrite of a follow-up that lost the question's words
    best_relevance: float | None = None  # the question's answerability: the first passage's calibrated relevance
    relevance_floor: float | None = None  # the floor below which nothing counts as relevant
    retrieved: list[str] = Field(default_factory=list)  # chunk ids retrieved, best first
    # Refused as a near-miss: what the question asks that the passages don't state (retrieval.stated_facts),
    # "month", "number:旅客", "identifier:v2.6.0".
    unstated: str | None = None
    moderation: list[ModerationAction] = Field(default_factory=list)


class Answer(BaseModel):
    text: str
    refused: bool = False
    mode: Literal["llm", "extractive"] = "extractive"
    model: str | None = None
    citations: list[Citation] = Field(default_factory=list)
    timings_ms: dict[str, float] = Field(default_factory=dict)
    flags: AnswerFlags = Field(default_factory=AnswerFlags)

    def to_public_json(self) -> dict[str, Any]:
        """The one public shape of an answer: `zhiwen ask --json`, the API's ``zhiwen`` field (streamed
        and not) and eval records all carry exactly this."""
        return {
            "answer": self.text,
            "refused": self.refused,
            "mode": self.mode,
            "model": self.model,
            "citations": [c.model_dump() for c in self.citations],
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
            "flags": self.flags.model_dump(mode="json"),
        }


class IngestResult(BaseModel):
    """What happened to one file in an ingest batch."""

    source: str
    status: Literal["indexed", "updated", "unchanged", "duplicate", "failed"]
    n_chunks: int = 0
    reason: str = ""
    doc_id: str | None = None


class KnowledgeBaseSummary(BaseModel):
    """A knowledge base as clients of the API see it: no server paths."""

    name: str
    n_documents: int
    n_chunks: int
    version: int
    embedding_model: str
    created_at: datetime | None = None
    updated_at: datetime | None = None


class KnowledgeBaseInfo(KnowledgeBaseSummary):
    path: str  # where it lives on this machine: for the CLI and the UI, never sent over the API
