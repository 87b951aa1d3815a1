"""`zhiwen api`: FastAPI over the same core functions the CLI and the web UI call.

Authentication: ``Authorization: Bearer zw-…`` API keys (core.keys) with roles per knowledge base,
required unless the server runs with auth off (the default only on 127.0.0.1); per-key rate limits.
Errors use the OpenAI error shape, ``{"error": {"message", "type", "code"}}``, so OpenAI clients show
them. Routes live in routes_chat (OpenAI protocol), routes_kb (knowledge bases, documents) and
routes_eval (evaluation runs).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.api import routes_chat, routes_eval, routes_kb
from app.api.deps import ApiState, Caller, require
from app.api.metrics import MetricsMiddleware, count_moderation
from core.errors import (
    DocumentNotFound,
    InputTooLarge,
    KnowledgeBaseNotFound,
    ZhiwenError,
)
from core.openai_protocol import error_body
from core.services import Services
from core.settings import Settings
from eval.jobs import RunNotFound, TooManyRuns

_NOT_FOUND = (KnowledgeBaseNotFound, DocumentNotFound, RunNotFound)
_STATUS_OF = ((_NOT_FOUND, 404), (TooManyRuns, 429), (InputTooLarge, 413))  # any other ZhiwenError: 400
_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                404: "not_found_error", 409: "conflict_error", 413: "invalid_request_error", 422: "invalid_request_error",
                429: "rate_limit_error"}


def _error(status: int, message: str, kind: str | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    body = error_body(message, kind or _ERROR_TYPES.get(status, "server_error"), status)
    return JSONResponse(body, status_code=status, headers=headers)


def create_app(settings: Settings, auth: bool = True) -> FastAPI:
    services = Services()  # this app's long-lived state; a second app in the process has its own
    count_moderation(services.events)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        services.close()  # open knowledge bases release their files

    # Several files per upload request, each at most upload_max_mb.
    app = FastAPI(title="zhiwen API", version="0.1.0", description="知问：OpenAI 兼容的知识库问答接口 (OpenAI-compatible RAG API)",
                  max_body_size=4 * settings.upload_max_mb * 1024 * 1024 + 1024 * 1024, lifespan=lifespan)
    app.state.zhiwen = ApiState(settings=settings, auth=auth, services=services)
    app.add_middleware(MetricsMiddleware)

    @app.exception_handler(ZhiwenError)
    async def zhiwen_error(_: Request, exc: ZhiwenError) -> JSONResponse:
        status = next((code for kinds, code in _STATUS_OF if isinstance(exc, kinds)), 400)
        return _error(status, str(exc), type(exc).__name__)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return _error(422, f"请求不合法 (invalid request): {where}: {first.get('msg', '')}")

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        """Liveness for load balancers and compose health checks: no key needed, tells nothing."""
        return {"status": "ok"}

    @app.get("/metrics", tags=["ops"], response_class=Response)
    def metrics(key: Caller) -> Response:
        """Prometheus exposition; the scraper's key needs read on every knowledge base ("*:read")."""
        require(key, "*", "read")
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    for module in (routes_chat, routes_kb, routes_eval):
        app.include_router(module.router)
    return app
