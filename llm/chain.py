"""The RAG chain: history + question → standalone question (only for a follow-up) → hybrid retrieval →
numbered sources → LLM → [n] markers parsed → ``Answer``. The LLM steps are LangChain LCEL chains
(prompt | chat model | parser); the flow around them is one generator that ``stream`` streams and
``invoke`` takes the last event of, so the two cannot drift apart.

Refusal happens before the prompt is built: when no passage clears the relevance floor, the LLM is
never called. When the LLM fails (down, slow, garbage) the extractive answerer takes over, if allowed,
and the answer says so in its mode and flags.
"""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.output_parsers import StrOutputParser

from core.models import Answer, AnswerFlags, Hit
from core.settings import Settings
from core.text import is_mostly_cjk
from llm.citations import parse_citations
from llm.client import LLMUnavailable, make_chat_model
from llm.extractive import extractive_answer
from llm.followup import depends_on_history, keeps_content_words, standalone_query
from llm.prompts import (
    ANSWER_PROMPT,
    CONDENSE_PROMPT,
    format_sources,
    neutralise_control_tokens,
)
from llm.refusal import is_model_refusal, refusal_message
from retrieval.retriever import HybridRetriever, RetrievalResult

History = list[tuple[str, str]]  # (question, answer) turns, oldest first


@dataclass
class StreamEvent:
    kind: Literal["token", "error", "answer"]
    text: str = ""
    answer: Answer | None = None


class _CallCounter(BaseCallbackHandler):
    """Counts chat-model calls, so an answer can say how many it cost (and tests can check none)."""

    def __init__(self) -> None:
        self.calls = 0

    def on_chat_model_start(self, serialized: dict[str, Any], messages: list[list[BaseMessage]], **kwargs: Any) -> None:
        self.calls += 1


def history_messages(history: History) -> list[BaseMessage]:
    messages: list[BaseMessage] = []
    for q, a in history:
        messages += [HumanMessage(neutralise_control_tokens(q)), AIMessage(neutralise_control_tokens(a))]
    return messages


STREAM_STOPPED = "回答流在结束前中断 (the stream stopped before the answer finished)"

# Between the part of a streamed answer the LLM managed before it failed and the extractive answer that
# replaces it: what every surface shows (API delta.content, UI, CLI), in the question's language.
FALLBACK_SEPARATOR_ZH = "\n\n——（大模型中断，以下为从资料中摘录的答案）——\n\n"
FALLBACK_SEPARATOR_EN = "\n\n—— (The LLM stopped mid-answer; below is an answer quoted from the sources) ——\n\n"


# Between a streamed LLM answer that cited nothing and what ``uncited_policy`` puts in its place.
UNCITED_SEPARATOR_ZH = "\n\n——（大模型的回答没有引用任何资料，已改用以下回答）——\n\n"
UNCITED_SEPARATOR_EN = "\n\n—— (The LLM's answer cited no source; it is replaced by the answer below) ——\n\n"


def fallback_separator(question: str, uncited: bool = False) -> str:
    if uncited:
        return UNCITED_SEPARATOR_ZH if is_mostly_cjk(question) else UNCITED_SEPARATOR_EN
    return FALLBACK_SEPARATOR_ZH if is_mostly_cjk(question) else FALLBACK_SEPARATOR_EN


def _llm_errors() -> tuple[type[BaseException], ...]:
    import httpx
    import openai

    return (openai.APIError, httpx.HTTPError, TimeoutError, ConnectionError)


@dataclass
class _Turn:
    """State threaded through the chain for one question."""

    question: str
    history: History
    standalone: str = ""
    rejected_rewrite: str = ""  # an LLM rewrite that lost the question's own words
    retrieval: RetrievalResult | None = None
    relevant: list[Hit] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


