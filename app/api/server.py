"""`zhiwen api`: FastAPI over the same ``ask`` / ``stream_ask`` the CLI and UI use.

Authentication: ``Authorization: Bearer zw-…`` API keys (see app.api.keys), required unless the server
runs with auth off (the default only on 127.0.0.1). A key needs the read role on a knowledge base to
ask it or see it in /v1/models.
"""

from __future__ import annotations

import json
from typing import Iterator

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, StreamingResponse

from app.api.keys import ApiKey, verify
from app.api.protocol import ChatCompletion, ChatCompletionRequest, ChatMessage, Choice, ModelCard, ModelList, chunk
from core.errors import KnowledgeBaseNotFound, ZhiwenError
from core.settings import Settings
from ingest.kb import list_kbs
from llm.answer import ask, stream_ask
from llm.chain import History


def split_conversation(messages: list[ChatMessage]) -> tuple[str, History]:
    """The last user message is the question; earlier user/assistant pairs are the history."""
    users = [i for i, m in enumerate(messages) if m.role == "user"]
    if not users:
        raise HTTPException(400, "messages 中没有 user 消息 (no user message)")
    last = users[-1]
    history, pending = [], None
    for m in messages[:last]:
        if m.role == "user":
            pending = m.content or ""
        elif m.role == "assistant" and pending is not None:
            history.append((pending, m.content or ""))
            pending = None
    return messages[last].content or "", history


def create_app(settings: Settings, auth: bool = True) -> FastAPI:
    app = FastAPI(title="zhiwen API", version="0.1.0", description="知问：OpenAI 兼容的知识库问答接口")

    def caller(request: Request) -> ApiKey | None:
        if not auth:
            return None
        header = request.headers.get("authorization", "")
        key = verify(settings, header.removeprefix("Bearer ").strip()) if header.startswith("Bearer ") else None
        if key is None:
            raise HTTPException(401, "需要有效的 API key (missing or invalid API key)", headers={"WWW-Authenticate": "Bearer"})
        return key

    def require(key: ApiKey | None, kb: str, role: str) -> None:
        if key is not None and not key.allows(kb, role):
            raise HTTPException(403, f"这个 key 没有知识库 {kb} 的 {role} 权限 (forbidden)")

    @app.exception_handler(ZhiwenError)
    async def zhiwen_error(_: Request, exc: ZhiwenError) -> JSONResponse:
        status = 404 if isinstance(exc, KnowledgeBaseNotFound) else 400
        return JSONResponse({"error": {"message": str(exc), "type": type(exc).__name__}}, status_code=status)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/models", response_model=ModelList)
    def models(key: ApiKey | None = Depends(caller)) -> ModelList:
        names = [k.name for k in list_kbs(settings)]
        return ModelList(data=[ModelCard(id=n) for n in names if key is None or key.allows(n, "read")])

    @app.post("/v1/chat/completions", response_model=ChatCompletion)
    def chat(body: ChatCompletionRequest, key: ApiKey | None = Depends(caller)):
        kb, _, adapter = body.model.partition(":")
        require(key, kb, "read")
        question, history = split_conversation(body.messages)
        overrides = {k: v for k, v in {"llm_temperature": body.temperature, "llm_max_tokens": body.max_tokens,
                                        "llm_model": adapter or None}.items() if v is not None}
        s = settings.model_copy(update=overrides)
        if body.stream:
            return StreamingResponse(_sse(question, kb, s, history, body), media_type="text/event-stream")
        answer = ask(question, kb, s, history=history, top_k=body.top_k)
        return ChatCompletion(
            model=body.model, choices=[Choice(message=ChatMessage(role="assistant", content=answer.text))],
            citations=[c.model_dump() for c in answer.citations],
            zhiwen={"refused": answer.refused, "mode": answer.mode, "model": answer.model, "timings_ms": answer.timings_ms},
        )

    return app


def _sse(question: str, kb: str, settings: Settings, history: History, body: ChatCompletionRequest) -> Iterator[str]:
    completion_id = ChatCompletion(model=body.model, choices=[]).id
    for event in stream_ask(question, kb, settings, history=history, top_k=body.top_k):
        if event.kind == "token":
            yield f"data: {json.dumps(chunk(completion_id, body.model, event.text), ensure_ascii=False)}\n\n"
        elif event.kind == "answer":
            a = event.answer
            final = chunk(completion_id, body.model, finish="stop", citations=[c.model_dump() for c in a.citations],
                          zhiwen={"refused": a.refused, "mode": a.mode, "model": a.model, "text": a.text})
            yield f"data: {json.dumps(final, ensure_ascii=False)}\n\n"
    yield "data: [DONE]\n\n"
