"""The chat page as people use it, in a real browser: `zhiwen ui` in a subprocess over the sample corpus,
headless Chromium through Playwright (fixtures and helpers from tests/test_browser.py).

One session, in order: a PDF-cited answer whose card opens the cited page; a change of topic and a
follow-up; a [n] marker that scrolls to its card; a reload that keeps the conversation; then an LLM
answer (a scripted server that streams slowly) stopped half-way, kept as stopped and the model's stream
really closed. The README's chat screenshots (docs/screenshot-chat.png, docs/screenshot-conversations.png)
are taken along the way.
"""

from __future__ import annotations

import re
import shutil

import pytest

from core.settings import load_settings
from ingest.pipeline import ingest_paths
from llm.conversations import LOCAL_USER, ConversationStore
from tests.conftest import SAMPLES
from tests.scripted_llm import ScriptedLLM
from tests.test_browser import (  # noqa: F401
    ANSWER_MS,
    DOCS,
    PLACEHOLDER,
    _screenshot,
    _wait_idle,
    browser_page,
    ui_server,
)

SLOW_REPLY = "知问网关是星河科技自主研发的高性能API网关，支持多种协议、插件扩展和流量治理。" * 12
CARD_TOP_AFTER_JUMP_PX = 160  # a card scrolled to sits just under the top (scroll-margin 4rem)


def _ask(page, question: str, answered: int) -> None:
    """Ask, then wait for the final state: the page re-ran with the stored turn (its 👍 drawn)."""
    from playwright.sync_api import expect

    chat_input = page.get_by_placeholder(PLACEHOLDER)
    chat_input.fill(question)
    chat_input.press("Enter")
    expect(page.get_by_role("button", name="👍")).to_have_count(answered, timeout=ANSWER_MS)
    _wait_idle(page)


def _assistant(page, i: int):
    return page.get_by_test_id("stChatMessage").nth(2 * i + 1)


@pytest.fixture
def slow_llm():
    llm = ScriptedLLM(SLOW_REPLY, token_delay_s=0.05)  # about 25 s for the whole reply
    yield llm
    llm.close()


