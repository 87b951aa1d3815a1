"""``ask`` and ``stream_ask``: the functions every surface (CLI, UI, API) calls to answer a question.

With ``llm_base_url`` set, answers come from the RAG chain on the LLM; without it, from the
extractive answerer. Either way a repeated question (same knowledge-base version, same settings, same
history) is served from the answer cache without retrieval or LLM calls. The cache and the open
knowledge bases live in the caller's ``Services`` (core.services); a call given none keeps nothing warm.
"""

from __future__ import annotations

import time
from contextlib import closing
from dataclasses import dataclass
from typing import Any, Iterator

from core.errors import InputTooLarge
from core.models import Answer
from core.services import Services
from core.settings import Settings
from ingest.kb import KnowledgeBase, shared_kb
from llm.cache import AnswerCache, cache_key
from llm.chain import History, RagChain, StreamEvent, record_retrieval
from llm.extractive import extractive_answer
from llm.followup import search_follow_up, standalone_query
from llm.guard import moderate_question, moderate_stream
from llm.refusal import refusal_message
from moderation.moderator import moderator_for
from retrieval.retriever import HybridRetriever


def answer_cache(settings: Settings, services: Services) -> AnswerCache:
    """The cache ``services`` keeps for the configured size (the UI and API share it across requests)."""
    size = settings.answer_cache_size
    return services.slot(f"llm.answer_cache.{size}", lambda: AnswerCache(size))


def check_input(question: str, history: History | None, settings: Settings) -> None:
    """Refuse a question or history past the caps before any work is done (InputTooLarge): one maximal
    request then costs milliseconds, not the CPU every other request is waiting for."""
    if len(question) > settings.max_question_chars:
        raise InputTooLarge("问题", "question", len(question), settings.max_question_chars, "max_question_chars")
    size = sum(len(q) + len(a) for q, a in history or [])
    if size > settings.max_history_chars:
        raise InputTooLarge("对话历史", "history", size, settings.max_history_chars, "max_history_chars")


def recent_history(history: History, settings: Settings) -> History:
    """The latest turns that fit in ``max_history_chars``: what zhiwen's own chats (UI, `zhiwen chat`) send,
    so a long conversation goes on instead of hitting the cap; follow-ups refer to recent turns anyway."""
    kept: History = []
    size = 0
    for q, a in reversed(history):
        size += len(q) + len(a)
        if size > settings.max_history_chars:
            break
        kept.append((q, a))
    return kept[::-1]


def extractive_ask(retriever: HybridRetriever, question: str, settings: Settings, history: History | None = None) -> Answer:
    """No LLM: retrieve and quote. Only a follow-up that depends on the history is searched together with
    the earlier question(s); a new topic is searched alone (llm.followup decides)."""
    t0 = time.perf_counter()
    query = standalone_query(question, history or [])
    result, searched = search_follow_up(retriever, question, query, settings.top_k)
    timings = dict(result.timings_ms)
    relevant = result.relevant
    if not relevant:
        answer = Answer(text=refusal_message(question, result), refused=True, mode="extractive")
    else:
        t1 = time.perf_counter()
        # The sentence is picked with the joined query even when the follow-up's own words found the
        # passages: "多久内…通报" comes from the earlier question, "资安事件" from this one.
        answer = extractive_answer(query, relevant, settings.extractive_max_sentences, idf=retriever.bm25.idf,
                                    extra_terms=retriever.translations(query))
        timings["answer"] = (time.perf_counter() - t1) * 1000
    record_retrieval(answer.flags, result)
    if searched != question:
        answer.flags.standalone_question = searched
    answer.timings_ms = {**timings, "total": (time.perf_counter() - t0) * 1000}
    return answer


