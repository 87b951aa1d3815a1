"""The text the matcher sees, with a map back to the original.

Two views, both folded alike (NFKC so full-width ＡＢＣ and compatibility forms fold, Traditional→
Simplified per character, lower case) and both free of *ignorable* characters:

``fold(text)`` does the folding once; ``view(folded)`` and ``view(folded, keep_separators=True)`` take
the two views from it (``normalize`` does both steps for one view).

- ``normalize(text)``, the **match view** for the word lists. It also drops what evaders slip between
  the characters of a term: separators ("保 本", "保*本", "保-本"), brackets and quotes ("保「本」"),
  emoji and other symbols ("保💰本", "稳😀赚"), HTML tags and entities ("保<b></b>本", "保&nbsp;本").
  Chinese sentence punctuation (，。、；：！？) is *not* skipped: "确保，本次" must not read as "保本".
  Between two English letters or digits a visible separator stays a word boundary (one space), so
  "you idiot" is two words; an ignorable character there leaves no trace ("id\u200biot" is "idiot").
- ``normalize(text, keep_separators=True)``, the **literal view** for regex rules and PII, which need
  punctuation and spaces as written ("8.5%", "138 0013 8000"): only ignorables, emoji/symbols and
  markup go, plus separators sitting between two Chinese characters ("年化 收益" reads "年化收益"), so a
  rule written for the plain phrase still matches when something was slipped into it.

Ignorable means the Unicode classes that render as nothing, taken from ``unicodedata`` rather than a
hand list that always lags the evaders: format characters (Cf: zero-width space/joiners, LRM/RLM,
bidi embeddings and overrides, invisible operators, tag characters, soft hyphen), combining marks
(Mn/Me: variation selectors such as U+FE0F, the combining grapheme joiner, strike-through overlays),
control characters that are not white space, and the Hangul fillers (U+115F, U+1160, U+3164,
U+FFA0), which are letters by category but blank on screen.

Every normalised character remembers the index of the original character it came from, so a match
masks exactly the original span. The common case (NFKC and lower-casing keep the length) runs as a
few whole-string operations and slices; only exotic input falls back to the character-by-character path.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

from core.text import to_simplified_chars

# NFKC turns "，" into ","; map sentence punctuation to "、" first, which NFKC keeps and which is a barrier.
# "…" would expand to "..." under NFKC and push the text off the fast path; it is a separator anyway.
_BARRIERS = str.maketrans({**{c: "、" for c in "，；：！？"}, "…": ".", "‥": "."})
_BARRIER_CHARS = "、。"  # what the sentence punctuation is after folding
_HANGUL_FILLERS = "\u115f\u1160\u3164\uffa0"
_HAN = "\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
# Markup an answer or a scraped page may carry between characters: tags, comments, character entities.
# A tag must start right after "<" with a letter, "/" or "!", so "a < b" stays text.
_MARKUP = r"<!--.*?-->|</?[a-z][a-z0-9-]*(?:\s[^<>]*)?/?>|&(?:[a-z][a-z0-9]{1,31}|#[0-9]{1,7}|#x[0-9a-f]{1,6});"


def _is_ignorable(ch: str) -> bool:
    cat = unicodedata.category(ch)
    return cat in ("Cf", "Mn", "Me") or (cat == "Cc" and not ch.isspace()) or ch in _HANGUL_FILLERS


def _is_separator(ch: str) -> bool:
    cat = unicodedata.category(ch)
    return (cat[0] in "PSZ" or (cat == "Cc" and ch.isspace())) and ch not in _BARRIER_CHARS


def _is_symbol(ch: str) -> bool:
    return unicodedata.category(ch) in ("So", "Sk")


def _ranges(predicate: Callable[[str], bool], *blocks: range) -> str:
    """Every code point of ``blocks`` that ``predicate`` accepts, as the inside of a regex class."""
    parts, start, prev = [], None, None
    for block in blocks:
        for cp in block:
            if predicate(chr(cp)):
                if start is None:
                    start = cp
                elif cp != prev + 1:
                    parts.append((start, prev))
                    start = cp
                prev = cp
    if start is not None:
        parts.append((start, prev))
    return "".join(re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in parts)


def _char_class(predicate: Callable[[str], bool]) -> str:
    """A regex atom for one character ``predicate`` accepts. Split in two for speed: sre tests a class
    of BMP code points with a bitmap, but one that reaches beyond the BMP range by range (hundreds of
    them here, some 20 times slower on Chinese text), so that part is only tried behind a one-range guard."""
    bmp = _ranges(predicate, range(0x10000))
    beyond = _ranges(predicate, range(0x10000, 0x20000), range(0xE0000, 0xE1000))
    return f"(?:[{bmp}]|[\U00010000-\U0010ffff](?<=[{beyond}]))"


@dataclass(frozen=True)
class _Patterns:
    skip_run: re.Pattern[str]  # match view: runs of ignorables, separators and markup
    visible: re.Pattern[str]  # a run that holds more than ignorables is a word boundary between letters
    literal_drop: re.Pattern[str]  # literal view: ignorables, emoji/symbols, markup
    between_han: re.Pattern[str]  # literal view: separators between two Chinese characters


@lru_cache(maxsize=1)
def _patterns() -> _Patterns:
    """Built on first use, not at import: a scan of the planes that hold format characters, marks,
    punctuation and symbols (the BMP; the SMP: emoji, musical format controls; plane 14: tag characters,
    variation selectors supplement), some 135,000 code points, about 0.2 s."""
    skipped = _char_class(lambda ch: _is_ignorable(ch) or _is_separator(ch))
    separator = _char_class(_is_separator)
    dropped = _char_class(lambda ch: _is_ignorable(ch) or _is_symbol(ch))
    return _Patterns(
        skip_run=re.compile(f"(?:{_MARKUP}|{skipped})+", re.S),
        visible=re.compile(f"{_MARKUP}|{separator}", re.S),
        literal_drop=re.compile(f"(?:{_MARKUP}|{dropped})+", re.S),
        between_han=re.compile(f"(?<=[{_HAN}]){separator}+(?=[{_HAN}])"),
    )


_LATIN = re.compile(r"[a-z0-9]")
HAN_RE = re.compile(f"[{_HAN}]+")  # .match: starts with a Chinese character; .fullmatch: only those


@dataclass
class Normalized:
    text: str
    origin: list[int]  # origin[i] = index in the original text of normalised character i

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Original (start, end) of normalised [start, end)."""
        return self.origin[start], self.origin[end - 1] + 1


