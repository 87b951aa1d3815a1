"""OCR: text from images and from PDF pages without a text layer (scans), with rapidocr-onnxruntime.

rapidocr-onnxruntime ships PP-OCR's Chinese/English detection and recognition models inside its wheel,
so OCR works offline. It is an optional extra (``pip install 'zhiwen[ocr]'``): without it an image is
refused with that instruction, and a PDF keeps its text pages while the report counts the scanned ones.

Why it looks like this:

- One engine per process, built on first use under a lock: building loads three ONNX models (about a
  second), and a page then takes about two seconds on two cores. Calls are serialised too:
  ``RapidOCR.__call__`` stores per-call thresholds on the shared object, and onnxruntime already spreads
  one call over every core, so running two at once would gain nothing.
- Lines become sentences again: OCR returns one box per printed line. Lines are ordered top to bottom,
  boxes on one row joined, and the rows of one paragraph joined without a space where CJK meets and with
  one between Latin words; a vertical gap, an indented first line or a short line that ends a sentence
  starts a new paragraph (a blank line, which cleaning and chunking keep as a boundary).
- The engine's per-line 0°/180° classifier is off (it flipped sharp upright lines; see ``ocr_image``).
- Low-confidence lines are kept (they are usually nearly right) but counted and listed in the document's
  metadata, and the ingest result says so, so nobody trusts a blurred scan blindly.
- Images are checked before they are decoded: a few hundred KB of PNG can declare a gigapixel canvas
  (a decompression bomb), so the declared size is compared with ``MAX_IMAGE_PIXELS`` first.
- The slow step reports progress per page through a ContextVar (``ocr_progress``), since loaders take
  only bytes and a name; the CLI shows "OCR 第 3/10 页".
"""

from __future__ import annotations

import io
import re
import statistics
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import LoadError
from ingest.loaded import LoadedDocument

if TYPE_CHECKING:
    from PIL.Image import Image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
# Pillow's format name → the suffix an upload of that format is stored under (see ingest.uploads).
IMAGE_FORMATS = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "BMP": ".bmp", "TIFF": ".tif"}
_MIME = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "BMP": "image/bmp", "TIFF": "image/tiff"}
# An A4 page scanned at 600 dpi is 35 MP; a phone photo 12-50 MP. Beyond this, refuse before decoding.
MAX_IMAGE_PIXELS = 60_000_000
MAX_IMAGE_FRAMES = 500  # pages of a multi-page TIFF
LOW_CONFIDENCE = 0.8  # a line recognised with less confidence than this is reported
LOW_CONFIDENCE_LISTED = 20  # at most this many low-confidence lines are kept in metadata
UPSIDE_DOWN_SUSPECT = 0.7  # a page whose median line confidence is below this is tried turned round
# Scanned PDF pages are rendered so the long side is what the engine works at (it shrinks anything
# larger to 2000 px), at most 300 dpi.
RENDER_LONG_SIDE_PX = 2000
RENDER_MAX_DPI = 300

OCR_EXTRA_HINT = "pip install 'zhiwen[ocr]'"
OCR_MISSING = f"需要 OCR 组件：{OCR_EXTRA_HINT} (needs the ocr extra)"


class OcrUnavailable(Exception):
    """rapidocr-onnxruntime is not installed (the ``ocr`` extra)."""


@dataclass
class OcrLine:
    text: str
    confidence: float
    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def height(self) -> float:
        return self.y1 - self.y0


@dataclass
class OcrPage:
    text: str  # paragraphs separated by a blank line
    lines: list[OcrLine] = field(default_factory=list)

    @property
    def low_confidence(self) -> list[OcrLine]:
        return [ln for ln in self.lines if ln.confidence < LOW_CONFIDENCE]


# -- the engine ------------------------------------------------------------------------------------
def _import_rapidocr() -> type:
    """The engine class; ImportError without the ocr extra. (Tests replace this to simulate that.)"""
    from rapidocr_onnxruntime import RapidOCR

    return RapidOCR


_engine: Any = None
_build_lock = threading.Lock()
_call_lock = threading.Lock()


def ocr_engine() -> Any:
    """The process's one RapidOCR instance, built on first use; OcrUnavailable without the extra."""
    global _engine
    try:
        engine_class = _import_rapidocr()  # cheap after the first time; asked every time so absence is seen
    except ImportError as exc:
        raise OcrUnavailable(str(exc)) from None
    if _engine is None:
        with _build_lock:
            if _engine is None:
                _engine = engine_class()
    return _engine


def ocr_available() -> bool:
    try:
        _import_rapidocr()
    except ImportError:
        return False
    return True


