"""The knowledge-base, evaluation and moderation pages through streamlit.testing's AppTest, over real
knowledge bases, evaluation runs and rule files: deleting a document asks first, metrics read as words
with their code names in the tooltip, the report is real HTML, and each page speaks one language (no
English label left in Chinese mode, no Chinese one in English mode).

The live progress of a running evaluation (no click needed) is checked in a real browser:
tests/test_browser_pages.py."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest
from google.protobuf.message import Message
from streamlit.testing.v1 import AppTest

from app.ui.i18n import STRINGS
from eval.jobs import runs_dir
from ingest.kb import KnowledgeBase
from tests.ui_helpers import PAGES, TIMEOUT

CJK = re.compile(r"[\u3400-\u9fff\u3000-\u303f\uff00-\uffef]")
# Words that leak from code into a page when a value is shown untranslated.
CODE_WORDS = ["None", "nan", "running", "interrupted", "compliance", "violence", "political", "mask", "block", "flag",
              "question", "answer", "ingest", "hit_at_1", "recall_at_5", "mrr_at_10", "metric", "value", "mobile"]


def page(name: str, language: str = "zh") -> AppTest:
    at = AppTest.from_file(str(PAGES / name), default_timeout=TIMEOUT)
    at.session_state["lang"] = language
    return at.run()


def _strings(message: Message) -> list[str]:
    out = []
    for field, value in message.ListFields():
        values = value if field.is_repeated else [value]
        for v in values:
            if isinstance(v, Message):
                out += _strings(v)
            elif isinstance(v, str) and field.name not in ("id", "form_id", "data", "columns", "srcdoc"):
                out.append(v)
    return out


def page_strings(at: AppTest, skip_values_of: tuple[str, ...] = ()) -> list[str]:
    """Every string a page shows: labels, help, options, messages, captions, and each table's header and cells.
    ``skip_values_of``: widget keys whose value is user data (a word list, say)."""
    def walk(node) -> list[str]:
        proto = getattr(node, "proto", None)
        own = []
        if proto is not None and getattr(node, "key", None) not in skip_values_of:
            own = _strings(proto)
        if getattr(node, "type", None) == "arrow_data_frame":
            frame = node.value
            own += [str(c) for c in frame.columns] + [str(v) for v in frame.astype(str).to_numpy().ravel()]
        return own + [s for child in getattr(node, "children", {}).values() for s in walk(child)]
    return walk(at.main) + walk(at.sidebar)


def english_labels() -> list[str]:
    """The English UI strings (their literal parts, at least two words) that differ from the Chinese ones."""
    out = set()
    for entry in STRINGS.values():
        if entry["en"] == entry["zh"]:
            continue
        for part in re.split(r"\{[^}]*\}", entry["en"]):
            part = part.strip(" :;,.()")
            if len(part.split()) >= 2:
                out.add(part)
    return sorted(out)


def assert_chinese_only(strings: list[str]) -> None:
    text = "\n".join(strings)
    leaks = [label for label in english_labels() if label in text]
    # (a word inside a path, a file name, a rule id or a quoted JSON key is data: "question" in the dataset example)
    leaks += [w for w in CODE_WORDS if re.search(rf"(?<![\w/.:\-\"]){re.escape(w)}(?![\w/.:\-\"])", text)]
    assert not leaks, f"English left on a Chinese page: {leaks}"


def assert_english_only(strings: list[str]) -> None:
    leaks = [s for s in strings if CJK.search(s)]
    assert not leaks, f"Chinese left on an English page: {leaks}"
    text = "\n".join(strings)
    assert not re.search(r"(?<![\w/.-])None(?![\w/.-])", text), "a None shown as such"


# ---- knowledge-base page ---------------------------------------------------------------------------------

def test_deleting_a_document_asks_first_and_can_be_cancelled(demo_kb):
    at = page("knowledge_bases.py")
    csv = next(s for s in at.selectbox(key="doc-choice").options if s.endswith("常见问题.csv"))
    at.selectbox(key="doc-choice").set_value(csv).run()
    at.button(key="doc-delete").click().run()
    assert len(at.dataframe[0].value) == 8, "nothing deleted on the first click"
    [question] = [w.value for w in at.warning]
    assert "常见问题.csv" in question and "无法撤销" in question and re.search(r"\d+ 个片段", question)

    at.button(key="doc-delete-cancel").click().run()
    assert not at.warning and len(at.dataframe[0].value) == 8
    at.button(key="doc-delete").click().run()
    other = next(s for s in at.selectbox(key="doc-choice").options if s.endswith("员工手册.txt"))
    at.selectbox(key="doc-choice").set_value(other).run()
    assert not at.warning, "choosing another document withdraws the question"

    at.selectbox(key="doc-choice").set_value(csv).run()
    at.button(key="doc-delete").click().run()
    at.button(key="doc-delete-confirm").click().run()
    assert len(at.dataframe[0].value) == 7 and not at.warning
    with KnowledgeBase.open("demo", demo_kb) as kb:
        assert all(not d.source.endswith(".csv") for d in kb.catalog.list_documents())


BROKEN_PDF = b"%PDF-1.4\n" + bytes(range(256)) * 8


def test_kb_page_speaks_chinese_and_explains_a_broken_file(demo_kb):
    at = page("knowledge_bases.py")
    uploader = at.file_uploader[0]
    assert "50 MB" in uploader.label and uploader.proto.max_upload_size_mb == demo_kb.upload_max_mb == 50
    uploader.set_value([("损坏.pdf", BROKEN_PDF, "application/pdf")]).run()
    next(b for b in at.button if b.label == "导入").click().run()
    [error] = [e.value for e in at.error]
    assert error.startswith("“损坏.pdf”没有导入：") and "PDF" in error and error.endswith("再上传。"), error
    assert "Error" not in error, "the library's exception stays out of the Chinese sentence"
    assert_chinese_only(page_strings(at))


def test_kb_page_in_english(data_dir, tmp_path):
    from ingest.pipeline import ingest_paths

    doc = tmp_path / "handbook.md"
    doc.write_text("# Travel\n\nHotels in tier-1 cities cost at most 600 yuan a night.\n", encoding="utf-8")
    ingest_paths([doc], "handbook", data_dir)
    at = page("knowledge_bases.py", "en")
    assert "up to 50 MB each" in at.file_uploader[0].label
    at.file_uploader[0].set_value([("broken.pdf", BROKEN_PDF, "application/pdf"),
                                   ("photo.gif", b"GIF89a" + b"\0" * 64, "image/gif")]).run()  # PNG is read by OCR; GIF is not
    next(b for b in at.button if b.label == "Ingest").click().run()
    errors = [e.value for e in at.error]
    assert len(errors) == 2, errors
    pdf = next(e for e in errors if "broken.pdf" in e)
    assert pdf.startswith("“broken.pdf” was not imported:") and "PDF" in pdf and "save a copy" in pdf, pdf
    assert any("photo.gif" in e and "Supported types" in e for e in errors), errors
    at.button(key="doc-delete").click().run()
    assert "cannot be undone" in at.warning[0].value
    assert_english_only(page_strings(at))


def test_compact_kb_bar_drives_and_follows_the_sidebar_picker(data_dir):
    """The main-area picker for narrow windows (app.ui.common.compact_kb_bar) and the sidebar's stay in step."""
    for name in ("alpha", "beta"):
        KnowledgeBase.open(name, data_dir, create=True).close()

    def script():
        import streamlit as st

        from app.ui.common import base_settings, compact_kb_bar, kb_selector

        settings = base_settings()
        kb_selector(settings)
        compact_kb_bar(settings, on_new_chat=lambda: st.session_state.update(new_chats=st.session_state.get("new_chats", 0) + 1))

    at = AppTest.from_function(script, default_timeout=TIMEOUT).run()
    assert at.selectbox(key="kb-compact").value == "alpha" and at.selectbox(key="kb-compact").options == ["alpha", "beta"]
    at.selectbox(key="kb-compact").set_value("beta").run()
    assert at.sidebar.selectbox(key="kb").value == "beta"
    at.sidebar.selectbox(key="kb").set_value("alpha").run()
    assert at.selectbox(key="kb-compact").value == "alpha"
    at.button(key="new-chat-compact").click().run()
    assert at.session_state["new_chats"] == 1 and not at.exception


