"""Login when UI auth is on (`zhiwen ui --auth`, default beyond 127.0.0.1): the same API keys as `zhiwen api`.

The bearer token and its ApiKey live only in this browser session's server-side st.session_state (no
cookie). Every run verifies the token again, so a revoked key logs the session out on its next rerun and
changed roles apply at once. Views ask app.ui.common.can(kb, role), which reads the key stored here.
"""

from __future__ import annotations

import streamlit as st

from app.ui.common import SESSION_KEY
from app.ui.i18n import t
from core.keys import ApiKey, verify
from core.settings import Settings

SESSION_TOKEN = "zw-api-token"


def end_session() -> None:
    """Forget the key and everything this session saw (conversations, selections); keep the language. The
    URL's conversation goes too: the next person to log in here starts on an empty chat."""
    for name in list(st.session_state):
        if name != "lang":
            del st.session_state[name]
    st.query_params.clear()


def session_key(settings: Settings) -> ApiKey | None:
    """The logged-in key, verified again now; None (and the session ended) when it was revoked."""
    token = st.session_state.get(SESSION_TOKEN)
    if token is None:
        return None
    key = verify(settings, token)
    if key is None:
        end_session()
        st.warning(t("session_ended"))
        return None
    st.session_state[SESSION_KEY] = key
    return key


def login_form(settings: Settings) -> None:
    st.title(t("app_title"))
    st.subheader(t("login_title"))
    st.caption(t("login_help"))
    with st.form("login", clear_on_submit=True):
        token = st.text_input(t("api_key"), type="password", key="login-token")
        if st.form_submit_button(t("login"), type="primary") and token.strip():
            key = verify(settings, token.strip())
            if key is None:
                st.error(t("login_failed"))
                return
            st.session_state[SESSION_TOKEN] = token.strip()
            st.session_state[SESSION_KEY] = key
            st.rerun()


def logout_button(key: ApiKey) -> None:
    st.sidebar.caption(t("logged_in_as", name=key.name))
    if st.sidebar.button(t("logout"), icon="🚪", key="logout", width="stretch"):
        end_session()
        st.rerun()


def gate(settings: Settings) -> None:
    """With UI auth off: nothing. With it on: the login form and a stop, or the logout button."""
    if not settings.ui_auth:
        return
    key = session_key(settings)
    if key is None:
        login_form(settings)
        st.stop()
    logout_button(key)