# -- progress --------------------------------------------------------------------------------------
OcrProgress = Callable[[str, int, int], None]  # (source, page being read (1-based), pages to read)
_progress: ContextVar[OcrProgress | None] = ContextVar("zhiwen_ocr_progress", default=None)


@contextmanager
def ocr_progress(callback: OcrProgress) -> Iterator[None]:
    """Within this block, every page about to be OCR'd is reported to ``callback`` (same thread/context)."""
    token = _progress.set(callback)
    try:
        yield
    finally:
        _progress.reset(token)


def _report(source: str, page: int, pages: int) -> None:
    callback = _progress.get()
    if callback is not None:
        callback(source, page, pages)


# -- one image → text ------------------------------------------------------------------------------
def ocr_image(image: Image) -> OcrPage:
    """Recognise one page image (any Pillow mode) and rebuild its paragraphs.

    The engine's per-line 0°/180° classifier is off: on clean, sharp pages it turned about one upright
    line in ten upside down and read it as garbage (bench.ocr: English 0.83 → 1.00 character accuracy
    without it). A page that is really upside down shows as a page of doubtful lines, or of none; it is
    read again turned round, and the better reading kept."""
    engine = ocr_engine()
    rgb = _flatten(image)
    page = _recognise(engine, rgb)
    if not page.lines or statistics.median(ln.confidence for ln in page.lines) < UPSIDE_DOWN_SUSPECT:
        turned = _recognise(engine, rgb.rotate(180))
        if _weight(turned) > _weight(page):
            return turned
    return page


def _recognise(engine: Any, rgb: Image) -> OcrPage:
    import numpy as np

    with _call_lock:
        result, _ = engine(np.asarray(rgb)[:, :, ::-1], use_cls=False)  # arrays are taken as OpenCV's BGR
    lines = []
    for box, text, score in result or []:
        xs, ys = [p[0] for p in box], [p[1] for p in box]
        if str(text).strip():
            lines.append(OcrLine(str(text).strip(), float(score), min(xs), min(ys), max(xs), max(ys)))
    return OcrPage(lines_to_text(lines), lines)


def _weight(page: OcrPage) -> float:
    """Confidence-weighted characters: which of two readings of a page says more, more surely."""
    return sum(ln.confidence * len(ln.text) for ln in page.lines)


def _flatten(image: Image) -> Image:
    """RGB on white: a transparent PNG's text would otherwise land on black."""
    from PIL import Image as PILImage

    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = PILImage.new("RGBA", rgba.size, (255, 255, 255, 255))
        return PILImage.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


_CJK = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef\u3000-\u303f]")
_SENTENCE_END = re.compile(r"[。！？；：.!?;:」”』)）]$")


def _glue(left: str, right: str) -> str:
    """Nothing where CJK meets (Chinese has no spaces), one space between Latin words."""
    if _CJK.match(left[-1:]) or _CJK.match(right[:1]):
        return ""
    return " "


def _rows(lines: list[OcrLine]) -> list[list[OcrLine]]:
    """Boxes on one printed row together (a row split by a gap or table columns), rows top to bottom."""
    rows: list[list[OcrLine]] = []
    for line in sorted(lines, key=lambda ln: (ln.y0 + ln.y1) / 2):
        centre = (line.y0 + line.y1) / 2
        if rows:
            last = rows[-1]
            top, bottom = min(ln.y0 for ln in last), max(ln.y1 for ln in last)
            if top < centre < bottom:
                last.append(line)
                continue
        rows.append([line])
    return [sorted(row, key=lambda ln: ln.x0) for row in rows]


def lines_to_text(lines: list[OcrLine]) -> str:
    """Rebuild paragraphs from OCR lines (see the module docstring): rows joined into paragraphs,
    paragraphs separated by a blank line."""
    if not lines:
        return ""
    rows = _rows(lines)
    height = statistics.median(ln.height for ln in lines) or 1.0
    paragraphs: list[str] = []
    current = ""
    prev: tuple[float, float, float] | None = None  # (x0, x1, y1) of the previous row
    right_edge = max(ln.x1 for ln in lines)
    for row in rows:
        text = " ".join(ln.text for ln in row)
        x0, x1 = row[0].x0, max(ln.x1 for ln in row)
        y0 = min(ln.y0 for ln in row)
        new_paragraph = prev is None or (
            y0 - prev[2] > 0.8 * height  # a blank line's worth of gap
            or x0 - prev[0] > 1.2 * height  # an indented first line (Chinese indents two characters)
            or (prev[1] < right_edge - 2 * height and _SENTENCE_END.search(current) is not None)  # short last line
        )
        if new_paragraph:
            if current:
                paragraphs.append(current)
            current = text
        else:
            current = current + _glue(current, text) + text
        prev = (x0, x1, max(ln.y1 for ln in row))
    paragraphs.append(current)
    return "\n\n".join(p for p in paragraphs if p)