# ---- evaluation page -------------------------------------------------------------------------------------

@pytest.fixture
def eval_report(demo_kb, tmp_path) -> Path:
    from eval.dataset import QAItem, write_dataset
    from eval.report import write_report
    from eval.runner import run_eval

    dataset = tmp_path / "qa.jsonl"
    write_dataset([QAItem(id="t", question="一线城市住宿标准是多少？", answers=["每晚不超过600元"], relevant_sources=["差旅报销制度.md"]),
                   QAItem(id="m", question="火星上有多少颗卫星？", answerable=False)], dataset)
    write_report(tmp_path / "a", run_eval(dataset, "demo", tmp_path / "a", demo_kb), {"dataset": str(dataset), "kb": "demo"})
    return tmp_path / "a"


def metrics(at: AppTest, column: str) -> tuple[dict[str, str], dict]:
    frame = next(d for d in at.dataframe if d.value.columns[0] == column)
    return dict(zip(frame.value.iloc[:, 0], frame.value.iloc[:, 1])), json.loads(frame.proto.columns)


@pytest.mark.parametrize(("language", "names", "column"), [
    ("zh", ["问题数", "命中率@1", "命中率@5", "召回率@5", "MRR@10（平均倒数排名）", "引用精确率", "拒答准确率"], "指标"),
    ("en", ["Questions", "Hit@1", "Hit@5", "Recall@5", "MRR@10", "Citation precision", "Refusal accuracy"], "Metric"),
])
def test_metrics_read_as_words_with_code_names_in_the_tooltip_and_the_report_is_html(eval_report, language, names, column):
    at = page("evaluation.py", language)
    at.text_input(key="eval-a").set_value(str(eval_report)).run()
    values, config = metrics(at, column)
    assert set(names) <= set(values) and values[names[2]] == "1.000"
    assert not set(values) & {"hit_at_1", "recall_at_5", "mrr_at_10", "questions"}, "no code names in the table"
    tooltip = config[column]["help"]
    assert all(f"= {code}" in tooltip for code in ("hit_at_1", "hit_at_5", "recall_at_5", "mrr_at_10", "questions"))
    assert f"{names[1]} = hit_at_1" in tooltip

    [frame] = at.get("iframe")
    html = frame.proto.srcdoc
    assert html.startswith("<!doctype html>") and "<pre" not in html
    assert "<table>" in html and "<td>hit_at_5</td>" in html and "<h1>" in html
    assert "<img alt='plots' src='data:image/png;base64," in html, "the plots inline"


