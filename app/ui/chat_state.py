"""Where the chat page keeps what must outlive a rerun, a reload and the browser session.

- The user: the logged-in API key (its id) with UI auth on, one fixed local user without it.
- Conversations and preferences: ``llm.conversations.ConversationStore`` (JSON under the data dir).
- The open conversation: its id in the URL (``?c=…``, so a reload or a bookmark opens it again) and in
  st.session_state (so navigating to another page and back keeps it).
- The knowledge base and sidebar settings: restored from the user's preferences once per browser
  session, saved whenever they change.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from app.ui.common import base_settings, can, current_key
from core.settings import Settings
from llm.conversations import LOCAL_USER, Conversation, ConversationStore

CONV_KEY = "zw-conv"  # the open conversation's id ("" for a new, not yet stored one)
PREFS_KEY = "zw-prefs"  # the preferences as last read or saved (None until read this session)
URL_PARAM = "c"

# Sidebar widgets whose values are remembered, with what a stored value must be to be restored: a value
# a widget would refuse (a slider's range) is dropped rather than break the page.
_PREFERENCES: dict[str, tuple[type | tuple[type, ...], float | None, float | None]] = {
    "top_k": (int, 1, 20),
    "bm25_weight": ((int, float), 0.0, 5.0),
    "dense_weight": ((int, float, type(None)), 0.0, 5.0),
    "temperature": ((int, float), 0.0, 1.5),
    "llm_model": (str, None, None),
    "llm_base_url": (str, None, None),
}


def current_user() -> str:
    key = current_key()
    if base_settings().ui_auth and key is not None:
        return f"key:{key.id}"
    return LOCAL_USER


def conversation_store(settings: Settings) -> ConversationStore:
    return ConversationStore(settings, current_user())


def _acceptable(name: str, value: Any) -> bool:
    kinds, low, high = _PREFERENCES[name]
    if isinstance(value, bool) or not isinstance(value, kinds):
        return False
    if isinstance(value, (int, float)) and low is not None and high is not None:
        return low <= value <= high
    return True


def restore_preferences(store: ConversationStore) -> None:
    """Once per browser session, before the sidebar's widgets exist: their values from last time."""
    if st.session_state.get(PREFS_KEY) is not None:
        return
    saved = store.preferences()
    st.session_state[PREFS_KEY] = saved
    for name in _PREFERENCES:
        if name in saved and name not in st.session_state and _acceptable(name, saved[name]):
            if name == "llm_base_url" and not can("*", "admin"):
                continue  # only an administrator may point the server at another endpoint
            if name in ("bm25_weight", "temperature") or (name == "dense_weight" and saved[name] is not None):
                st.session_state[name] = float(saved[name])
            else:
                st.session_state[name] = saved[name]
    if isinstance(saved.get("kb"), str) and "kb" not in st.session_state:
        st.session_state["kb"] = saved["kb"]  # kb_selector falls back when it is no longer readable


def remember_preferences(store: ConversationStore, kb: str | None) -> None:
    current = {name: st.session_state[name] for name in _PREFERENCES if name in st.session_state}
    if not can("*", "admin"):
        current.pop("llm_base_url", None)
    if kb is not None:
        current["kb"] = kb
    if current != st.session_state.get(PREFS_KEY):
        store.save_preferences(current)
        st.session_state[PREFS_KEY] = current


def open_conversation(store: ConversationStore) -> Conversation | None:
    """The conversation named by the URL or this session, before the knowledge-base selector is drawn:
    one opened from the URL (a reload) brings its knowledge base back into the selector."""
    wanted = st.query_params.get(URL_PARAM) or st.session_state.get(CONV_KEY)
    conversation = store.get(wanted) if wanted else None
    if conversation is not None and st.session_state.get(CONV_KEY) != conversation.id:
        st.session_state["kb"] = conversation.kb
        st.session_state[CONV_KEY] = conversation.id
    return conversation


def show_conversation(conversation_id: str, kb: str) -> None:
    """Callback: open a stored conversation (and its knowledge base) on the next run."""
    st.session_state[CONV_KEY] = conversation_id
    st.session_state["kb"] = kb
    st.query_params[URL_PARAM] = conversation_id


def start_new_conversation() -> None:
    st.session_state[CONV_KEY] = ""
    st.query_params.pop(URL_PARAM, None)


def sync_url(conversation: Conversation, stored: bool) -> None:
    """The URL names the open conversation once it is stored (a reload then opens it again)."""
    st.session_state[CONV_KEY] = conversation.id if stored else ""
    if stored and st.query_params.get(URL_PARAM) != conversation.id:
        st.query_params[URL_PARAM] = conversation.id
    elif not stored and URL_PARAM in st.query_params:
        st.query_params.pop(URL_PARAM)
