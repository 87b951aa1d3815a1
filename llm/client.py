"""One client for any OpenAI-compatible /v1/chat/completions server, through langchain-openai.

vLLM serves LoRA adapters under their own model names (``--lora-modules name=path``), so choosing an
adapter is choosing ``llm_model``; nothing else changes.
"""

from __future__ import annotations

import httpx

from core.errors import ZhiwenError
from core.settings import Settings


class LLMUnavailable(ZhiwenError):
    """The LLM server could not give an answer: down, too slow, or answering garbage."""

    def __init__(self, base_url: str, reason: str) -> None:
        self.reason = reason
        super().__init__(
            f"大模型服务不可用 (LLM unavailable at {base_url}): {reason}。"
            "请检查 `zhiwen llm serve` 是否在运行、ZHIWEN_LLM_BASE_URL 是否正确。"
        )


def make_chat_model(settings: Settings, model: str | None = None):
    from langchain_openai import ChatOpenAI

    if not settings.llm_base_url:
        raise ZhiwenError("没有配置大模型 (no LLM configured): 设置 ZHIWEN_LLM_BASE_URL，例如 http://127.0.0.1:8000/v1")
    # Connect fast or fail fast; reads may take as long as one answer (or one streamed token) may take.
    timeout = httpx.Timeout(settings.llm_timeout, connect=5.0, read=settings.llm_stream_idle_timeout)
    return ChatOpenAI(
        base_url=settings.llm_base_url,
        api_key=settings.llm_api_key,
        model=model or settings.llm_model,
        temperature=settings.llm_temperature,
        # Sent as the classic `max_tokens` field: langchain-openai renames its own max_tokens to
        # `max_completion_tokens`, which vLLM accepts but llama.cpp's server silently ignores (it then
        # generates until the context is full).
        extra_body={"max_tokens": settings.llm_max_tokens},
        timeout=timeout,
        max_retries=settings.llm_max_retries,
    )
