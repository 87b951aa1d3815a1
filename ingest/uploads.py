"""Uploaded files (web UI, HTTP API): checked, stored under a generated name, then ingested like any file.

``ingest.documents.ingest_upload`` is the one entry point for every surface; this module holds what it
builds on (names, content checks, storage, locks) and imports nothing of the pipeline. In order:

1. Size: ``len(data)`` against ``upload_max_mb`` before anything looks inside.
2. Type from content, never from the name or the client's Content-Type: ``%PDF-`` is a PDF; a ZIP with
   ``[Content_Types].xml`` and ``word/document.xml`` is a DOCX (``ppt/presentation.xml`` a PPTX,
   ``xl/workbook.xml`` an XLSX; any other ZIP is refused, whatever its name), after the archive-bomb
   check in ``ingest.archives.check_archive`` (the same function the DOCX, PPTX and XLSX loaders run, so
   ``zhiwen ingest`` of a bomb from disk is refused too); anything else must be text (no NUL bytes, decodable by
   ``ingest.encoding``, almost no control characters), and the extension only picks the text flavour
   (.md, .csv, .jsonl; .html needs markup, and markup without a known extension is HTML). An image (PNG,
   JPEG, WEBP, BMP, TIFF by signature) is one when Pillow reads its header and it declares no more than
   ``ingest.ocr.MAX_IMAGE_PIXELS`` (a decompression bomb is refused before decoding); it is read by OCR.
   Executables, GIFs, other archives and binary junk are refused with the list of supported types; so is
   text named .pdf/.docx/.png…, which is nearly always an error page saved by a failed download.
3. Storage: ``$ZHIWEN_DATA_DIR/uploads/<kb>/<sha256(kb, name)[:32]><sniffed suffix>``. Nothing the client
   sends becomes part of a path: the knowledge-base name is validated, the file name only feeds a hash,
   and the suffix comes from a closed list. ``../../etc/passwd``, ``..\\x.txt``, absolute paths, NUL bytes,
   names of dots, CON/NUL, right-to-left overrides all land in that folder as hex names.
4. Ingest: the stored file is ingested as ``SourceFile(path=<stored file>, source="上传/<name>")``, where
   ``name`` is the original file name, sanitised for display (last path component, NFC, no control or
   bidi/format characters). The catalogue, the document list and citations show ``上传/员工手册.pdf``,
   never a hash. Because the stored name is a function of (kb, name), the source resolves back to its file:
   ``stored_upload`` finds it for ``reindex_document`` and ``remove_document`` (ingest.documents), which
   re-read it or delete it with the document. Uploading 员工手册.pdf again replaces the document
   incrementally (status "updated"), as re-ingesting a changed path does. The ``上传/`` prefix keeps
   uploads apart from files ingested by path and tells the pipeline where to look. Deriving the stored
   name rather than recording it needs no catalogue change, puts no server path into Document.metadata
   (which the API returns), and survives moving the data dir. The loader follows the stored file's
   (sniffed) suffix, so a PDF uploaded as 报告.txt is read as a PDF and still shown as 报告.txt.

Each (kb, name) has a file lock around store + ingest (threads and processes alike): N simultaneous uploads
of one file give one stored copy and one document (one "indexed", the rest "unchanged"). A new version is
written to a staging file first and moved over the stored copy only once it is in the catalogue, so a
refused or broken new version leaves the old document and its file as they were. Readers keep querying the
last consistent index snapshot meanwhile (ingest.kb).

Document text is data: it is indexed and quoted, never interpreted; the prompt fences it off (llm.prompts).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import unicodedata
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from core.atomic import atomic_write_bytes
from core.errors import LoadError
from core.settings import Settings
from ingest.archives import ArchiveLimits, check_archive
from ingest.encoding import decode_bytes
from ingest.kb import validate_name
from ingest.ocr import IMAGE_FORMATS, IMAGE_SUFFIXES, open_image

UPLOAD_PREFIX = "上传/"
MAX_NAME_CHARS = 100
LOCK_TIMEOUT_S = 600.0
STORED_SUFFIXES = (".pdf", ".docx", ".pptx", ".xlsx", ".txt", ".md", ".csv", ".jsonl", ".html", *IMAGE_FORMATS.values())
SUPPORTED_HINT = ("支持的类型 (supported): PDF、Word .docx、PowerPoint .pptx、Excel .xlsx、文本 .txt .md .csv .jsonl .html、"
                  "图片 .png .jpg .webp .bmp .tif 经 OCR 识别")
# Binary formats by their declared extension: text named like one is an error, not a text flavour.
_BINARY_DECLARED = (".pdf", ".docx", ".pptx", ".xlsx", *IMAGE_SUFFIXES)
# An Office Open XML package is a ZIP with [Content_Types].xml and its main part.
_OFFICE_MAIN_PARTS = (("word/document.xml", ".docx"), ("ppt/presentation.xml", ".pptx"), ("xl/workbook.xml", ".xlsx"))

# Extensions that pick a text flavour; any other extension (or none) means plain text, or HTML by markup.
_TEXT_FLAVOURS = {".txt": ".txt", ".text": ".txt", ".md": ".md", ".markdown": ".md", ".csv": ".csv",
                  ".jsonl": ".jsonl", ".html": ".html", ".htm": ".html"}
_HTML_MARKUP = re.compile(
    rb"<(?:!doctype\s+html|html|head|body|title|meta|p|div|span|h[1-6]|table|tr|td|ul|ol|li|br|a|img|section|article)\b[^>]*>",
    re.IGNORECASE,
)
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f\ufffd]")
_UTF16_32_BOMS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)), *(f"LPT{i}" for i in range(10))}
# Characters that draw as a slash or are special in Windows names and HTML: shown as "_".
_LOOKALIKES = re.compile(r"[\uff0f\uff3c\u2215\u2044\u29f8\u29f9<>:\"|?*]")

# Leading bytes of formats we refuse, named so the message can say what the file really is.
_BINARY_MAGIC: list[tuple[bytes, str, str]] = [
    (b"\x7fELF", "Linux 可执行文件 (ELF)", "an ELF executable"),
    (b"\xcf\xfa\xed\xfe", "macOS 可执行文件 (Mach-O)", "a Mach-O executable"),
    (b"\xce\xfa\xed\xfe", "macOS 可执行文件 (Mach-O)", "a Mach-O executable"),
    (b"\xca\xfe\xba\xbe", "可执行文件或 Java 类文件", "a Mach-O or Java class file"),
    (b"\x00asm", "WebAssembly 程序", "a WebAssembly module"),
    (b"\x1f\x8b", "gzip 压缩包", "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "7z 压缩包", "a 7z archive"),
    (b"Rar!\x1a\x07", "RAR 压缩包", "a RAR archive"),
    (b"\xfd7zXZ\x00", "xz 压缩包", "an xz archive"),
    (b"\x28\xb5\x2f\xfd", "zstd 压缩包", "a zstd archive"),
    (b"\x89PNG\r\n\x1a\n", "PNG 图片", "a PNG image"),
    (b"\xff\xd8\xff", "JPEG 图片", "a JPEG image"),
    (b"GIF87a", "GIF 图片", "a GIF image"),
    (b"GIF89a", "GIF 图片", "a GIF image"),
    (b"II*\x00", "TIFF 图片", "a TIFF image"),
    (b"MM\x00*", "TIFF 图片", "a TIFF image"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "旧版 Office 文件 (.doc/.xls/.ppt)", "a legacy Office file"),
    (b"SQLite format 3\x00", "SQLite 数据库", "an SQLite database"),
]


# -- names -----------------------------------------------------------------------------------------
def safe_filename(name: str | None) -> str:
    """The name to show users: the last path component, NFC, without control, bidi-override or other
    format characters, slash look-alikes, leading dots or trailing dots/spaces, at most MAX_NAME_CHARS.
    Never a path and never used as one (files are stored under generated names). "" when nothing is left."""
    base = unicodedata.normalize("NFC", re.split(r"[\\/]", name or "")[-1])
    base = "".join(" " if ch.isspace() else ch for ch in base if unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn"))
    base = re.sub(r" {2,}", " ", _LOOKALIKES.sub("_", base)).strip().lstrip(".").rstrip(". ")
    if base.split(".")[0].strip().upper() in _WINDOWS_RESERVED:
        base = "_" + base
    if len(base) > MAX_NAME_CHARS:
        stem, suffix = os.path.splitext(base)
        suffix = suffix if len(suffix) <= 16 else ""
        base = stem[: MAX_NAME_CHARS - len(suffix)].rstrip(". ") + suffix
    return base


def upload_source(name: str) -> str:
    """The catalogue source of an upload: what the document list and citations show."""
    return UPLOAD_PREFIX + name


def is_upload_source(source: str) -> bool:
    return source.startswith(UPLOAD_PREFIX) and "/" not in source[len(UPLOAD_PREFIX):] and len(source) > len(UPLOAD_PREFIX)


def uploads_dir(kb_name: str, settings: Settings) -> Path:
    return settings.data_dir / "uploads" / validate_name(kb_name)


def _stored_key(kb_name: str, source: str) -> str:
    return hashlib.sha256(f"{kb_name}\x00{source[len(UPLOAD_PREFIX):]}".encode()).hexdigest()[:32]


def stored_upload(kb_name: str, source: str, settings: Settings) -> Path | None:
    """The stored copy behind an upload's source (None for a source that is not an upload, or no copy)."""
    if not is_upload_source(source):
        return None
    directory, key = uploads_dir(kb_name, settings), _stored_key(kb_name, source)
    found = [directory / f"{key}{suffix}" for suffix in STORED_SUFFIXES if (directory / f"{key}{suffix}").is_file()]
    return max(found, key=lambda p: p.stat().st_mtime_ns) if found else None


