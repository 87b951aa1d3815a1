"""What every page shares: settings (sidebar), the knowledge-base selector, language, permissions."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import streamlit as st

from app.ui.i18n import lang, t
from core.errors import ZhiwenError
from core.keys import ApiKey
from core.services import Services
from core.settings import Settings, load_settings
from ingest.kb import list_kbs

SESSION_KEY = "zw-api-key"  # the logged-in ApiKey, re-verified on every run by app.ui.login.gate


def base_settings() -> Settings:
    """Defaults, zhiwen.toml and ZHIWEN_* variables (cheap to read: no caching to go stale)."""
    return load_settings()


@st.cache_resource(show_spinner=False)
def ui_services() -> Services:
    """The web UI process's long-lived state (open knowledge bases, answer cache, moderators, eval
    slots): made once per server process, shared by every browser session."""
    return Services()


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


def initial(key: str, default: object) -> object:
    """A widget's default value, or None when this session already holds its value (restored from the
    user's saved preferences, app.ui.chat_state): Streamlit warns when a widget gets both."""
    return None if key in st.session_state else default


def sidebar_settings() -> Settings:
    """The server's settings with this browser session's overrides from the sidebar."""
    base = base_settings()
    with st.sidebar.expander(t("settings")):
        top_k = st.slider(t("top_k"), 1, 20, initial("top_k", base.top_k), key="top_k")
        bm25_weight = st.number_input(t("bm25_weight"), 0.0, 5.0, initial("bm25_weight", base.bm25_weight), 0.1, key="bm25_weight")
        dense_weight = st.number_input(t("dense_weight"), 0.0, 5.0, initial("dense_weight", base.dense_weight), 0.1, key="dense_weight",
                                       placeholder=t("auto"))  # empty: the weight tuned for the embedder
        # Only an administrator may point the server (and its LLM API key) at another endpoint.
        locked = not can("*", "admin")
        llm_base_url = st.text_input(t("llm_base_url"), initial("llm_base_url", base.llm_base_url or ""), key="llm_base_url", disabled=locked,
                                     help=t("admin_only") if locked else None)
        if locked:
            llm_base_url = base.llm_base_url or ""  # a disabled widget's value still comes from the browser
        llm_model = st.text_input(t("llm_model"), initial("llm_model", base.llm_model), key="llm_model")
        temperature = st.slider(t("temperature"), 0.0, 1.5, initial("temperature", base.llm_temperature), 0.05, key="temperature")
    # A widget given no value (initial() saw the key) returns None when its kept state was dropped on
    # another page: fall back to the server's setting rather than fail.
    top_k = base.top_k if top_k is None else top_k
    bm25_weight = base.bm25_weight if bm25_weight is None else bm25_weight
    temperature = base.llm_temperature if temperature is None else temperature
    return base.model_copy(
        update={
            "top_k": top_k, "bm25_weight": bm25_weight, "dense_weight": dense_weight,
            "llm_base_url": (llm_base_url or "").strip() or None, "llm_model": (llm_model or "").strip() or base.llm_model,
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


# ---- shared by the pages: local times, one language per message, narrow windows, the uploader ----------

def browser_zone() -> ZoneInfo | None:
    """The browser's time zone (Streamlit reads it from the page), None when unknown (tests, old browsers)."""
    try:
        name = st.context.timezone
        return ZoneInfo(name) if name else None
    except (ZoneInfoNotFoundError, ValueError, AttributeError, RuntimeError):
        return None


def local_time(value: datetime | float | str | None, seconds: bool = False) -> str:
    """A timestamp (datetime, epoch seconds or ISO text; naive means UTC) in the reader's time zone, else
    the server's: "2026-03-01 09:30". "–" for none."""
    if value is None or value == "":
        return "–"
    if isinstance(value, (int, float)):
        when = datetime.fromtimestamp(value, UTC)
    elif isinstance(value, str):
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            return value
    else:
        when = value
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    zone = browser_zone()
    when = when.astimezone(zone) if zone else when.astimezone()
    return when.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


_BILINGUAL = re.compile(r"(?s)(.*?[\u3400-\u9fff].*?)\s*\(([^()]*[A-Za-z][^()]*)\)(.*)")


def in_language(text: str) -> str:
    """The library's messages say things twice, "中文说明 (English)": keep the half in the session's language.
    Text in another shape is returned as it is."""
    m = _BILINGUAL.fullmatch(text or "")
    if not m:
        return text
    zh, en, rest = m.groups()
    return (en + rest) if lang() == "en" else (zh + rest)


def _sync_kb_from_compact() -> None:
    st.session_state["kb"] = st.session_state["kb-compact"]


def compact_kb_bar(settings: Settings, on_new_chat: Callable[[], None] | None = None) -> str | None:
    """The knowledge-base picker (and, given ``on_new_chat``, a 新对话 button calling it) in the main area,
    for when the sidebar is closed: on a phone or a narrow window (420 px) Streamlit closes it after each
    navigation, and what lived only there was out of reach. Hidden by CSS while the sidebar is open, so a
    wide window shows the sidebar's picker alone. Kept in step with the sidebar's picker (key "kb") both
    ways. Returns the selected knowledge base (None when there is none to read).

    For the chat page: call it near the top, e.g. ``compact_kb_bar(settings, on_new_chat=start_new_chat)``."""
    names = [k.name for k in list_kbs(settings) if can(k.name, "read")]
    if not names:
        return None
    if st.session_state.get("kb") not in names:
        st.session_state["kb"] = names[0]
    st.session_state["kb-compact"] = st.session_state["kb"]
    with st.container(key="zw-compact-bar", horizontal=True, vertical_alignment="bottom"):
        st.selectbox(t("kb"), names, key="kb-compact", on_change=_sync_kb_from_compact)
        if on_new_chat is not None:
            st.button(t("new_chat"), icon="➕", key="new-chat-compact", on_click=on_new_chat)
    # The sidebar section and the main area are siblings: an open sidebar hides the bar.
    st.html("<style>section[data-testid='stSidebar'][data-collapsed='false'] ~ * .st-key-zw-compact-bar{display:none}</style>")
    return st.session_state["kb"]


_CLOSE_SIDEBAR_JS = """<script>
if (!window.zhiwenClosesSidebar) {
  window.zhiwenClosesSidebar = true;
  document.addEventListener("click", (event) => {
    const link = event.target.closest && event.target.closest('[data-testid="stSidebarNavLink"]');
    if (!link || window.innerWidth > NARROW) return;
    setTimeout(() => {
      const sidebar = document.querySelector('[data-testid="stSidebar"]');
      const close = document.querySelector('[data-testid="stSidebarCollapseButton"] button');
      if (sidebar && sidebar.getAttribute("data-collapsed") === "false" && close) close.click();
    }, 0);
  }, true);
}
</script>"""


def close_sidebar_after_navigation(narrow_px: int = 768) -> None:
    """In a window at most ``narrow_px`` wide the sidebar covers the page; Streamlit closes it after a
    page link is clicked only for a phone's user agent, so a narrow desktop window (a 420 px side panel)
    kept it open over the page it had just opened. This closes it there too (one listener per page)."""
    st.html(_CLOSE_SIDEBAR_JS.replace("NARROW", str(int(narrow_px))), unsafe_allow_javascript=True)


def localized_uploader(label: str, key: str, max_mb: int, note: str = "", **kwargs):
    """st.file_uploader whose own English words ("Upload", "50MB per file") are replaced, by CSS, with the
    session's language; ``max_mb`` is the limit ingest enforces (upload_max_mb), so the widget refuses a
    larger file before it is sent. ``note`` follows the limit (e.g. the accepted types)."""
    box = f"zw-up-{re.sub(r'[^A-Za-z0-9_-]', '', key) or 'file'}"
    limit = t("uploader_limit", mb=max_mb) + (f" · {note}" if note else "")
    css = (f".st-key-{box} [data-testid='stFileUploaderDropzone'] button [data-testid='stMarkdownContainer'] p{{display:none}}"
           f".st-key-{box} [data-testid='stFileUploaderDropzone'] button [data-testid='stMarkdownContainer']::after"
           f"{{content:{_css_string(t('uploader_button'))}}}"
           f".st-key-{box} [data-testid='stFileUploaderDropzoneInstructions'] span{{display:none}}"
           f".st-key-{box} [data-testid='stFileUploaderDropzoneInstructions'] > div::after{{content:{_css_string(limit)};font-size:.875rem}}")
    with st.container(key=box):
        st.html(f"<style>{css}</style>")
        return st.file_uploader(label, key=key, max_upload_size=max_mb, **kwargs)


def _css_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

