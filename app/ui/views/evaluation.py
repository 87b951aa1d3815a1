"""Evaluation page: start evaluation runs (eval.jobs, the same runs as the HTTP API's POST /v1/eval), follow
them, and read their reports or those of `zhiwen eval run`, one run or two side by side."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from app.ui.common import (
    can,
    in_language,
    local_time,
    localized_uploader,
    require,
    sidebar_settings,
    ui_services,
)
from app.ui.i18n import lang, t
from core.errors import ZhiwenError
from core.markdown_html import markdown_page
from eval.dataset import DatasetError, QAItem, load_dataset
from eval.jobs import list_runs, runs_dir, start_run
from eval.report import METRIC_ORDER, compare, worst
from eval.runner import EvalRecord
from ingest.kb import list_kbs
from ingest.uploads import safe_filename

LIVE_EVERY_S = 1.0  # how often a running run's progress is re-read (eval.jobs writes status.json at most every 0.5 s)
STATUSES = ("running", "done", "failed", "interrupted")

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


def metric_name(code: str) -> str:
    """命中率@1 / Hit@1 for hit_at_1; a metric this page does not know keeps its code name."""
    key = f"metric_{code}"
    try:
        return t(key)
    except KeyError:
        return code


def shown(value: Any, code: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.0f}" if code.startswith("latency") else f"{value:.3f}"
    return str(value)


def metric_table(rows: list[tuple], columns: list[str]) -> None:
    """Metrics by name in the session's language; the code names (report.json, `zhiwen eval`) in the
    metric column's tooltip."""
    codes = [r[0] for r in rows]
    frame = pd.DataFrame([(metric_name(r[0]), *(shown(v, r[0]) for v in r[1:])) for r in rows], columns=[t("col_metric"), *columns])
    help_text = t("col_metric_help", codes="; ".join(f"{metric_name(c)} = {c}" for c in codes))
    st.dataframe(frame, hide_index=True, width="stretch",
                 column_config={t("col_metric"): st.column_config.TextColumn(t("col_metric"), help=help_text)})


def report_html(folder: Path) -> str | None:
    """report.md as a real HTML page (tables, headings, the plots inline): what the page shows and what
    the report.html download holds."""
    md = folder / "report.md"
    if not md.is_file():
        return None
    plots = folder / "plots.png"
    images = {"plots.png": plots.read_bytes()} if plots.is_file() else {}
    return markdown_page(md.read_text(encoding="utf-8"), f"zhiwen · {folder.name}", images, lang=lang())


def show_report(first: Path, second: Path | None = None) -> None:
    """One report folder (or report.json), or two side by side (B − A): typed folders and finished runs alike."""
    a = load(first)
    b = load(second) if second is not None else None
    if a and b:
        rows = [(k, va, vb, vb - va if va is not None and vb is not None else None)
                for k in counts(a["aggregate"] | b["aggregate"]) for va, vb in [(a["aggregate"].get(k), b["aggregate"].get(k))]]
        rows += compare(a["aggregate"], b["aggregate"])
        metric_table(rows, ["A", "B", "B − A"])
    elif a:
        agg = a["aggregate"]
        metric_table([(k, agg[k]) for k in counts(agg) + METRIC_ORDER if k in agg], [t("col_value")])
        folder = first if first.is_dir() else first.parent
        page = report_html(folder)
        if page:
            with st.expander(t("eval_report"), icon="📄"):
                st.iframe(page, height=600, alt=t("eval_report"))
        elif (folder / "plots.png").exists():
            st.image(str(folder / "plots.png"))
        st.subheader(t("eval_worst"))
        for r in worst([EvalRecord.model_validate(x) for x in a["records"]]):
            with st.expander(f"{r.id}: {r.question}"):
                st.markdown(f"**{t('eval_expected')}** {' / '.join(r.answers) or '–'}")
                st.markdown(f"**{t('eval_answer')}** {r.prediction}")
                st.dataframe(pd.DataFrame([(metric_name(k), shown(v, k)) for k, v in r.metrics.items()],
                                          columns=[t("col_metric"), t("col_value")]), hide_index=True, width="stretch")
                for p in r.retrieved[:5]:
                    st.caption(f"{p['source']}: {p['text'][:200]}")


def parse_upload(name: str, data: bytes) -> list[QAItem]:
    """load_dataset's own checks (JSON, fields, duplicate ids, line numbers) on the uploaded bytes; its
    messages name the uploaded file, not the temporary copy."""
    shown_name = safe_filename(name) or "dataset.jsonl"
    with tempfile.TemporaryDirectory(prefix="zhiwen-upload-") as tmp:
        path = Path(tmp) / shown_name
        path.write_bytes(data)
        try:
            return load_dataset(path)
        except DatasetError as exc:
            raise DatasetError(str(exc).replace(str(path), shown_name)) from None
        except UnicodeDecodeError:
            raise DatasetError(t("eval_not_utf8", name=shown_name)) from None


# ---- a new run ---------------------------------------------------------------------------------------
st.subheader(t("eval_new"))
all_kbs = list_kbs(settings)
writable = [k.name for k in all_kbs if can(k.name, "write")]
if not all_kbs:
    st.caption(t("eval_no_kb"))  # nothing to evaluate yet: not a permission problem
elif not writable:
    st.caption(t("eval_new_needs_write"))
