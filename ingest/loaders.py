"""One loader per file type. Every loader returns Markdown-flavoured pages: headings as ``#`` lines,
table rows as one line each (``a | b`` cells, or ``列名: 值；…`` records; see ingest.tables), so
cleaning and chunking treat all formats alike (headings give chunks their heading path; one line is one
sentence unit, and a table row one unit however many sentences it holds)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from core.errors import LoadError
from ingest.archives import check_archive
from ingest.encoding import decode_bytes
from ingest.loaded import LoadedDocument, Loader, first_heading, stem
from ingest.ocr import IMAGE_SUFFIXES, load_image, read_scanned_pages
from ingest.office import load_pptx, load_xlsx
from ingest.pdf_tables import with_tables
from ingest.tables import cell_row


def load_text(data: bytes, source: str) -> LoadedDocument:
    text = decode_bytes(data, source)
    return LoadedDocument(source, stem(source), "text/plain", [text])


def load_markdown(data: bytes, source: str) -> LoadedDocument:
    text = decode_bytes(data, source)
    return LoadedDocument(source, first_heading(text) or stem(source), "text/markdown", [text])


_HTML_DROP = ["script", "style", "noscript", "nav", "header", "footer", "aside", "form", "svg", "iframe"]
_HTML_BLOCKS = {"p", "div", "li", "dd", "dt", "blockquote", "pre", "section", "article", "br", "caption"}


def load_html(data: bytes, source: str) -> LoadedDocument:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(decode_bytes(data, source), "lxml")
    title_tag = soup.find("title")
    title = title_tag.get_text(strip=True) if title_tag else ""
    for tag in soup(_HTML_DROP):
        tag.decompose()
    body = soup.body or soup
    lines: list[str] = []
    for el in body.find_all(True):
        name = el.name
        if name in ("h1", "h2", "h3", "h4", "h5", "h6"):
            text = el.get_text(" ", strip=True)
            if text:
                lines.append("#" * int(name[1]) + " " + text)
                title = title or text
        elif name == "tr":
            row = cell_row([c.get_text(" ", strip=True) for c in el.find_all(["td", "th"])])
            if row:  # one line per row, so no chunk cuts it (ingest.tables)
                lines.append(row)
        elif name in _HTML_BLOCKS and not el.find(list(_HTML_BLOCKS | {"table", "h1", "h2", "h3", "h4", "h5", "h6"})):
            # Leaf blocks only: a <div> that wraps <p>s would repeat their text.
            text = el.get_text(" ", strip=True)
            if text:
                lines.append(text)
    if not lines:
        lines = [body.get_text("\n", strip=True)]
    return LoadedDocument(source, title or stem(source), "text/html", ["\n".join(lines)])


def load_pdf(data: bytes, source: str) -> LoadedDocument:
    import logging

    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # its warnings on broken files become our LoadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise LoadError(source, "PDF 已加密 (encrypted PDF)", "请先解除密码保护再导入")
        pages = [page.extract_text() or "" for page in reader.pages]
        meta_title = (reader.metadata.title if reader.metadata else None) or ""
    except LoadError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, OSError, IndexError) as exc:
        raise LoadError(source, f"PDF 文件损坏，无法解析 (corrupt PDF: {type(exc).__name__}: {exc})", "请用 PDF 阅读器另存一份再导入")
    # Ruled tables are re-read as rows (ingest.pdf_tables); pages without a text layer (scans) are read by
    # OCR; the text layer is kept wherever there is one.
    pages, n_tables = with_tables(data, pages)
    pages, metadata = read_scanned_pages(data, source, pages)
    if n_tables:
        metadata["tables"] = n_tables
    if not any(p.strip() for p in pages):
        raise LoadError(source, "PDF 中没有可提取的文字，OCR 也没有识别出文字 (no extractable text, none found by OCR either)",
                        "请确认扫描件清晰、文字方向正确")
    return LoadedDocument(source, meta_title.strip() or stem(source), "application/pdf", pages, paged=True, metadata=metadata)


# -- DOCX (a zip: ingest.archives.check_archive runs first) ------------------------------------

def load_docx(data: bytes, source: str) -> LoadedDocument:
    import zipfile

    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    check_archive(data, source)  # before python-docx decompresses anything
    try:
        document = docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise LoadError(source, f"DOCX 文件损坏 (corrupt DOCX: {exc})", "请用 Word/WPS 另存为 .docx 再导入")
    lines: list[str] = []
    for block in document.iter_inner_content():
        if isinstance(block, Paragraph):
            text = block.text.strip()
            if not text:
                continue
            style = (block.style.name if block.style is not None else "") or ""
            level = _docx_heading_level(style)
            lines.append(("#" * level + " " + text) if level else text)
        elif isinstance(block, Table):
            for row in block.rows:
                line = cell_row([c.text for c in row.cells])  # a cell's line breaks folded: one row, one line
                if line:
                    lines.append(line)
    title = (document.core_properties.title or "").strip()
    text = "\n".join(lines)
    return LoadedDocument(source, title or first_heading(text) or stem(source), "application/vnd.openxmlformats-officedocument.wordprocessingml.document", [text])


def _docx_heading_level(style: str) -> int:
    s = style.lower()
    if s == "title":
        return 1
    for prefix in ("heading ", "标题 "):
        if s.startswith(prefix) and s[len(prefix):].strip().isdigit():
            return min(int(s[len(prefix):]), 6)
    return 0


def load_csv(data: bytes, source: str) -> LoadedDocument:
    text = decode_bytes(data, source)
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",\t;|")
    except csv.Error:
        dialect = csv.excel
    rows = [r for r in csv.reader(io.StringIO(text), dialect) if any(c.strip() for c in r)]
    if not rows:
        raise LoadError(source, "CSV 中没有数据行 (no rows)")
    header, body = rows[0], rows[1:] or [rows[0]]
    lines = []
    for row in body:
        # One row is one line: "列名：值；列名：值", so each row is one retrievable, citable unit.
        pairs = [f"{h.strip()}：{v.strip()}" if h.strip() else v.strip() for h, v in zip(header, row) if v.strip()]
        lines.append("；".join(pairs))
    return LoadedDocument(source, stem(source), "text/csv", ["\n".join(lines)], metadata={"columns": header})


_JSON_TEXT_FIELDS = ("text", "content", "body", "answer", "output", "正文", "内容", "答案")
_JSON_TITLE_FIELDS = ("title", "question", "name", "instruction", "标题", "问题")


def load_jsonl(data: bytes, source: str) -> LoadedDocument:
    text = decode_bytes(data, source)
    lines: list[str] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise LoadError(source, f"第 {lineno} 行不是合法 JSON (line {lineno}: {exc.msg})", "修正该行或删除后重新导入")
        if not isinstance(record, dict):
            lines.append(str(record))
            continue
        title = next((str(record[k]) for k in _JSON_TITLE_FIELDS if record.get(k)), None)
        if title:
            lines.append("## " + title.replace("\n", " "))
        for key, value in record.items():
            if value in (None, "") or (title and str(value) == title):
                continue
            value_text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            lines.append(value_text if key in _JSON_TEXT_FIELDS else f"{key}：{value_text}")
    if not lines:
        raise LoadError(source, "JSONL 中没有记录 (no records)")
    return LoadedDocument(source, stem(source), "application/jsonl", ["\n".join(lines)])


LOADERS: dict[str, Loader] = {
    ".txt": load_text,
    ".text": load_text,
    ".md": load_markdown,
    ".markdown": load_markdown,
    ".html": load_html,
    ".htm": load_html,
    ".pdf": load_pdf,
    ".docx": load_docx,
    ".pptx": load_pptx,
    ".xlsx": load_xlsx,
    ".csv": load_csv,
    ".jsonl": load_jsonl,
    **{suffix: load_image for suffix in IMAGE_SUFFIXES},  # read by OCR (ingest.ocr; the ocr extra)
}

SUPPORTED_SUFFIXES = frozenset(LOADERS)


def load_bytes(data: bytes, source: str) -> LoadedDocument:
    """Pick the loader by extension, but trust content where the two disagree about PDF/ZIP."""
    suffix = Path(source).suffix.lower()
    loader = LOADERS.get(suffix)
    if loader is None:
        raise LoadError(source, f"不支持的文件类型 {suffix or '(无扩展名)'} (unsupported type)", "支持: " + " ".join(sorted(LOADERS)))
    if data.startswith(b"%PDF") and suffix != ".pdf":
        loader = load_pdf
    if suffix == ".pdf" and not data.lstrip()[:5].startswith(b"%PDF"):
        raise LoadError(source, "不是有效的 PDF 文件 (not a PDF: missing %PDF header)", "请确认文件完整")
    return loader(data, source)


def load_file(path: Path, source: str | None = None) -> LoadedDocument:
    source = source or str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LoadError(source, f"无法读取文件 (cannot read: {exc.strerror})")
    return load_bytes(data, source)
