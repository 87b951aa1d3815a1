"""What every loader returns (``LoadedDocument``) and the small helpers loaders share. Its own module so
the loaders of one family (``office``, ``ocr``) and the registry in ``loaders`` all import it, and none
of them imports another."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


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


def first_heading(text: str) -> str | None:
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("#"):
            title = s.lstrip("#").strip()
            if title:
                return title
    return None


def stem(source: str) -> str:
    return Path(source).stem
