"""Reading text by sound: toneless pinyin keys for terms and a phonetic view of text, so "baoben",
"bao ben", "保ben" and the homophone "饱本" all read as 保本.

Why a separate view and not pinyin terms in the word list: evaders swap characters for others that
sound alike or type the romanisation, and nobody maintains those variants by hand. pypinyin knows the
readings; this module turns them into one more Aho-Corasick pass.

- **Keys** (``term_readings``). A term of two or more Chinese characters gets the concatenated
  toneless pinyin of every reading combination ("稳赚不赔" → "wenzhuanbupei", "wenzuanbupei", ...; at
  most ``MAX_READINGS``), with where its syllables break.
- **The phonetic view** of a normalised text is ``str.translate`` with one syllable per Chinese
  character (its most common reading), English letters as written and spaces removed: one C-speed
  call. Offsets back into the normalised text are computed only for the rare candidate matches.
- **Whole syllables, whole words.** A candidate counts only when it starts and ends on a syllable
  boundary of the Chinese characters it covers and, where it covers letters, on an English word
  boundary: "bao ben" and "baoben" match, "abaobenx" does not, nor does "xiao" + "ben" read as "ao ben".
  Inside, the term's syllable breaks must be the text's (月 "yue" is not 羽讹 "yu"+"e"), and inside an
  English word a syllable may not start with a vowel, as pinyin spelling has it (xian is 先, xi'an 西安).

What decides whether a candidate is an evasion or chance (how many characters a homophone may swap,
which words rule it out) lives in ``Moderator._sounds`` and moderation.boundaries.
"""

from __future__ import annotations

import bisect
import itertools
import re
from functools import lru_cache
from typing import NamedTuple

from moderation.normalize import HAN_RE

MAX_READINGS = 8  # reading combinations per term (heteronyms multiply: 不 alone has three)
_LETTER = re.compile(r"[a-z]")
_SYLLABLE = re.compile(r"[a-z]+")


@lru_cache(maxsize=1)
def _readings() -> dict[int, tuple[str, ...]]:
    """Code point → its toneless readings, most common first, from pypinyin's dictionary (some 40,000
    characters, built once in about 50 ms). Terms use every reading, text the first."""
    from pypinyin.contrib.tone_convert import to_normal
    from pypinyin.pinyin_dict import pinyin_dict

    toneless: dict[str, str] = {}
    table: dict[int, tuple[str, ...]] = {}
    for code, readings in pinyin_dict.items():
        plain: list[str] = []
        for reading in readings.split(","):
            if reading not in toneless:
                toneless[reading] = to_normal(reading)
            if _SYLLABLE.fullmatch(toneless[reading]) and toneless[reading] not in plain:
                plain.append(toneless[reading])
        if plain:
            table[code] = tuple(plain)
    return table


@lru_cache(maxsize=1)
def _view_table() -> dict[int, str]:
    """The translate table of the phonetic view: a Chinese character becomes its common reading, a
    space disappears (so "bao ben" reads as "baoben")."""
    return {**{code: readings[0] for code, readings in _readings().items()}, ord(" "): ""}


@lru_cache(maxsize=1)
def _lengths() -> dict[int, int]:
    return {code: len(s) for code, s in _view_table().items()}


class Reading(NamedTuple):
    """One way to say a term: its syllables run together, where each syllable after the first starts,
    and which of those start with a, o or e (pinyin writes them after an apostrophe inside a word:
    xi'an, not xian)."""

    sound: str
    cuts: tuple[int, ...]
    vowel_cuts: tuple[int, ...]


def term_readings(term: str) -> list[Reading]:
    """Readings of a normalised term: every combination of its characters' readings, most common
    first. Empty when the term is not two or more Chinese characters (single characters and mixed
    terms would match far too much by sound)."""
    if len(term) < 2 or not HAN_RE.fullmatch(term):
        return []
    table = _readings()
    per_char = [table.get(ord(c)) for c in term]
    if not all(per_char):
        return []
    out = []
    for combo in itertools.islice(itertools.product(*per_char), MAX_READINGS):
        cuts, pos = [], 0
        for syllable in combo[:-1]:
            pos += len(syllable)
            cuts.append(pos)
        vowels = tuple(c for c, s in zip(cuts, combo[1:]) if s[0] in "aoe")
        out.append(Reading("".join(combo), tuple(cuts), vowels))
    return out


class PhoneticView:
    """The phonetic view of a normalised text (see the module docstring). Offsets back into the
    normalised text are computed on the first candidate, so a text without any costs one translate."""

    def __init__(self, source: str) -> None:
        self.source = source  # the normalised text
        self.text = source.translate(_view_table())
        self._ends: list[int] = []  # _ends[i] = end of source character i in ``text``
        self._bounds: set[int] = set()  # offsets in ``text`` where a source character starts or ends

    def span(self, start: int, end: int) -> tuple[int, int] | None:
        """The normalised span [i, j) a match at [start, end) of the view covers, or None when the match
        does not start and end on a character's syllable and, on English letters, a word's edge."""
        if not self._ends and self.source:
            self._ends = list(itertools.accumulate(map(_lengths().get, map(ord, self.source), itertools.repeat(1))))
            self._bounds = {0, *self._ends}
        if start not in self._bounds or end not in self._bounds:
            return None  # the common case, decided without a search
        ends, src = self._ends, self.source
        i = bisect.bisect_right(ends, start)
        j = bisect.bisect_left(ends, end)
        if i >= len(src) or j >= len(src):
            return None
        if _LETTER.match(src[i]) and i > 0 and _LETTER.match(src[i - 1]):
            return None  # starts inside an English word
        if _LETTER.match(src[j]) and j + 1 < len(src) and _LETTER.match(src[j + 1]):
            return None  # ends inside an English word
        return i, j + 1

    def agrees(self, start: int, span: tuple[int, int], reading: Reading) -> bool:
        """Whether the term's syllables line up with the text's inside the match: each Chinese
        character one whole syllable, English words starting where syllables do, and no syllable that
        starts with a vowel inside an English word (it would be read with the letters before it: "yue"
        is 月, not 羽讹)."""
        ends, src = self._ends, self.source
        i, j = span
        for k in range(i + 1, j):
            if ends[k] == ends[k - 1]:
                continue  # a space
            if (not _LETTER.match(src[k]) or not _LETTER.match(src[k - 1])) and ends[k - 1] - start not in reading.cuts:
                return False  # a syllable or a word starts where the term has no syllable break
        for cut in reading.cuts:
            if start + cut not in self._bounds:
                return False  # the term's syllable break falls inside a character's syllable
        for cut in reading.vowel_cuts:
            k = bisect.bisect_right(ends, start + cut)
            if _LETTER.match(src[k]) and _LETTER.match(src[k - 1]):
                return False
        return True
