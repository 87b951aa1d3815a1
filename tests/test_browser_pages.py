"""The knowledge-base, evaluation and moderation pages in a real browser (`zhiwen ui` in a subprocess, headless
Chromium through Playwright, as in tests/test_browser.py):

- a running evaluation's progress moves, and a finished run stops reading 进行中, with no click;
- the pages speak the chosen language, the file uploader's own words ("Upload", "200MB per file") included;
- a narrow window (420 px): the sidebar closes after navigating, the knowledge-base picker stays reachable,
  tables fit and scroll; ingesting shows a bar whose label agrees with it and no "no documents" flash.

Skipped, with the reason, without Debian's Chromium or the playwright package.
"""

from __future__ import annotations

import json
import os
import re
import time

import pytest

from tests.test_browser import UI_MS, _wait_idle, browser_page, ui_server  # noqa: F401  (fixtures)

RUN = "d" * 16
LIVE_MS = 15_000  # the page re-reads a running run every second
CJK = re.compile(r"[\u3400-\u9fff]")
MAIN_TEXT = """() => {
    // What a reader sees in the main area: icon ligatures, text areas (a word list is data) and toasts aside.
    const hide = document.createElement('style');
    hide.textContent = '[data-testid="stIconMaterial"], textarea, [data-testid="stToast"] {display: none !important}';
    document.head.appendChild(hide);
    const text = document.querySelector('[data-testid="stMain"]').innerText;
    hide.remove();
    return text;
}"""


def write_status(data, **fields) -> None:
    from core.atomic import atomic_write_bytes
    from eval.jobs import runs_dir

    folder = runs_dir(data) / RUN
    folder.mkdir(parents=True, exist_ok=True)
    status = {"id": RUN, "kb": "handbook", "status": "running", "total": 2, "done": 0, "created_at": time.time(),
              "finished_at": None, "summary": None, "error": None, "pid": os.getpid()} | fields
    atomic_write_bytes(folder / "status.json", json.dumps(status).encode())  # as eval.jobs writes it


def handbook(tmp_path):
    """Knowledge base "handbook" (one English document) in the data dir the server reads."""
    from core.settings import load_settings
    from ingest.pipeline import ingest_paths

    data = load_settings(data_dir=tmp_path / "data")
    doc = tmp_path / "handbook.md"
    doc.write_text("# Travel\n\nHotels in tier-1 cities cost at most 600 yuan a night.\n\n"
                   "# Expenses\n\nClaims are filed within fifteen working days.\n", encoding="utf-8")
    ingest_paths([doc], "handbook", data)
    return data


def uploader_words(page) -> list[str]:
    """What the uploader shows in its button and instructions: CSS ::after content where ours replaces
    Streamlit's English, the element's own text otherwise."""
    return page.evaluate("""() => [...document.querySelectorAll(
        '[data-testid="stFileUploaderDropzone"] button [data-testid="stMarkdownContainer"], [data-testid="stFileUploaderDropzoneInstructions"] > div')]
        .map(e => { const after = getComputedStyle(e, '::after').content;
                    return after && after !== 'none' ? JSON.parse(after) : e.innerText; })""")


@pytest.mark.timeout(300)
def test_evaluation_progress_is_live_and_pages_speak_one_language(browser_page, ui_server, tmp_path):  # noqa: F811
    from playwright.sync_api import expect

    from eval.dataset import QAItem, write_dataset
    from eval.jobs import runs_dir
    from eval.report import write_report
    from eval.runner import run_eval

    page = browser_page
    data = handbook(tmp_path)
    write_status(data, done=0)

    page.goto(f"{ui_server}/evaluation")
    runs = page.get_by_test_id("stDataFrame").first
    expect(runs).to_contain_text("进行中")
    page.get_by_test_id("stSelectbox").filter(has_text="查看任务").click()
    page.get_by_role("option", name=re.compile(RUN)).click()
    progress = page.get_by_test_id("stProgress")
    expect(progress).to_contain_text("已完成 0/2 个问题")

    # The run advances and finishes in "another process" (status.json, as eval.jobs writes it): the page
    # follows on its own. Nothing below clicks.
    write_status(data, done=1)
    expect(progress).to_contain_text("已完成 1/2 个问题", timeout=LIVE_MS)
    expect(runs).to_contain_text("1/2", timeout=LIVE_MS)
    folder = runs_dir(data) / RUN
    write_dataset([QAItem(id="h", question="What do hotels in tier-1 cities cost?", answers=["600 yuan"], relevant_sources=["handbook.md"]),
                   QAItem(id="c", question="When are claims filed?", answers=["within fifteen working days"])], folder / "dataset.jsonl")
    records = run_eval(folder / "dataset.jsonl", "handbook", folder, data)
    write_report(folder, records, {"dataset": "dataset.jsonl", "kb": "handbook"})
    write_status(data, status="done", done=2, finished_at=time.time())
    expect(runs).to_contain_text("已完成", timeout=LIVE_MS)
    expect(runs).not_to_contain_text("进行中")
    expect(page.get_by_test_id("stProgress")).to_have_count(0)
    expect(page.get_by_text("完整报告")).to_be_visible()
    expect(page.get_by_role("button", name="report.html")).to_be_visible()
    _wait_idle(page)

    # Chinese: no English label on the pages, the uploader's included (its words replaced by ours).
    for path, last in (("knowledge_bases", "删除整个知识库"), ("evaluation", "评测结果 B"), ("moderation", "审核日志")):
        page.goto(f"{ui_server}/{path}")
        expect(page.get_by_test_id("stMain").get_by_text(last).first).to_be_visible()  # the page's last part
        if path != "moderation":
            expect(page.get_by_test_id("stFileUploader")).to_be_visible()
        _wait_idle(page)
        text = page.evaluate(MAIN_TEXT)
        for english in ("Upload", "per file", "Browse files", "None", "running", "Knowledge base", "metric"):
            assert english not in text, f"{path}: {english!r} on the Chinese page:\n{text}"
        if path != "moderation":
            words = uploader_words(page)
            assert words[:2] == ["选择文件", "每个文件不超过 50 MB" + (" · JSONL · JSON · TXT" if path == "evaluation" else "")], words

    # English: the language switch applies to every page; no Chinese left but the knowledge base's own data.
    page.get_by_test_id("stSidebar").get_by_text("English").click()
    _wait_idle(page)
    for path, heading, last in (("knowledge_bases", "Knowledge bases", "Delete the whole knowledge base"),
                                ("evaluation", "Evaluation", "Run B"), ("moderation", "Moderation", "Audit log")):
        page.get_by_test_id("stSidebarNavLink").filter(has_text=heading).click()
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        expect(page.get_by_test_id("stMain").get_by_text(last).first).to_be_visible()
        if path != "moderation":
            expect(page.get_by_test_id("stFileUploader")).to_be_visible()
        _wait_idle(page)
        text = page.evaluate(MAIN_TEXT)
        assert not CJK.search(text), f"{path}: Chinese on the English page:\n{text}"
        if path != "moderation":
            assert uploader_words(page)[0] == "Browse files" and uploader_words(page)[1].startswith("Up to 50 MB per file")

    log = (tmp_path / "ui.log").read_text(encoding="utf-8", errors="replace")  # what `zhiwen ui` printed meanwhile
    assert "deprecat" not in log.lower() and "Traceback" not in log, log


