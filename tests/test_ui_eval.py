"""Starting and following evaluation runs from the evaluation page (eval.jobs), through streamlit.testing's
AppTest: the real page over a real knowledge base, and with UI auth on, the real entry script and API keys."""

from __future__ import annotations

import json
import os
import time

import pytest
from streamlit.testing.v1 import AppTest

from core.keys import create_key
from eval.dataset import QAItem
from eval.jobs import list_runs, run_status, runs_dir
from ingest.kb import KnowledgeBase
from tests.ui_helpers import PAGES, TIMEOUT, login, rendered

START = "FormSubmitter:eval-new-开始评测"
QUESTIONS = [
    QAItem(id="t", question="一线城市住宿标准是多少？", answers=["每晚不超过600元"], relevant_sources=["差旅报销制度.md"]),
    QAItem(id="m", question="火星上有多少颗卫星？", answerable=False),
]


def eval_page() -> AppTest:
    return AppTest.from_file(str(PAGES / "evaluation.py"), default_timeout=TIMEOUT).run()


def jsonl(items: list[QAItem]) -> bytes:
    return "".join(i.model_dump_json() + "\n" for i in items).encode("utf-8")


def wait_until_finished(run_id: str, settings, seconds: float = 60) -> dict:
    """Poll the run's status.json (what the page reads) until it leaves "running", with a deadline."""
    deadline = time.monotonic() + seconds
    while (status := run_status(run_id, settings))["status"] == "running":
        assert time.monotonic() < deadline, f"run {run_id} still running after {seconds}s: {status}"
        time.sleep(0.05)
    return status


def table(at: AppTest, first_column: str):
    return next(d.value for d in at.dataframe if d.value.columns[0] == first_column)


def error_text(at: AppTest) -> str:
    return "\n".join(e.value for e in at.error)


def test_start_a_run_follow_it_and_read_its_report(demo_kb):
    at = eval_page()
    assert at.selectbox(key="eval-new-kb").options == ["demo"]
    assert "还没有评测任务" in " ".join(c.value for c in at.caption)
    at.file_uploader(key="eval-dataset-0").set_value(("qa.jsonl", jsonl(QUESTIONS), "application/jsonl"))
    at.number_input(key="eval-workers").set_value(2)
    at.button(key=START).click().run()
    assert not at.error and not at.exception
    [run] = list_runs(demo_kb)
    assert at.success[0].value == f"已开始评测任务 {run['id']}"
    assert at.selectbox(key="eval-run").value == run["id"] and not at.warning, "the new run is selected"
    assert not at.file_uploader(key="eval-dataset-1").value, "the uploader was emptied: a second click starts nothing"

    status = wait_until_finished(run["id"], demo_kb)
    assert status["status"] == "done" and status["done"] == status["total"] == 2 and status["kb"] == "demo"
    at.button(key="eval-refresh").click().run()
    runs = table(at, "任务")
    assert runs.to_dict("records")[0] | {"创建时间": None} == {"任务": run["id"], "知识库": "demo", "状态": "已完成", "进度": "2/2", "创建时间": None}
    at.selectbox(key="eval-run").set_value(None).run()
    assert not any(d.value.columns[0] == "指标" for d in at.dataframe), "no run selected, no report"
    at.selectbox(key="eval-run").set_value(run["id"]).run()
    metrics = table(at, "指标")
    values = dict(zip(metrics["指标"], metrics["值"]))
    assert values["问题数"] == "2" and values["出错数"] == "0" and "命中率@5" in values
    assert any("火星" in e.label for e in at.expander), "the worst questions, as for any report folder"
    assert {"report.json", "report.md", "report.html", "plots.png"} <= {p.name for p in (runs_dir(demo_kb) / run["id"]).iterdir()}
    assert not at.error and not at.exception


