"""The chat page through streamlit.testing's AppTest: the real page over real knowledge bases, the real
conversation store, and for the LLM cases a real llama.cpp server or (where that model cannot be made to
misbehave on cue) a scripted OpenAI-compatible server over real HTTP."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from ingest.kb import KnowledgeBase
from ingest.pipeline import ingest_paths
from llm.conversations import LOCAL_USER, ConversationStore
from llm.feedback import load_feedback
from tests.conftest import write
from tests.scripted_llm import ScriptedLLM
from tests.ui_helpers import PAGES, TIMEOUT, main_app, rendered


def chat(query_params: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(PAGES / "chat.py"), default_timeout=TIMEOUT)
    for key, value in (query_params or {}).items():
        at.query_params[key] = value
    return at.run()


def assistants(at: AppTest) -> list:
    return [m for m in at.chat_message if m.name == "assistant"]


def text_of(message) -> str:
    return "\n".join(md.value for md in message.markdown)


def opened(at: AppTest) -> str:
    """The conversation id in the page's URL."""
    value = at.query_params["c"]
    return value[0] if isinstance(value, list) else value


def store(settings) -> ConversationStore:
    return ConversationStore(settings, LOCAL_USER)


def test_markers_link_to_their_cards_which_mark_only_the_cited_sentence(demo_kb):
    at = chat()
    at.chat_input[0].set_value("一线城市住宿标准是多少？").run()
    assert not at.exception
    [answer] = assistants(at)
    markdown = [md.value for md in answer.markdown]
    assert markdown[0] == "一线城市住宿标准为普通员工每晚不超过600元、经理及以上每晚不超过800元。[\\[1\\]](#zw-src-0-1)"
    [title] = [m for m in markdown if "zw-card-title" in m]
    assert "id='zw-src-0-1'" in title and "[1] 差旅报销制度.md" in title
    [quote] = [m for m in markdown if "zw-quote" in m]
    marked = quote.split("<mark>")[1].split("</mark>")[0]
    assert marked == "一线城市住宿标准为普通员工每晚不超过600元、经理及以上每晚不超过800元。", "the sentence, not the passage"
    assert "二线城市" in quote, "the passage around it is shown, unmarked"
    assert at.toggle(key="zw-orig-0-1-1").label == "查看原文上下文"
    at.toggle(key="zw-orig-0-1-1").set_value(True).run()
    assert any("zw-passage" in md.value and "<mark>" in md.value for md in assistants(at)[0].markdown)
    assert assistants(at)[0].get("download_button"), "the original file can be downloaded"


def test_a_conversation_survives_a_reload_and_can_be_renamed_and_deleted(demo_kb):
    at = chat()
    at.chat_input[0].set_value("网关默认用哪个端口处理业务流量？").run()
    at.chat_input[0].set_value("那管理控制台呢？").run()
    conversation_id = opened(at)
    assert "9090" in text_of(assistants(at)[-1])
    # A reload: a new browser session whose URL still names the conversation.
    again = chat({"c": conversation_id})
    assert [m.markdown[0].value for m in again.chat_message if m.name == "user"] == ["网关默认用哪个端口处理业务流量？", "那管理控制台呢？"]
    assert "9090" in text_of(assistants(again)[-1])
    # The sidebar lists it under its first question; rename it there.
    assert again.sidebar.button(key=f"zw-open-{conversation_id}").label == "网关默认用哪个端口处理业务流量？"
    again.sidebar.text_input(key=f"zw-title-{conversation_id}").set_value("网关端口")
    again.sidebar.button(key=f"zw-rename-{conversation_id}").click().run()
    assert again.sidebar.button(key=f"zw-open-{conversation_id}").label == "网关端口"
    assert store(demo_kb).get(conversation_id).title == "网关端口"
    # A new conversation, then back to the old one from the list.
    again.sidebar.button(key="zw-new-chat").click().run()
    assert not again.chat_message and "c" not in again.query_params
    again.sidebar.button(key=f"zw-open-{conversation_id}").click().run()
    assert len(assistants(again)) == 2
    again.sidebar.button(key=f"zw-delete-{conversation_id}").click().run()
    assert store(demo_kb).get(conversation_id) is None and not again.chat_message
    assert not any(b.key == f"zw-open-{conversation_id}" for b in again.sidebar.button)


def test_the_knowledge_base_and_settings_survive_a_new_session_and_switching_starts_a_new_conversation(demo_kb, tmp_path):
    ingest_paths([write(tmp_path / "manual" / "手册.md", "# 手册\n\n生产设备每年三月由维修部统一检修一次。\n")], "手册", demo_kb)
    at = chat()
    at.sidebar.selectbox(key="kb").set_value("手册").run()
    at.sidebar.slider(key="top_k").set_value(8).run()
    fresh = chat()  # another browser session, no conversation in the URL
    assert fresh.sidebar.selectbox(key="kb").value == "手册" and fresh.sidebar.slider(key="top_k").value == 8
    assert not fresh.warning, "no widget-state warning from the restored values"
    fresh.chat_input[0].set_value("设备多久检修一次？").run()
    assert "每年三月" in text_of(assistants(fresh)[0])
    first = opened(fresh)
    fresh.sidebar.selectbox(key="kb").set_value("demo").run()
    assert not fresh.chat_message and "已切换到知识库“demo”" in fresh.info[0].value
    assert store(demo_kb).get(first).kb == "手册", "the old conversation is kept"


