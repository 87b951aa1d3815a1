"""OpenAI-compatible chat completions and model list over the same ``ask`` / ``stream_ask`` the CLI uses.
``model`` is a knowledge base name, or ``kb:adapter`` to answer with a LoRA adapter vLLM serves."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

from fastapi import APIRouter, HTTPException
from fastapi.responses import StreamingResponse

from app.api.deps import Caller, Config, State, require
from app.api.metrics import observe_answer
from app.api.protocol import ChatCompletion, ChatCompletionRequest, Choice
from core.errors import KnowledgeBaseNotFound, ZhiwenError
from core.openai_protocol import (
    ChatMessage,
    ModelCard,
    ModelList,
    chunk,
    completion_id,
    error_body,
)
from core.services import Services
from core.settings import Settings
from ingest.kb import list_kbs, shared_kb
from llm.answer import ask, check_input, stream_ask
from llm.chain import History

router = APIRouter(tags=["chat"])
log = logging.getLogger(__name__)


def split_conversation(messages: list[ChatMessage]) -> tuple[str, History]:
    """The last user message is the question; earlier user/assistant pairs are the history."""
    users = [i for i, m in enumerate(messages) if m.role == "user"]
    if not users:
        raise HTTPException(400, "messages 中没有 user 消息 (no user message)")
    last = users[-1]
    history, pending = [], None
    for m in messages[:last]:
        if m.role == "user":
            pending = m.text()
        elif m.role == "assistant" and pending is not None:
            history.append((pending, m.text()))
            pending = None
    question = messages[last].text().strip()
    if not question:
        raise HTTPException(400, "问题为空 (empty question)")
    return question, history


@router.get("/v1/models", response_model=ModelList)
def models(key: Caller, settings: Config) -> ModelList:
    names = [k.name for k in list_kbs(settings)]
    return ModelList(data=[ModelCard(id=n) for n in names if key is None or key.allows(n, "read")])


@router.post("/v1/chat/completions", response_model=ChatCompletion)
def chat(body: ChatCompletionRequest, key: Caller, settings: Config, services: State):
    kb, _, adapter = body.model.partition(":")
    require(key, kb, "read")
    question, history = split_conversation(body.messages)
    overrides = {k: v for k, v in {"llm_temperature": body.temperature, "llm_max_tokens": body.max_tokens,
                                    "llm_model": adapter or None}.items() if v is not None}
    s = settings.model_copy(update=overrides)
    if body.stream:
        # Whatever can fail before the first token fails here, as a plain HTTP error (404, 413): once the
        # 200 and the event-stream header are sent, a failure can only be an error event.
        check_input(question, history, s)
        shared_kb(kb, s, services)
        return StreamingResponse(_sse(question, kb, s, history, body, services), media_type="text/event-stream")
    answer = ask(question, kb, s, history=history, top_k=body.top_k, services=services)
    observe_answer(kb, answer)
    return ChatCompletion(
        model=body.model, choices=[Choice(message=ChatMessage(role="assistant", content=answer.text))],
        citations=[c.model_dump() for c in answer.citations],
        zhiwen=answer.to_public_json(),
    )


def _sse(question: str, kb: str, settings: Settings, history: History, body: ChatCompletionRequest,
         services: Services) -> Iterator[str]:
    cid = completion_id()
    try:
        for event in stream_ask(question, kb, settings, history=history, top_k=body.top_k, services=services):
            if event.kind == "token":
                yield _event(chunk(cid, body.model, {"content": event.text}))
            elif event.kind == "answer":
                a = event.answer
                observe_answer(kb, a)
                yield _event(chunk(cid, body.model, {}, finish="stop", citations=[c.model_dump() for c in a.citations],
                                   zhiwen=a.to_public_json()))
    except Exception as exc:  # noqa: BLE001 (mid-stream: the client must hear why, then a clean end)
        # OpenAI's convention: an event carrying "error"; the official clients raise it as an APIError.
        # The knowledge base deleted mid-answer, the LLM down without the extractive fallback, a bug.
        known = isinstance(exc, ZhiwenError)
        message = str(exc) if known else f"回答中断 (the answer failed): {type(exc).__name__}"
        if not known:
            log.exception("chat stream failed")
        yield _event(error_body(message, type(exc).__name__ if known else "server_error", 404 if isinstance(exc, KnowledgeBaseNotFound) else 500))
    yield "data: [DONE]\n\n"


def _event(payload: dict) -> str:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"
