"""What every page shares: settings (sidebar), the knowledge-base selector, language, permissions."""

from __future__ import annotations

import streamlit as st

from app.api.keys import ApiKey
from app.ui.i18n import t
from core.errors import ZhiwenError
from core.settings import Settings, load_settings
from ingest.kb import list_kbs

SESSION_KEY = "zw-api-key"  # the logged-in ApiKey, re-verified on every run by app.ui.login.gate


def base_settings() -> Settings:
    """Defaults, zhiwen.toml and ZHIWEN_* variables (cheap to read: no caching to go stale)."""
    return load_settings()


def current_key() -> ApiKey | None:
    return st.session_state.get(SESSION_KEY)


def can(kb: str, role: str) -> bool:
    """Whether this session may use ``role`` (read < write < admin) on knowledge base ``kb`` ("*": every
    knowledge base). Always True with UI auth off; never True with auth on and nobody logged in."""
    if not base_settings().ui_auth:
        return True
    key = current_key()
    return key is not None and key.allows(kb, role)


def can_create_kb() -> bool:
    """Whether to offer the create form at all: admin on "*" or on some (maybe not yet existing) name."""
    key = current_key()
    return not base_settings().ui_auth or (key is not None and not key.revoked and "admin" in key.roles.values())


def require(kb: str, role: str) -> None:
    if not can(kb, role):
        raise ZhiwenError(t("forbidden", kb=kb, role=role))


def language_switch() -> None:
    st.sidebar.radio(t("language"), ["zh", "en"], format_func=lambda x: {"zh": "中文", "en": "English"}[x], key="lang", horizontal=True)


def sidebar_settings() -> Settings:
    """The server's settings with this browser session's overrides from the sidebar."""
    base = base_settings()
    with st.sidebar.expander(t("settings")):
        top_k = st.slider(t("top_k"), 1, 20, base.top_k, key="top_k")
        bm25_weight = st.number_input(t("bm25_weight"), 0.0, 5.0, base.bm25_weight, 0.1, key="bm25_weight")
        dense_weight = st.number_input(t("dense_weight"), 0.0, 5.0, base.dense_weight, 0.1, key="dense_weight",
                                       placeholder=t("auto"))  # empty: the weight tuned for the embedder
        # Only an administrator may point the server (and its LLM API key) at another endpoint.
        locked = not can("*", "admin")
        llm_base_url = st.text_input(t("llm_base_url"), base.llm_base_url or "", key="llm_base_url", disabled=locked,
                                     help=t("admin_only") if locked else None)
        if locked:
            llm_base_url = base.llm_base_url or ""  # a disabled widget's value still comes from the browser
        llm_model = st.text_input(t("llm_model"), base.llm_model, key="llm_model")
        temperature = st.slider(t("temperature"), 0.0, 1.5, base.llm_temperature, 0.05, key="temperature")
    return base.model_copy(
        update={
            "top_k": top_k, "bm25_weight": bm25_weight, "dense_weight": dense_weight,
            "llm_base_url": llm_base_url.strip() or None, "llm_model": llm_model.strip() or base.llm_model,
            "llm_temperature": temperature,
        }
    )


def kb_selector(settings: Settings, where=st.sidebar) -> str | None:
    """Only the knowledge bases this session may read."""
    names = [k.name for k in list_kbs(settings) if can(k.name, "read")]
    if not names:
        return None
    if st.session_state.get("kb") not in names:
        st.session_state["kb"] = names[0]  # first visit, or the selected one was deleted
    return where.selectbox(t("kb"), names, key="kb")


def no_kb_hint() -> str:
    return t("no_kb") if can("*", "admin") else t("no_readable_kb")
