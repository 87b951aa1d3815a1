"""PowerPoint and Excel files, and tables in every format: real python-pptx / openpyxl / python-docx files
built here, ingested into real knowledge bases, asked with the extractive answerer (no LLM), uploaded
through the hardened path and through a real `zhiwen api` process."""

from __future__ import annotations

import io
import zipfile

import httpx
import openpyxl
import pytest
from pptx import Presentation
from pptx.util import Inches

from core.settings import load_settings
from ingest.chunking import chunk_text, index_text
from ingest.documents import ingest_upload
from ingest.kb import KnowledgeBase
from ingest.loaders import load_bytes
from ingest.pipeline import ingest_paths
from ingest.tables import is_table_row, split_units
from llm.answer import ask
from tests.api_server import running_api
from tests.conftest import zip_bytes
from tests.test_loaders import make_pdf

KB = "office"


# -- files built for the tests ------------------------------------------------------------------------
def make_pptx(table: list[list[str]] | None = None, merged: bool = False) -> bytes:
    """Three slides: a plan, the data-centre move (text, a table, speaker notes), and an empty slide."""
    deck = Presentation()
    first = deck.slides.add_slide(deck.slide_layouts[1])
    first.shapes.title.text = "年度规划"
    first.placeholders[1].text_frame.text = "今年的重点是降低采购成本，所有采购须走集中招标流程。"
    second = deck.slides.add_slide(deck.slide_layouts[5])
    second.shapes.title.text = "机房迁移"
    box = second.shapes.add_textbox(Inches(0.5), Inches(1.5), Inches(9), Inches(1))
    box.text_frame.text = "新机房位于杭州余杭区，迁移窗口为每周六凌晨1点至5点。"
    rows = table or [["系统", "负责人"], ["计费系统", "王磊"], ["短信网关", "李娜"]]
    shape = second.shapes.add_table(len(rows), len(rows[0]), Inches(0.5), Inches(3), Inches(9), Inches(0.4 * len(rows)))
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            shape.table.cell(r, c).text = value
    if merged:
        shape.table.cell(1, 0).merge(shape.table.cell(2, 0))
    second.notes_slide.notes_text_frame.text = "迁移前一周须书面通知所有客户。"
    deck.slides.add_slide(deck.slide_layouts[6])  # blank
    out = io.BytesIO()
    deck.save(out)
    return out.getvalue()


def make_xlsx() -> bytes:
    """An asset register laid out as people make them: a merged title row, a blank row, a header with an
    empty column, a department merged over two rows, a blank row inside the data, a section banner."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "资产清单"
    ws.append(["2026年固定资产清单"])
    ws.merge_cells("A1:E1")
    ws.append([])
    ws.append(["部门", "资产编号", None, "设备名称", "使用人", None])
    ws.append(["研发部", "ZW-0417", None, "笔记本电脑", "张伟", "2026-03 到期"])
    ws.append([None, "ZW-0418", None, "显示器", "李娜"])
    ws.merge_cells("A4:A5")
    ws.append([])
    ws.append(["二、行政设备"])
    ws.merge_cells("A7:E7")
    ws.append(["行政部", "ZW-0501", None, "打印机", None])
    other = wb.create_sheet("供应商")
    other.append(["供应商", "联系电话"])
    other.append(["星河电子", "0571-88886666"])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def make_docx_table(rows: list[list[str]]) -> bytes:
    import docx

    d = docx.Document()
    d.add_heading("差旅标准", level=1)
    d.add_paragraph("下表为各类费用的报销标准。")
    table = d.add_table(rows=len(rows), cols=len(rows[0]))
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    out = io.BytesIO()
    d.save(out)
    return out.getvalue()


def make_pdf_table(rows: list[list[str]]) -> bytes:
    """A PDF page with a sentence, a ruled table (cells wrap) and a closing sentence, as reportlab draws it."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Table, TableStyle

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    style = ParagraphStyle("zh", fontName="STSong-Light", fontSize=9, leading=12)
    table = Table([[Paragraph(cell, style) for cell in row] for row in rows], colWidths=[80, 190, 190])
    table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.5, colors.black)]))
    out = io.BytesIO()
    SimpleDocTemplate(out, pagesize=A4).build([Paragraph("下表为各类费用的报销标准。", style), table,
                                              Paragraph("本标准由财务部负责解释。", style)])
    return out.getvalue()


