"""The chat page's pieces: the conversation list in the sidebar, the actions under an answer (copy,
regenerate, 👍/👎 with a comment), suggested questions and the empty states."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from app.ui.chat_state import CONV_KEY, show_conversation, start_new_conversation
from app.ui.common import can_create_kb
from app.ui.i18n import t
from core.settings import Settings
from llm.conversations import Conversation, ConversationStore, Turn
from llm.feedback import save_feedback

ASK_KEY = "zw-ask"  # a question to ask on the next run (a suggestion was clicked)
REGENERATE_KEY = "zw-regenerate"  # the conversation whose last answer to ask again
KB_PAGE = Path(__file__).parent / "views" / "knowledge_bases.py"


# -- sidebar -----------------------------------------------------------------------------------------
def _rename(store: ConversationStore, conversation_id: str) -> None:
    store.rename(conversation_id, st.session_state.get(f"zw-title-{conversation_id}", ""))


def _delete(store: ConversationStore, conversation_id: str, title: str) -> None:
    if store.delete(conversation_id):
        st.toast(t("conv_deleted", title=title), icon="🗑️")
    if st.session_state.get(CONV_KEY) == conversation_id:
        start_new_conversation()


def conversation_list(store: ConversationStore, current: Conversation) -> None:
    sidebar = st.sidebar
    sidebar.button(t("new_chat"), icon="🆕", key="zw-new-chat", on_click=start_new_conversation, width="stretch")
    sidebar.caption(t("conversations"))
    summaries = store.list()
    if not summaries:
        sidebar.caption(t("no_conversations"))
    for summary in summaries:
        opened = summary.id == current.id
        title, menu = sidebar.columns([5, 1], vertical_alignment="center")
        title.button(
            summary.title, key=f"zw-open-{summary.id}", on_click=show_conversation, args=(summary.id, summary.kb),
            type="primary" if opened else "tertiary", width="stretch",
            help=f"{summary.kb} · {summary.updated_at.astimezone():%Y-%m-%d %H:%M}",
        )
        with menu.popover("", icon=":material/more_vert:", help=t("conv_actions")):
            st.text_input(t("conv_title"), value=summary.title, key=f"zw-title-{summary.id}")
            st.button(t("conv_rename"), key=f"zw-rename-{summary.id}", on_click=_rename, args=(store, summary.id), icon="✏️")
            st.button(t("conv_delete"), key=f"zw-delete-{summary.id}", on_click=_delete,
                      args=(store, summary.id, summary.title), icon="🗑️")


# -- under an answer ---------------------------------------------------------------------------------
def _rate(settings: Settings, store: ConversationStore, conversation_id: str, index: int, turn: Turn, rating: str) -> None:
    save_feedback(settings, turn.kb, turn.question, turn.answer, rating)
    store.update_turn(conversation_id, index, rating=rating)


def _comment(settings: Settings, store: ConversationStore, conversation_id: str, index: int, turn: Turn) -> None:
    comment = st.session_state.get(f"fb-comment-{index}", "").strip()
    if comment and turn.rating:
        # A second record for the same answer, now with the comment: feedback.jsonl is append-only.
        save_feedback(settings, turn.kb, turn.question, turn.answer, turn.rating, comment=comment)
        store.update_turn(conversation_id, index, comment=comment)


def _regenerate(conversation_id: str) -> None:
    st.session_state[REGENERATE_KEY] = conversation_id


def answer_actions(settings: Settings, store: ConversationStore, conversation: Conversation, index: int, last: bool) -> None:
    turn = conversation.turns[index]
    copy, again, up, down, _ = st.columns([1.5, 1.8, 0.7, 0.7, 4], vertical_alignment="center")
    with copy.popover(t("copy"), icon="📋"):
        st.caption(t("copy_help"))
        st.code(turn.answer.text, language=None, wrap_lines=True)
    if last:
        again.button(t("regenerate"), icon="🔄", key=f"zw-regen-{index}", on_click=_regenerate, args=(conversation.id,))
    if turn.answer.refused and not turn.answer.text:
        return
    for column, rating, icon in ((up, "up", "👍"), (down, "down", "👎")):
        column.button(icon, key=f"fb-{rating}-{index}", type="primary" if turn.rating == rating else "secondary",
                      on_click=_rate, args=(settings, store, conversation.id, index, turn, rating))
    if turn.rating and turn.comment:
        st.caption(t("fb_comment_saved", comment=turn.comment))
    elif turn.rating:
        st.caption(t("thanks"))
        with st.form(f"fb-form-{index}", clear_on_submit=True, border=False):
            st.text_input(t("fb_comment"), key=f"fb-comment-{index}", placeholder=t("fb_comment_placeholder"))
            st.form_submit_button(t("fb_send"), on_click=_comment, args=(settings, store, conversation.id, index, turn))


# -- empty states ------------------------------------------------------------------------------------
def _ask(question: str) -> None:
    st.session_state[ASK_KEY] = question


def suggestions(questions: list[str]) -> None:
    if not questions:
        return
    st.caption(t("suggestions"))
    for i, question in enumerate(questions):
        st.button(question, key=f"zw-suggest-{i}", on_click=_ask, args=(question,), icon="💡")


def go_to_kb_page(label_key: str) -> None:
    """A button to the knowledge-base page (it opens on the knowledge base selected here: same key)."""
    if st.button(t(label_key), type="primary", icon="📚", key=f"zw-go-{label_key}"):
        st.switch_page(str(KB_PAGE))


def no_kb_state(hint: str) -> None:
    st.info(hint)
    if can_create_kb():
        go_to_kb_page("go_create_kb")