else:
    # A new uploader key after each start empties it, so a second click cannot start the same run twice.
    uploader_key = f"eval-dataset-{st.session_state.get('eval-started-count', 0)}"
    with st.form("eval-new"):
        chosen = st.session_state.get("kb")
        kb = st.selectbox(t("kb"), writable, index=writable.index(chosen) if chosen in writable else 0, key="eval-new-kb")
        upload = localized_uploader(t("eval_dataset"), uploader_key, settings.upload_max_mb, note="JSONL · JSON · TXT",
                                    type=["jsonl", "json", "txt"], help=t("eval_dataset_help"))
        workers = st.number_input(t("eval_workers"), min_value=1, max_value=4, value=1, step=1, key="eval-workers")
        st.caption(t("eval_settings_note"))
        if st.form_submit_button(t("eval_start"), type="primary"):
            if upload is None:
                st.error(t("eval_no_dataset"))
            else:
                try:
                    require(kb, "write")
                    items = parse_upload(upload.name, upload.getvalue())
                    status = start_run(kb, items, settings, ui_services(), workers=int(workers))
                except ZhiwenError as exc:
                    st.error(in_language(str(exc)) if lang() == "en" else str(exc))
                else:
                    st.session_state["eval-started"] = status["id"]
                    st.session_state["eval-started-count"] = st.session_state.get("eval-started-count", 0) + 1
                    st.session_state["eval-run"] = status["id"]  # follow the new run below
                    st.rerun()

# ---- runs --------------------------------------------------------------------------------------------
title, refresh = st.columns([5, 1], vertical_alignment="bottom")
title.subheader(t("eval_runs"))
refresh.button(t("eval_refresh"), icon="🔄", key="eval-refresh", width="stretch")  # for runs started elsewhere
if started := st.session_state.pop("eval-started", None):
    st.success(t("eval_started", id=started))


def readable_runs() -> list[dict[str, Any]]:
    return [r for r in list_runs(settings) if can(r["kb"], "read")]


def status_text(run: dict[str, Any]) -> str:
    return t(f"eval_status_{run['status']}") if run["status"] in STATUSES else str(run["status"])


def running_ids(runs: list[dict[str, Any]]) -> set[str]:
    return {r["id"] for r in runs if r["status"] == "running"}


runs = readable_runs()
live = running_ids(runs)


def follow(rendered_running: set[str]) -> None:
    """Inside a live fragment: once a run this page drew as running has stopped, rerun the whole page, so
    its table, its report and the refresh timer (off when nothing runs) all catch up."""
    if rendered_running - running_ids(readable_runs()):
        st.rerun(scope="app")


@st.fragment(run_every=LIVE_EVERY_S if live else None)
def runs_table() -> None:
    current = readable_runs() if live else runs
    st.dataframe(
        pd.DataFrame([{t("col_run_id"): r["id"], t("kb"): r["kb"], t("col_run_status"): status_text(r),
                       t("col_run_progress"): f"{r['done']}/{r['total']}", t("col_run_created"): local_time(r["created_at"], seconds=True)}
                      for r in current]),
        hide_index=True, width="stretch",
    )
    if live:
        follow(live)


@st.fragment(run_every=LIVE_EVERY_S)
def run_progress(run_id: str) -> None:
    """The selected run while it runs: its bar moves by itself, no 刷新 click needed."""
    run = next((r for r in readable_runs() if r["id"] == run_id), None)
    if run is None or run["status"] != "running":
        st.rerun(scope="app")
    total = max(run["total"], 1)
    st.progress(min(run["done"] / total, 1.0), text=t("eval_progress", done=run["done"], total=run["total"]))
    st.caption(t("eval_refresh_hint"))


if not runs:
    st.caption(t("eval_no_runs"))
    st.session_state.pop("eval-run", None)
else:
    runs_table()
    by_id = {r["id"]: r for r in runs}
    if st.session_state.get("eval-run") not in by_id:
        st.session_state.pop("eval-run", None)  # deleted, or not this key's to read
    # Labels made now, in this run's language (a format_func is also called outside the run, by tests).
    labels = {i: f"{i} · {r['kb']} · {status_text(r)} · {local_time(r['created_at'])}" for i, r in by_id.items()}
    picked = st.selectbox(t("eval_pick_run"), list(by_id), index=None, placeholder=t("eval_pick_placeholder"), key="eval-run",
                          format_func=labels.__getitem__)
    if picked:
        run = by_id[picked]
        folder = runs_dir(settings) / picked
        if run["status"] == "done":
            html_col, md_col, _ = st.columns([1, 1, 3])
            page = report_html(folder)
            if page:
                html_col.download_button("report.html", page.encode("utf-8"), file_name=f"zhiwen-eval-{picked}-report.html",
                                         mime="text/html", icon="⬇️", key="eval-dl-report.html", on_click="ignore", width="stretch")
            if (folder / "report.md").is_file():
                md_col.download_button("report.md", (folder / "report.md").read_bytes(), file_name=f"zhiwen-eval-{picked}-report.md",
                                       mime="text/markdown", icon="⬇️", key="eval-dl-report.md", on_click="ignore", width="stretch")
            show_report(folder)
        elif run["status"] == "failed":
            st.error(t("eval_run_failed", error=run.get("error") or "–"))
        elif run["status"] == "running":
            run_progress(picked)
        else:
            st.warning(t("eval_run_interrupted", done=run["done"], total=run["total"]))

# ---- reports from `zhiwen eval run` --------------------------------------------------------------------
st.divider()
st.subheader(t("eval_open"))
st.caption(t("eval_help"))
first = st.text_input(t("eval_run_a"), key="eval-a")
second = st.text_input(t("eval_run_b"), key="eval-b")
if first.strip():
    show_report(Path(first.strip()), Path(second.strip()) if second.strip() else None)
