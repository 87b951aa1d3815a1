"""Does a question in a conversation lean on the turns before it, and what should retrieval search for?

Why this exists: retrieval used to search "previous question + new question" on every turn with history,
so after "客户投诉多久内要给出处理方案？" the question "资安事件多久内要通报？" was outvoted by the old
topic's words and got the complaint answer again. A question is now combined with history only when it
depends on it:

- it refers back: a pronoun or demonstrative (它, 这个, 那, 该, 其, 上述, ...; it, that, they, ...), or
  an elliptical opener ("那…呢", "what about ...", "and ...?");
- it is elliptical: it ends in 呢 with little content of its own ("经理呢？", "二线城市呢？");
- it has no content words of its own ("为什么？", "具体呢？", "还有吗？", "Why?").

Everything else is a new topic and is searched alone. Words come from jieba (``core.text.word_spans``)
on folded text (NFKC, Traditional→Simplified, lower case), so 還有嗎 and 还有吗 read the same and "该"
inside "应该" or "其" inside "其中" is never mistaken for a reference. Content words are jieba words minus
the BM25 stop words (``core.text.stop_words``: function and question words), the reference words above and
a few fillers.

The extractive answerer (``llm.answer.extractive_ask``) and the RAG chain (``llm.chain.RagChain``) both use
this module, so the CLI, the web UI and the HTTP API decide the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.text import fold, stop_words, word_spans

# Words that point back at something said before. Single-character demonstratives are separate jieba
# words only when they stand alone ("那管理控制台呢" → 那/管理/控制台/呢; "应该" and "其中" stay whole).
_REFERENCES_ZH = frozenset({
    "那", "那么", "那个", "那些", "那种", "那样", "那里", "那儿", "这", "这个", "这些", "这种", "这样", "这里", "这儿",
    "该", "其", "此", "上述", "前述", "上面", "刚才", "前者", "后者", "它", "它们", "他", "她", "他们", "她们",
})
# "that" also reads as a reference when it is a conjunction ("documents that ..."): such a question is then
# searched with the previous one too, the behaviour before this module, not a wrong answer by itself.
_REFERENCES_EN = frozenset({
    "it", "its", "they", "them", "their", "theirs", "this", "that", "these", "those", "he", "she", "him", "her", "his",
})
# Openers that continue the previous question in English ("what about X?", "and X?").
_OPENERS_EN = (("what", "about"), ("how", "about"), ("and",), ("also",), ("what", "else"))
# Not stop words for BM25, but no subject of their own in a question ("还有吗？", "其他呢？").
_FILLERS = frozenset({
    "还有", "别的", "其他", "其它", "另外", "然后", "呢", "else", "more", "other", "others", "again", "also", "then",
})
# A question ending in 呢 with at most this many content words is elliptical ("二线城市呢？").
_ELLIPSIS_MAX_CONTENT = 2
# How many earlier questions a follow-up may reach back through (a chain of follow-ups to its topic).
_MAX_TURNS_BACK = 3


_THAT_WORDS = tuple(w for w in _REFERENCES_ZH if w.startswith("那") and len(w) > 1)


def _words(text: str) -> list[str]:
    """jieba words of the folded text, without whitespace and punctuation. A leading 那 is cut off first:
    jieba glues it to an unknown next word ("那资安事件呢" → 那资安/事件)."""
    folded = fold(text).strip()
    if folded.startswith("那") and not folded.startswith(_THAT_WORDS):
        folded = "那 " + folded[1:]
    return [w for w, _, _ in word_spans(folded) if any(ch.isalnum() for ch in w)]


def content_words(question: str) -> list[str]:
    """The words that carry the question's own subject: jieba words minus stop words, reference words
    and fillers (folded, so Traditional and Simplified give the same words)."""
    skip = stop_words() | _REFERENCES_ZH | _REFERENCES_EN | _FILLERS
    return [w for w in _words(question) if w not in skip]


def depends_on_history(question: str) -> bool:
    """Whether ``question`` needs the conversation to be understood (see the module docstring for why).
    An independent question (a new topic) must be retrieved on its own words alone."""
    words = _words(question)
    if not words:
        return True
    if any(w in _REFERENCES_ZH or w in _REFERENCES_EN for w in words):
        return True
    if any(tuple(words[: len(opener)]) == opener for opener in _OPENERS_EN):
        return True
    content = content_words(question)
    if not content:
        return True
    return words[-1] == "呢" and len(content) <= _ELLIPSIS_MAX_CONTENT


def standalone_query(question: str, history: Sequence[tuple[str, str]]) -> str:
    """What retrieval searches for when no LLM rewrite is used. ``history`` holds (question, answer)
    turns, oldest first. An independent question is searched alone. A follow-up is searched with the
    earlier questions back to (and including) the last one that stood on its own, at most a few:
    "网关默认用哪个端口处理业务流量？ 那管理控制台呢？". Answers are left out: they quote the old topic's
    documents at length and would outvote the follow-up's own words."""
    if not history or not depends_on_history(question):
        return question
    earlier: list[str] = []
    for previous, _ in reversed(history[-_MAX_TURNS_BACK:]):
        earlier.insert(0, previous)
        if not depends_on_history(previous):
            break
    return " ".join([*earlier, question])


def keeps_content_words(rewrite: str, question: str) -> bool:
    """Whether an LLM's standalone rewrite still asks the new question: every content word of the
    question appears in the rewrite (both folded). A small model that drifts back to the previous topic
    ("客户投诉多久内要给出处理方案？" for "那资安事件呢？") drops them and is not used."""
    return _mentions_all(rewrite, content_words(question))


def _mentions_all(text: str, words: list[str]) -> bool:
    folded = fold(text)
    return all(w in folded for w in words)


def search_follow_up(retriever: Any, question: str, query: str, top_k: int) -> tuple[Any, str]:
    """Retrieval for a turn whose standalone ``query`` joins earlier questions to ``question``.

    Joined, the earlier topic's words can outvote the follow-up's own: "客户投诉多久内要给出处理方案？
    那资安事件呢？" ranks the complaint passage first, and no passage that clears the floor mentions
    资安事件. Then the follow-up's own words are searched alone, and their result is used when one of
    its relevant passages holds them (the words alone, so "那…呢" does not dilute them). A joined query whose relevant passages do hold the follow-up's
    words ("网关默认用哪个端口…？ 那管理控制台呢？": its first one does) is kept: the earlier question supplies what is
    asked. Returns the result and the query it came from."""
    result = retriever.search(query, top_k)
    words = content_words(question) if query != question else []
    # The first relevant passage decides, as the first hit decides the refusal: a lower one that happens
    # to mention the new subject would otherwise keep the earlier topic's passage on top.
    if not words or any(_mentions_all(h.chunk.text, words) for h in result.relevant[:1]):
        return result, query
    own = " ".join(words)  # "资安 事件", without 那…呢
    alone = retriever.search(own, top_k)
    if any(_mentions_all(h.chunk.text, words) for h in alone.relevant):
        return alone, own
    return result, query
