"""Chat page: pick a knowledge base, ask, read a streamed answer with its sources."""

from __future__ import annotations

import streamlit as st

from app.ui.common import kb_selector, no_kb_hint, require, sidebar_settings
from app.ui.i18n import t
from app.ui.render import STYLE, inert, render_answer
from core.errors import ZhiwenError
from core.models import Answer
from llm.answer import stream_ask
from llm.feedback import save_feedback

st.markdown(STYLE, unsafe_allow_html=True)
settings = sidebar_settings()
kb = kb_selector(settings)
if st.sidebar.button(t("new_chat"), icon="🆕", use_container_width=True):
    st.session_state.messages = []

st.title(t("app_title"))
if kb is None:
    st.info(no_kb_hint())
    st.stop()

# One conversation per browser session and knowledge base: st.session_state is per session.
messages: list[dict] = st.session_state.setdefault("messages", [])


def feedback_buttons(i: int, message: dict) -> None:
    if message.get("rated"):
        st.caption(t("thanks"))
        return
    up, down, _ = st.columns([1, 1, 10])
    for column, rating, icon in ((up, "up", "👍"), (down, "down", "👎")):
        if column.button(icon, key=f"fb-{rating}-{i}"):
            save_feedback(settings, message["kb"], message["question"], Answer.model_validate(message["answer"]), rating)
            message["rated"] = rating
            st.rerun()


for i, message in enumerate(messages):
    with st.chat_message(message["role"]):
        if message["role"] == "user":
            st.markdown(message["text"])
        else:
            render_answer(Answer.model_validate(message["answer"]), message["kb"], settings)
            feedback_buttons(i, message)

question = st.chat_input(t("ask_placeholder"))
if question:
    history = [(m["question"], m["answer"]["text"]) for m in messages if m["role"] == "assistant" and m["kb"] == kb and not m["answer"]["refused"]]
    messages.append({"role": "user", "text": question})
    with st.chat_message("user"):
        st.markdown(question)
    with st.chat_message("assistant"):
        final: dict[str, Answer] = {}

        def tokens():
            require(kb, "read")  # the selector lists only readable knowledge bases; checked again here
            for event in stream_ask(question, kb, settings, history=history):
                if event.kind == "token":
                    yield inert(event.text)
                elif event.kind == "answer":
                    final["answer"] = event.answer

        try:
            st.write_stream(tokens())
        except ZhiwenError as exc:
            st.error(str(exc))
            st.stop()
        answer = final["answer"]
        if answer.flags.get("llm_error"):
            st.markdown(inert(answer.text))  # the stream broke off; this is the extractive answer that replaces it
        render_answer(answer, kb, settings, show_text=False)
    messages.append({"role": "assistant", "kb": kb, "question": question, "answer": answer.model_dump(mode="json")})
    st.rerun()