@contextlib.contextmanager
def upload_lock(kb_name: str, source: str, settings: Settings) -> Iterator[None]:
    """Serialise every change to one uploaded document: upload, re-index, delete (any thread or process).
    A no-op for sources that are not uploads."""
    if not is_upload_source(source):
        yield
        return
    locks = uploads_dir(kb_name, settings) / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(locks / f"{_stored_key(kb_name, source)}.lock"), timeout=LOCK_TIMEOUT_S)
    try:
        lock.acquire()
    except Timeout:
        name = source[len(UPLOAD_PREFIX):]
        raise LoadError(name, "同名文件正在导入或修改，请稍后重试 (busy: the same file is being changed)") from None
    try:
        yield
    finally:
        lock.release()


def discard_upload(kb_name: str, source: str, settings: Settings) -> None:
    """Delete an upload's stored copies (call under upload_lock, after its document left the catalogue)."""
    if is_upload_source(source):
        key = _stored_key(kb_name, source)
        for suffix in STORED_SUFFIXES:
            (uploads_dir(kb_name, settings) / f"{key}{suffix}").unlink(missing_ok=True)


# -- content ---------------------------------------------------------------------------------------
def _refuse(name: str, declared: str, zh_what: str, en_what: str, hint: str = SUPPORTED_HINT) -> LoadError:
    """What the content is, against what the name promised."""
    if declared in _BINARY_DECLARED:
        label = declared[1:].upper()
        reason = f"内容不是 {label}，而是{zh_what} (content is not a {label}: it is {en_what})"
    elif declared in _TEXT_FLAVOURS:
        reason = f"内容不是文本，而是{zh_what} (content is not text: it is {en_what})"
    else:
        reason = f"不支持的文件内容：{zh_what} (unsupported content: {en_what})"
    return LoadError(name, reason, hint)