def make_html_table(rows: list[list[str]]) -> bytes:
    cells = "".join("<tr>" + "".join(f"<td>{v}</td>" for v in row) + "</tr>" for row in rows)
    return f"<html><body><h1>差旅标准</h1><p>下表为各类费用的报销标准。</p><table>{cells}</table></body></html>".encode()




# Rows whose cells hold several sentences (。；): split into sentences, a chunk boundary would cut them.
LONG_ROWS = [["费用类别", "标准", "说明"]] + [
    [f"第{i}类费用", f"每次不超过{i * 100}元。超出部分由员工自行承担；须附发票。", f"由部门经理审批。审批后{i}个工作日内报销；逾期不予受理。"]
    for i in range(1, 13)
]


def _ingest(tmp_path, name: str, data: bytes, **overrides):
    settings = load_settings(data_dir=tmp_path / "data", **overrides)
    path = tmp_path / name
    path.write_bytes(data)
    [result] = ingest_paths([path], KB, settings)
    assert result.status == "indexed", result.reason
    return settings, str(path)


def _document(settings, source: str):
    with KnowledgeBase.open(KB, settings) as kb:
        doc = kb.catalog.document_by_source(source)
        return doc, kb.catalog.document_text(doc.id), kb.catalog.chunks_of_document(doc.id)


def _assert_quotes_exact(answer, settings) -> None:
    with KnowledgeBase.open(KB, settings) as kb:
        for c in answer.citations:
            doc = kb.catalog.document_by_source(c.source)
            assert kb.catalog.document_text(doc.id)[c.start : c.end] == c.quote


# -- PowerPoint ---------------------------------------------------------------------------------------
def test_pptx_is_one_page_per_slide_with_title_heading_table_and_notes():
    doc = load_bytes(make_pptx(), "会议.pptx")
    assert doc.paged and len(doc.pages) == 3
    assert doc.pages[1].splitlines() == [
        "# 机房迁移", "新机房位于杭州余杭区，迁移窗口为每周六凌晨1点至5点。",
        "系统 | 负责人", "计费系统 | 王磊", "短信网关 | 李娜", "备注 (notes)：", "迁移前一周须书面通知所有客户。",
    ]
    assert doc.pages[2] == "", "an empty slide is an empty page, not a lone heading"


def test_pptx_merged_table_cell_fills_the_rows_it_spans():
    doc = load_bytes(make_pptx(table=[["系统", "负责人"], ["计费", "王磊"], ["", "李娜"]], merged=True), "会议.pptx")
    assert "计费 | 王磊" in doc.pages[1] and "计费 | 李娜" in doc.pages[1]


def test_answer_only_on_slide_two_cites_the_pptx_with_page_two(tmp_path):
    settings, source = _ingest(tmp_path, "季度会议.pptx", make_pptx())
    answer = ask("机房迁移窗口是什么时候？", KB, settings)
    assert not answer.refused, answer
    top = answer.citations[0]
    assert top.source == source and top.page == 2
    assert "凌晨1点至5点" in top.quote
    _assert_quotes_exact(answer, settings)
    notes = ask("迁移前多久要通知客户？", KB, settings)
    assert notes.citations[0].page == 2 and "一周" in notes.citations[0].quote
    _, text, chunks = _document(settings, source)
    assert {c.page for c in chunks} == {1, 2} and all(c.heading_path[0] in ("年度规划", "机房迁移") for c in chunks)


# -- Excel --------------------------------------------------------------------------------------------
def test_xlsx_rows_become_records_that_repeat_the_header():
    doc = load_bytes(make_xlsx(), "资产.xlsx")
    assert not doc.paged and len(doc.pages) == 1
    assert doc.pages[0].split("\n") == [
        "# 资产清单",
        "2026年固定资产清单",  # the merged title row is a line of its own, not the header
        "部门: 研发部；资产编号: ZW-0417；设备名称: 笔记本电脑；使用人: 张伟；F列: 2026-03 到期",
        "部门: 研发部；资产编号: ZW-0418；设备名称: 显示器；使用人: 李娜",  # merged 部门 belongs to both rows
        "二、行政设备",  # a banner merged across the table
        "部门: 行政部；资产编号: ZW-0501；设备名称: 打印机",  # empty cells and the empty column C are left out
        "",
        "# 供应商",
        "供应商: 星河电子；联系电话: 0571-88886666",
    ]
    assert all(is_table_row(line) for line in doc.pages[0].split("\n") if ": " in line)


