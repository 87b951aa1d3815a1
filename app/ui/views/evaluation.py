"""Evaluation page: start evaluation runs (eval.jobs, the same runs as the HTTP API's POST /v1/eval), follow
them, and read their reports or those of `zhiwen eval run`, one run or two side by side."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from app.ui.common import can, require, sidebar_settings
from app.ui.i18n import t
from core.errors import ZhiwenError
from eval.dataset import DatasetError, QAItem, load_dataset
from eval.jobs import list_runs, runs_dir, start_run
from eval.report import METRIC_ORDER, compare, worst
from eval.runner import EvalRecord
from ingest.kb import list_kbs
from ingest.uploads import safe_filename

settings = sidebar_settings()  # a new run uses this session's retrieval and model settings
st.title(t("nav_eval"))


def may_view(report: dict) -> bool:
    """Read on the run's knowledge base; a report that names none needs admin on every knowledge base."""
    kb = report.get("kb") if isinstance(report, dict) else None
    return can(kb, "read") if kb else can("*", "admin")


def load(path: Path) -> dict | None:
    report = path / "report.json" if path.is_dir() else path
    if not report.is_file():
        st.error(t("eval_missing", path=str(report)))
        return None
    data = json.loads(report.read_text(encoding="utf-8"))
    if not may_view(data):
        st.error(t("eval_forbidden"))
        return None
    return data


def counts(agg: dict) -> list[str]:
    """How many questions (and failed ones) a report covers, shown above its metrics."""
    return [k for k in ("questions", "errors") if k in agg]


def show_report(first: Path, second: Path | None = None) -> None:
    """One report folder (or report.json), or two side by side (B − A): typed folders and finished runs alike."""
    a = load(first)
    b = load(second) if second is not None else None
    if a and b:
        rows = [(k, va, vb, vb - va if va is not None and vb is not None else None)
                for k in counts(a["aggregate"] | b["aggregate"]) for va, vb in [(a["aggregate"].get(k), b["aggregate"].get(k))]]
        rows += compare(a["aggregate"], b["aggregate"])
        st.dataframe(pd.DataFrame(rows, columns=["metric", "A", "B", "B − A"]), hide_index=True, use_container_width=True)
    elif a:
        agg = a["aggregate"]
        st.dataframe(
            pd.DataFrame([(k, agg[k]) for k in counts(agg) + METRIC_ORDER if k in agg], columns=["metric", "value"]),
            hide_index=True, use_container_width=True,
        )
        plots = (first if first.is_dir() else first.parent) / "plots.png"
        if plots.exists():
            st.image(str(plots))
        st.subheader(t("eval_worst"))
        for r in worst([EvalRecord.model_validate(x) for x in a["records"]]):
            with st.expander(f"{r.id}: {r.question}"):
                st.markdown(f"**{t('eval_expected')}** {' / '.join(r.answers) or '–'}")
                st.markdown(f"**{t('eval_answer')}** {r.prediction}")
                st.json(r.metrics)
                for p in r.retrieved[:5]:
                    st.caption(f"{p['source']}: {p['text'][:200]}")


def parse_upload(name: str, data: bytes) -> list[QAItem]:
    """load_dataset's own checks (JSON, fields, duplicate ids, line numbers) on the uploaded bytes; its
    messages name the uploaded file, not the temporary copy."""
    shown = safe_filename(name) or "dataset.jsonl"
    with tempfile.TemporaryDirectory(prefix="zhiwen-upload-") as tmp:
        path = Path(tmp) / shown
        path.write_bytes(data)
        try:
            return load_dataset(path)
        except DatasetError as exc:
            raise DatasetError(str(exc).replace(str(path), shown)) from None
        except UnicodeDecodeError:
            raise DatasetError(t("eval_not_utf8", name=shown)) from None


# ---- a new run ---------------------------------------------------------------------------------------
st.subheader(t("eval_new"))
writable = [k.name for k in list_kbs(settings) if can(k.name, "write")]
if not writable:
    st.caption(t("eval_new_needs_write"))
