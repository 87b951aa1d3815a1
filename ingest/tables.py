"""Tables as text: one line per row, and the rule that a row is never cut.

Every loader writes a table row as one line, in one of two forms:

- a *cell row* ``a | b | c`` (Word, HTML, PowerPoint; a Markdown ``| a | b |`` row is one too): its
  table is the run of consecutive cell rows, and the first of them (not a ``|---|`` rule) is the header;
- a *record* ``资产编号: ZW-0417；设备名称: 笔记本电脑`` (Excel): every row repeats the header names, so
  one row read alone says what each value is. ``列名: 值`` pairs (ASCII colon and space) joined by a
  full-width ``；`` tell a record from prose, and from a CSV row, whose ``列名：值`` keeps the full-width
  colon and is split into sentences as before (its FAQ rows are answered by their 答案 part).

``split_units`` is ``core.text.split_sentences`` with each row kept whole: chunking (a chunk boundary
falls between rows, never inside one) and the extractive answerer (a row is quoted whole, so a cited
value comes with its column names) both read text through it. Where a chunk starts inside a cell-row
table, the chunker puts the table's header row on the chunk's heading path (see ingest.chunking).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from core.text import split_sentences, trim_span

CELL_SEPARATOR = " | "
RECORD_SEPARATOR = "；"
_KEY_VALUE = ": "
_MAX_KEY_CHARS = 60
_RULE_RE = re.compile(r"^\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)*\|?$")
_SPACE_RE = re.compile(r"\s+")


# -- writing rows (loaders) --------------------------------------------------------------------------
def cell_text(value: Any) -> str:
    """A cell's value as one line: whitespace (line breaks inside a cell) collapsed, so the row stays one
    line; dates without a midnight time; 3.0 as 3; booleans as 是/否."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, datetime):
        value = value.date() if value.time() == time(0) else value.replace(microsecond=0)
    if isinstance(value, (date, time)):
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return _SPACE_RE.sub(" ", str(value)).strip()


def cell_row(cells: Sequence[Any]) -> str | None:
    """``a | b | c``, or None for a row with nothing in it. A ``|`` inside a cell becomes ``/`` so it does
    not read as a column break."""
    texts = [cell_text(c).replace("|", "/") for c in cells]
    return CELL_SEPARATOR.join(texts) if any(texts) else None


def record_row(header: Sequence[str], values: Sequence[Any]) -> str | None:
    """``列名: 值；列名: 值`` for the non-empty values (None when there are none). A column without a
    name is called by its position ("C列"). A ``；`` inside a value becomes ``; `` so it does not read as
    the next field."""
    fields = []
    for i, value in enumerate(values):
        text = cell_text(value).replace(RECORD_SEPARATOR, "; ")
        if not text:
            continue
        name = cell_text(header[i]) if i < len(header) else ""
        name = name.replace(RECORD_SEPARATOR, "; ").replace(_KEY_VALUE, ":")[:_MAX_KEY_CHARS] or f"{column_letter(i)}列"
        fields.append(f"{name}{_KEY_VALUE}{text}")
    return RECORD_SEPARATOR.join(fields) if fields else None


def column_letter(index: int) -> str:
    """0 → A, 25 → Z, 26 → AA: how spreadsheet users name a column."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


# -- reading rows (chunking, answers) ----------------------------------------------------------------
def is_rule(line: str) -> bool:
    """A Markdown table's ``| --- | --- |`` line."""
    return bool(_RULE_RE.match(line.strip()))


def is_record(line: str) -> bool:
    """Two or more ``列名: 值`` fields joined by ``；``."""
    fields = line.strip().rstrip(RECORD_SEPARATOR).split(RECORD_SEPARATOR)
    return len(fields) >= 2 and all(0 < f.find(_KEY_VALUE) <= _MAX_KEY_CHARS for f in fields)


def is_cell_row(line: str) -> bool:
    s = line.strip()
    return not s.startswith("#") and (CELL_SEPARATOR in s or (s.startswith("|") and s.endswith("|") and len(s) > 1))


def is_table_row(line: str) -> bool:
    s = line.strip()
    return bool(s) and not s.startswith("#") and (is_record(s) or is_cell_row(s))


@dataclass(frozen=True)
class Unit:
    """A sentence, or a whole table row. ``header`` is, for a cell row below its table's header row, that
    header row's (start, end); None otherwise (records carry their header names in every row)."""

    start: int
    end: int
    row: bool = False
    header: tuple[int, int] | None = None


def split_units(text: str, start: int = 0, end: int | None = None) -> Iterator[Unit]:
    """Sentences of text[start:end] (as split_sentences), each table row line one unit however many
    sentence ends it holds."""
    end = len(text) if end is None else end
    header: tuple[int, int] | None = None  # the current cell-row table's header row
    pos = start
    while pos < end:
        nl = text.find("\n", pos, end)
        line_end = end if nl < 0 else nl
        a, b = trim_span(text, pos, line_end)
        line = text[a:b]
        if a < b and is_record(line):
            header = None
            yield Unit(a, b, row=True)
        elif a < b and is_cell_row(line):
            if header is None and not is_rule(line):
                header = (a, b)
                yield Unit(a, b, row=True)
            else:
                yield Unit(a, b, row=True, header=header)
        else:
            header = None  # any other line, a blank one too, ends the table
            for s, e in split_sentences(text, a, b):
                yield Unit(s, e)
        pos = line_end + 1