def test_report_html_keeps_documents_inert():
    from core.markdown_html import markdown_page

    md = "# r\n\n| q | a |\n|---|---|\n| x | <script>alert(1)</script> ![i](https://evil.example/x.png) [l](https://evil.example) |\n\n![plots](plots.png)\n"
    page_html = markdown_page(md, "r", {"plots.png": b"\x89PNG"})
    assert "<script" not in page_html and "evil.example/x.png'" not in page_html and "href" not in page_html
    assert "&lt;script&gt;" in page_html and page_html.count("<img") == 1


def fake_run(settings, run_id: str, kb: str, **fields) -> None:
    folder = runs_dir(settings) / run_id
    folder.mkdir(parents=True)
    status = {"id": run_id, "kb": kb, "status": "running", "total": 3, "done": 1, "created_at": time.time(),
              "finished_at": None, "summary": None, "error": None, "pid": os.getpid()} | fields
    (folder / "status.json").write_text(json.dumps(status, ensure_ascii=False), encoding="utf-8")


def test_evaluation_page_without_knowledge_bases_does_not_blame_permissions(data_dir):
    at = page("evaluation.py")
    captions = " ".join(c.value for c in at.caption)
    assert "还没有知识库" in captions and "权限" not in captions
    assert "还没有评测任务" in captions


def test_run_states_in_words_in_both_languages(data_dir):
    KnowledgeBase.open("handbook", data_dir, create=True).close()
    fake_run(data_dir, "a" * 16, "handbook")  # this process is alive: running
    fake_run(data_dir, "b" * 16, "handbook", pid=None)  # no live process: interrupted
    fake_run(data_dir, "c" * 16, "handbook", status="failed", done=0, error="RuntimeError: timeout")
    for language, expected in (("zh", {"进行中", "已中断", "失败"}), ("en", {"running", "interrupted", "failed"})):
        at = page("evaluation.py", language)
        runs = next(d.value for d in at.dataframe)
        assert set(runs.iloc[:, 2]) == expected
        assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", v) for v in runs.iloc[:, 4]), "local timestamps"
        at.selectbox(key="eval-run").set_value("b" * 16).run()
        assert at.warning and "1/3" in at.warning[0].value
        at.selectbox(key="eval-run").set_value("a" * 16).run()
        assert at.get("progress") and "1/3" in at.get("progress")[0].proto.text
        if language == "en":
            assert_english_only(page_strings(at))
        else:
            assert_chinese_only(page_strings(at))


# ---- moderation page -------------------------------------------------------------------------------------

def test_moderation_page_in_chinese_and_english(data_dir):
    from moderation.moderator import moderator_for

    moderator_for(data_dir).check("请打电话 13800138000", "question")  # one audit record (never the matched text)
    at = page("moderation.py")
    rules = next(d.value for d in at.dataframe)
    assert {"金融合规", "暴力与危险物品", "个人信息"} <= set(rules["类别"]) and "打码" in set(rules["动作"])
    audit = at.dataframe[-1].value
    assert list(audit.columns) == ["时间", "作用于", "类别", "动作", "规则", "匹配方式"]
    assert audit.iloc[0].tolist()[1:] == ["提问", "个人信息 · 手机号", "打码", "pii:mobile", "个人信息识别"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", audit.iloc[0, 0])
    at.radio(key="mod-surface").set_value("answer")
    at.text_input(key="mod-try").set_value("这款产品保本，手机13800138000").run()
    assert any(c.value.startswith("打码 · 金融合规 · 规则 compliance:") for c in at.caption), [c.value for c in at.caption]
    assert_chinese_only(page_strings(at, skip_values_of=tuple(a.key for a in at.text_area)))

    at = page("moderation.py", "en")
    rules = next(d.value for d in at.dataframe)
    assert {"Financial compliance", "Violence and weapons", "Personal data"} <= set(rules["Category"])
    assert any(d.startswith("Financial compliance: promised returns") for d in rules["Description"])
    assert at.dataframe[-1].value.iloc[0].tolist()[1:] == ["Questions", "Personal data · Mobile number", "Mask", "pii:mobile",
                                                           "personal data check"]
    assert at.radio(key="mod-surface").options == ["Questions", "Answers", "Ingest"]
    word_list = [a.key for a in at.text_area]  # the team's own word list is data, not a label
    assert_english_only(page_strings(at, skip_values_of=tuple(word_list)))
