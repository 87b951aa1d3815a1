"""Tables in PDFs: pypdf reads a table as loose words ("资产编号 设备名称 ZW-0417 笔记本电脑 …"), so a row
is lost and a chunk may cut one in half. On a page that draws a ruled table, pdfplumber finds the table's
cells; that page's text is then re-read with the table as rows (``a | b | c``, one line each, header row
first, as every other format writes tables: see ingest.tables) and the text outside it in reading order.

Looking costs pdfminer parsing each page: about 12 ms a page against pypdf's 3 ms (50 text pages, 2 busy
cores), small beside embedding the page's chunks. Only pages with ruling lines are searched for tables (a
ruled table needs at least a few lines or rectangles), and
only tables of two or more rows with two or more columns count, so prose pages keep pypdf's text exactly
as before. A page pdfplumber cannot parse keeps pypdf's text too: tables are an improvement, never a
reason to fail a file.
"""

from __future__ import annotations

import io
import logging
from typing import Any

from ingest.tables import cell_row

log = logging.getLogger(__name__)

MIN_RULES = 4  # lines + rectangles on a page before table detection is worth its cost


def with_tables(data: bytes, pages: list[str]) -> tuple[list[str], int]:
    """``pages`` (pypdf's text, one per page) with every page that holds a ruled table re-read as rows and
    text; and how many tables were found."""
    try:
        import pdfplumber
    except ImportError:  # a dependency; an install without it still reads the text
        return pages, 0
    out = list(pages)
    found = 0
    try:
        with pdfplumber.open(io.BytesIO(data)) as pdf:
            for i, page in enumerate(pdf.pages[: len(pages)]):
                text = _page_with_tables(page)
                if text is not None:
                    out[i], found = text[0], found + text[1]
    except Exception as exc:  # noqa: BLE001 (pdfminer raises many kinds on odd files; pypdf's text stands)
        log.warning("pdf table detection skipped: %s", exc)
        return pages, 0
    return out, found


def _page_with_tables(page: Any) -> tuple[str, int] | None:
    if len(page.lines) + len(page.rects) < MIN_RULES:
        return None
    tables = []
    for table in page.find_tables():
        rows = [r for r in (cell_row(row) for row in table.extract()) if r]
        if len(rows) >= 2 and all(len(row) >= 2 for row in table.extract()):
            tables.append((table.bbox, rows))
    if not tables:
        return None
    outside = page
    for bbox, _ in tables:
        outside = outside.outside_bbox(bbox)
    items = [(line["top"], line["text"]) for line in outside.extract_text_lines() if line["text"].strip()]
    items += [(bbox[1], "\n".join(rows)) for bbox, rows in tables]
    return "\n".join(text for _, text in sorted(items, key=lambda item: item[0])), len(tables)
