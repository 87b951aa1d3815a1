"""The OpenAI chat-completions pieces every zhiwen server shares: the zhiwen API (answers from a knowledge
base) and the adapter server (a raw LLM). Each server keeps its own request/response models beside these."""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: str | list[dict[str, Any]] | None = ""

    def text(self) -> str:
        """The text, also when a client sends content parts ([{"type": "text", "text": …}, …])."""
        if isinstance(self.content, list):
            return "".join(str(p.get("text", "")) for p in self.content if p.get("type", "text") == "text")
        return self.content or ""


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = Field(default_factory=lambda: int(time.time()))
    owned_by: str = "zhiwen"
    root: str | None = None  # the model path, or an adapter's path (as vLLM reports it)
    parent: str | None = None  # for an adapter: the base model's name


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


class CompletionHeader(BaseModel):
    """The fields every ``chat.completion`` response starts with; servers add choices and their extras."""

    id: str = Field(default_factory=completion_id)
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str


def chunk(cid: str, model: str, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    """One ``chat.completion.chunk`` of a stream; ``extra`` adds top-level fields (usage, citations)."""
    return {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}


def error_body(message: str, kind: str, code: str | int) -> dict[str, Any]:
    """OpenAI's error shape, which OpenAI clients turn into readable exceptions."""
    return {"error": {"message": message, "type": kind, "code": code, "param": None}}