def _fold(text: str) -> str | None:
    """NFKC + lower case of the whole string, or None when that changes its length."""
    folded = unicodedata.normalize("NFKC", text.translate(_BARRIERS))
    if len(folded) != len(text):
        return None
    lowered = folded.lower()
    return lowered if len(lowered) == len(text) else None


def _fold_by_char(text: str) -> tuple[str, list[int]]:
    chars, origin = [], []
    for i, ch in enumerate(text.translate(_BARRIERS)):
        for c in unicodedata.normalize("NFKC", ch).lower():
            chars.append(c)
            origin.append(i)
    return "".join(chars), origin


def _rewrite(
    text: str, origin: list[int], pattern: re.Pattern[str], replace: Callable[[str, re.Match[str]], str]
) -> tuple[str, list[int]]:
    """Replace every match of ``pattern`` by ``replace(text, match)`` (empty or one character, which
    takes the origin of the match's first character), keeping ``origin`` in step."""
    matches = list(pattern.finditer(text))
    if not matches:
        return text, origin
    parts: list[str] = []
    new_origin: list[int] = []
    pos = 0
    for m in matches:
        a, b = m.span()
        parts.append(text[pos:a])
        new_origin.extend(origin[pos:a])
        rep = replace(text, m)
        if rep:
            parts.append(rep)
            new_origin.append(origin[a])
        pos = b
    parts.append(text[pos:])
    new_origin.extend(origin[pos:])
    return "".join(parts), new_origin


def _skip_run(text: str, m: re.Match[str]) -> str:
    a, b = m.span()
    if a > 0 and b < len(text) and _LATIN.match(text[a - 1]) and _LATIN.match(text[b]) and _patterns().visible.search(m.group()):
        return " "  # a word boundary between English words, not an evasion
    return ""


def _drop(text: str, m: re.Match[str]) -> str:
    return ""


def fold(text: str) -> Normalized:
    """``text`` folded (NFKC, lower case, Traditional→Simplified), the common start of both views:
    fold once, then take ``view(folded)`` and ``view(folded, keep_separators=True)``."""
    folded = _fold(text)
    if folded is not None:
        origin = list(range(len(folded)))
    else:
        folded, origin = _fold_by_char(text)
    return Normalized(to_simplified_chars(folded), origin)


def view(folded: Normalized, keep_separators: bool = False) -> Normalized:
    """The match view of a folded text, or with ``keep_separators`` the literal view (see the module
    docstring)."""
    patterns = _patterns()
    text, origin = folded.text, folded.origin
    if keep_separators:
        text, origin = _rewrite(text, origin, patterns.literal_drop, _drop)
        text, origin = _rewrite(text, origin, patterns.between_han, _drop)
    else:
        text, origin = _rewrite(text, origin, patterns.skip_run, _skip_run)
    return Normalized(text, origin)


def normalize(text: str, keep_separators: bool = False) -> Normalized:
    """The match view of ``text``, or with ``keep_separators`` the literal view."""
    return view(fold(text), keep_separators)


def normalize_term(term: str) -> str:
    return normalize(term).text
