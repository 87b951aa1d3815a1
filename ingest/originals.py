"""The original file behind a document, and a PDF page rendered with a cited passage marked on it.

Where the bytes are: an upload's stored copy (``ingest.uploads.stored_upload``), or the path it was
ingested from. Either is shown only while its bytes still hash to the document's ``content_hash``: a
file changed or replaced since ingest would put the wrong page under a citation, so it counts as gone
(re-index it to see it again).

A PDF page is rendered with pypdfium2 (optional: without it, callers fall back to the passage in
context). The cited text is found on the page by its characters, whitespace ignored on both sides and
width-normalised (NFKC), because the catalogue holds cleaned text: PDF lines were re-joined and spaces
between CJK characters dropped, so the quote is rarely a literal substring of the page's text layer.
A long quote is looked for line by line when it is not found whole (a page break or a dropped running
header can sit inside it).
"""

from __future__ import annotations

import hashlib
import io
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from core.services import Services
from core.settings import Settings
from ingest.kb import shared_kb
from ingest.uploads import stored_upload
from moderation.moderator import moderator_for

MAX_RENDER_BYTES = 200 * 1024 * 1024
_MIN_PIECE_CHARS = 4  # shorter lines of a quote are not looked for alone: they would match anywhere


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def original_shows_masked(kb_name: str, source: str, settings: Settings, services: Services, page: int | None = None) -> bool:
    """Whether the original file (one page of it, or all of it) holds what the answer's rules mask: PII
    masked at ingest (recorded per page) or masked for display. Such a page is not rendered and such a
    file not offered for download: the image or the bytes would show it unmasked."""
    catalog = shared_kb(kb_name, settings, services).catalog
    document = catalog.document_by_source(source)
    if document is None:
        return False
    masked_at_ingest = document.metadata.get("masked_pages", [])
    if masked_at_ingest and (page is None or page in masked_at_ingest):
        return True
    moderator = moderator_for(settings, services)
    if moderator is None:
        return False
    chunks = [c for c in catalog.chunks_of_document(document.id) if page is None or c.page == page]
    return any(moderator.check(c.text, "answer", audit=False).changed for c in chunks)


def original_file(kb_name: str, source: str, settings: Settings, services: Services) -> Path | None:
    """The file a document was ingested from, if it is still there unchanged; None otherwise."""
    document = shared_kb(kb_name, settings, services).catalog.document_by_source(source)
    if document is None:
        return None
    path = stored_upload(kb_name, source, settings) or Path(source)
    try:
        if not path.is_file() or path.stat().st_size > MAX_RENDER_BYTES or _sha256(path) != document.content_hash:
            return None
    except OSError:
        return None
    return path


def pdf_rendering_available() -> bool:
    try:
        import pypdfium2  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass
class RenderedPage:
    png: bytes
    page: int  # 1-based
    n_pages: int
    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)  # marked areas, in image pixels


def _folded(ch: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKC", ch) if not c.isspace())


def _find_spans(page_text: list[str], quote: str) -> list[tuple[int, int]]:
    """Character index ranges of the page (one entry per PDF character) that hold the quote."""
    folded: list[str] = []
    owner: list[int] = []  # folded position -> page character index
    for i, ch in enumerate(page_text):
        for c in _folded(ch):
            folded.append(c)
            owner.append(i)
    haystack = "".join(folded)

    def find(needle: str) -> tuple[int, int] | None:
        needle = _folded(needle)
        if not needle:
            return None
        at = haystack.find(needle)
        return (owner[at], owner[at + len(needle) - 1] + 1) if at >= 0 else None

    whole = find(quote)
    if whole is not None:
        return [whole]
    pieces = [p for p in quote.splitlines() if len(_folded(p)) >= _MIN_PIECE_CHARS]
    return [span for span in (find(p) for p in pieces) if span is not None]


def render_pdf_page(path: Path, page: int, quote: str = "", scale: float = 1.6) -> RenderedPage | None:
    """PNG of ``page`` (1-based) with the quote's characters marked; None without pypdfium2, for a page
    out of range, or a file pdfium cannot open."""
    try:
        import pypdfium2 as pdfium
    except ImportError:
        return None
    from PIL import Image, ImageDraw

    try:
        pdf = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError:
        return None
    try:
        if not 1 <= page <= len(pdf):
            return None
        pdf_page = pdf[page - 1]
        image = pdf_page.render(scale=scale).to_pil().convert("RGB")
        boxes: list[tuple[float, float, float, float]] = []
        if quote.strip():
            text_page = pdf_page.get_textpage()
            chars = [text_page.get_text_range(i, 1) for i in range(text_page.count_chars())]
            height = pdf_page.get_height()
            for a, b in _find_spans(chars, quote):
                boxes += _line_boxes(text_page, a, b, height, scale)
        if boxes:
            overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
            draw = ImageDraw.Draw(overlay)
            for box in boxes:
                draw.rectangle(box, fill=(255, 214, 0, 90), outline=(230, 160, 0, 255), width=2)
            image = Image.alpha_composite(image.convert("RGBA"), overlay).convert("RGB")
        out = io.BytesIO()
        image.save(out, format="PNG", optimize=True)
        return RenderedPage(out.getvalue(), page, len(pdf), boxes)
    finally:
        pdf.close()


def _line_boxes(text_page, a: int, b: int, page_height: float, scale: float) -> list[tuple[float, float, float, float]]:
    """One rectangle per text line of characters a..b-1, in image pixels (PDF y grows upwards)."""
    lines: list[list[float]] = []  # [left, bottom, right, top] in PDF points
    for i in range(a, b):
        left, bottom, right, top = text_page.get_charbox(i)
        if right <= left or top <= bottom:
            continue  # a line break or other character without a box
        current = lines[-1] if lines else None
        if current is not None and bottom < current[3] and top > current[1] and left >= current[0] - 1:
            current[0], current[1] = min(current[0], left), min(current[1], bottom)
            current[2], current[3] = max(current[2], right), max(current[3], top)
        else:
            lines.append([left, bottom, right, top])
    pad = 2.0
    return [
        ((left - pad) * scale, (page_height - top - pad) * scale, (right + pad) * scale, (page_height - bottom + pad) * scale)
        for left, bottom, right, top in lines
    ]