else:
    # A new uploader key after each start empties it, so a second click cannot start the same run twice.
    uploader_key = f"eval-dataset-{st.session_state.get('eval-started-count', 0)}"
    with st.form("eval-new"):
        chosen = st.session_state.get("kb")
        kb = st.selectbox(t("kb"), writable, index=writable.index(chosen) if chosen in writable else 0, key="eval-new-kb")
        upload = st.file_uploader(t("eval_dataset"), type=["jsonl", "json", "txt"], key=uploader_key, help=t("eval_dataset_help"))
        workers = st.number_input(t("eval_workers"), min_value=1, max_value=4, value=1, step=1, key="eval-workers")
        st.caption(t("eval_settings_note"))
        if st.form_submit_button(t("eval_start"), type="primary"):
            if upload is None:
                st.error(t("eval_no_dataset"))
            else:
                try:
                    require(kb, "write")
                    items = parse_upload(upload.name, upload.getvalue())
                    status = start_run(kb, items, settings, workers=int(workers))
                except ZhiwenError as exc:
                    st.error(str(exc))
                else:
                    st.session_state["eval-started"] = status["id"]
                    st.session_state["eval-started-count"] = st.session_state.get("eval-started-count", 0) + 1
                    st.session_state["eval-run"] = status["id"]  # follow the new run below
                    st.rerun()

# ---- runs --------------------------------------------------------------------------------------------
title, refresh = st.columns([5, 1], vertical_alignment="bottom")
title.subheader(t("eval_runs"))
refresh.button(t("eval_refresh"), icon="🔄", key="eval-refresh", use_container_width=True)  # a click is a rerun
if started := st.session_state.pop("eval-started", None):
    st.success(t("eval_started", id=started))
runs: list[dict[str, Any]] = [r for r in list_runs(settings) if can(r["kb"], "read")]


def status_text(run: dict[str, Any]) -> str:
    return t(f"eval_status_{run['status']}") if run["status"] in ("running", "done", "failed") else str(run["status"])


def when(seconds: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds)) if seconds else "–"


if not runs:
    st.caption(t("eval_no_runs"))
    st.session_state.pop("eval-run", None)
else:
    st.dataframe(
        pd.DataFrame([{t("col_run_id"): r["id"], t("kb"): r["kb"], t("col_run_status"): status_text(r),
                       t("col_run_progress"): f"{r['done']}/{r['total']}", t("col_run_created"): when(r["created_at"])} for r in runs]),
        hide_index=True, use_container_width=True,
    )
    by_id = {r["id"]: r for r in runs}
    if st.session_state.get("eval-run") not in by_id:
        st.session_state.pop("eval-run", None)  # deleted, or not this key's to read
    picked = st.selectbox(t("eval_pick_run"), list(by_id), index=None, placeholder=t("eval_pick_placeholder"), key="eval-run",
                          format_func=lambda i: f"{i} · {by_id[i]['kb']} · {status_text(by_id[i])} · {when(by_id[i]['created_at'])}")
    if picked:
        run = by_id[picked]
        folder = runs_dir(settings) / picked
        if run["status"] == "done":
            html_col, md_col, _ = st.columns([1, 1, 3])
            for col, name, mime in ((html_col, "report.html", "text/html"), (md_col, "report.md", "text/markdown")):
                if (folder / name).is_file():
                    col.download_button(name, (folder / name).read_bytes(), file_name=f"zhiwen-eval-{picked}-{name}", mime=mime,
                                        icon="⬇️", key=f"eval-dl-{name}", on_click="ignore",
                                        use_container_width=True)
            show_report(folder)
        elif run["status"] == "failed":
            st.error(t("eval_run_failed", error=run.get("error") or "–"))
        else:
            total = max(run["total"], 1)
            st.progress(min(run["done"] / total, 1.0), text=t("eval_progress", done=run["done"], total=run["total"]))
            st.caption(t("eval_refresh_hint"))

# ---- reports from `zhiwen eval run` --------------------------------------------------------------------
st.divider()
st.subheader(t("eval_open"))
st.caption(t("eval_help"))
first = st.text_input(t("eval_run_a"), key="eval-a")
second = st.text_input(t("eval_run_b"), key="eval-b")
if first.strip():
    show_report(Path(first.strip()), Path(second.strip()) if second.strip() else None)