def test_answer_only_in_a_spreadsheet_row_cites_the_xlsx_and_quotes_the_whole_row(tmp_path):
    settings, source = _ingest(tmp_path, "资产.xlsx", make_xlsx())
    answer = ask("ZW-0418 的使用人是谁？", KB, settings)
    assert not answer.refused, answer
    top = answer.citations[0]
    assert top.source == source
    assert top.quote == "部门: 研发部；资产编号: ZW-0418；设备名称: 显示器；使用人: 李娜"
    _assert_quotes_exact(answer, settings)


# -- tables across chunks -----------------------------------------------------------------------------
@pytest.mark.parametrize("name, data", [
    ("标准.docx", make_docx_table(LONG_ROWS)),
    ("标准.html", make_html_table(LONG_ROWS)),
    ("标准.pptx", make_pptx(table=LONG_ROWS)),
    ("标准.pdf", make_pdf_table(LONG_ROWS)),
])
def test_a_table_split_across_chunks_keeps_rows_whole_and_repeats_its_header(tmp_path, name, data):
    settings, source = _ingest(tmp_path, name, data, chunk_size=60, chunk_overlap=0)
    doc, text, chunks = _document(settings, source)
    header = "费用类别 | 标准 | 说明"
    rows = [line for line in text.split("\n") if line.startswith("第") and " | " in line]
    assert len(rows) == 12
    in_table = [c for c in chunks if " | " in c.text]
    assert len(in_table) >= 3, "the table is long enough to be split"
    for c in chunks:
        assert c.text == text[c.start : c.end]
        for row in rows:
            at = text.index(row)
            assert not (at < c.start < at + len(row) or at < c.end < at + len(row)), f"chunk cuts {row!r}"
    for c in in_table[1:]:
        assert header not in c.text and c.heading_path[-1] == header
        assert header in index_text(doc.title, c.heading_path, c.text)
    assert header in in_table[0].text and header not in in_table[0].heading_path


def test_pdf_table_rows_are_read_whole_and_an_answer_quotes_its_row(tmp_path):
    """pypdf reads a table as loose words; a ruled table is re-read by pdfplumber as rows (ingest.pdf_tables),
    with the text around it in reading order, and a question about one row quotes that whole row."""
    rows = [["资产编号", "设备名称", "存放位置"], ["ZW-0416", "投影仪", "二楼会议室"], ["ZW-0417", "备用笔记本电脑", "三楼储藏室"],
            ["ZW-0418", "显示器", "研发部"]]
    doc = load_bytes(make_pdf_table(rows), "资产.pdf")
    lines = doc.pages[0].split("\n")
    assert doc.metadata["tables"] == 1
    assert lines[0] == "下表为各类费用的报销标准。" and lines[-1] == "本标准由财务部负责解释。"
    assert lines[1:-1] == [" | ".join(r) for r in rows]
    assert "tables" not in load_bytes(make_pdf(["没有表格的一页：出差住宿每晚不超过600元。"]), "a.pdf").metadata
    settings, source = _ingest(tmp_path, "资产.pdf", make_pdf_table(rows))
    answer = ask("ZW-0417 这台设备放在哪里？", KB, settings)
    top = answer.citations[0]
    assert top.source == source and top.page == 1 and top.quote == "ZW-0417 | 备用笔记本电脑 | 三楼储藏室"
    _assert_quotes_exact(answer, settings)


def test_markdown_table_rule_is_not_a_header_and_csv_rows_still_split_into_sentences():
    rows = [f"| 第{i}类 | 每次不超过{i}00元。须附发票；逾期不予报销。 |" for i in range(1, 9)]
    text = "# 报销标准\n| 类别 | 说明 |\n| --- | --- |\n" + "\n".join(rows)
    spans = chunk_text(text, None, size=30, overlap=0)
    assert len(spans) >= 3
    for s in spans:
        assert all(line in rows or line.startswith(("#", "| 类别", "| ---")) for line in text[s.start : s.end].split("\n"))
    assert all(s.heading_path == ["报销标准", "| 类别 | 说明 |"] for s in spans[1:])
    # A CSV row keeps its full-width "列名：值" and is no record: an FAQ row is still split at "；".
    faq = "问题：如何重置密钥？；答案：在控制台点击重置。"
    assert not is_table_row(faq) and [u.row for u in split_units(faq)] == [False, False]