@pytest.mark.timeout(420)
def test_browser_chat_sources_follow_ups_reload_and_stop(browser_page, ui_server, slow_llm, tmp_path):  # noqa: F811
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect

    settings = load_settings(data_dir=tmp_path / "data")  # the data dir the ui_server fixture serves
    shutil.copytree(SAMPLES, tmp_path / "corpus")
    ingest_paths([tmp_path / "corpus"], "demo", settings)
    page = browser_page
    DOCS.mkdir(exist_ok=True)

    page.goto(ui_server)
    expect(page.get_by_role("heading", name="知问 · 知识库问答")).to_be_visible()
    expect(page.get_by_role("button").filter(has_text="「星河科技差旅报销制度」中的").first).to_be_visible()  # suggestions

    # A PDF-cited answer: the card marks the sentence and opens page 2 with the quote boxed.
    _ask(page, "客户投诉多久内要给出处理方案？", 1)
    first = _assistant(page, 0)
    expect(first).to_contain_text("48小时内给出处理方案")
    card = first.locator("#zw-src-0-1").locator("xpath=ancestor::div[@data-testid='stVerticalBlock'][1]")
    expect(card).to_contain_text("客户服务规范.pdf")
    expect(card.locator(".zw-quote mark")).to_contain_text("48小时内给出处理方案")
    card.get_by_text("查看原文（第 2 页）").click()
    expect(card.get_by_test_id("stImage")).to_be_visible()
    expect(card).to_contain_text("黄色框为引用的文字")
    _wait_idle(page)
    _screenshot(page, DOCS / "screenshot-chat.png")
    card.get_by_text("查看原文（第 2 页）").click()
    expect(card.get_by_test_id("stImage")).to_have_count(0)
    _wait_idle(page)

    # A new topic is answered from its own document; a follow-up leans on the question before it.
    _ask(page, "资安事件多久内要通报？", 2)
    expect(_assistant(page, 1).locator("#zw-src-1-1")).to_contain_text("資訊安全規範.txt")
    expect(_assistant(page, 1)).to_contain_text("1小时内通报")
    _ask(page, "网关默认用哪个端口处理业务流量？", 3)
    expect(_assistant(page, 2)).to_contain_text("8080")
    _ask(page, "那管理控制台呢？", 4)
    expect(_assistant(page, 3).locator("p").first).to_contain_text("9090")

    # [1] in the first answer is a link that scrolls its card to the top of the view. (The page sits at the
    # last answer; Playwright first scrolls the marker into the middle of the view, the card below it.)
    marker = first.get_by_role("link", name="[1]")
    title = page.locator("#zw-src-0-1")
    at_top = (f"() => {{ const r = document.getElementById('zw-src-0-1').getBoundingClientRect();"
              f" return r.top >= 0 && r.top < {CARD_TOP_AFTER_JUMP_PX}; }}")
    _wait_idle(page)
    page.wait_for_function("() => document.getAnimations().every(a => a.playState !== 'running')")
    # Streamlit's chat keeps itself scrolled to the bottom while late content settles, and that can undo a
    # jump made in the same moment: a second click (the same user action) must then land on the card.
    for attempt in range(2):
        marker.click()
        expect(page).to_have_url(re.compile(r"#zw-src-0-1$"))
        try:
            page.wait_for_function(at_top, timeout=10_000)
            break
        except PlaywrightTimeout:
            if attempt:
                raise
    expect(title).to_have_css("background-color", "rgb(255, 243, 176)")  # :target highlight

    # A reload keeps the conversation (its id is in the URL) and lists it in the sidebar.
    page.reload()
    expect(page.get_by_role("button", name="👍")).to_have_count(4, timeout=ANSWER_MS)
    expect(_assistant(page, 3)).to_contain_text("9090")
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_role("button", name="客户投诉多久内要给出处理方案？")).to_be_visible()

    # With an LLM: stop half-way; the part shown is kept, marked, stored, and the model's stream closed.
    sidebar.get_by_text("检索与模型设置").click()
    url = sidebar.get_by_label("大模型地址（留空 = 抽取式回答）")
    url.fill(slow_llm.base_url)
    url.press("Enter")
    _wait_idle(page)
    sidebar.get_by_role("button", name="新对话").click()
    expect(page.get_by_test_id("stChatMessage")).to_have_count(0)
    _wait_idle(page)
    chat_input = page.get_by_placeholder(PLACEHOLDER)
    chat_input.fill("请介绍知问网关。")
    chat_input.press("Enter")
    answer = page.get_by_test_id("stChatMessage").nth(1)
    expect(answer).to_contain_text("知问网关是星河科技", timeout=ANSWER_MS)
    page.get_by_role("button", name="停止生成").click()
    expect(page.get_by_text("已停止生成")).to_be_visible()
    assert slow_llm.hung_up.wait(timeout=30), "the stream to the model was closed"
    assert slow_llm.tokens_sent < len(SLOW_REPLY)
    _wait_idle(page)
    expect(page.get_by_role("button", name="停止生成")).to_have_count(0)
    [stopped] = [s for s in ConversationStore(settings, LOCAL_USER).list() if s.title == "请介绍知问网关。"]
    turn = ConversationStore(settings, LOCAL_USER).get(stopped.id).turns[0]
    assert turn.stopped and turn.answer.text.startswith("知问网关是星河科技") and len(turn.answer.text) < len(SLOW_REPLY)
    page.reload()
    expect(page.get_by_text("已停止生成")).to_be_visible(timeout=ANSWER_MS)
    expect(sidebar.get_by_role("button", name="请介绍知问网关。")).to_be_visible()
    expect(sidebar.get_by_role("button", name="客户投诉多久内要给出处理方案？")).to_be_visible()
    _wait_idle(page)
    _screenshot(page, DOCS / "screenshot-conversations.png")