def test_regenerate_replaces_the_last_answer_with_a_fresh_one(demo_kb):
    chat().chat_input[0].set_value("一线城市住宿标准是多少？").run()  # another conversation: the answer is now cached
    at = chat()
    at.chat_input[0].set_value("一线城市住宿标准是多少？").run()
    conversation_id = opened(at)
    assert store(demo_kb).get(conversation_id).turns[0].answer.flags.cached
    at.button(key="zw-regen-0").click().run()
    turns = store(demo_kb).get(conversation_id).turns
    assert len(turns) == 1 and not turns[0].answer.flags.cached, "replaced by a new answer, not appended"
    assert len(assistants(at)) == 1 and "600元" in text_of(assistants(at)[0])


def test_feedback_is_saved_with_an_optional_comment(demo_kb):
    at = chat()
    at.chat_input[0].set_value("一线城市住宿标准是多少？").run()
    at.button(key="fb-down-0").click().run()
    assert load_feedback(demo_kb)[-1]["rating"] == "down" and load_feedback(demo_kb)[-1]["comment"] == ""
    at.text_input(key="fb-comment-0").set_value("应该同时说明经理的标准")
    at.button(key="FormSubmitter:fb-form-0-提交说明").click().run()
    record = load_feedback(demo_kb)[-1]
    assert record["rating"] == "down" and record["comment"] == "应该同时说明经理的标准" and "600元" in record["answer"]
    [conversation] = store(demo_kb).list()
    assert store(demo_kb).get(conversation.id).turns[0].comment == "应该同时说明经理的标准"
    assert "应该同时说明经理的标准" in rendered(at)


def test_suggested_questions_on_an_empty_chat_can_be_asked_with_a_click(demo_kb):
    at = chat()
    suggestion = at.button(key="zw-suggest-0")
    assert suggestion.label.startswith("「") and suggestion.label.endswith("？")
    suggestion.click().run()
    assert [m.markdown[0].value for m in at.chat_message if m.name == "user"] == [suggestion.label]
    assert "抱歉" not in text_of(assistants(at)[0]) and "[1]" in text_of(assistants(at)[0])
    assert not any(b.key and b.key.startswith("zw-suggest") for b in at.button), "suggestions are for an empty chat"


def test_no_knowledge_base_offers_to_create_one(data_dir):
    at = main_app()
    assert "知识库管理" in at.info[0].value
    at.button(key="zw-go-go_create_kb").click().run()
    assert any(h.value == "知识库管理" for h in at.title), "the button switched to the knowledge-base page"


def test_an_empty_knowledge_base_says_so_instead_of_refusing(data_dir):
    KnowledgeBase.open("空库", data_dir, create=True).close()
    at = chat()
    assert "这个知识库还没有文档" in at.info[0].value
    assert not at.chat_input and at.button(key="zw-go-go_upload").label == "去上传文档"


def test_an_answer_cut_at_the_token_limit_says_so(demo_kb, llm_server, monkeypatch):
    monkeypatch.setenv("ZHIWEN_LLM_BASE_URL", llm_server.base_url)
    monkeypatch.setenv("ZHIWEN_LLM_MAX_TOKENS", "8")
    at = chat()
    at.chat_input[0].set_value("请详细介绍知问网关的全部功能。").run()
    assert any("长度上限（8 个 token）" in w.value for w in assistants(at)[0].warning)
    [conversation] = store(demo_kb).list()
    assert store(demo_kb).get(conversation.id).turns[0].answer.flags.truncated


@pytest.fixture
def uncited_llm():
    llm = ScriptedLLM("一线城市每晚不超过600元。")  # an answer with no [n]: what small models often write
    yield llm
    llm.close()


def test_an_llm_answer_without_citations_still_shows_its_sources_marked_not_cited(demo_kb, uncited_llm, monkeypatch):
    monkeypatch.setenv("ZHIWEN_LLM_BASE_URL", uncited_llm.base_url)
    at = chat()
    at.chat_input[0].set_value("一线城市住宿标准是多少？").run()
    [answer] = assistants(at)
    assert "没有引用资料" in answer.info[0].value
    titles = [md.value for md in answer.markdown if "zw-card-title" in md.value]
    assert titles and all("未被引用" in m and "id=" not in m for m in titles)
    assert "差旅报销制度.md" in titles[0] and "](#" not in answer.markdown[0].value
