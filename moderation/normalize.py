"""The text the matcher sees, with a map back to the original.

Evasions folded away: NFKC (full-width ＡＢＣ, compatibility forms), Traditional→Simplified, case,
zero-width characters, and separators slipped between characters ("保 本", "保*本", "保-本"). Chinese
sentence punctuation (，。、；：！？) is *not* a separator: "确保，本次" must not read as "保本".
Every normalised character remembers the index of the original character it came from, so a match
masks exactly the original span.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from core.text import to_simplified

_INVISIBLE = set("\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e")
_SENTENCE_PUNCTUATION = set("，。、；：！？")
_LATIN = re.compile(r"[a-z0-9]")
_SEPARATOR_RE = re.compile(r"[\s*\-_.·•|/\\~+=#^`'\"@&%$!?<>()\[\]{}:;,⋅∙・]")


@dataclass
class Normalized:
    text: str
    origin: list[int]  # origin[i] = index in the original text of normalised character i

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Original (start, end) of normalised [start, end)."""
        return self.origin[start], self.origin[end - 1] + 1


def normalize(text: str, keep_separators: bool = False) -> Normalized:
    """``keep_separators`` for regex rules, which see punctuation and spaces as written ("8.5%")."""
    chars: list[str] = []
    origin: list[int] = []
    gap: int | None = None  # index of the first separator since the last kept character
    for i, ch in enumerate(text):
        if ch in _INVISIBLE:
            continue
        if ch in _SENTENCE_PUNCTUATION:  # kept, before NFKC turns "，" into a separator-looking ","
            chars.append(ch)
            origin.append(i)
            gap = None
            continue
        for folded in unicodedata.normalize("NFKC", ch).lower():
            if not keep_separators and _SEPARATOR_RE.match(folded):
                gap = i if gap is None else gap
                continue
            if gap is not None and chars and _LATIN.match(chars[-1]) and _LATIN.match(folded):
                chars.append(" ")  # between English words a separator is a word boundary, not an evasion
                origin.append(gap)
            gap = None
            chars.append(folded)
            origin.append(i)
    joined = "".join(chars)
    simplified = to_simplified(joined)
    if len(simplified) != len(joined):  # a phrase conversion changed the length: fold char by char
        simplified = "".join(to_simplified(c) if len(to_simplified(c)) == 1 else c for c in joined)
    return Normalized(simplified, origin)


def normalize_term(term: str) -> str:
    return normalize(term).text
