"""Word boundaries for Chinese term matches: is a match a real use of the term, or two neighbouring words
that happen to share its characters?

"确保本次活动" contains 保本, but as 确保 + 本次; "担保本来就难" as 担保 + 本来. jieba (dictionary only,
no HMM guessing, which would glue unknown pairs such as 饱本 into "words") segments only the run of
text around a candidate (``Words``), never the whole text, so the cost follows the number of
candidates, not the text's length.

The rules, chosen so the compliance phrases stay caught in real sentences ("并无风险" is 并无 + 风险,
"零风险投资" is 零 + 风险投资, "保证收益率" is 保证 + 收益率: one edge glued to a neighbour, and each still a
promise the rules exist to catch):

- **An exact match** is rejected only when *both* its edges are glued to the outside: its first
  character ends a word that starts before the match, and its last character starts a word that ends
  after it (确|保 本|次). A word that contains the whole match (保本型) is the term in a compound, kept.
- **A match by sound** (homophones, pinyin) must not share a word of two or more characters with the
  text around it, nor have a swapped-in character inside one: the swapped-in characters of an evasion
  (饱本) are no word, while 白吃 (for 白痴) or 吃饱本来 are. Nor may a swapped-in character be one of the
  language's most common words (``is_common_word``).

Categories with ``substring_ok = true`` in rules.toml skip the exact-match rule (for lists where any
occurrence counts, whatever the neighbours).
"""

from __future__ import annotations

import bisect
import re
from functools import lru_cache

from moderation.normalize import HAN_RE

# jieba segments each run of these characters on its own (its re_han_default), so segmenting the run
# that holds a candidate gives the very words a whole-text pass would, for a fraction of the cost.
_BLOCK_RE = re.compile(r"[\u4e00-\u9fd5a-z0-9+#&._%\-]+")
BLOCK_LIMIT = 64  # a longer run is segmented in a window of CONTEXT characters each side of the match
CONTEXT = 8  # longer dictionary words than this are rare


@lru_cache(maxsize=1)
def _tokenizer():
    """The process's jieba, set up once in core.text (quiet, dictionary loaded). Its public
    ``word_spans`` runs the HMM, which these rules must not (see above)."""
    from core.text import _jieba

    return _jieba()


class Words:
    """jieba's words of one normalised text, segmented on demand around candidate matches (the run of
    text that holds one, see _BLOCK_RE) and kept for the next candidate in the same run."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._runs: list[tuple[int, int]] | None = None
        self._run_starts: list[int] = []
        self._segmented: dict[tuple[int, int], list[tuple[int, int]]] = {}

    def around(self, start: int, end: int) -> list[tuple[int, int]]:
        """Word spans, in text offsets, of the run (or window) around [start, end)."""
        if self._runs is None:
            self._runs = [m.span() for m in _BLOCK_RE.finditer(self.text)]
            self._run_starts = [a for a, _ in self._runs]
        k = bisect.bisect_right(self._run_starts, start) - 1
        lo, hi = self._runs[k] if k >= 0 and self._runs[k][1] >= end else (start, end)
        if hi - lo > BLOCK_LIMIT:
            lo, hi = max(lo, start - CONTEXT), min(hi, end + CONTEXT)
        if (lo, hi) not in self._segmented:
            tokens = _tokenizer().tokenize(self.text[lo:hi], HMM=False)
            self._segmented[lo, hi] = [(lo + a, lo + b) for _, a, b in tokens]
        return self._segmented[lo, hi]


def _prefixes() -> dict[str, int]:
    """jieba's dictionary: every word with its frequency, and every prefix of a word (frequency 0)."""
    return _tokenizer().dt.FREQ


def splits_neighbours(words: Words, start: int, end: int) -> bool:
    """Whether the match [start, end) is two neighbouring words' characters, not the term (both edges
    glued outward; see the module docstring)."""
    text, prefixes = words.text, _prefixes()
    # Without a dictionary word (or word start) running into the match from the left and one running
    # out of it on the right, no segmentation glues both edges: decided without jieba.
    if not any(text[a : start + 1] in prefixes for a in range(max(0, start - CONTEXT), start)):
        return False
    if not any(text[b : end + 1] in prefixes for b in range(start + 1, end)) or end >= len(text):
        return False
    glued_left = glued_right = False
    for a, b in words.around(start, end):
        if a < start < b < end:
            glued_left = True
        if start < a < end < b:
            glued_right = True
    return glued_left and glued_right


# A character jieba counts this often as a word on its own is among the ~200 most common words (他 也
# 是 有 又 会 说 月 起 …): as a swapped-in homophone it is chance in ordinary text ("他又" for 她又, "也有"
# for 业有), not an evasion, which picks a character for its sound (饱 1,587, 宝 4,496, 报 14,647).
COMMON_WORD_FREQ = 20_000


def is_common_word(char: str) -> bool:
    return _tokenizer().dt.FREQ.get(char, 0) >= COMMON_WORD_FREQ


def swaps_into_a_word(words: Words, start: int, end: int, swapped: list[int]) -> bool:
    """Whether the match by sound [start, end) is ordinary words rather than an evasion: a word of two
    or more Chinese characters that holds a swapped-in character (``swapped``: their offsets) or reaches
    out of the match (see the module docstring). A word made of the term's own characters (稳赚 in
    稳赚不陪) is the term itself."""
    text, prefixes = words.text, _prefixes()
    if not _any_word_over(text, start, end, prefixes):
        return False  # no dictionary word there at all: decided without jieba
    for a, b in words.around(start, end):
        if b - a >= 2 and a < end and b > start and HAN_RE.fullmatch(text[a:b]):
            if a < start or b > end or any(a <= k < b for k in swapped):
                return True
    return False


def _any_word_over(text: str, start: int, end: int, prefixes: dict[str, int]) -> bool:
    """Whether any dictionary word of two or more characters overlaps [start, end) (whether or not
    jieba would choose it)."""
    for a in range(max(0, start - CONTEXT), end):
        for b in range(max(a + 2, start + 1), min(len(text), a + 2 * CONTEXT) + 1):
            freq = prefixes.get(text[a:b])
            if freq is None:
                break  # not even the start of a word: no longer one from ``a`` either
            if freq:
                return True
    return False
