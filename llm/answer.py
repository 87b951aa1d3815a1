"""``ask`` and ``stream_ask``: the functions every surface (CLI, UI, API) calls to answer a question.

With ``llm_base_url`` set, answers come from the RAG chain on the LLM; without it, from the
extractive answerer. Either way a repeated question (same knowledge-base version, same settings, same
history) is served from the answer cache without retrieval or LLM calls.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Iterator

from core.models import Answer
from core.settings import Settings
from ingest.kb import KnowledgeBase, shared_kb
from llm.cache import AnswerCache, cache_key
from llm.chain import History, RagChain, StreamEvent
from llm.extractive import extractive_answer
from llm.followup import search_follow_up, standalone_query
from llm.guard import moderate_question, moderate_stream
from llm.refusal import refusal_message
from moderation.moderator import moderator_for
from retrieval.retriever import HybridRetriever

_caches: dict[int, AnswerCache] = {}


def answer_cache(settings: Settings) -> AnswerCache:
    """One process-wide cache per configured size (the UI and API share it across requests)."""
    return _caches.setdefault(settings.answer_cache_size, AnswerCache(settings.answer_cache_size))


def extractive_ask(retriever: HybridRetriever, question: str, settings: Settings, history: History | None = None) -> Answer:
    """No LLM: retrieve and quote. Only a follow-up that depends on the history is searched together with
    the earlier question(s); a new topic is searched alone (llm.followup decides)."""
    t0 = time.perf_counter()
    query = standalone_query(question, history or [])
    result, searched = search_follow_up(retriever, question, query, settings.top_k)
    timings = dict(result.timings_ms)
    relevant = result.relevant
    if not relevant:
        answer = Answer(text=refusal_message(question), refused=True, mode="extractive")
    else:
        t1 = time.perf_counter()
        # The sentence is picked with the joined query even when the follow-up's own words found the
        # passages: "多久内…通报" comes from the earlier question, "资安事件" from this one.
        answer = extractive_answer(query, relevant, settings.extractive_max_sentences, idf=retriever.bm25.idf)
        timings["answer"] = (time.perf_counter() - t1) * 1000
    answer.flags["best_relevance"] = round(result.best_relevance, 4)
    answer.flags["relevance_floor"] = round(result.floor, 4)
    answer.flags["retrieved"] = [h.chunk.id for h in result.hits]
    if searched != question:
        answer.flags["standalone_question"] = searched
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
    def of(cls, question: str, kb_name: str, settings: Settings, history: History | None, top_k: int | None) -> "_Request":
        settings = settings.model_copy(update={"top_k": top_k}) if top_k else settings
        history = history or []
        kb = shared_kb(kb_name, settings)
        key = cache_key(str(kb.dir), kb.catalog.version(), question, history, settings)
        return cls(settings, history, kb, answer_cache(settings), key)

    def cached(self) -> Answer | None:
        answer = self.cache.get(self.key)
        if answer is not None:
            answer.flags.update(cached=True, llm_calls=0)
            answer.timings_ms = {"total": 0.0}
        return answer

    def remember(self, answer: Answer) -> None:
        if "llm_error" not in answer.flags:  # a fallback is not what the LLM would say once it is back
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
) -> Answer:
    """The final answer of the flow ``stream_ask`` streams (same moderation, same cache); only the LLM is
    asked for the whole answer at once, under ``llm_timeout``, instead of a stream of tokens."""
    for event in _answer_events(question, kb_name, settings, history, top_k, chat_model, streamed=False):
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
) -> Iterator[StreamEvent]:
    """Token events as they come, an ``error`` event if the LLM fails mid-way (the tokens then go on with a
    separator and the extractive answer), then the final answer."""
    return _answer_events(question, kb_name, settings, history, top_k, chat_model, streamed=True)


def _answer_events(question: str, kb_name: str, settings: Settings, history: History | None, top_k: int | None,
                   chat_model: Any | None, streamed: bool) -> Iterator[StreamEvent]:
    """Moderation around the answer: the question before anything else, the answer's tokens as they go."""
    moderator = moderator_for(settings)
    question, refusal, actions = moderate_question(moderator, question)
    if refusal is not None:
        yield StreamEvent("token", refusal.text)
        yield StreamEvent("answer", answer=refusal)
        return
    yield from moderate_stream(moderator, _events(question, kb_name, settings, history, top_k, chat_model, streamed), actions)


def _events(question: str, kb_name: str, settings: Settings, history: History | None, top_k: int | None,
            chat_model: Any | None, streamed: bool) -> Iterator[StreamEvent]:
    """Cache, else the chain (LLM) or the extractive answerer; remember the answer."""
    request = _Request.of(question, kb_name, settings, history, top_k)
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
