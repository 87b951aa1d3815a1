"""End to end in a real browser: `zhiwen ui` in a subprocess, driven by headless Chromium through Playwright.

A user creates a knowledge base, uploads a Chinese document through the file chooser, ingests it, then asks
a question on the chat page and reads the extractive answer with its source card. The knowledge-base
page's screenshot for the README (docs/screenshot-kb.png) is taken along the way.

Needs Debian's Chromium (/usr/bin/chromium, `make browser`) and the `playwright` package (dev extra); it
never downloads a browser. Skipped, with the reason, when either is missing.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
KB_NAME = "浏览器测试"
DOC_NAME = "出差规定.md"
DOC_TEXT = "# 差旅规定\n\n一线城市住宿标准为每晚不超过六百元。出差结束后十五个工作日内提交报销单。\n"
QUESTION = "一线城市住宿标准是多少？"
PLACEHOLDER = "输入问题，例如：一线城市住宿标准是多少？"
SERVER_START_S = 60
INGEST_MS = 90_000  # the first ingest loads the embedding model
ANSWER_MS = 90_000
UI_MS = 30_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _log(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace")[-4000:] if path.exists() else "(no log)"


@pytest.fixture
def ui_server(tmp_path):
    """`zhiwen ui` on a free port over an empty data dir; yields its base URL; the process group is always killed."""
    zhiwen = Path(sys.executable).parent / "zhiwen"
    port = _free_port()
    env = {**os.environ, "ZHIWEN_DATA_DIR": str(tmp_path / "data"), "PYTHONUNBUFFERED": "1"}
    log_path = tmp_path / "ui.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(zhiwen), "ui", "--host", "127.0.0.1", "--port", str(port)],
            env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"zhiwen ui exited with {proc.returncode} before it was healthy:\n{_log(log_path)}")
            try:
                with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as response:
                    if response.read().decode().strip() == "ok":
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"zhiwen ui not healthy after {SERVER_START_S}s:\n{_log(log_path)}")
            time.sleep(0.25)  # polling interval, not synchronisation
        yield base
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        if proc.returncode not in (0, -signal.SIGTERM, -signal.SIGKILL):
            print(f"zhiwen ui log:\n{_log(log_path)}")


@pytest.fixture
def browser_page(tmp_path):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: install Debian's chromium (`make browser`, or apt-get install chromium)")
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        pytest.skip("the playwright package is not installed (pip install -e '.[dev]')")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
            page = context.new_page()
            page.set_default_timeout(UI_MS)
            expect.set_options(timeout=UI_MS)
            yield page
        finally:
            browser.close()


def _wait_idle(page) -> None:
    """Streamlit shows its status widget ("Running…") while a script run is in progress."""
    from playwright.sync_api import expect

    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=UI_MS)


def _screenshot(page, path: Path) -> None:
    """The whole page. Streamlit scrolls inside its main block, so full_page alone stops at the viewport:
    grow the viewport to the content's height for the shot, then restore it."""
    viewport = page.viewport_size
    page.mouse.move(viewport["width"] - 20, viewport["height"] // 2)  # no hover highlight in the picture
    page.wait_for_function("() => document.getAnimations().every(a => a.playState !== 'running')")
    height = page.evaluate("() => Math.max(...[...document.querySelectorAll('*')].map(e => e.scrollHeight))")
    page.set_viewport_size({"width": viewport["width"], "height": max(viewport["height"], height)})
    page.screenshot(path=str(path), full_page=True, animations="disabled")
    page.set_viewport_size(viewport)


@pytest.mark.timeout(240)
def test_browser_create_kb_upload_ingest_and_ask(browser_page, ui_server, tmp_path):
    from playwright.sync_api import expect

    page = browser_page
    document = tmp_path / "upload" / DOC_NAME
    document.parent.mkdir()
    document.write_text(DOC_TEXT, encoding="utf-8")
    DOCS.mkdir(exist_ok=True)

    # Open the app (the chat page is its default page, at "/"), then the knowledge-base page from the sidebar.
    page.goto(ui_server)
    expect(page.get_by_role("heading", name="知问 · 知识库问答")).to_be_visible()
    expect(page.get_by_text("还没有知识库")).to_be_visible()
    nav = page.get_by_test_id("stSidebarNavLink")
    nav.filter(has_text="知识库管理").click()
    expect(page).to_have_url(f"{ui_server}/knowledge_bases")
    expect(page.get_by_role("heading", name="知识库管理")).to_be_visible()
    page.get_by_label("名称").fill(KB_NAME)
    page.get_by_role("button", name="创建").click()
    expect(page.get_by_text(f"已创建知识库 {KB_NAME}")).to_be_visible()
    expect(page.get_by_text("这个知识库还没有文档。")).to_be_visible()

    # Upload one Chinese document through the file chooser, then ingest it.
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(document)
    expect(page.get_by_test_id("stFileChip").filter(has_text=DOC_NAME)).to_be_visible()
    ingest = page.get_by_role("button", name="导入")
    expect(ingest).to_be_enabled()
    ingest.click()
    frames = page.get_by_test_id("stDataFrame")
    expect(frames).to_have_count(2, timeout=INGEST_MS)  # the ingest results and the document list
    expect(page.get_by_text("这个知识库还没有文档。")).to_have_count(0)
    expect(frames.first).to_contain_text("已索引")
    expect(frames.last).to_contain_text(DOC_NAME)
    _wait_idle(page)
    _screenshot(page, DOCS / "screenshot-kb.png")

    # Chat page, same browser session, through the sidebar navigation.
    nav.filter(has_text="问答").click()
    expect(page).to_have_url(re.compile(rf"^{re.escape(ui_server)}/?$"))
    expect(page.get_by_role("heading", name="知问 · 知识库问答")).to_be_visible()
    expect(page.get_by_test_id("stSidebar").get_by_role("combobox", name="知识库")).to_have_value(KB_NAME)  # the only KB
    chat_input = page.get_by_placeholder(PLACEHOLDER)
    chat_input.fill(QUESTION)
    chat_input.press("Enter")

    assistant = page.get_by_test_id("stChatMessage").filter(has_text="抽取式")
    expect(assistant).to_have_count(1, timeout=ANSWER_MS)
    # The feedback buttons are drawn only once the answer is stored and the page re-ran: the final state.
    expect(assistant.get_by_role("button", name="👍")).to_be_visible(timeout=ANSWER_MS)
    _wait_idle(page)
    expect(page.get_by_test_id("stChatMessage").first).to_contain_text(QUESTION)
    expect(assistant).to_contain_text("六百元")
    expect(assistant).to_contain_text("[1]")
    # One bordered source card per citation: "[1] 出差规定.md", the cited sentence marked inside its passage.
    header = assistant.locator("strong", has_text=f"[1] {DOC_NAME}")
    expect(header).to_have_count(1)
    card = header.locator("xpath=ancestor::div[@data-testid='stVerticalBlock'][1]")
    expect(card.locator(".zw-quote mark")).to_contain_text("六百元")
    expect(card.locator(".zw-quote")).to_contain_text("十五个工作日内提交报销单")
    expect(card.locator(".zw-quote mark")).not_to_contain_text("十五个工作日")
    # docs/screenshot-chat.png comes from tests/test_browser_chat.py (a corpus with a PDF page to show).