@pytest.mark.parametrize(("content", "expected"), [
    (jsonl(QUESTIONS[:1]) + b'{"id": "x", "question": \n', ["qa.jsonl 第 2 行不合法", "line 2"]),
    (jsonl(QUESTIONS) + b'{"id": "y"}\n', ["qa.jsonl 第 3 行不合法", "line 3", "question"]),
    (jsonl(QUESTIONS) + jsonl(QUESTIONS[:1]), ["qa.jsonl 第 3 行", "重复"]),
    ('{"id": "g", "question": "住宿标准？"}\n'.encode("gbk"), ["qa.jsonl 不是 UTF-8"]),
    (b"\n\n", ["没有问题"]),
])
def test_a_bad_dataset_names_its_line_and_starts_nothing(data_dir, content, expected):
    KnowledgeBase.open("demo", data_dir, create=True).close()
    at = eval_page()
    at.button(key=START).click().run()
    assert "请先上传问题集" in error_text(at)
    at.file_uploader(key="eval-dataset-0").set_value(("qa.jsonl", content, "application/jsonl"))
    at.button(key=START).click().run()
    message = error_text(at)
    assert all(e in message for e in expected), message
    assert "zhiwen-upload-" not in message, "the message names the uploaded file, not a temporary path"
    assert not at.success and not at.exception
    assert not runs_dir(data_dir).exists() or not any(runs_dir(data_dir).iterdir()), "no run folder"
    assert list_runs(data_dir) == []


# ---- with UI auth on ----------------------------------------------------------------------------------

def fake_run(settings, run_id: str, kb: str, **fields) -> None:
    folder = runs_dir(settings) / run_id
    folder.mkdir(parents=True)
    status = {"id": run_id, "kb": kb, "status": "running", "total": 3, "done": 1, "created_at": time.time(),
              "finished_at": None, "summary": None, "error": None} | fields
    (folder / "status.json").write_text(json.dumps(status, ensure_ascii=False), encoding="utf-8")





def test_with_auth_the_form_offers_writable_kbs_and_the_list_readable_runs(data_dir, monkeypatch):
    monkeypatch.setenv("ZHIWEN_UI_AUTH", "1")
    for name in ("demo", "secret"):
        KnowledgeBase.open(name, data_dir, create=True).close()
    fake_run(data_dir, "0" * 16, "demo", status="failed", done=0, error="RuntimeError: 模型超时")
    fake_run(data_dir, "1" * 16, "secret", pid=os.getpid())  # a live process: still running
    reader = create_key(data_dir, "reader", {"demo": "read"})[1]
    mixed = create_key(data_dir, "mixed", {"demo": "read", "secret": "write"})[1]

    at = login(reader)
    at.switch_page("views/evaluation.py").run()
    assert not at.exception
    assert not [s for s in at.selectbox if s.key == "eval-new-kb"] and not at.file_uploader and START not in [b.key for b in at.button]
    assert "新建评测需要知识库的写入权限" in " ".join(c.value for c in at.caption)
    assert list(table(at, "任务")["任务"]) == ["0" * 16], "the run on secret is not listed"
    assert "secret" not in rendered(at) and "1" * 16 not in rendered(at)
    at.selectbox(key="eval-run").set_value("0" * 16).run()
    assert "评测失败：RuntimeError: 模型超时" in error_text(at)
    at.sidebar.radio(key="lang").set_value("en").run()
    assert "The evaluation failed: RuntimeError: 模型超时" in error_text(at)
    assert {"Evaluation runs", "Open a report folder"} <= {s.value for s in at.subheader}

    at = login(mixed)
    at.switch_page("views/evaluation.py").run()
    assert at.selectbox(key="eval-new-kb").options == ["secret"], "demo is readable, not writable"
    assert sorted(table(at, "任务")["任务"]) == ["0" * 16, "1" * 16]
    at.selectbox(key="eval-run").set_value("1" * 16).run()
    assert "进度每秒自动更新" in " ".join(c.value for c in at.caption) and not at.error
