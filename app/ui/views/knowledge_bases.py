"""Knowledge-base page: create and delete knowledge bases, upload and ingest files, manage documents."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from app.ui.common import base_settings, can, can_create_kb, kb_selector, require
from app.ui.i18n import t
from core.errors import LoadError, ZhiwenError
from core.models import IngestResult
from ingest.kb import KnowledgeBase, delete_kb
from ingest.pipeline import reindex_document, remove_document
from ingest.uploads import ingest_upload, safe_filename

settings = base_settings()
st.title(t("nav_kb"))

if can_create_kb():  # admin on "*" or on the new name (checked on submit)
    with st.form("create-kb", clear_on_submit=True):
        st.subheader(t("create_kb"))
        new_name = st.text_input(t("kb_name"), key="new-kb-name")
        if st.form_submit_button(t("create")) and new_name.strip():
            try:
                require(new_name.strip(), "admin")
                KnowledgeBase.open(new_name.strip(), settings, create=True).close()
                st.session_state["kb"] = new_name.strip()
                st.success(t("created", name=new_name.strip()))
            except ZhiwenError as exc:
                st.error(str(exc))

kb = kb_selector(settings, where=st)
if kb is None:
    st.info(t("no_kb"))
    st.stop()
writable = can(kb, "write")  # upload, delete and re-index documents


def result_rows(results: list[IngestResult]) -> pd.DataFrame:
    return pd.DataFrame(
        [{t("col_file"): Path(r.source).name, t("col_status"): t(f"status_{r.status}"), t("col_chunks"): r.n_chunks,
          t("col_reason"): r.reason} for r in results]
    )


# A new key after each ingest empties the uploader, so a second click cannot re-import the same files.
uploader_key = f"uploader-{kb}-{st.session_state.get('uploads-done', 0)}"
uploads = st.file_uploader(t("upload"), accept_multiple_files=True, key=uploader_key) if writable else None
if writable and st.button(t("ingest"), type="primary", disabled=not uploads):
    # One file at a time through ingest_upload, the path the HTTP API takes too: checked (size, type from
    # content, archive bombs), stored under a generated name, ingested under its original name.
    results: list[IngestResult] = []
    bar = st.progress(0.0)
    for done, f in enumerate(uploads):
        shown = safe_filename(f.name) or "未命名"
        bar.progress(done / len(uploads), text=t("ingesting", name=shown, done=done + 1, total=len(uploads)))
        try:
            results.append(ingest_upload(kb, f.name, f.getvalue(), settings, content_type=f.type))
        except LoadError as exc:
            results.append(IngestResult(source=shown, status="failed", reason=f"{exc.reason}{'（' + exc.hint + '）' if exc.hint else ''}"))
    bar.empty()
    st.session_state["last-ingest"] = [r.model_dump() for r in results]
    st.session_state["uploads-done"] = st.session_state.get("uploads-done", 0) + 1
    st.rerun()

if st.session_state.get("last-ingest"):
    results = [IngestResult.model_validate(r) for r in st.session_state["last-ingest"]]
    failed = [r for r in results if r.status == "failed"]
    for r in failed:
        st.error(f"{Path(r.source).name}: {r.reason}")
    st.dataframe(result_rows(results), hide_index=True, use_container_width=True)

st.subheader(t("documents"))
with KnowledgeBase.open(kb, settings) as handle:
    docs = handle.catalog.list_documents()
if not docs:
    st.caption(t("no_documents"))
else:
    st.dataframe(
        pd.DataFrame(
            [{t("col_file"): Path(d.source).name, t("col_title"): d.title, t("col_chunks"): d.n_chunks,
              t("col_size"): round(d.size_bytes / 1024, 1), t("col_time"): d.ingested_at.strftime("%Y-%m-%d %H:%M")} for d in docs]
        ),
        hide_index=True, use_container_width=True,
    )
    if writable:
        chosen = st.selectbox(t("doc_actions"), [d.source for d in docs], format_func=lambda s: Path(s).name, key="doc-choice")
        delete_col, reindex_col = st.columns(2)
        if delete_col.button(t("delete_doc"), icon="🗑️", use_container_width=True):
            remove_document(kb, chosen, settings)
            st.session_state.pop("last-ingest", None)
            st.toast(t("deleted_doc", source=Path(chosen).name))
            st.rerun()
        if reindex_col.button(t("reindex_doc"), icon="🔄", use_container_width=True):
            try:
                r = reindex_document(kb, chosen, settings)
                st.success(t("reindexed_doc", source=Path(chosen).name, n=r.n_chunks))
            except ZhiwenError as exc:
                st.error(str(exc))

if can(kb, "admin"):
    with st.expander(t("delete_kb")):
        sure = st.checkbox(t("confirm_delete", name=kb), key=f"confirm-delete-{kb}")
        if st.button(t("delete_kb"), disabled=not sure, type="secondary"):
            delete_kb(kb, settings)
            st.session_state.pop("kb", None)
            st.session_state.pop("last-ingest", None)
            st.toast(t("deleted_kb", name=kb))
            st.rerun()
