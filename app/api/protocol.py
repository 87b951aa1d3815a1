"""OpenAI chat-completions protocol models (the subset zhiwen serves), apart from serving logic."""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, Field


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | None = ""


class ChatCompletionRequest(BaseModel):
    model: str = Field(..., description="knowledge base name, or 'kb:adapter' to pick a LoRA adapter")
    messages: list[ChatMessage] = Field(..., min_length=1)
    stream: bool = False
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, ge=1, le=8192)
    top_k: int | None = Field(None, ge=1, le=50, description="zhiwen extension: passages retrieved")


class Choice(BaseModel):
    index: int = 0
    message: ChatMessage
    finish_reason: str = "stop"


class ChatCompletion(BaseModel):
    id: str = Field(default_factory=lambda: f"chatcmpl-{uuid.uuid4().hex[:24]}")
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[Choice]
    citations: list[dict[str, Any]] = Field(default_factory=list)  # zhiwen extension
    zhiwen: dict[str, Any] = Field(default_factory=dict)  # refused, mode, timings, flags


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    owned_by: str = "zhiwen"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


def chunk(completion_id: str, model: str, content: str | None = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    delta = {"content": content} if content is not None else {}
    return {"id": completion_id, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