# -- images ----------------------------------------------------------------------------------------
def open_image(data: bytes, source: str) -> Image:
    """The image, its declared size checked against MAX_IMAGE_PIXELS before anything is decoded;
    LoadError for a corrupt, unsupported or oversized image."""
    from PIL import Image as PILImage
    from PIL import UnidentifiedImageError

    kind = _signature(data)
    try:
        image = PILImage.open(io.BytesIO(data))  # reads the header only
    except PILImage.DecompressionBombError:  # past Pillow's own cap, far above ours
        raise LoadError(source, f"{kind}图片像素过多，疑似解压炸弹，拒绝导入 (image declares too many pixels: decompression bomb?)",
                        "请缩小图片后再导入") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        detail = "" if isinstance(exc, UnidentifiedImageError) else f": {type(exc).__name__}: {exc}"
        raise LoadError(source, f"{kind}图片损坏或无法识别 (corrupt or unreadable {kind}image{detail})",
                        "请用看图软件另存为 PNG 或 JPEG 再导入") from None
    if image.format not in IMAGE_FORMATS:
        raise LoadError(source, f"不支持的图片格式 {image.format} (unsupported image format)", "请另存为 PNG 或 JPEG 再导入")
    width, height = image.size
    if width * height > MAX_IMAGE_PIXELS:
        raise LoadError(
            source, f"图片过大：{width}×{height} 像素，上限 {MAX_IMAGE_PIXELS // 1_000_000} 百万像素 "
                    f"(image too large: {width}x{height} pixels > {MAX_IMAGE_PIXELS // 1_000_000} MP; decompression bomb?)",
            "请缩小图片后再导入",
        )
    return image


def _signature(data: bytes) -> str:
    """The image format its first bytes claim ("PNG "), for messages about files Pillow cannot read."""
    for magic, name in ((b"\x89PNG", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"RIFF", "WEBP"), (b"II*\x00", "TIFF"),
                        (b"MM\x00*", "TIFF"), (b"BM", "BMP")):
        if data.startswith(magic):
            return name + " "
    return ""


def image_frames(image: Image, source: str) -> Iterator[Image]:
    """Each page of an image (a TIFF may hold many), upright (a phone photo's EXIF rotation applied)."""
    from PIL import ImageOps, ImageSequence

    try:
        for number, frame in enumerate(ImageSequence.Iterator(image), start=1):
            if number > MAX_IMAGE_FRAMES:
                raise LoadError(source, f"图片页数超过 {MAX_IMAGE_FRAMES} (more than {MAX_IMAGE_FRAMES} frames)", "请拆分后再导入")
            if frame.size[0] * frame.size[1] > MAX_IMAGE_PIXELS:
                raise LoadError(source, f"第 {number} 页图片过大 (frame {number} too large)", "请缩小图片后再导入")
            upright = ImageOps.exif_transpose(frame)
            upright.load()
            yield upright
    except LoadError:
        raise
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise LoadError(source, f"图片损坏或不完整 (corrupt or truncated image: {exc})", "请用看图软件另存为 PNG 或 JPEG 再导入") from None


def load_image(data: bytes, source: str) -> LoadedDocument:
    """An image (or each page of a multi-page TIFF) read by OCR: one page each, so citations say page 1."""

    image = open_image(data, source)
    if not ocr_available():
        raise LoadError(source, OCR_MISSING, "图片需要文字识别 (images need OCR)")
    total = min(getattr(image, "n_frames", 1), MAX_IMAGE_FRAMES + 1)  # from the header: frames decode one at a time
    pages: list[OcrPage] = []
    for number, frame in enumerate(image_frames(image, source), start=1):
        _report(source, number, total)
        pages.append(_ocr_or_error(frame, source))
    if not any(p.text.strip() for p in pages):
        raise LoadError(source, "图片中没有识别出文字 (OCR found no text in the image)", "请确认图片清晰、文字方向正确")
    metadata = ocr_metadata({n: p for n, p in enumerate(pages, start=1)}, [])
    return LoadedDocument(source, Path(source).stem, _MIME[image.format], [p.text for p in pages], paged=True, metadata=metadata)


def _ocr_or_error(image: Image, source: str) -> OcrPage:
    try:
        return ocr_image(image)
    except OcrUnavailable:
        raise LoadError(source, OCR_MISSING, "图片需要文字识别 (images need OCR)") from None


