"""Cleaning: the text users will read and citations will quote.

Steps, in order, per page: invisible characters out, width normalised (NFKC, CJK punctuation kept),
whitespace collapsed, boilerplate lines dropped (page numbers, copyright lines, running headers and
footers repeated on most pages). Pages are then joined with a blank line; their spans are kept so a
chunk knows its page.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from core.text import (
    collapse_whitespace,
    drop_spaces_between_cjk,
    normalize_width,
    strip_invisible,
)
from ingest.tables import is_table_row

_PAGE_NUMBER_RE = re.compile(
    r"^(第\s*\d+\s*页(\s*[/，,]?\s*共\s*\d+\s*页)?|[-–—]?\s*\d{1,4}\s*[-–—]?|page\s+\d+(\s+of\s+\d+)?|\d+\s*/\s*\d+)$",
    re.IGNORECASE,
)
_COPYRIGHT_RE = re.compile(r"(版权所有|©|copyright|all rights reserved)", re.IGNORECASE)
_MAX_BOILERPLATE_LEN = 80


@dataclass
class CleanedDocument:
    text: str
    page_spans: list[tuple[int, int, int]]  # (start, end, page number, 1-based) into text


def clean_page(text: str) -> str:
    return collapse_whitespace(normalize_width(strip_invisible(text)))


def _is_boilerplate(line: str) -> bool:
    s = line.strip()
    if not s:
        return False
    if _PAGE_NUMBER_RE.match(s):
        return True
    return len(s) <= _MAX_BOILERPLATE_LEN and bool(_COPYRIGHT_RE.search(s))


def _repeated_lines(pages: list[str]) -> set[str]:
    """Short lines present on at least half of the pages (and on two or more): running headers/footers.
    Digits are masked so "第 1 页" and "第 2 页" count as the same line."""
    if len(pages) < 2:
        return set()
    counts: Counter[str] = Counter()
    for page in pages:
        counts.update({re.sub(r"\d+", "#", ln.strip()) for ln in page.splitlines() if 0 < len(ln.strip()) <= _MAX_BOILERPLATE_LEN})
    threshold = max(2, (len(pages) + 1) // 2)
    return {line for line, n in counts.items() if n >= threshold}


_LINE_END_RE = re.compile(r"[。！？；：.!?;:」”’)）\]】|]$")
_LIST_START_RE = re.compile(r"^(#|[-*•·]|\d+[.、)）]|[（(]?[一二三四五六七八九十]+[、.）)])")
_CJK_EDGE_RE = re.compile(r"[\u3400-\u9fff，。、；：！？（）]")


def _rejoin(page: str) -> str:
    """PDF text comes hard-wrapped ("夜\n间"). Join a line with the next when it fills most of the
    page width and ends mid-sentence, so a sentence is one unit again; a table row (ingest.pdf_tables)
    stays its own line."""
    lines = page.split("\n")
    width = max((len(ln) for ln in lines), default=0)
    out: list[str] = []
    for line in lines:
        prev = out[-1] if out else ""
        if (
            prev
            and line
            and len(prev) >= 0.6 * width
            and not _LINE_END_RE.search(prev)
            and not _LIST_START_RE.match(line)
            and not is_table_row(prev)
            and not is_table_row(line)
        ):
            glue = "" if (_CJK_EDGE_RE.match(prev[-1]) or _CJK_EDGE_RE.match(line[0])) else " "
            out[-1] = prev + glue + line
        else:
            out.append(line)
    return "\n".join(out)


def clean_pages(pages: list[str], pdf_layout: bool = False, drop_repeated_lines: bool = True) -> CleanedDocument:
    """``pdf_layout``: the pages come from PDF text extraction (hard-wrapped lines, spaced-out CJK).
    ``drop_repeated_lines``: lines on most pages are running headers and footers; not for slides, whose
    author repeats what is meant to be read (their footer placeholders are left out by the loader)."""
    cleaned = [clean_page(p) for p in pages]
    if pdf_layout:
        cleaned = [drop_spaces_between_cjk(p) for p in cleaned]
    repeated = _repeated_lines(cleaned) if drop_repeated_lines else set()
    parts: list[str] = []
    spans: list[tuple[int, int, int]] = []
    pos = 0
    for number, page in enumerate(cleaned, start=1):
        kept = [
            ln
            for ln in page.split("\n")
            if not _is_boilerplate(ln) and re.sub(r"\d+", "#", ln.strip()) not in repeated
        ]
        body = re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip()
        if pdf_layout:
            body = _rejoin(body)
        if not body:
            continue
        if parts:
            pos += 2  # the "\n\n" separator
        spans.append((pos, pos + len(body), number))
        parts.append(body)
        pos += len(body)
    return CleanedDocument("\n\n".join(parts), spans)
