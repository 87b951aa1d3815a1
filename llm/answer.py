"""``ask`` and ``stream_ask``: the functions every surface (CLI, UI, API) calls to answer a question.

With ``llm_base_url`` set, answers come from the RAG chain on the LLM; without it, from the
extractive answerer. Either way a repeated question (same knowledge-base version, same settings, same
history) is served from the answer cache without retrieval or LLM calls.
"""

from __future__ import annotations

import time
from typing import Any, Iterator

from core.models import Answer
from core.settings import Settings
from ingest.kb import shared_kb
from llm.cache import AnswerCache, cache_key
from llm.chain import History, RagChain, StreamEvent
from llm.extractive import extractive_answer
from llm.refusal import refusal_message
from retrieval.retriever import HybridRetriever

_caches: dict[int, AnswerCache] = {}


def answer_cache(settings: Settings) -> AnswerCache:
    """One process-wide cache per configured size (the UI and API share it across requests)."""
    return _caches.setdefault(settings.answer_cache_size, AnswerCache(settings.answer_cache_size))


def extractive_ask(retriever: HybridRetriever, question: str, settings: Settings, history: History | None = None) -> Answer:
    """No LLM: retrieve (with the previous question as context on follow-ups) and quote."""
    t0 = time.perf_counter()
    query = f"{history[-1][0]} {question}" if history else question
    result = retriever.search(query, settings.top_k)
    timings = dict(result.timings_ms)
    relevant = [h for h in result.hits if h.relevance >= settings.relevance_floor]
    if not relevant:
        answer = Answer(text=refusal_message(question), refused=True, mode="extractive")
    else:
        t1 = time.perf_counter()
        answer = extractive_answer(query, relevant, settings.extractive_max_sentences, idf=retriever.bm25.idf)
        timings["answer"] = (time.perf_counter() - t1) * 1000
    answer.flags["best_relevance"] = round(result.best_relevance, 4)
    answer.flags["retrieved"] = [h.chunk.id for h in result.hits]
    answer.timings_ms = {**timings, "total": (time.perf_counter() - t0) * 1000}
    return answer


def _with_overrides(settings: Settings, top_k: int | None) -> Settings:
    return settings.model_copy(update={"top_k": top_k}) if top_k else settings


def _from_cache(cache: AnswerCache, key: str) -> Answer | None:
    answer = cache.get(key)
    if answer is not None:
        answer.flags.update(cached=True, llm_calls=0)
        answer.timings_ms = {"total": 0.0}
    return answer


def _cacheable(answer: Answer) -> bool:
    return "llm_error" not in answer.flags  # a fallback is not what the LLM would say once it is back


def ask(
    question: str,
    kb_name: str,
    settings: Settings,
    history: History | None = None,
    top_k: int | None = None,
    chat_model: Any | None = None,
) -> Answer:
    settings = _with_overrides(settings, top_k)
    history = history or []
    cache = answer_cache(settings)
    kb = shared_kb(kb_name, settings)
    key = cache_key(str(kb.dir), kb.catalog.version(), question, history, settings)
    cached = _from_cache(cache, key)
    if cached is not None:
        return cached
    retriever = kb.retriever(settings)
    if settings.llm_base_url or chat_model is not None:
        answer = RagChain(retriever, settings, chat_model).invoke(question, history)
    else:
        answer = extractive_ask(retriever, question, settings, history)
    if _cacheable(answer):
        cache.put(key, answer)
    return answer


def stream_ask(
    question: str,
    kb_name: str,
    settings: Settings,
    history: History | None = None,
    top_k: int | None = None,
    chat_model: Any | None = None,
) -> Iterator[StreamEvent]:
    """Token events as they come, an ``error`` event if the LLM fails mid-way, then the final answer."""
    settings = _with_overrides(settings, top_k)
    history = history or []
    cache = answer_cache(settings)
    kb = shared_kb(kb_name, settings)
    key = cache_key(str(kb.dir), kb.catalog.version(), question, history, settings)
    answer = _from_cache(cache, key)
    if answer is not None:
        yield StreamEvent("token", answer.text)
    else:
        retriever = kb.retriever(settings)
        if settings.llm_base_url or chat_model is not None:
            for event in RagChain(retriever, settings, chat_model).stream(question, history):
                if event.kind != "answer":
                    yield event
                else:
                    answer = event.answer
        else:
            answer = extractive_ask(retriever, question, settings, history)
            yield StreamEvent("token", answer.text)
        if answer is not None and _cacheable(answer):
            cache.put(key, answer)
    yield StreamEvent("answer", answer=answer)