# -- scanned PDF pages -----------------------------------------------------------------------------
def read_scanned_pages(data: bytes, source: str, pages: list[str]) -> tuple[list[str], dict[str, Any]]:
    """The PDF's pages with every page that has no text layer but shows something replaced by its OCR
    text, and the metadata that says which pages were OCR'd (or, without the ocr extra, need OCR).
    Blank pages are left alone. A PDF with no text at all and no OCR is a LoadError."""
    import pypdfium2 as pdfium

    candidates = [n for n, text in enumerate(pages, start=1) if not text.strip()]
    if not candidates:
        return pages, {}
    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        raise LoadError(source, f"PDF 页面无法渲染，不能做 OCR (cannot render pages for OCR: {exc})", "请用 PDF 阅读器另存一份再导入") from None
    try:
        scanned = [n for n in candidates if n <= len(pdf) and not _is_blank(pdf[n - 1])]
        if not scanned:
            return pages, {}
        if not ocr_available():
            if len(scanned) == len(pages) or not any(p.strip() for p in pages):
                raise LoadError(source, f"PDF 没有文字层（扫描件），{OCR_MISSING}", "扫描件需要文字识别 (scanned pages need OCR)")
            return pages, ocr_metadata({}, scanned)
        out = list(pages)
        read: dict[int, OcrPage] = {}
        for k, number in enumerate(scanned, start=1):
            _report(source, k, len(scanned))
            read[number] = _ocr_or_error(_render(pdf[number - 1]), source)
            out[number - 1] = read[number].text
        return out, ocr_metadata(read, [])
    finally:
        pdf.close()


def _is_blank(page: Any) -> bool:
    """Nothing drawn on the page: a thumbnail (a few ms) has no dark pixel."""
    thumbnail = page.render(scale=0.25, grayscale=True).to_pil().convert("L")
    return thumbnail.getextrema()[0] > 245


def _render(page: Any) -> Image:
    width, height = page.get_size()  # points
    scale = min(RENDER_MAX_DPI / 72, RENDER_LONG_SIDE_PX / max(width, height, 1.0))
    return page.render(scale=scale).to_pil()


# -- what the report says --------------------------------------------------------------------------
def ocr_metadata(read: dict[int, OcrPage], missing: list[int]) -> dict[str, Any]:
    """Document.metadata entries: pages read by OCR, low-confidence lines (count and the first few),
    pages that needed OCR but had no engine."""
    meta: dict[str, Any] = {}
    if read:
        low = [(n, ln) for n, page in sorted(read.items()) for ln in page.low_confidence]
        meta["ocr_pages"] = sorted(read)
        meta["ocr_low_confidence_threshold"] = LOW_CONFIDENCE
        meta["ocr_low_confidence_count"] = len(low)
        meta["ocr_low_confidence"] = [
            {"page": n, "text": ln.text, "confidence": round(ln.confidence, 3)} for n, ln in low[:LOW_CONFIDENCE_LISTED]
        ]
    if missing:
        meta["ocr_missing_pages"] = missing
    return meta


def _page_list(pages: list[int]) -> str:
    shown = "、".join(str(n) for n in pages[:10])
    return shown + ("…" if len(pages) > 10 else "")


def ocr_warning(metadata: dict[str, Any]) -> str:
    """One sentence for the ingest result of a document that went in: how much came from OCR, how much
    is doubtful, and what was left out for want of the extra. "" when OCR played no part."""
    zh: list[str] = []
    en: list[str] = []
    read = metadata.get("ocr_pages") or []
    low = int(metadata.get("ocr_low_confidence_count") or 0)
    missing = metadata.get("ocr_missing_pages") or []
    if read:
        zh.append(f"{len(read)} 页由 OCR 识别")
        en.append(f"{len(read)} page{'s' if len(read) > 1 else ''} read by OCR")
    if low:
        threshold = metadata.get("ocr_low_confidence_threshold", LOW_CONFIDENCE)
        zh.append(f"{low} 行识别置信度低于 {threshold:g}，请核对原文")
        en.append(f"{low} line{'s' if low > 1 else ''} below confidence {threshold:g}: check {'them' if low > 1 else 'it'} against the original")
    if missing:
        zh.append(f"第 {_page_list(missing)} 页没有文字层，共 {len(missing)} 页需要 OCR 组件（{OCR_EXTRA_HINT}），未导入")
        en.append(f"{len(missing)} page{'s' if len(missing) > 1 else ''} without a text layer need the ocr extra, not imported")
    if not zh:
        return ""
    return "；".join(zh) + " (" + "; ".join(en) + ")"
