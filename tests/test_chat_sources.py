"""What the chat shows under an answer, below the UI: cited passages, the original file and its PDF page
with the quote boxed, the sources of an answer that cited nothing, suggested questions. Real knowledge
base from the sample corpus, real PDF rendering (pypdfium2)."""

from __future__ import annotations

import io
import shutil

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from PIL import Image

from core.models import Citation
from core.settings import load_settings
from ingest.documents import ingest_upload
from ingest.originals import (
    _find_spans,
    original_file,
    original_shows_masked,
    render_pdf_page,
)
from ingest.pipeline import ingest_paths
from llm.answer import ask
from llm.sources import Passage, cited_passage, document_context, uncited_sources
from llm.suggestions import heading_topic, suggested_questions
from tests.conftest import SAMPLES

PDF = "客户服务规范.pdf"


@pytest.fixture(scope="module")
def kb(tmp_path_factory):
    root = tmp_path_factory.mktemp("sources")
    shutil.copytree(SAMPLES, root / "corpus")
    settings = load_settings(data_dir=root / "data", answer_cache_size=0)
    ingest_paths([root / "corpus"], "demo", settings)
    return settings, root / "corpus"


def test_a_cited_passage_marks_the_cited_sentence_inside_its_chunk(kb, services):
    settings, _ = kb
    answer = ask("一线城市住宿标准是多少？", "demo", settings)
    [citation] = answer.citations
    passage = cited_passage("demo", citation, settings, services)
    assert passage.text[passage.start : passage.end] == citation.quote
    assert len(passage.text) > len(citation.quote), "the card shows the sentence inside its passage, not alone"
    context = document_context("demo", citation, settings, services, chars=200)
    assert context.text[context.start : context.end] == citation.quote and context.clipped_before


def test_passage_window_cuts_at_line_breaks_near_the_span():
    text = "第一行很长的内容。\n第二行：目标句子在这里。\n第三行。"
    span = text.index("目标句子")
    window = Passage.window(text, span, span + 4, chars=6)
    assert window.text.startswith("第二行") and window.text[window.start : window.end] == "目标句子"
    assert window.clipped_before and window.clipped_after


def test_the_cited_pdf_page_is_rendered_with_the_quote_boxed(kb, services):
    settings, corpus = kb
    answer = ask("客户投诉多久内要给出处理方案？", "demo", settings)
    [citation] = answer.citations
    assert citation.source.endswith(PDF) and citation.page == 2
    path = original_file("demo", citation.source, settings, services)
    assert path is not None and path.samefile(corpus / PDF)
    # Page 1 has the support e-mail, masked at ingest: that page (and the download) is withheld, page 2 is not.
    assert not original_shows_masked("demo", citation.source, settings, services, page=2)
    assert original_shows_masked("demo", citation.source, settings, services, page=1)
    assert original_shows_masked("demo", citation.source, settings, services)
    page = render_pdf_page(path, citation.page, citation.quote)
    image = Image.open(io.BytesIO(page.png)).convert("RGB")
    assert (page.page, page.n_pages) == (2, 2) and image.width > 800
    assert 1 <= len(page.boxes) <= 2, "one box per line of the quoted sentence"
    left, top, right, bottom = page.boxes[0]
    assert top < image.height / 3, "the complaint rule is near the top of page 2"
    r, g, b = image.getpixel((int(left + right) // 2, int(top + bottom) // 2 - 1))
    assert r > 200 and g > 180 and b < 200, "the box is filled yellow"
    # Text that is not on the page: the page, unmarked.
    assert render_pdf_page(path, 2, "火星上有多少颗卫星").boxes == []
    assert render_pdf_page(path, 3, citation.quote) is None


def test_the_quote_is_found_across_the_pdfs_line_breaks_and_widths():
    page = list("客户投诉须在24小时内响应，48小时内给出处理方案，7个工作日内完成结案。处理结果须以\r\n电话或邮件方式告知客户")
    spans = _find_spans(page, "处理结果须以电话或邮件方式告知客户")  # the cleaned text joined the lines
    assert len(spans) == 1 and "".join(page[spans[0][0] : spans[0][1]]).replace("\r\n", "") == "处理结果须以电话或邮件方式告知客户"
    assert _find_spans(list("ＡＰＩ网关"), "API网关") == [(0, 5)], "full-width PDF text matches the NFKC-cleaned quote"


def test_the_original_counts_as_gone_once_the_file_changed(kb, tmp_path, services):
    settings = load_settings(data_dir=tmp_path / "data")
    doc = tmp_path / "制度.md"
    doc.write_text("# 制度\n\n报销须在十五个工作日内提交。\n", encoding="utf-8")
    ingest_paths([doc], "kb", settings)
    assert original_file("kb", str(doc), settings, services) == doc
    doc.write_text("# 制度\n\n改过的内容。\n", encoding="utf-8")
    assert original_file("kb", str(doc), settings, services) is None, "a changed file would show the wrong text"
    assert original_file("kb", "没有这个文档.md", settings, services) is None
    # An upload: its stored copy under the data dir, not the name the user gave.
    ingest_upload("kb", "上传的制度.md", "# 上传\n\n出差住宿每晚不超过600元。\n".encode(), settings)
    stored = original_file("kb", "上传/上传的制度.md", settings, services)
    assert stored is not None and stored.is_relative_to(settings.data_dir / "uploads")


def test_an_llm_answer_citing_nothing_still_shows_what_it_was_given(kb, services):
    settings, _ = kb
    fake = GenericFakeChatModel(messages=iter(["一线城市每晚不超过600元。"]))  # a model that forgot the markers
    answer = ask("一线城市住宿标准是多少？", "demo", settings, chat_model=fake)
    assert answer.flags.uncited and not answer.citations
    given = uncited_sources(answer, "demo", settings, services)
    assert given and given[0].source.endswith("差旅报销制度.md") and "600元" in given[0].quote
    assert [c.n for c in given] == list(range(1, len(given) + 1)) and len(given) <= 3
    cited = ask("一线城市住宿标准是多少？", "demo", settings, chat_model=GenericFakeChatModel(messages=iter(["每晚不超过600元[1]。"])))
    assert not cited.flags.uncited_sources


def test_suggested_questions_come_from_headings_and_get_answers(kb, services):
    settings, _ = kb
    questions = suggested_questions("demo", settings, services)
    assert len(questions) == 4 and len(set(questions)) == 4
    assert "「星河科技差旅报销制度」中的城市分级是什么？" in questions
    assert not any(word in q for q in questions for word in ("总则", "附则", "目的与适用范围", "更新日志", "常见问题"))
    for question in questions:
        assert not ask(question, "demo", settings).refused, question
    assert heading_topic("三、住宿标准") == "住宿标准" and heading_topic("2.1 备份频率") == "备份频率"
    assert heading_topic("第七條 資安事件通報") == "資安事件通報"


def test_citation_offsets_that_no_longer_match_fall_back_to_the_quote(kb, services):
    settings, _ = kb
    stale = Citation(n=1, source="samples/没有.md", page=None, start=5, end=9, quote="旧的句子", chunk_id="nope-0", score=0.0)
    passage = cited_passage("demo", stale, settings, services)
    assert (passage.text, passage.start, passage.end) == ("旧的句子", 0, 4)
    assert document_context("demo", stale, settings, services) is None