def _binary_kind(data: bytes) -> tuple[str, str] | None:
    for magic, zh, en in _BINARY_MAGIC:
        if data.startswith(magic):
            return zh, en
    if data.startswith(b"MZ") and b"\x00" in data[:64]:
        return "Windows 可执行文件 (PE)", "a Windows executable"
    if data[257:262] == b"ustar":
        return "tar 归档", "a tar archive"
    return None


def _looks_like_image(data: bytes) -> bool:
    """PNG, JPEG, WEBP, TIFF by their signatures; BMP ("BM") only with its reserved header bytes zero,
    so a text file that starts with "BM" is still text."""
    if data.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"II*\x00", b"MM\x00*")):
        return True
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return True
    return data[:2] == b"BM" and len(data) >= 26 and data[6:10] == b"\x00\x00\x00\x00"


def _zip_kind(names: list[str]) -> tuple[str, str]:
    if "mimetype" in names:
        return "OpenDocument 或 EPUB 文件", "an OpenDocument/EPUB file"
    return "ZIP 压缩包", "a ZIP archive"


def _check_text(name: str, declared: str, data: bytes) -> None:
    """Text is what ingest.encoding can decode, with no NUL bytes (bar UTF-16/32 with a BOM) and almost
    no control characters; a text file in an encoding it cannot tell gets its advice (convert to UTF-8)."""
    if b"\x00" in data and not data.startswith(_UTF16_32_BOMS):
        raise _refuse(name, declared, "二进制数据", "binary data")
    try:
        text = decode_bytes(data, name)
    except LoadError:
        if declared in _BINARY_DECLARED:
            raise _refuse(name, declared, "无法识别的数据", "unrecognised data") from None
        raise
    if len(_CONTROL.findall(text)) > max(8, len(text) // 200):
        raise _refuse(name, declared, "二进制数据", "binary data")


def sniff_type(name: str, data: bytes, settings: Settings) -> str:
    """The suffix the content deserves (one of STORED_SUFFIXES), or LoadError saying what it really is.
    The declared extension only picks among text flavours."""
    declared = Path(name).suffix.lower()
    if data[:1024].lstrip().startswith(b"%PDF-"):
        return ".pdf"
    if data.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        names = check_archive(data, name, ArchiveLimits.of(settings))
        for main_part, suffix in _OFFICE_MAIN_PARTS:
            if "[Content_Types].xml" in names and main_part in names:
                return suffix
        raise _refuse(name, declared, *_zip_kind(names))
    if _looks_like_image(data):
        # Pillow reads the header only: the format, and the pixel count against the decompression-bomb cap.
        return IMAGE_FORMATS[open_image(data, name).format]
    kind = _binary_kind(data)
    if kind is not None:
        raise _refuse(name, declared, *kind)
    _check_text(name, declared, data)
    markup = _HTML_MARKUP.search(data[:65536]) is not None
    if declared in _BINARY_DECLARED:
        zh, en = ("HTML 网页", "an HTML page") if markup else ("纯文本", "plain text")
        raise _refuse(name, declared, zh, en, "常见原因：下载失败时保存下来的错误页面，请重新获取原文件；" + SUPPORTED_HINT)
    flavour = _TEXT_FLAVOURS.get(declared)
    if flavour == ".html" or flavour is None:
        return ".html" if markup else ".txt"
    return flavour


# -- checks and storage ----------------------------------------------------------------------------
def check_upload(kb_name: str, filename: str, data: bytes, settings: Settings) -> tuple[str, str]:
    """(display name, stored suffix) for an upload that may go in; LoadError(name, reason, hint) for one
    that may not: too large, empty, content not a supported type, archive bomb."""
    name = safe_filename(filename)
    shown = name or "(未命名 unnamed)"
    limit = settings.upload_max_mb * 1024 * 1024
    if len(data) > limit:
        raise LoadError(
            shown, f"文件太大：{len(data) / 1024 / 1024:.1f} MB，上限 {settings.upload_max_mb} MB "
                   f"(file too large: {len(data) / 1024 / 1024:.1f} MB > {settings.upload_max_mb} MB)",
            "请拆分文件后再上传；管理员可调整 upload_max_mb",
        )
    if not data or data.isspace():
        raise LoadError(shown, "文件为空 (empty file)", "检查文件内容后重新上传")
    validate_name(kb_name)
    suffix = sniff_type(shown, data, settings)
    if not name:
        name = f"未命名-{hashlib.sha256(data).hexdigest()[:8]}{suffix}"
    return name, suffix


@contextlib.contextmanager
def staged_upload(kb_name: str, source: str, suffix: str, data: bytes, settings: Settings) -> Iterator[tuple[Path, Callable[[], None]]]:
    """A staging copy of a new version (call under upload_lock) and ``keep``, which makes it the stored
    copy once the catalogue holds its text; without ``keep`` the staging file goes and the old copy stays."""
    directory = uploads_dir(kb_name, settings)
    key = _stored_key(kb_name, source)
    staging = directory / ".staging" / f"{key}-{uuid.uuid4().hex}{suffix}"

    def keep() -> None:
        os.replace(staging, directory / f"{key}{suffix}")
        for other in STORED_SUFFIXES:
            if other != suffix:
                (directory / f"{key}{other}").unlink(missing_ok=True)

    try:
        atomic_write_bytes(staging, data)
        yield staging, keep
    finally:
        staging.unlink(missing_ok=True)