@pytest.mark.timeout(300)
def test_a_narrow_window_keeps_everything_reachable_and_ingest_does_not_flash(browser_page, ui_server, tmp_path):  # noqa: F811
    from playwright.sync_api import expect

    page = browser_page
    data = handbook(tmp_path)
    from ingest.kb import KnowledgeBase

    KnowledgeBase.open("empty", data, create=True).close()
    page.set_viewport_size({"width": 420, "height": 860})
    page.goto(ui_server)
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar).to_have_attribute("data-collapsed", "true")  # Streamlit starts it closed on a narrow window
    page.get_by_test_id("stExpandSidebarButton").click()
    expect(sidebar).to_have_attribute("data-collapsed", "false")
    page.get_by_test_id("stSidebarNavLink").filter(has_text="知识库管理").click()
    expect(page.get_by_role("heading", name="知识库管理")).to_be_visible()
    expect(sidebar).to_have_attribute("data-collapsed", "true")  # closed again after navigating
    picker = page.get_by_test_id("stMain").get_by_role("combobox", name="知识库")
    expect(picker).to_be_visible()
    expect(picker).to_have_value("empty")
    expect(page.get_by_text("这个知识库还没有文档。")).to_be_visible()
    _wait_idle(page)

    # Ingest one file while sampling the page every frame: the label's "done/total" must agree with the
    # bar, and the old "no documents yet" must not show once the bar has appeared.
    document = tmp_path / "upload" / "Notice.md"
    document.parent.mkdir()
    document.write_text("# Notice\n\nThe office is closed on Friday afternoon.\n", encoding="utf-8")
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(document)
    expect(page.get_by_test_id("stFileChip").filter(has_text="Notice.md")).to_be_visible()
    page.evaluate("""() => {
        window.zwSamples = [];
        const tick = () => {
            const bar = document.querySelector('[data-testid="stProgress"]');
            const meter = bar && bar.querySelector('[role="progressbar"]');
            window.zwSamples.push({empty: document.body.innerText.includes('这个知识库还没有文档'),
                                   bar: !!bar, label: bar ? bar.innerText : '', value: meter ? meter.getAttribute('aria-valuenow') : null});
            if (!window.zwStop) requestAnimationFrame(tick);
        };
        requestAnimationFrame(tick);
    }""")
    page.get_by_role("button", name="导入").click()
    frames = page.get_by_test_id("stDataFrame")
    expect(frames).to_have_count(2, timeout=90_000)
    _wait_idle(page)
    samples = page.evaluate("() => { window.zwStop = true; return window.zwSamples; }")
    with_bar = [i for i, s in enumerate(samples) if s["bar"]]
    assert with_bar, "the bar was never seen"
    runs = [(s["empty"], s["bar"], s["label"]) for s in samples]
    compressed = [r for i, r in enumerate(runs) if i == 0 or r != runs[i - 1]]
    assert not any(s["empty"] for s in samples[with_bar[0]:]), f"“no documents yet” showed while or after ingesting: {compressed}"
    for s in samples:
        if s["bar"] and (m := re.search(r"(\d+)/(\d+)", s["label"])) and s["value"] is not None:
            assert abs(float(s["value"]) - 100 * int(m.group(1)) / int(m.group(2))) < 1, s

    # Tables fit the window (they scroll inside themselves rather than cut columns).
    for box in (frames.nth(i).bounding_box() for i in range(2)):
        assert box["x"] >= 0 and box["x"] + box["width"] <= 420, box