def test_spreadsheet_rows_are_never_cut_between_chunks(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["资产编号", "设备名称", "备注"])
    for i in range(30):
        ws.append([f"ZW-{i:04d}", "笔记本电脑", "2024年采购。保修三年；到期后统一更换。"])
    out = io.BytesIO()
    wb.save(out)
    settings, source = _ingest(tmp_path, "台账.xlsx", out.getvalue(), chunk_size=60, chunk_overlap=0)
    _, text, chunks = _document(settings, source)
    assert len(chunks) >= 3
    records = [line for line in text.split("\n") if line.startswith("资产编号: ")]
    assert len(records) == 30
    for c in chunks:
        lines = c.text.split("\n")
        assert all(line in records or line.startswith("# ") for line in lines), lines


# -- uploads ------------------------------------------------------------------------------------------
def test_uploaded_pptx_and_xlsx_are_accepted_by_content(settings):
    for name, data in (("会议.pptx", make_pptx()), ("资产.xlsx", make_xlsx())):
        result = ingest_upload(KB, name, data, settings)
        assert result.status == "indexed", result.reason
        assert result.source == "上传/" + name


@pytest.mark.parametrize("name, label", [("资产.xlsx", "XLSX"), ("会议.pptx", "PPTX")])
def test_a_zip_disguised_as_an_office_file_is_refused(settings, tmp_path, name, label):
    fake = zip_bytes({"readme.txt": "这只是一个压缩包。".encode()})
    result = ingest_upload(KB, name, fake, settings)
    assert result.status == "failed" and f"内容不是 {label}" in result.reason and "ZIP" in result.reason
    assert not (settings.data_dir / "uploads" / KB).exists() or not any((settings.data_dir / "uploads" / KB).glob("*.*"))
    path = tmp_path / name  # from disk, the loader says the file is broken
    path.write_bytes(fake)
    [failed] = ingest_paths([path], KB, settings)
    assert failed.status == "failed" and f"{label} 文件损坏" in failed.reason


@pytest.mark.parametrize("name, data", [("会议.pptx", make_pptx()), ("资产.xlsx", make_xlsx())])
def test_office_archive_bombs_are_refused(settings, tmp_path, name, data):
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        entries = {i.filename: z.read(i) for i in z.infolist()}
    entries["docProps/padding.xml"] = b"0" * (3 * 1024 * 1024)
    bomb = zip_bytes(entries)
    small = settings.model_copy(update={"upload_max_unpacked_mb": 2})
    result = ingest_upload(KB, name, bomb, small)
    assert result.status == "failed" and "压缩炸弹" in result.reason
    path = tmp_path / name
    path.write_bytes(bomb)
    [failed] = ingest_paths([path], KB, small)
    assert failed.status == "failed" and "压缩炸弹" in failed.reason


def test_api_upload_of_a_pptx_is_indexed_and_answered_with_its_slide(tmp_path):
    settings = load_settings(data_dir=tmp_path / "data")
    with running_api(settings.data_dir, auth=False) as base:
        files = [("files", ("季度会议.pptx", make_pptx(), "application/vnd.openxmlformats-officedocument.presentationml.presentation"))]
        r = httpx.post(f"{base}/v1/knowledge-bases/{KB}/documents", files=files, timeout=120)
        assert r.status_code == 200, r.text
        [result] = r.json()["data"]
        assert result["status"] == "indexed" and result["source"] == "上传/季度会议.pptx"
        body = {"model": KB, "messages": [{"role": "user", "content": "机房迁移窗口是什么时候？"}]}
        answer = httpx.post(f"{base}/v1/chat/completions", json=body, timeout=120).json()
        citation = answer["citations"][0]
        assert citation["source"] == "上传/季度会议.pptx" and citation["page"] == 2