class RagChain:
    def __init__(self, retriever: HybridRetriever, settings: Settings, chat_model: Any | None = None) -> None:
        self.retriever = retriever
        self.settings = settings
        self.llm = chat_model if chat_model is not None else make_chat_model(settings)
        self.condense_chain = CONDENSE_PROMPT | self.llm | StrOutputParser()
        self.answer_chain = ANSWER_PROMPT | self.llm | StrOutputParser()
        self.answer_messages = ANSWER_PROMPT | self.llm  # streamed as message chunks: finish_reason matters
        self.counter = _CallCounter()
        self._config = {"callbacks": [self.counter]}

    # -- steps -------------------------------------------------------------------------------------
    def _condense(self, turn: _Turn) -> _Turn:
        """The standalone question retrieval searches for. A question that does not depend on the history
        (a new topic) is its own standalone question: no rewrite call, and no old-topic words. A follow-up
        is rewritten by the LLM; a rewrite that is not one plausible question, or that drops the new
        question's content words, gives way to the rule-based query (llm.followup.standalone_query)."""
        turn.standalone = turn.question
        if not turn.history or not depends_on_history(turn.question):
            return turn
        t0 = time.perf_counter()
        rewrite = ""
        try:
            rewrite = self.condense_chain.invoke(
                {"history": history_messages(turn.history), "question": neutralise_control_tokens(turn.question)},
                config=self._config,
            )
        except _llm_errors():
            pass  # retrieval can still go on with the rule-based query below
        valid = _valid_rewrite(rewrite, turn.question)
        if valid and keeps_content_words(valid, turn.question):
            turn.standalone = valid
        else:
            turn.standalone = standalone_query(turn.question, turn.history)
            turn.rejected_rewrite = valid or ""
        turn.timings["condense"] = (time.perf_counter() - t0) * 1000
        return turn

    def _retrieve(self, turn: _Turn) -> _Turn:
        turn.retrieval = self.retriever.search(turn.standalone, self.settings.top_k)
        turn.timings.update(turn.retrieval.timings_ms)
        turn.relevant = turn.retrieval.relevant
        return turn

    def _refuse(self, turn: _Turn) -> Answer:
        return Answer(text=refusal_message(turn.question, turn.retrieval), refused=True, mode="llm", model=self.settings.llm_model)

    def _prompt_input(self, turn: _Turn) -> dict[str, Any]:
        return {"history": history_messages(turn.history), "sources": format_sources(turn.relevant),
                "question": neutralise_control_tokens(turn.question)}

    def _answer_chunks(self, turn: _Turn) -> Iterator[Any]:
        """The model's stream. A server that dies before its first content chunk makes LangChain raise
        a bare ValueError ("No generation chunks were returned"): that is the same broken stream."""
        try:
            yield from self.answer_messages.stream(self._prompt_input(turn), config=self._config)
        except ValueError as exc:
            if "No generation chunks" not in str(exc):
                raise
            raise ConnectionError(STREAM_STOPPED) from exc

    def _generate(self, turn: _Turn) -> Answer:
        t0 = time.perf_counter()
        try:
            text = self.answer_chain.invoke(self._prompt_input(turn), config=self._config)
        except _llm_errors() as exc:
            return self._fallback(turn, _describe(exc))
        turn.timings["llm"] = (time.perf_counter() - t0) * 1000
        return self._finish(turn, text)

    def _finish(self, turn: _Turn, text: str) -> Answer:
        if not text.strip():
            return self._fallback(turn, "大模型返回了空回答 (empty answer)")
        parsed = parse_citations(text, turn.relevant)
        if is_model_refusal(parsed.text):
            return Answer(text=parsed.text, refused=True, mode="llm", model=self.settings.llm_model, flags=AnswerFlags(model_refused=True))
        if parsed.uncited and self.settings.uncited_policy != "warn":
            return self._replace_uncited(turn)
        flags = AnswerFlags(dropped_markers=parsed.dropped_markers, uncited=parsed.uncited)
        if parsed.uncited:  # what the model was given, so a surface can still show the sources (marked not cited)
            flags.uncited_sources = [h.chunk.id for h in turn.relevant]
        return Answer(text=parsed.text, mode="llm", model=self.settings.llm_model, citations=parsed.citations, flags=flags)

    def _replace_uncited(self, turn: _Turn) -> Answer:
        """``uncited_policy``: an answer nobody can check is replaced by one that cites (extractive) or by
        the refusal; ``flags.uncited`` still says it happened."""
        if self.settings.uncited_policy == "refuse":
            answer = self._refuse(turn)
        else:
            answer = self._extractive(turn)
        answer.flags.uncited = True
        return answer

    def _extractive(self, turn: _Turn) -> Answer:
        return extractive_answer(turn.standalone, turn.relevant, self.settings.extractive_max_sentences,
                                 idf=self.retriever.bm25.idf, extra_terms=self.retriever.translations(turn.standalone))

    def _fallback(self, turn: _Turn, reason: str) -> Answer:
        if not self.settings.llm_fallback_extractive:
            raise LLMUnavailable(self.settings.llm_base_url or "", reason)
        answer = self._extractive(turn)
        answer.flags.llm_error = reason
        return answer

    # -- public ------------------------------------------------------------------------------------
    def invoke(self, question: str, history: History | None = None) -> Answer:
        """The final answer of the one flow ``stream`` streams; only the LLM is asked for the whole answer
        at once (under ``llm_timeout``) instead of a stream of tokens."""
        for event in self._events(question, history or [], streamed=False):
            if event.kind == "answer":
                return event.answer
        raise AssertionError("the chain's flow ends with an answer event")

    def stream(self, question: str, history: History | None = None) -> Iterator[StreamEvent]:
        """Tokens as the server sends them, then one final ``answer`` event with the citations."""
        return self._events(question, history or [], streamed=True)

    def _events(self, question: str, history: History, streamed: bool) -> Iterator[StreamEvent]:
        """Condense → retrieve → refuse, or answer (streamed or whole) → stamp: the one flow."""
        t0 = time.perf_counter()
        calls_before = self.counter.calls
        turn = self._retrieve(self._condense(_Turn(question, history)))
        if not turn.relevant:
            answer = self._refuse(turn)
            yield StreamEvent("token", answer.text)
        elif streamed:
            answer = yield from self._streamed_answer(turn)
        else:
            answer = self._generate(turn)
            yield StreamEvent("token", answer.text)
        yield StreamEvent("answer", answer=self._stamp(answer, turn, t0, calls_before))

    def _streamed_answer(self, turn: _Turn) -> Generator[StreamEvent, None, Answer]:
        """The model's tokens as they come; if it fails mid-way, an ``error`` event, then a separator and
        the extractive answer as tokens too. Returns the finished answer."""
        t0 = time.perf_counter()
        parts: list[str] = []
        finish_reason = None
        try:
            for chunk in self._answer_chunks(turn):
                finish_reason = chunk.response_metadata.get("finish_reason") or finish_reason
                token = chunk.content if isinstance(chunk.content, str) else ""
                if token:
                    parts.append(token)
                    yield StreamEvent("token", token)
            if finish_reason is None:
                # A server that dies can close the connection cleanly: the SSE stream then just stops.
                # Only a finish_reason says the answer is complete.
                raise ConnectionError(STREAM_STOPPED)
        except _llm_errors() as exc:
            reason = _describe(exc)
            yield StreamEvent("error", reason)
            answer = self._fallback(turn, reason)
        else:
            turn.timings["llm"] = (time.perf_counter() - t0) * 1000
            answer = self._finish(turn, "".join(parts))
            if finish_reason == "length":
                answer.flags.truncated = True  # stopped at llm_max_tokens, not by the model
        replaced_uncited = answer.flags.uncited and self.settings.uncited_policy != "warn"
        if (answer.flags.llm_error is not None or replaced_uncited) and answer.text:
            # The answer replaces whatever the LLM had streamed: the tokens carry it too, so a client that
            # reads only the streamed text (an OpenAI client's delta.content) gets the answer, not the stub.
            if "".join(parts).strip():
                yield StreamEvent("token", fallback_separator(turn.question, uncited=replaced_uncited))
            yield StreamEvent("token", answer.text)
        return answer

    def _stamp(self, answer: Answer, turn: _Turn, t0: float, calls_before: int) -> Answer:
        answer.timings_ms = {**turn.timings, **answer.timings_ms, "total": (time.perf_counter() - t0) * 1000}
        answer.flags.llm_calls = self.counter.calls - calls_before
        if turn.standalone != turn.question:
            answer.flags.standalone_question = turn.standalone
        if turn.rejected_rewrite:
            answer.flags.rejected_rewrite = turn.rejected_rewrite
        if turn.retrieval is not None:
            record_retrieval(answer.flags, turn.retrieval)
        return answer


