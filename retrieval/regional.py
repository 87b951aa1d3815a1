"""Mainland and Taiwan words for one thing (软件 / 軟體, 信息 / 資訊, 新西兰 / 紐西蘭, 通信 / 通訊), so a
Simplified question finds a Traditional document written in Taiwan's words, and the reverse.

Folding (``core.text.fold``) makes Traditional characters Simplified with OpenCC's t2s, which changes
characters, not vocabulary: 軟體 is indexed as 软体, and a question about 软件 shares no word with it.
So a Chinese question's BM25 query also gets the words of its other regional phrasing: OpenCC's s2twp
(Mainland → Taiwan phrasing) and tw2sp (Taiwan → Mainland), tokenised like the index, and kept only
where the knowledge base uses them (as ``retrieval.crosslingual`` keeps only known Chinese words for
English questions): a variant no document uses cannot match and would only dilute coverage. The dense
side still embeds the question as asked.

Measured on the dev split with USE-m3 (``python -m bench.trust`` sets, dev questions): CMRC questions
over the paragraphs converted with s2twp, hit@1 .970 → .977; the same questions over the Simplified
paragraphs unchanged (.982); paraphrase dev right document first .942 → .948, its
Simplified/Traditional mixed questions .933 → 1.00. Two OpenCC conversions cost about 0.05 ms a query.
"""

from __future__ import annotations

from collections.abc import Callable

from core.text import is_mostly_cjk, opencc, search_tokens

PHRASINGS = ("s2twp", "tw2sp")  # Mainland → Taiwan words, Taiwan → Mainland words


def regional_terms(question: str, known: Callable[[str], bool]) -> list[str]:
    """The index words of the question's other regional phrasings that it does not already use and
    the knowledge base does (``known``); nothing for an English question."""
    if not is_mostly_cjk(question):
        return []
    asked = set(search_tokens(question))
    out: list[str] = []
    for config in PHRASINGS:
        for token in search_tokens(opencc(config).convert(question)):
            if token not in asked and token not in out and known(token):
                out.append(token)
    return out
