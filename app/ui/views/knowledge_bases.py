"""Knowledge-base page: create and delete knowledge bases, upload and ingest files, manage documents."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from app.ui.common import (
    base_settings,
    can,
    can_create_kb,
    in_language,
    kb_selector,
    local_time,
    localized_uploader,
    require,
    ui_services,
)
from app.ui.i18n import lang, t
from core.errors import ZhiwenError
from core.models import IngestResult
from ingest.documents import ingest_upload, reindex_document, remove_document
from ingest.kb import create_kb, delete_kb, kb_documents
from ingest.loaders import SUPPORTED_SUFFIXES
from ingest.uploads import safe_filename

settings = base_settings()
st.title(t("nav_kb"))

if can_create_kb():  # admin on "*" or on the new name (checked on submit)
    with st.form("create-kb", clear_on_submit=True):
        st.subheader(t("create_kb"))
        new_name = st.text_input(t("kb_name"), key="new-kb-name")
        if st.form_submit_button(t("create")) and new_name.strip():
            try:
                require(new_name.strip(), "admin")
                create_kb(new_name.strip(), settings)  # an existing name is an error here too, as in the API
                st.session_state["kb"] = new_name.strip()
                st.success(t("created", name=new_name.strip()))
            except ZhiwenError as exc:
                st.error(in_language(str(exc)))

kb = kb_selector(settings, where=st)
if kb is None:
    st.info(t("no_kb"))
    st.stop()
writable = can(kb, "write")  # upload, delete and re-index documents


def split_hint(reason: str) -> tuple[str, str]:
    """IngestResult.reason is LoadError's reason followed by its hint in full-width brackets: "…（hint）"."""
    if reason.endswith("）") and "（" in reason:
        head, _, hint = reason[:-1].rpartition("（")
        if head:
            return head, hint
    return reason, ""


def what_to_do(reason: str, hint: str) -> str:
    """A next step for a file that failed, in the session's language (the library's hints are Chinese)."""
    text = reason.lower()
    for needles, key in ((("ocr extra",), "load_todo_ocr"), (("found by ocr", "ocr found no text"), "load_todo_ocr_empty"),
                         (("encrypted",), "load_todo_encrypted"), (("no extractable text",), "load_todo_pdf_scan"),
                         (("unsupported type", "unsupported content", "content is not"), "load_todo_type"),
                         (("image",), "load_todo_image"),
                         (("too large",), "load_todo_size"),
                         (("busy",), "load_todo_busy"), (("moderation",), "load_todo_moderation"),
                         (("docx",), "load_todo_docx"), (("pdf",), "load_todo_pdf")):
        if any(n in text for n in needles):
            return t(key, types=" ".join(sorted(SUPPORTED_SUFFIXES)))
    if hint and lang() == "zh":
        return hint.rstrip("。") + "。"
    return t("load_todo_generic")


def failure_message(r: IngestResult) -> str:
    """One sentence per failed file, in the session's language: which file, why (a library's own error,
    PdfStreamError say, stays inside the reason), and what to do about it."""
    reason, hint = split_hint(r.reason)
    return t("load_failed", name=Path(r.source).name, reason=in_language(reason).rstrip("。."), todo=what_to_do(reason, hint))


def result_rows(results: list[IngestResult]) -> pd.DataFrame:
    return pd.DataFrame(
        [{t("col_file"): Path(r.source).name, t("col_status"): t(f"status_{r.status}"), t("col_chunks"): r.n_chunks,
          t("col_reason"): in_language(split_hint(r.reason)[0])} for r in results]
    )


# The results and the document list live in one placeholder: while files are ingested it holds the progress
# bar alone, so the previous run's list ("no documents yet") does not stay on screen meanwhile.
uploader_key = f"uploader-{kb}-{st.session_state.get('uploads-done', 0)}"  # a new key empties the uploader
uploads = (localized_uploader(t("upload", mb=settings.upload_max_mb), uploader_key, settings.upload_max_mb,
                              accept_multiple_files=True, help=t("upload_help")) if writable else None)
