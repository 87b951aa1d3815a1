"""Follow-up or new topic (issue 20): only a question that depends on the conversation is searched with
the earlier question(s); a new topic is searched on its own words. Real jieba, real knowledge base built
from samples/corpus, no LLM (the extractive path every surface uses without one). The LLM path is in
tests/test_llm.py, the `zhiwen chat` surface in tests/test_cli.py."""

from __future__ import annotations

import shutil

import pytest

from core.settings import load_settings
from ingest.pipeline import ingest_paths
from llm.answer import ask
from llm.followup import (
    content_words,
    depends_on_history,
    keeps_content_words,
    standalone_query,
)
from tests.conftest import SAMPLES


@pytest.mark.parametrize(
    "question, dependent",
    [
        # New topics: searched alone.
        ("资安事件多久内要通报？", False),
        ("資安事件多久內要通報？", False),
        ("出差结束后多久内要提交报销？", False),
        ("技术支持热线是多少？", False),
        ("一线城市住宿标准是多少呢？", False),  # ends in 呢 but says what it is about
        ("其中gRPC从哪个版本开始支持？", False),  # 其中 is one word: no reference
        ("What is the P99 latency of the gateway?", False),
        ("How long do I have to report a security incident?", False),
        # References and ellipsis: need the conversation.
        ("那管理控制台呢？", True),
        ("它支持哪些协议？", True),
        ("它的延迟是多少?", True),
        ("该制度什么时候生效？", True),
        ("上述规定适用于实习生吗？", True),
        ("经理呢？", True),
        ("二线城市呢？", True),
        ("What about the admin console?", True),
        ("What is its latency?", True),
        ("And the password policy?", True),
        # No content words of their own.
        ("为什么？", True),
        ("具体呢？", True),
        ("还有吗？", True),
        ("還有嗎？", True),
        ("Why?", True),
    ],
)
def test_depends_on_history(question, dependent):
    assert depends_on_history(question) is dependent


def test_standalone_query_combines_only_follow_ups():
    history = [("客户投诉多久内要给出处理方案？", "客户投诉须在24小时内响应，48小时内给出处理方案[1]")]
    assert standalone_query("资安事件多久内要通报？", history) == "资安事件多久内要通报？"
    assert standalone_query("那管理控制台呢？", []) == "那管理控制台呢？"
    port = [("网关默认用哪个端口处理业务流量？", "网关默认使用8080端口处理业务流量，管理控制台默认使用9090端口。[1]")]
    assert standalone_query("那管理控制台呢？", port) == "网关默认用哪个端口处理业务流量？ 那管理控制台呢？"


def test_a_chain_of_follow_ups_reaches_back_to_its_topic_and_no_further():
    history = [
        ("一线城市住宿标准是多少？", "每晚不超过600元[1]"),
        ("网关默认用哪个端口处理业务流量？", "8080端口[1]"),
        ("那管理控制台呢？", "9090端口[1]"),
    ]
    assert standalone_query("为什么？", history) == "网关默认用哪个端口处理业务流量？ 那管理控制台呢？ 为什么？"


def test_content_words_are_folded_jieba_words_without_stop_or_reference_words():
    assert content_words("資安事件多久內要通報？") == content_words("资安事件多久内要通报？")
    assert "资安" in content_words("资安事件多久内要通报？") and "多久" not in content_words("资安事件多久内要通报？")
    assert content_words("那管理控制台呢？") == ["管理", "控制台"]


@pytest.mark.parametrize(
    "rewrite, kept",
    [
        ("知问网关的管理控制台默认使用哪个端口？", True),
        ("知問網關的管理控制台預設使用哪個端口？", True),  # Traditional rewrite, folded before comparing
        ("网关默认用哪个端口处理业务流量？", False),  # drifted back to the previous question
        ("客户投诉多久内要给出处理方案？", False),
    ],
)
def test_a_rewrite_must_keep_the_new_questions_content_words(rewrite, kept):
    assert keeps_content_words(rewrite, "那管理控制台呢？") is kept


@pytest.fixture(scope="module")
def kb(tmp_path_factory):
    root = tmp_path_factory.mktemp("followup")
    shutil.copytree(SAMPLES, root / "corpus")
    s = load_settings(data_dir=root / "data").model_copy(update={"answer_cache_size": 0})
    ingest_paths([root / "corpus"], "kb", s)
    return s


def _converse(settings, first: str, second: str):
    """Two turns the way the CLI and UI hold a conversation: the first answer goes into the history."""
    previous = ask(first, "kb", settings)
    assert not previous.refused, first
    return ask(second, "kb", settings, history=[(first, previous.text)])


def _sources(answer) -> set[str]:
    return {c.source.rsplit("/", 1)[-1] for c in answer.citations}


@pytest.mark.parametrize(
    "first, second, source, expected, old_topic",
    [
        ("客户投诉多久内要给出处理方案？", "资安事件多久内要通报？", "資訊安全規範.txt", "1小时内通报", "48小时"),
        ("一线城市住宿标准是多少？", "出差结束后多久内要提交报销？", "差旅报销制度.md", "15个工作日", "600元"),
        ("如何重置API Key？", "技术支持热线是多少？", "知问网关产品说明.html", "400-800-1234", "密钥管理"),
        ("How long do I have to report a security incident?", "What is the P99 latency of the gateway?",
         "知问网关产品说明.html", "5毫秒", "电子邮件"),
    ],
)
def test_a_new_topic_gets_its_own_answer(kb, first, second, source, expected, old_topic):
    answer = _converse(kb, first, second)
    assert not answer.refused
    assert _sources(answer) == {source}, answer.text
    assert expected in answer.text and old_topic not in answer.text, answer.text
    assert answer.flags.standalone_question is None, "a new topic is searched alone"


def test_a_real_follow_up_still_uses_the_conversation(kb):
    answer = _converse(kb, "网关默认用哪个端口处理业务流量？", "那管理控制台呢？")
    assert answer.flags.standalone_question == "网关默认用哪个端口处理业务流量？ 那管理控制台呢？"
    assert "9090" in answer.text and _sources(answer) == {"知问网关产品说明.html"}, answer.text


@pytest.mark.parametrize(
    "first, second, source, old_source",
    [
        ("客户投诉多久内要给出处理方案？", "那资安事件呢？", "資訊安全規範.txt", "客户服务规范.pdf"),
        ("如何重置API Key？", "那客服热线呢？", "客户服务规范.pdf", "常见问题.csv"),
    ],
)
def test_a_new_subject_in_follow_up_form_is_found_by_its_own_words(kb, first, second, source, old_source):
    """"那资安事件呢？" leans on the earlier question for what is asked, but its subject is new: when no
    relevant passage of the joined query mentions it, its own words are searched (llm.followup)."""
    answer = _converse(kb, first, second)
    assert not answer.refused and source in _sources(answer) and old_source not in _sources(answer), answer.text
    assert answer.flags.standalone_question != f"{first} {second}"


def test_a_leading_na_is_not_glued_to_the_next_word():
    assert content_words("那资安事件呢？") == ["资安", "事件"]
    assert content_words("那个按钮在哪？") == ["按钮"]  # 那个 is a word of its own
