"""Prometheus metrics of the API process (GET /metrics): request latency, answers and their tokens,
answer-cache hits, retrieval hits, moderation actions, ingested files.

Moderation is counted through the app's ``Services`` event bus (``count_moderation``, wired by create_app),
so moderation/ never imports prometheus_client.
"""

from __future__ import annotations

import time

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.models import Answer, IngestResult
from core.services import EventBus
from core.text import count_tokens

REQUEST_SECONDS = Histogram(
    "zhiwen_http_request_seconds", "HTTP request latency (to the last byte of the response)",
    ["method", "route", "status"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
ANSWERS = Counter("zhiwen_answers_total", "Answers given", ["kb", "mode", "refused"])
ANSWER_CACHE_HITS = Counter("zhiwen_answer_cache_hits_total", "Answers served from the answer cache (no LLM call)", ["kb"])
ANSWER_TOKENS = Counter("zhiwen_answer_tokens_total", "Tokens (jieba) in the answers given", ["kb"])
RETRIEVAL_HITS = Histogram("zhiwen_retrieval_hits", "Passages retrieved per question", ["kb"], buckets=(0, 1, 2, 3, 5, 10, 20, 50))
CITATIONS = Counter("zhiwen_citations_total", "Citations in the answers given", ["kb"])
MODERATION_ACTIONS = Counter("zhiwen_moderation_actions_total", "Moderation findings acted on", ["surface", "action", "category"])
INGESTED_FILES = Counter("zhiwen_ingested_files_total", "Uploaded files by ingest outcome", ["kb", "status"])
RATE_LIMITED = Counter("zhiwen_rate_limited_total", "Requests refused by the per-key rate limit")


def observe_answer(kb: str, answer: Answer) -> None:
    ANSWERS.labels(kb, answer.mode, str(answer.refused).lower()).inc()
    if answer.flags.cached:
        ANSWER_CACHE_HITS.labels(kb).inc()
    ANSWER_TOKENS.labels(kb).inc(count_tokens(answer.text))
    RETRIEVAL_HITS.labels(kb).observe(len(answer.flags.retrieved))
    CITATIONS.labels(kb).inc(len(answer.citations))


def observe_ingest(kb: str, result: IngestResult) -> None:
    INGESTED_FILES.labels(kb, result.status).inc()


def _on_moderation(surface: str, action: str, category: str) -> None:
    MODERATION_ACTIONS.labels(surface, action, category).inc()


def count_moderation(events: EventBus) -> None:
    """Count every moderation finding acted on in the process whose event bus this is."""
    events.subscribe("moderation", _on_moderation)


class MetricsMiddleware:
    """Pure ASGI, so a streamed answer is timed to its last byte and labelled by route template
    (``/v1/knowledge-bases/{kb}``), never by raw path: label cardinality stays bounded."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = scope.get("route")
            REQUEST_SECONDS.labels(scope["method"], getattr(route, "path", "unmatched"), str(status)).observe(time.perf_counter() - start)
