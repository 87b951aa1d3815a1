"""Chat page: pick a knowledge base, ask, read a streamed answer with its sources; conversations are kept
per user (sidebar list, survives a reload), and an answer can be stopped, copied, regenerated and rated."""

from __future__ import annotations

import itertools
import threading

import streamlit as st

from app.ui.chat_state import (
    CONV_KEY,
    conversation_store,
    open_conversation,
    remember_preferences,
    restore_preferences,
    start_new_conversation,
    sync_url,
)
from app.ui.chat_widgets import (
    ASK_KEY,
    REGENERATE_KEY,
    answer_actions,
    conversation_list,
    go_to_kb_page,
    no_kb_state,
    suggestions,
)
from app.ui.common import (
    base_settings,
    can,
    compact_kb_bar,
    kb_selector,
    no_kb_hint,
    require,
    sidebar_settings,
    ui_services,
)
from app.ui.i18n import t
from app.ui.render import STYLE, inert, render_answer
from core.errors import ZhiwenError
from core.models import Answer
from ingest.kb import shared_kb
from llm.answer import recent_history, stream_ask
from llm.conversations import Conversation, ConversationStore, Turn
from llm.suggestions import suggested_questions

ANSWERING_KEY = "zw-answering"  # an Answering while (or since) this session streamed an answer
ANSWERING_WAIT_S = 10.0


class Answering(threading.Event):
    """Set once a streamed answer's turn is stored; ``stored`` names its conversation."""

    stored: str | None = None


# A click while an answer streams (the stop button, or any other) starts this run at once, in a new thread,
# while the interrupted run is still storing what it had shown: wait for that, then open its conversation.
previous = st.session_state.pop(ANSWERING_KEY, None)
if previous is not None and previous.wait(ANSWERING_WAIT_S) and previous.stored:
    st.session_state[CONV_KEY] = previous.stored

st.markdown(STYLE, unsafe_allow_html=True)
store = conversation_store(base_settings())
restore_preferences(store)
opened = open_conversation(store)
settings = sidebar_settings()
kb = kb_selector(settings)
remember_preferences(store, kb)

switched = opened is not None and kb is not None and opened.kb != kb  # the selector moved: a new conversation
conversation = opened if opened is not None and not switched else store.new(kb or "")
sync_url(conversation, stored=bool(conversation.turns))
conversation_list(store, conversation)

st.title(t("app_title"))
compact_kb_bar(settings, on_new_chat=start_new_conversation)  # narrow windows: the sidebar is closed
if kb is None:
    no_kb_state(no_kb_hint())
    st.stop()
if switched:
    st.info(t("kb_switched", kb=kb), icon="🔀")
if not conversation.turns and shared_kb(kb, settings, ui_services()).info().n_documents == 0:
    st.info(t("empty_kb"), icon="📭")  # not the generic "nothing relevant found" refusal of every question
    if can(kb, "write"):
        go_to_kb_page("go_upload")
    st.stop()


def ask(question: str, conversation: Conversation, store: ConversationStore, replace_last: bool = False) -> None:
    """Stream an answer under the conversation and store the turn; a stop (or any click that reruns the
    page meanwhile) keeps the part that had arrived, marked as stopped."""
    kept = conversation.turns[:-1] if replace_last else conversation.turns
    history = Conversation(id=conversation.id, kb=kb, turns=kept).history(kb)
    asked = settings.model_copy(update={"answer_cache_size": 0}) if replace_last else settings  # a new answer, not the cached one
    with st.chat_message("user"):
        st.markdown(inert(question))
    with st.chat_message("assistant"):
        stop = st.empty()
        stop.button(t("stop"), icon="⏹️", key="zw-stop")
        shown: list[str] = []
        final: dict[str, Answer] = {}

        def tokens():
            require(kb, "read")  # the selector lists only readable knowledge bases; checked again here
            for event in stream_ask(question, kb, asked, history=recent_history(history, asked), services=ui_services()):
                if event.kind == "token":
                    shown.append(event.text)
                    yield inert(event.text)
                elif event.kind == "answer":
                    final["answer"] = event.answer

        stream = tokens()
        answering = st.session_state[ANSWERING_KEY] = Answering()
        try:
            with st.spinner(t("thinking")):
                first = next(stream, None)  # retrieval, and the model until its first token
            st.write_stream(itertools.chain([first] if first is not None else [], stream))
        except ZhiwenError as exc:
            answering.set()
            stop.empty()
            st.error(str(exc))
            return
        except BaseException:
            # Streamlit interrupts this run to start the next one (the stop button, or any other click):
            # what was shown stays in the conversation, marked as stopped (whole, if it had just finished).
            answer = final.get("answer")
            if answer is None:
                answer = Answer(text="".join(shown), mode="llm" if asked.llm_base_url else "extractive",
                                model=asked.llm_model if asked.llm_base_url else None)
            turn = Turn(question=question, kb=kb, answer=answer, stopped="answer" not in final)
            # No st.* call here: in an interrupted run each one raises the interruption again.
            answering.stored = store.add_turn(conversation, turn, replace_last).id
            answering.set()
            raise
        finally:
            stream.close()  # closes the model's HTTP stream too: generation stops server-side
    store.add_turn(conversation, Turn(question=question, kb=kb, answer=final["answer"]), replace_last)
    st.session_state[CONV_KEY] = conversation.id
    answering.set()
    st.rerun()


regenerate = st.session_state.pop(REGENERATE_KEY, None) == conversation.id and bool(conversation.turns)
shown_turns = conversation.turns[:-1] if regenerate else conversation.turns
for i, turn in enumerate(shown_turns):
    with st.chat_message("user"):
        st.markdown(inert(turn.question))
    with st.chat_message("assistant"):
        render_answer(turn.answer, turn.kb, settings, turn=i, stopped=turn.stopped)
        answer_actions(settings, store, conversation, i, last=i == len(conversation.turns) - 1)

question = st.chat_input(t("ask_placeholder"), max_chars=settings.max_question_chars)
if regenerate:
    ask(conversation.turns[-1].question, conversation, store, replace_last=True)
    st.stop()
question = question or st.session_state.pop(ASK_KEY, None)
if question:
    ask(question, conversation, store)
elif not conversation.turns:
    suggestions(suggested_questions(kb, settings, ui_services()))