@dataclass
class _Request:
    """What ask and stream_ask share: effective settings, the knowledge base, the cache slot."""

    settings: Settings
    history: History
    kb: KnowledgeBase
    cache: AnswerCache
    key: str

    @classmethod
    def of(cls, question: str, kb_name: str, settings: Settings, history: History | None, top_k: int | None,
           services: Services) -> "_Request":
        settings = settings.model_copy(update={"top_k": top_k}) if top_k else settings
        history = history or []
        kb = shared_kb(kb_name, settings, services)
        key = cache_key(str(kb.dir), kb.catalog.version(), question, history, settings)
        return cls(settings, history, kb, answer_cache(settings, services), key)

    def cached(self) -> Answer | None:
        answer = self.cache.get(self.key)
        if answer is not None:
            answer.flags.cached, answer.flags.llm_calls = True, 0
            answer.timings_ms = {"total": 0.0}
        return answer

    def remember(self, answer: Answer) -> None:
        if answer.flags.llm_error is None:  # a fallback is not what the LLM would say once it is back
            self.cache.put(self.key, answer)

    def chain(self, chat_model: Any | None) -> RagChain | None:
        if self.settings.llm_base_url or chat_model is not None:
            return RagChain(self.kb.retriever(self.settings), self.settings, chat_model)
        return None


def ask(
    question: str,
    kb_name: str,
    settings: Settings,
    history: History | None = None,
    top_k: int | None = None,
    chat_model: Any | None = None,
    services: Services | None = None,
) -> Answer:
    """The final answer of the flow ``stream_ask`` streams (same moderation, same cache); only the LLM is
    asked for the whole answer at once, under ``llm_timeout``, instead of a stream of tokens."""
    with closing(_answer_events(question, kb_name, settings, history, top_k, chat_model, services, streamed=False)) as events:
        for event in events:
            if event.kind == "answer":
                return event.answer
    raise AssertionError("the answer flow ends with an answer event")


def stream_ask(
    question: str,
    kb_name: str,
    settings: Settings,
    history: History | None = None,
    top_k: int | None = None,
    chat_model: Any | None = None,
    services: Services | None = None,
) -> Iterator[StreamEvent]:
    """Token events as they come, an ``error`` event if the LLM fails mid-way (the tokens then go on with a
    separator and the extractive answer), then the final answer."""
    return _answer_events(question, kb_name, settings, history, top_k, chat_model, services, streamed=True)


def _answer_events(question: str, kb_name: str, settings: Settings, history: History | None, top_k: int | None,
                   chat_model: Any | None, services: Services | None, streamed: bool) -> Iterator[StreamEvent]:
    """Moderation around the answer: the question before anything else, the answer's tokens as they go."""
    check_input(question, history, settings)
    with Services.scoped(services) as scope:
        moderator = moderator_for(settings, scope)
        question, refusal, actions = moderate_question(moderator, question)
        if refusal is not None:
            yield StreamEvent("token", refusal.text)
            yield StreamEvent("answer", answer=refusal)
            return
        events = _events(question, kb_name, settings, history, top_k, chat_model, scope, streamed)
        yield from moderate_stream(moderator, events, actions)


def _events(question: str, kb_name: str, settings: Settings, history: History | None, top_k: int | None,
            chat_model: Any | None, services: Services, streamed: bool) -> Iterator[StreamEvent]:
    """Cache, else the chain (LLM) or the extractive answerer; remember the answer."""
    request = _Request.of(question, kb_name, settings, history, top_k, services)
    answer = request.cached()
    if answer is None:
        chain = request.chain(chat_model)
        if chain is not None and streamed:
            for event in chain.stream(question, request.history):
                if event.kind == "answer":
                    answer = event.answer
                else:
                    yield event
        else:
            if chain is not None:
                answer = chain.invoke(question, request.history)
            else:
                answer = extractive_ask(request.kb.retriever(request.settings), question, request.settings, request.history)
            yield StreamEvent("token", answer.text)
        request.remember(answer)
    else:
        yield StreamEvent("token", answer.text)
    yield StreamEvent("answer", answer=answer)
