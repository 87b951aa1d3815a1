"""Moderation applied in the answer path, the same for every surface: the question before retrieval,
the answer after generation, and streamed tokens as they go (held back just enough that a forbidden
term never flashes on screen before it is masked)."""

from __future__ import annotations

from typing import Iterator

from core.models import Answer, AnswerFlags, ModerationAction
from llm.chain import StreamEvent
from moderation.moderator import ModerationResult, Moderator
from moderation.stream import StreamFilter


def _summary(surface: str, result: ModerationResult) -> list[ModerationAction]:
    return [ModerationAction(surface=surface, category=f.category, rule_id=f.rule_id, action=f.action) for f in result.findings]


def moderate_question(moderator: Moderator | None, question: str) -> tuple[str, Answer | None, list[ModerationAction]]:
    """(question to use, a refusal if the question is blocked, what was done)."""
    if moderator is None:
        return question, None, []
    result = moderator.check(question, "question")
    actions = _summary("question", result)
    if result.blocked:
        refusal = Answer(text=result.message or "", refused=True, mode="extractive", flags=AnswerFlags(moderation=actions))
        return question, refusal, actions
    return result.text, None, actions


def masked_for_display(moderator: Moderator | None, text: str) -> str:
    """``text`` as a user may see it beside an answer: the answer surface's masks (PII, masked terms)
    applied, one ＊ per character, so offsets into the original still hold. Used for citation quotes, the
    UI's passages and eval exports, so nothing shows what the answer itself would mask."""
    if moderator is None or not text:
        return text
    return moderator.check(text, "answer", audit=False).text


def _mask_citations(moderator: Moderator | None, answer: Answer) -> None:
    for citation in answer.citations:
        shown = masked_for_display(moderator, citation.quote)
        if shown != citation.quote:
            citation.quote, citation.masked = shown, True


def moderate_answer(moderator: Moderator | None, answer: Answer, question_actions: list[ModerationAction], final: ModerationResult | None = None) -> Answer:
    """Apply the answer surface's rules (or the stream filter's final check) to a finished answer."""
    actions = list(question_actions)
    if moderator is not None and not answer.refused:
        result = final if final is not None else moderator.check(answer.text, "answer")
        actions += _summary("answer", result)
        if result.blocked:
            answer.text, answer.refused, answer.citations = result.message or "", True, []
        elif result.changed:
            # The stream's check saw the raw tokens; the answer's text (markers parsed) is masked afresh.
            answer.text = result.text if final is None else moderator.check(answer.text, "answer", audit=False).text
    if actions:
        answer.flags.moderation = actions
    _mask_citations(moderator, answer)
    return answer


def moderate_stream(moderator: Moderator | None, events: Iterator[StreamEvent], question_actions: list[ModerationAction]) -> Iterator[StreamEvent]:
    if moderator is None:
        yield from events
        return
    gate = StreamFilter(moderator, "answer")
    for event in events:
        if event.kind == "token":
            shown = gate.push(event.text)
            if shown:
                yield StreamEvent("token", shown)
        elif event.kind == "answer":
            rest, final = gate.finish()
            if final.blocked:
                yield StreamEvent("token", "\n" + (final.message or ""))
            elif rest:
                yield StreamEvent("token", rest)
            yield StreamEvent("answer", answer=moderate_answer(moderator, event.answer, question_actions, final))
        else:
            yield event