ingest_clicked = writable and st.button(t("ingest"), type="primary", disabled=not uploads)
body = st.empty()
if ingest_clicked:
    # One file at a time through ingest_upload, the path the HTTP API takes too: checked (size, type from
    # content, archive bombs), stored under a generated name, ingested under its original name.
    results: list[IngestResult] = []
    # The bar is the placeholder's one element: a container there would keep the old list's later
    # elements on screen (stale) until this run ends.
    for done, f in enumerate(uploads):
        shown = safe_filename(f.name) or t("unnamed")
        body.progress(done / len(uploads), text=t("ingesting", name=shown, done=done, total=len(uploads)))
        results.append(ingest_upload(kb, f.name, f.getvalue(), settings, content_type=f.type, services=ui_services()))  # refused: "failed"
    body.progress(1.0, text=t("ingest_done", total=len(uploads)))
    st.session_state["last-ingest"] = [r.model_dump() for r in results]
    st.session_state["uploads-done"] = st.session_state.get("uploads-done", 0) + 1
    st.rerun()

with body.container():
    if st.session_state.get("last-ingest"):
        results = [IngestResult.model_validate(r) for r in st.session_state["last-ingest"]]
        for r in results:
            if r.status == "failed":
                st.error(failure_message(r))
        st.dataframe(result_rows(results), hide_index=True, width="stretch")

    st.subheader(t("documents"))
    docs = kb_documents(kb, settings)[1]
    if not docs:
        st.caption(t("no_documents"))
    else:
        st.dataframe(
            pd.DataFrame(
                [{t("col_file"): Path(d.source).name, t("col_title"): d.title, t("col_chunks"): d.n_chunks,
                  t("col_size"): round(d.size_bytes / 1024, 1), t("col_time"): local_time(d.ingested_at)} for d in docs]
            ),
            hide_index=True, width="stretch",
        )
        if writable:
            by_source = {d.source: d for d in docs}
            chosen = st.selectbox(t("doc_actions"), list(by_source), format_func=lambda s: Path(s).name, key="doc-choice")
            if st.session_state.get("doc-delete-pending") not in (None, chosen):
                st.session_state.pop("doc-delete-pending")  # another document chosen: that question is void
            delete_col, reindex_col = st.columns(2)
            if delete_col.button(t("delete_doc"), icon="🗑️", key="doc-delete", width="stretch"):
                st.session_state["doc-delete-pending"] = chosen
            if reindex_col.button(t("reindex_doc"), icon="🔄", key="doc-reindex", width="stretch"):
                try:
                    r = reindex_document(kb, chosen, settings)
                    st.success(t("reindexed_doc", source=Path(chosen).name, n=r.n_chunks))
                except ZhiwenError as exc:
                    st.error(in_language(str(exc)))
            if st.session_state.get("doc-delete-pending") == chosen:
                # Deleting drops the document's passages from the indexes at once: ask before doing it.
                with st.container(border=True, key="doc-delete-confirmation"):
                    st.warning(t("confirm_delete_doc", name=Path(chosen).name, n=by_source[chosen].n_chunks), icon="⚠️")
                    yes_col, no_col = st.columns(2)
                    if yes_col.button(t("confirm_delete_yes"), type="primary", key="doc-delete-confirm", width="stretch"):
                        st.session_state.pop("doc-delete-pending")
                        remove_document(kb, chosen, settings)
                        st.session_state.pop("last-ingest", None)
                        st.toast(t("deleted_doc", source=Path(chosen).name))
                        st.rerun()
                    if no_col.button(t("cancel"), key="doc-delete-cancel", width="stretch"):
                        st.session_state.pop("doc-delete-pending")
                        st.rerun()

if can(kb, "admin"):
    with st.expander(t("delete_kb")):
        sure = st.checkbox(t("confirm_delete", name=kb), key=f"confirm-delete-{kb}")
        if st.button(t("delete_kb"), disabled=not sure, type="secondary", key="kb-delete"):
            delete_kb(kb, settings, ui_services())
            st.session_state.pop("kb", None)
            st.session_state.pop("last-ingest", None)
            st.toast(t("deleted_kb", name=kb))
            st.rerun()