def record_retrieval(flags: AnswerFlags, result: RetrievalResult) -> None:
    """What every answer path reports about its search: the best relevance against the floor (eval's
    refusal curve reads them), the passages retrieved, and what a near-miss lacked."""
    flags.best_relevance = round(result.best_relevance, 4)
    flags.relevance_floor = round(result.floor, 4)
    flags.retrieved = [h.chunk.id for h in result.hits]
    flags.unstated = result.unstated.label if result.unstated is not None else None


def _valid_rewrite(rewrite: str, question: str) -> str | None:
    """Small models ramble: keep a rewrite only if it is one plausible question, and not the follow-up
    itself again ("它的延迟是多少？" for "它的延迟是多少?"): that one still needs the history."""
    line = next((ln.strip() for ln in rewrite.strip().splitlines() if ln.strip()), "")
    line = line.removeprefix("独立问题：").removeprefix("独立问题:").strip().strip('"“”')
    if not line or len(line) > 3 * len(question) + 60 or _bare(line) == _bare(question):
        return None
    return line


def _bare(text: str) -> str:
    """Text without punctuation, spaces or case: what is left to compare two phrasings by."""
    return "".join(ch for ch in unicodedata.normalize("NFKC", text).lower() if ch.isalnum())


def _describe(exc: BaseException) -> str:
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return "请求超时 (timed out)"
    if isinstance(exc, openai.APIConnectionError):
        return f"无法连接或连接中断 (connection failed: {exc.__cause__ or exc})"
    if isinstance(exc, openai.APIStatusError):
        return f"服务返回错误 HTTP {exc.status_code}"
    if isinstance(exc, ConnectionError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
