"""Loaders: every supported format, the common Chinese encodings, and bad files with clear reasons."""

import io
import os

import pytest

from core.errors import LoadError
from ingest.clean import clean_pages
from ingest.loaders import load_bytes, load_file
from tests.conftest import SAMPLES

POLICY = "差旅报销制度规定，一线城市住宿标准为每晚不超过六百元，出差结束后十五个工作日内提交报销单据。" * 3
TRAD = "資訊安全規範規定，密碼長度至少十二個字元，資安事件須於一小時內通報資訊安全部。" * 3


def make_pdf(pages: list[str]) -> bytes:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    buf = io.BytesIO()
    c = canvas.Canvas(buf)
    for number, text in enumerate(pages, start=1):
        c.setFont("STSong-Light", 11)
        c.drawString(72, 800, "星河科技 内部资料")
        for i in range(0, len(text), 30):
            c.drawString(72, 760 - 16 * (i // 30), text[i : i + 30])
        c.drawString(280, 40, f"第 {number} 页")
        c.showPage()
    c.save()
    return buf.getvalue()


def test_gbk_file_is_decoded():
    doc = load_bytes(POLICY.encode("gbk"), "制度.txt")
    assert doc.pages == [POLICY]


def test_big5_file_is_decoded():
    doc = load_bytes(TRAD.encode("big5"), "規範.txt")
    assert doc.pages == [TRAD]


def test_utf8_bom_and_utf16_are_decoded():
    assert load_bytes("\ufeff" .encode("utf-8") + POLICY.encode("utf-8"), "a.txt").pages == [POLICY]
    assert load_bytes(POLICY.encode("utf-16"), "a.txt").pages == [POLICY]


@pytest.mark.parametrize("name", ["员工手册.txt", "資訊安全規範.txt"])
def test_bundled_non_utf8_samples_decode_to_readable_chinese(name):
    text = load_file(SAMPLES / name).pages[0]
    assert "星河科技" in text


def test_binary_junk_is_rejected_with_reason():
    with pytest.raises(LoadError, match="二进制|binary|编码|encoding"):
        load_bytes(os.urandom(4096), "junk.txt")


def test_empty_file_is_rejected():
    with pytest.raises(LoadError, match="empty"):
        load_bytes(b"  \n", "empty.md")


def test_corrupt_pdf_is_rejected_with_reason():
    good = make_pdf([POLICY])
    corrupt = good[:200] + os.urandom(300)
    with pytest.raises(LoadError, match="PDF") as info:
        load_bytes(corrupt, "坏文件.pdf")
    assert info.value.source == "坏文件.pdf"


def test_pdf_keeps_pages_and_drops_running_header_and_page_numbers():
    doc = load_bytes(make_pdf(["第一页讲住宿标准，每晚六百元。", "第二页讲报销时限，十五个工作日。"]), "p.pdf")
    assert doc.paged and len(doc.pages) == 2
    cleaned = clean_pages(doc.pages, pdf_layout=True)
    assert [p for *_, p in cleaned.page_spans] == [1, 2]
    assert "内部资料" not in cleaned.text and "第 1 页" not in cleaned.text
    first = cleaned.page_spans[0]
    assert "住宿标准" in cleaned.text[first[0] : first[1]]


def test_html_headings_tables_and_boilerplate():
    html = (
        "<html><head><title>产品说明</title><script>var x=1;</script></head><body>"
        "<nav>首页 | 产品</nav><h1>知问网关</h1><p>平均延迟为2毫秒。</p>"
        "<h2>性能</h2><table><tr><th>指标</th><th>数值</th></tr><tr><td>P99</td><td>5毫秒</td></tr></table>"
        "<footer>版权所有 星河科技 2026</footer></body></html>"
    )
    doc = load_bytes(html.encode("gb18030"), "p.html")
    text = doc.pages[0]
    assert doc.title == "产品说明"
    assert "# 知问网关" in text and "## 性能" in text and "P99 | 5毫秒" in text
    assert "var x" not in text and "首页" not in text and "版权所有" not in text


def test_docx_headings_and_tables():
    import docx

    d = docx.Document()
    d.add_heading("数据备份指南", level=1)
    d.add_heading("备份频率", level=2)
    d.add_paragraph("每日凌晨2点增量备份。")
    table = d.add_table(rows=1, cols=2)
    table.rows[0].cells[0].text, table.rows[0].cells[1].text = "全量备份", "每周日"
    buf = io.BytesIO()
    d.save(buf)
    doc = load_bytes(buf.getvalue(), "备份.docx")
    assert doc.pages[0].splitlines() == ["# 数据备份指南", "## 备份频率", "每日凌晨2点增量备份。", "全量备份 | 每周日"]
    assert doc.title == "数据备份指南"


def test_corrupt_docx_is_rejected():
    with pytest.raises(LoadError, match="DOCX"):
        load_bytes(b"PK\x03\x04 not really a zip", "坏.docx")


def test_csv_rows_become_lines_of_column_value_pairs():
    doc = load_bytes("问题,答案\n如何重置密钥？,在控制台点击重置。\n".encode("utf-8-sig"), "faq.csv")
    assert doc.pages[0] == "问题：如何重置密钥？；答案：在控制台点击重置。"


def test_jsonl_bad_line_is_named():
    data = '{"title": "v2.3.0", "text": "新增 gRPC 支持"}\n{broken\n'.encode("utf-8")
    with pytest.raises(LoadError, match="第 2 行"):
        load_bytes(data, "log.jsonl")


def test_jsonl_records_keep_titles_as_headings():
    doc = load_bytes('{"title": "新增gRPC", "version": "v2.3.0", "text": "支持 gRPC。"}\n'.encode(), "log.jsonl")
    assert doc.pages[0].splitlines() == ["## 新增gRPC", "version：v2.3.0", "支持 gRPC。"]


def test_unsupported_type_is_named():
    with pytest.raises(LoadError, match="不支持"):
        load_bytes(b"x", "a.exe")
