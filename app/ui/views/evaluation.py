"""Evaluation page: read `zhiwen eval run` reports, one run or two side by side."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import streamlit as st

from app.ui.common import can
from app.ui.i18n import t
from eval.report import METRIC_ORDER, compare, worst
from eval.runner import EvalRecord

st.title(t("nav_eval"))
st.caption(t("eval_help"))
first = st.text_input(t("eval_run_a"), key="eval-a")
second = st.text_input(t("eval_run_b"), key="eval-b")


def may_view(report: dict) -> bool:
    """Read on the run's knowledge base; a report that names none needs admin on every knowledge base."""
    kb = report.get("kb") if isinstance(report, dict) else None
    return can(kb, "read") if kb else can("*", "admin")


def load(path_text: str) -> dict | None:
    path = Path(path_text.strip())
    report = path / "report.json" if path.is_dir() else path
    if not report.is_file():
        st.error(t("eval_missing", path=str(report)))
        return None
    data = json.loads(report.read_text(encoding="utf-8"))
    if not may_view(data):
        st.error(t("eval_forbidden"))
        return None
    return data


if first.strip():
    a = load(first)
    b = load(second) if second.strip() else None
    if a and b:
        rows = compare(a["aggregate"], b["aggregate"])
        st.dataframe(pd.DataFrame(rows, columns=["metric", "A", "B", "B − A"]), hide_index=True, use_container_width=True)
    elif a:
        agg = a["aggregate"]
        st.dataframe(
            pd.DataFrame([(k, agg[k]) for k in METRIC_ORDER if k in agg], columns=["metric", "value"]),
            hide_index=True, use_container_width=True,
        )
        plots = (Path(first.strip()) if Path(first.strip()).is_dir() else Path(first.strip()).parent) / "plots.png"
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
