"""Text utilities shared by ingest, retrieval and moderation.

Two views of text exist on purpose:
- the *cleaned* text, which is what users see and what citations quote (offsets index into it);
- the *folded* text (NFKC, Traditional→Simplified, lower case), which is what the indexes see, so
  that a Simplified question finds a Traditional document and full-width "ＡＰＩ" finds "API".
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from importlib import resources
from typing import Any, Iterator

# Full-width Chinese punctuation that NFKC would turn into ASCII. Chinese readers expect it to stay
# full-width, and keeping it keeps quotes faithful, so cleaning protects these characters.
_CJK_PUNCTUATION_KEPT = "，！？：；（）～"
_KEPT_RE = re.compile(f"([{_CJK_PUNCTUATION_KEPT}]+)")
_ZERO_WIDTH_RE = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad]")
# Control characters except tab and newline.
_CONTROL_RE = re.compile("[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]")
_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_SPACE_BETWEEN_CJK_RE = re.compile(f"(?<=[{_CJK}]) +(?=[{_CJK}])")
_CJK_CHAR_RE = re.compile(f"[{_CJK}]")
_LATIN_RE = re.compile("[A-Za-z]")


def drop_spaces_between_cjk(text: str) -> str:
    """PDF extraction puts spaces between Chinese characters ("中 文"); Chinese prose has none."""
    return _SPACE_BETWEEN_CJK_RE.sub("", text)


def normalize_width(text: str) -> str:
    """NFKC (full-width letters/digits → half-width, compatibility forms folded), CJK punctuation kept."""
    parts = _KEPT_RE.split(text)
    return "".join(p if i % 2 else unicodedata.normalize("NFKC", p) for i, p in enumerate(parts))


def strip_invisible(text: str) -> str:
    """Remove zero-width and control characters (keeps \\n and \\t)."""
    return _CONTROL_RE.sub("", _ZERO_WIDTH_RE.sub("", text))


def collapse_whitespace(text: str) -> str:
    """One space inside lines, no trailing spaces, at most one blank line."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ").replace("\u3000", " ")
    text = re.sub(r"[ \u00a0]+", " ", text)
    text = re.sub(r" *\n *", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


@lru_cache(maxsize=8)
def opencc(config: str) -> Any:
    """One OpenCC converter per configuration ("t2s", "s2twp", "tw2sp"…) per process: loading its
    dictionaries is the slow part. opencc_purepy has no type hints."""
    from opencc_purepy import OpenCC

    return OpenCC(config)


def _t2s() -> Any:
    return opencc("t2s")


def to_simplified(text: str) -> str:
    return _t2s().convert(text)


@lru_cache(maxsize=1)
def _t2s_char_table() -> dict[int, str]:
    """OpenCC's one-character Traditional→Simplified mappings as a str.translate table. Built in one
    convert call (newlines keep characters from forming phrases): about 30 ms, once."""
    chars = [chr(c) for r in ((0x3400, 0x4DC0), (0x4E00, 0xA000), (0xF900, 0xFB00)) for c in range(*r)]
    converted = _t2s().convert("\n".join(chars)).split("\n")
    return {ord(a): b for a, b in zip(chars, converted) if a != b and len(b) == 1}


def to_simplified_chars(text: str) -> str:
    """Character-level Traditional→Simplified at str.translate speed; keeps the length, so offsets
    survive (what moderation needs). Phrase-level conversion (to_simplified) stays for indexing."""
    return text.translate(_t2s_char_table())


@lru_cache(maxsize=1)
def _s2t_chars() -> frozenset[str]:
    """The characters OpenCC's s2t changes on their own: Simplified-only forms (as _t2s_char_table)."""
    chars = [chr(c) for r in ((0x3400, 0x4DC0), (0x4E00, 0xA000), (0xF900, 0xFB00)) for c in range(*r)]
    converted = opencc("s2t").convert("\n".join(chars)).split("\n")
    return frozenset(a for a, b in zip(chars, converted) if a != b)


def is_traditional(text: str) -> bool:
    """Whether ``text`` is written in Traditional Chinese: more of its characters are Traditional-only
    forms (changed by t2s) than Simplified-only ones (changed by s2t). Counting both ways keeps Simplified
    text that uses a shared form (著名, 牠们) Simplified; "does to_simplified change it" cannot decide,
    as OpenCC's phrase tables also rewrite some Simplified text (its t2s turns 结束 into 結束)."""
    t2s, s2t = _t2s_char_table(), _s2t_chars()
    traditional = sum(1 for ch in text if ord(ch) in t2s)
    simplified = sum(1 for ch in text if ch in s2t)
    return traditional > simplified


def fold(text: str) -> str:
    """The index view of text: NFKC, Traditional→Simplified, lower case, no invisible characters."""
    return to_simplified(unicodedata.normalize("NFKC", strip_invisible(text))).lower()


def is_mostly_cjk(text: str) -> bool:
    """Decides the language of fixed messages (refusals): Chinese unless the text is mostly Latin."""
    cjk = len(_CJK_CHAR_RE.findall(text))
    latin = len(_LATIN_RE.findall(text))
    return cjk > 0 or latin == 0


@lru_cache(maxsize=1)
def _jieba():
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


@lru_cache(maxsize=1)
def stop_words() -> frozenset[str]:
    raw = resources.files("core").joinpath("stopwords.txt").read_text(encoding="utf-8")
    return frozenset(w.strip() for w in raw.splitlines() if w.strip() and not w.startswith("#"))


_WORDLIKE_RE = re.compile(rf"[\w{_CJK}]", re.UNICODE)


def word_spans(text: str) -> Iterator[tuple[str, int, int]]:
    """jieba words with their (start, end) offsets in ``text``."""
    return _jieba().tokenize(text)


def count_tokens(text: str) -> int:
    """Chunk sizes are counted in jieba tokens: Chinese words, English words, numbers, punctuation marks
    (whitespace excluded). Roughly 1.5 Chinese characters per token."""
    return sum(1 for t in _jieba().cut(text) if not t.isspace())


def search_tokens(text: str) -> list[str]:
    """BM25 tokens: jieba search mode (long words plus their sub-words) on folded text, minus stop
    words and punctuation."""
    sw = stop_words()
    return [
        t
        for t in _jieba().cut_for_search(fold(text))
        if not t.isspace() and t not in sw and _WORDLIKE_RE.search(t)
    ]


# Sentence ends: Chinese terminators (with closing quotes/brackets that follow), English terminators
# followed by whitespace, and line breaks (headings, list items and table rows are units of their own).
_SENTENCE_END_RE = re.compile(
    rf"[。！？!?…；;]+[」』”’\"')）】]*|(?<=[A-Za-z0-9)\]\"'])\.(?=\s|$|[{_CJK}])|\n+"
)


def split_sentences(text: str, start: int = 0, end: int | None = None) -> Iterator[tuple[int, int]]:
    """Yield (start, end) spans of sentences in text[start:end], whitespace trimmed, never empty."""
    end = len(text) if end is None else end
    pos = start
    for m in _SENTENCE_END_RE.finditer(text, start, end):
        yield from _trimmed_span(text, pos, m.end())
        pos = m.end()
    if pos < end:
        yield from _trimmed_span(text, pos, end)


def trim_span(text: str, a: int, b: int) -> tuple[int, int]:
    """(a, b) narrowed to exclude leading and trailing whitespace."""
    while a < b and text[a].isspace():
        a += 1
    while b > a and text[b - 1].isspace():
        b -= 1
    return a, b


def _trimmed_span(text: str, a: int, b: int) -> Iterator[tuple[int, int]]:
    a, b = trim_span(text, a, b)
    if a < b:
        yield (a, b)
