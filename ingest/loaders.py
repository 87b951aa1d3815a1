"""One loader per file type. Every loader returns Markdown-flavoured pages: headings as ``#`` lines,
table rows as one line each (``a | b`` cells, or ``列名: 值；…`` records; see ingest.tables), so
cleaning and chunking treat all formats alike (headings give chunks their heading path; one line is one
sentence unit, and a table row one unit however many sentences it holds)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import LoadError
from ingest.encoding import decode_bytes
from ingest.ocr import IMAGE_SUFFIXES, load_image, read_scanned_pages
from ingest.office import load_pptx, load_xlsx
from ingest.tables import cell_row


@dataclass
class LoadedDocument:
    source: str
    title: str
    mime: str
    pages: list[str]  # one entry per page; formats without pages have one
    paged: bool = False  # True when pages are real (PDF, slides), so chunks carry page numbers
    # Pages are PDF text extraction (hard-wrapped lines, running headers and footers) and are cleaned as
    # such; None means "when paged". Slides are paged but laid out by their author: False.
    pdf_layout: bool | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


Loader = Callable[[bytes, str], LoadedDocument]


def _first_heading(text: str) -> str | None:
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("#"):
            title = s.lstrip("#").strip()
            if title:
                return title
    return None


def _stem(source: str) -> str:
    return Path(source).stem


def load_text(data: bytes, source: str) -> LoadedDocument:
    text = decode_bytes(data, source)
    return LoadedDocument(source, _stem(source), "text/plain", [text])


def load_markdown(data: bytes, source: str) -> LoadedDocument:
    text = decode_bytes(data, source)
    return LoadedDocument(source, _first_heading(text) or _stem(source), "text/markdown", [text])


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
    return LoadedDocument(source, title or _stem(source), "text/html", ["\n".join(lines)])


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
    # Pages without a text layer (scans) are read by OCR; the text layer is kept wherever there is one.
    pages, metadata = read_scanned_pages(data, source, pages)
    if not any(p.strip() for p in pages):
        raise LoadError(source, "PDF 中没有可提取的文字，OCR 也没有识别出文字 (no extractable text, none found by OCR either)",
                        "请确认扫描件清晰、文字方向正确")
    return LoadedDocument(source, meta_title.strip() or _stem(source), "application/pdf", pages, paged=True, metadata=metadata)


# -- DOCX -------------------------------------------------------------------------------------------
# A .docx is a ZIP archive, so it can be an archive bomb: a few hundred KB that unpack to gigabytes. The
# central directory declares every entry's sizes, and Python's zipfile never returns more than an entry's
# declared size, so checking the declared sizes before anything is decompressed bounds what parsing the
# file can cost. (python-docx parses its XML with entity resolution off, so no billion-laughs either.)

MB = 1024 * 1024
MAX_ARCHIVE_ENTRIES = 10_000
# The ratio limit applies to entries this large or larger: a small entry cannot be a bomb whatever its
# ratio, and Word's own styles.xml compresses about 30:1.
RATIO_CHECK_MIN_BYTES = 1 * MB
# Office documents embed Office documents (a chart's data is an .xlsx inside the .docx): one level of
# nested ZIP is inspected with the same limits, sizes counted against the same budget; anything deeper,
# and any compressed archive that is not a ZIP (gzip, 7z, RAR, ...), is refused.
MAX_ARCHIVE_NESTING = 1
MAX_NESTED_ARCHIVE_BYTES = 32 * MB
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_OTHER_ARCHIVE_MAGIC = (b"\x1f\x8b", b"7z\xbc\xaf\x27\x1c", b"Rar!\x1a\x07", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd")
_ARCHIVE_SUFFIXES = (".zip", ".gz", ".tgz", ".7z", ".rar", ".bz2", ".xz", ".zst", ".tar", ".jar", ".cab")


@dataclass(frozen=True)
class ArchiveLimits:
    max_unpacked_bytes: int
    max_ratio: float
    max_entries: int = MAX_ARCHIVE_ENTRIES

    @classmethod
    def of(cls, settings: Any) -> ArchiveLimits:
        """The limits a Settings object configures (upload_max_unpacked_mb, upload_max_compression_ratio)."""
        return cls(int(settings.upload_max_unpacked_mb * MB), float(settings.upload_max_compression_ratio))


def _default_archive_limits() -> ArchiveLimits:
    from core.settings import Settings

    fields = Settings.model_fields  # the settings' own defaults: one number, one place
    return ArchiveLimits(int(fields["upload_max_unpacked_mb"].default * MB), float(fields["upload_max_compression_ratio"].default))


# The ingest job sets the knowledge base's configured limits here for the loaders it calls (a loader
# takes only bytes and a name); outside a job the settings' defaults apply.
_archive_limits: ContextVar[ArchiveLimits | None] = ContextVar("zhiwen_archive_limits", default=None)


@contextmanager
def archive_limits(limits: ArchiveLimits) -> Iterator[None]:
    token = _archive_limits.set(limits)
    try:
        yield
    finally:
        _archive_limits.reset(token)


def _bomb(source: str, zh: str, en: str) -> LoadError:
    return LoadError(
        source, f"疑似压缩炸弹，拒绝导入：{zh} (likely archive bomb, refused: {en})",
        "正常的 Office 文档（Word、PowerPoint、Excel）不会这样，请确认文件来源；确需导入时，管理员可调大 upload_max_unpacked_mb / upload_max_compression_ratio",
    )


def check_archive(data: bytes, source: str, limits: ArchiveLimits | None = None) -> list[str]:
    """Refuse a ZIP container (DOCX, PPTX, XLSX) that would unpack to too much: total declared size over
    the limit, an entry whose compression ratio is over the limit, too many entries, or nested archives
    beyond one inspected level. Nothing is decompressed except a nested ZIP that already passed the size
    checks. Returns the entry names of the outer archive (the caller tells an Office file from other
    ZIPs by them)."""
    import zipfile

    limits = limits or _archive_limits.get() or _default_archive_limits()
    budget = {"entries": 0, "bytes": 0}
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return _check_zip(archive, source, limits, budget, depth=0, where="")
    except LoadError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, ValueError, EOFError, OSError, RuntimeError) as exc:
        label = Path(source).suffix.lstrip(".").upper() or "Office"  # DOCX, PPTX, XLSX
        raise LoadError(source, f"{label} 文件（ZIP 容器）损坏，无法读取 (corrupt {label}, broken ZIP container: {type(exc).__name__}: {exc})",
                        "请用 Word/PowerPoint/Excel 或 WPS 另存一份再导入")


def _check_zip(archive: Any, source: str, limits: ArchiveLimits, budget: dict[str, int], depth: int, where: str) -> list[str]:
    import zipfile

    infos = archive.infolist()
    budget["entries"] += len(infos)
    if budget["entries"] > limits.max_entries:
        raise _bomb(source, f"条目过多（超过 {limits.max_entries} 个）", f"more than {limits.max_entries} entries")
    for info in infos:  # every size first, before a single byte is decompressed
        budget["bytes"] += info.file_size
        if budget["bytes"] > limits.max_unpacked_bytes:
            mb = limits.max_unpacked_bytes / MB
            raise _bomb(source, f"解压后超过 {mb:g} MB", f"unpacks to more than {mb:g} MB")
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size >= RATIO_CHECK_MIN_BYTES and ratio > limits.max_ratio:
            raise _bomb(source, f"{where}{info.filename} 的压缩比 {ratio:.0f}:1 超过上限 {limits.max_ratio:g}:1",
                        f"compression ratio {ratio:.0f}:1 > {limits.max_ratio:g}:1")
        if info.flag_bits & 0x1:
            raise LoadError(source, f"压缩包中有加密的条目 {where}{info.filename} (encrypted entry)", "请去掉文档密码后再导入")
    for info in infos:
        if info.is_dir() or info.file_size == 0:
            continue
        with archive.open(info) as entry:
            head = entry.read(8)
        is_zip = head.startswith(_ZIP_MAGIC)
        if not (is_zip or head.startswith(_OTHER_ARCHIVE_MAGIC) or info.filename.lower().endswith(_ARCHIVE_SUFFIXES)):
            continue
        name = f"{where}{info.filename}"
        if not is_zip or depth >= MAX_ARCHIVE_NESTING or info.file_size > MAX_NESTED_ARCHIVE_BYTES:
            raise _bomb(source, f"含有嵌套的压缩包 {name}", f"nested archive {name}")
        try:
            with zipfile.ZipFile(io.BytesIO(archive.read(info))) as nested:
                _check_zip(nested, source, limits, budget, depth + 1, f"{name}/")
        except zipfile.BadZipFile as exc:
            raise _bomb(source, f"含有无法检查的嵌套压缩包 {name}", f"uninspectable nested archive {name}: {exc}")
    return [info.filename for info in infos]


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
    return LoadedDocument(source, title or _first_heading(text) or _stem(source), "application/vnd.openxmlformats-officedocument.wordprocessingml.document", [text])


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
    return LoadedDocument(source, _stem(source), "text/csv", ["\n".join(lines)], metadata={"columns": header})


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
    return LoadedDocument(source, _stem(source), "application/jsonl", ["\n".join(lines)])


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
