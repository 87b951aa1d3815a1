"""The text the matcher sees, with a map back to the original.

Evasions folded away: NFKC (full-width ＡＢＣ, compatibility forms), Traditional→Simplified, case,
zero-width characters, and separators slipped between characters ("保 本", "保*本", "保-本"). Chinese
sentence punctuation (，。、；：！？) is *not* a separator: "确保，本次" must not read as "保本". Between
two English letters a separator stays a word boundary (one space), so "you idiot" is two words.
Every normalised character remembers the index of the original character it came from, so a match
masks exactly the original span.

The common case (NFKC and lower-casing keep the length) runs as a few whole-string operations and
slices; only exotic input falls back to the character-by-character path.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from core.text import to_simplified_chars

_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e"
# NFKC turns "，" into ","; map sentence punctuation to "、" first, which NFKC keeps and which is a barrier.
# "…" would expand to "..." under NFKC and push the text off the fast path; it is a separator anyway.
_BARRIERS = str.maketrans({**{c: "、" for c in "，；：！？"}, "…": ".", "‥": "."})
_SEPARATORS = r"\s*\-_.·•|/\\~+=#^`'\"@&%$!?<>()\[\]{}:;,⋅∙・" + _INVISIBLE
_SEPARATOR_RUN_RE = re.compile(f"[{_SEPARATORS}]+")
_LATIN = re.compile(r"[a-z0-9]")


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


def normalize(text: str, keep_separators: bool = False) -> Normalized:
    """``keep_separators`` for regex rules, which see punctuation and spaces as written ("8.5%")."""
    folded = _fold(text)
    if folded is not None:
        base_origin: list[int] | None = None
    else:
        folded, base_origin = _fold_by_char(text)
    if keep_separators:
        parts, origin = [folded], list(range(len(folded)))
    else:
        parts, origin, pos = [], [], 0
        for m in _SEPARATOR_RUN_RE.finditer(folded):
            a, b = m.span()
            parts.append(folded[pos:a])
            origin.extend(range(pos, a))
            if a > 0 and b < len(folded) and _LATIN.match(folded[a - 1]) and _LATIN.match(folded[b]):
                parts.append(" ")  # a word boundary between English words, not an evasion
                origin.append(a)
            pos = b
        parts.append(folded[pos:])
        origin.extend(range(pos, len(folded)))
    if base_origin is not None:
        origin = [base_origin[i] for i in origin]
    return Normalized(to_simplified_chars("".join(parts)), origin)


def normalize_term(term: str) -> str:
    return normalize(term).text
