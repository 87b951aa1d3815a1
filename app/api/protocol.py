"""The zhiwen API's chat-completions models: OpenAI's, plus zhiwen's extensions (citations, refusal and
mode, ``top_k``). The pieces shared with the adapter server live in core.openai_protocol."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from core.openai_protocol import ChatMessage, CompletionHeader


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


class ChatCompletion(CompletionHeader):
    choices: list[Choice]
    citations: list[dict[str, Any]] = Field(default_factory=list)  # zhiwen extension
    zhiwen: dict[str, Any] = Field(default_factory=dict)  # the answer's public JSON (core.models.Answer.to_public_json)
