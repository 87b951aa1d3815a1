"""The extractive answerer: no LLM, just the sentence of the top passages that answers, cited.

Used when no LLM is configured, and as the fallback when the LLM fails. It cannot paraphrase, but it
cannot hallucinate either: every word of the answer is a quote.

What it picks: the sentence that carries the question's content words (IDF-weighted overlap, a little
less for lower-ranked passages), and it stops there. Question words that are the passage's title or
headings count for all of its sentences alike: they say which passage, and the words beyond them say which
sentence ("大鳞大眼鲷分布于哪里" wants the sentence with 分布, not the one that names the fish). A second
sentence joins only when it brings question terms the first lacks and scores nearly as well (a question
that combines two facts). A sentence longer than a short statement is trimmed to the run of clauses (split
at ，；： outside brackets) that holds the question terms it matched, widened while that run is too short
or says nothing beyond the question: the statement that answers, not the paragraph around it. Measured
with ``python -m bench.extractive`` (CMRC 2018 and a Traditional-Chinese copy of it).

A table row (``a | b`` cells, or a spreadsheet's ``列名: 值；…`` record; see ingest.tables) is one unit,
never trimmed and never taken for a title: a value cited without its row's other cells and column names
says nothing ("张伟" alone does not say it is ZW-0417's user).

A question in Simplified Chinese gets its answer in Simplified even when the passage is Traditional; the
citation still quotes the passage exactly as written. A Traditional question gets the original text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from core.models import Answer, Citation, Hit
from core.text import (
    is_traditional,
    search_tokens,
    to_simplified,
    trim_span,
    word_spans,
)
from ingest.tables import split_units

IdfFunction = Callable[[str], float]


@dataclass
class _Candidate:
    hit: Hit
    start: int  # offsets into the chunk text
    end: int
    score: float
    # question terms this sentence (or the echo before it) carries, with their IDF weights
    matched: dict[str, float] = field(default_factory=dict)
    topic: set[str] = field(default_factory=set)  # the passage's title and heading words
    after_echo: bool = False  # follows a repeat of the question (FAQ): the whole sentence is its answer
    row: bool = False  # a whole table row: quoted whole (see the module doc)

    def informative(self) -> dict[str, float]:
        """The matched question terms that are not the passage's topic."""
        return {t: w for t, w in self.matched.items() if t not in self.topic}


_MIN_NEW_TERMS = 2
_TITLE_MAX_CHARS = 20
_RANK_PENALTY = 0.15  # per rank below the first
_NO_NUMBER_WEIGHT = 0.5  # a sentence without a number, when the question asks for one ("多久", "几天")
# A second sentence joins the best one only when it scores at least this share of the best one's score
# (overall and on the words beyond the passage's topic) and the question terms it adds weigh at least
# this share of those the best one carries.
_COMBINE_SCORE_RATIO = 0.6
_COMBINE_NEW_TERMS_RATIO = 0.3
# A sentence longer than this is trimmed to the clauses that carry its matched question terms, widened
# until it has _CLAUSE_MIN_CHARS characters and _CLAUSE_MIN_NEW_TERMS words beyond the question's
# (a bare noun, or the question's own words, is not an answer).
_TRIM_ABOVE_CHARS = 30
_CLAUSE_MIN_CHARS = 8
_CLAUSE_MIN_NEW_TERMS = 2

_TABLE_RULE_RE = re.compile(r"\s*\|?\s*:?-{3,}")
_QUESTION_END_RE = re.compile(r"[？?][\s；;]*$")
# A question that asks for a quantity, a date or a duration, and what answers one: a sentence with a number.
_ASKS_NUMBER_RE = re.compile(
    r"多少|几|幾|多久|多长|多長|多大|多高|多重|多远|多遠|何时|何時|什么时候|什麼時候|哪一?年|哪一?天"
    r"|(?i:\bhow (?:many|much|long|old|far|often|high|big)\b|\bwhat (?:year|date|time|age)\b|\bwhen\b)"
)
_NUMBER_RE = re.compile(r"\d|[〇零一二两兩三四五六七八九十百千万萬亿億]+[个個位名次年月日天周週岁歲倍元项項条條种種]|[十百千万萬亿億]")
_CLAUSE_BREAKS = "，,；;：:"
# Words that join two asks in one question: each side is a part a second sentence may answer.
_PART_BREAKS = frozenset("，,；;。！!？?、")
_PART_JOINERS = frozenset({"和", "与", "與", "及", "以及", "跟", "或", "或者", "还是", "還是", "并且", "並且", "而且", "同时", "同時"})
# What a quoted sentence may start with that reads as source layout, not as an answer: an FAQ's labels
# ("问题：…？；答案：", "答：", "A:") and list markers ("- ", "•", "1.", "1、", "(1)", "一、", "第三条").
_ANSWER_LABEL_RE = re.compile(
    r"^(?:(?:问题|問題|问|問|Q)\s*[:：].*?[？?][\s；;]*)?(?:答案|答|回答|回覆|解答|A|Answer)\s*[:：]\s*", re.IGNORECASE
)
_LIST_MARKER_RE = re.compile(
    r"^(?:[-*+•·▪●○◦]\s*|\d{1,2}[.．、)）](?!\d)\s*|[（(]\d{1,2}[)）]\s*"
    r"|[（(]?[一二三四五六七八九十]{1,3}[、.．)）]\s*|第[一二三四五六七八九十百\d]{1,4}[条條款項项]\s*)"
)
_TRAILING_BREAK_RE = re.compile(r"[，,；;：:、]+$")
_OPENERS = "《「『“‘（(【〈"
_CLOSERS = "》」』”’）)】〉"


def _is_table_header(text: str, end: int) -> bool:
    """A Markdown table's header row (the next line is its |---| rule): column names, not an answer."""
    return "|" in text[text.rfind("\n", 0, end) + 1 : end] and bool(_TABLE_RULE_RE.match(text, end))


def _is_title(sentence: str) -> bool:
    """A Markdown heading, or a short line with no closing punctuation ("第七條 資安事件通報")."""
    s = sentence.strip()
    return s.startswith("#") or (len(s) <= _TITLE_MAX_CHARS and s[-1:].isalnum())


def _topic_terms(hit: Hit) -> set[str]:
    """Words of the passage's title and headings: they say which passage, not which of its sentences."""
    chunk = hit.chunk
    return set(search_tokens(" ".join([chunk.title, *chunk.heading_path])))


def _sentence_candidates(hit: Hit, query_terms: set[str], idf: IdfFunction, asks_number: bool = False) -> list[_Candidate]:
    """Every sentence of the passage that could answer, scored by the question terms it carries. A sentence
    under a title or heading is about it: the question's words found there count for every sentence of
    the passage (so they decide between passages, not between the sentences of one)."""
    text = hit.chunk.text
    topic = _topic_terms(hit)
    on_topic = sum(idf(t) for t in query_terms & topic)
    out = []
    carried: dict[str, float] = {}  # FAQ pattern: the sentence after an echo of the question is its answer
    for unit in split_units(text):
        a, b = unit.start, unit.end
        sentence = text[a:b]
        terms = set(search_tokens(sentence))
        matched = {t: idf(t) for t in query_terms & terms}
        asks = bool(_QUESTION_END_RE.search(sentence))
        if asks or (not unit.row and _is_title(sentence)) or _is_table_header(text, b) or len(terms - query_terms) < _MIN_NEW_TERMS:
            # A heading, or a question ("问题：如何重置API Key？；", a FAQ's echo of the one asked or a
            # neighbouring one), does not answer; the sentence after a question does, with its words.
            carried = matched if asks else {}
            continue
        matched = {**carried, **matched}
        score = on_topic + sum(w for t, w in matched.items() if t not in topic)
        score /= 1.0 + _RANK_PENALTY * (hit.rank - 1)
        if asks_number and not _NUMBER_RE.search(sentence):
            score *= _NO_NUMBER_WEIGHT
        out.append(_Candidate(hit, a, b, score, matched, topic, after_echo=bool(carried), row=unit.row))
        carried = {}
    return out


def _unique(candidates: list[_Candidate]) -> list[_Candidate]:
    """Overlapping chunks share sentences: keep each document span once, from the best-ranked chunk."""
    seen: set[tuple[str, int]] = set()
    out = []
    for c in candidates:
        key = (c.hit.chunk.doc_id, c.hit.chunk.start + c.start)
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out


def _question_parts(question: str) -> list[set[str]]:
    """The question's search terms per part: parts are separated by punctuation and by the conjunctions
    that join two asks ("伙食补助和市内交通补助各是多少？", "全量备份在什么时候做？异地备份放在哪里？").
    Each part keeps only the terms no other part has (its distinctive terms)."""
    parts: list[list[str]] = [[]]
    for word, _, _ in word_spans(question):
        if word in _PART_JOINERS or word.strip() in _PART_BREAKS:
            if parts[-1]:
                parts.append([])
        elif any(ch.isalnum() for ch in word):
            parts[-1].append(word)
    terms = [set(search_tokens("".join(p))) for p in parts if p]
    return [t - set().union(*(o for j, o in enumerate(terms) if j != i)) for i, t in enumerate(terms)]


def _answers_another_part(best: _Candidate, other: _Candidate, parts: list[set[str]]) -> bool:
    """Whether ``other`` carries a part of the question that ``best`` leaves out. A question in one part
    is answered by one sentence: a second one matching another of its words is noise, not the rest of
    the answer ("公司允许用自己的手机收发工作邮件吗？" has no second half for a sentence on 邮件)."""
    return any(part & other.matched.keys() and not part & best.matched.keys() for part in parts)


def _choose(candidates: list[_Candidate], max_sentences: int, parts: list[set[str]] | None = None) -> list[_Candidate]:
    """The best sentence; a second one only in the "combine" case (see the module docstring)."""
    # Ties (a question asked only in the passage's title words): the sentence that repeats more of them.
    ranked = sorted(candidates, key=lambda c: (-c.score, -sum(c.matched.values())))
    best = ranked[0]
    if best.score <= 0:  # matched on meaning only (dense): the top passage's first sentence
        return [candidates[0]]
    chosen = [best]
    if max_sentences < 2:
        return chosen
    best_own = sum(best.informative().values())
    for c in ranked[1:]:
        if c.score < _COMBINE_SCORE_RATIO * best.score:
            break
        if sum(c.informative().values()) < _COMBINE_SCORE_RATIO * best_own:
            continue
        if parts is not None and not _answers_another_part(best, c, parts):
            continue
        new = sum(w for t, w in c.matched.items() if t not in best.matched)
        if new > 0 and new >= _COMBINE_NEW_TERMS_RATIO * sum(best.matched.values()):
            chosen.append(c)
            break
    return chosen


def _clauses(text: str, a: int, b: int) -> list[tuple[int, int]]:
    """Clause spans of text[a:b], split after ，；： outside brackets and quotes; each span keeps its
    trailing punctuation."""
    out = []
    depth = 0
    start = a
    for i in range(a, b):
        ch = text[i]
        if ch in _OPENERS:
            depth += 1
        elif ch in _CLOSERS:
            depth = max(depth - 1, 0)
        elif ch in _CLAUSE_BREAKS and depth == 0 and i + 1 < b:
            out.append((start, i + 1))
            start = i + 1
    out.append((start, b))
    return [s for s in (trim_span(text, x, y) for x, y in out) if s[0] < s[1]]


def _trim(c: _Candidate) -> tuple[int, int]:
    """A long sentence narrowed to its clauses from the first to the last that carries a question term
    (beyond the passage's topic), widened by a neighbour while that run is too short to stand alone or
    says nothing beyond the question. An answer after an echoed FAQ question is kept whole, and so is a
    sentence that matched only topic words (no clue where to cut)."""
    text = c.hit.chunk.text
    matched = c.informative()
    if c.end - c.start <= _TRIM_ABOVE_CHARS or c.after_echo or c.row or not matched:
        return c.start, c.end
    clauses = _clauses(text, c.start, c.end)
    if len(clauses) < 2:
        return c.start, c.end
    tokens = [set(search_tokens(text[x:y])) for x, y in clauses]
    mass = [sum(matched.get(t, 0.0) for t in ts) for ts in tokens]
    hits = [i for i, w in enumerate(mass) if w > 0]
    if not hits:  # a word jieba cuts differently inside a clause: keep the sentence
        return c.start, c.end
    first, last = hits[0], hits[-1]

    def weak() -> bool:
        new_terms = set().union(*tokens[first : last + 1]) - c.matched.keys()
        return len(new_terms) < _CLAUSE_MIN_NEW_TERMS or clauses[last][1] - clauses[first][0] < _CLAUSE_MIN_CHARS

    while weak() and (first > 0 or last < len(clauses) - 1):
        if last < len(clauses) - 1:  # the answer to "X是谁" usually follows X
            last += 1
        else:
            first -= 1
    start, end = clauses[first][0], clauses[last][1]
    if end < c.end:  # cut mid-sentence: drop the clause break it ends on
        end = trim_span(text, start, end - 1 if text[end - 1] in _CLAUSE_BREAKS else end)[1]
    return start, end


def extractive_answer(question: str, hits: list[Hit], max_sentences: int = 3, idf: IdfFunction | None = None,
                      max_passages: int = 3, extra_terms: Iterable[str] = ()) -> Answer:
    """Answer with the best sentence of the top ``max_passages`` hits (two in the combine case, never more
    than ``max_sentences``), trimmed to its answering clauses, each cited. ``extra_terms``: words that
    stand for the question's own (an English question's Chinese translations, a Chinese question's
    other-region words: 软件 for 軟體; from the retriever)."""
    idf = idf or (lambda t: 1.0 + 0.2 * len(t))
    terms = set(search_tokens(question)) | {t for word in extra_terms for t in search_tokens(word)}
    asks_number = bool(_ASKS_NUMBER_RE.search(question))
    candidates = _unique([c for h in hits[:max_passages] for c in _sentence_candidates(h, terms, idf, asks_number)])
    if not candidates:
        return Answer(text="", mode="extractive")
    chosen = _choose(candidates, max_sentences, _question_parts(question))
    simplified = not is_traditional(question)

    # Number passages in retrieval-rank order; read sentences in passage order, then text order.
    ranks = sorted({c.hit.rank for c in chosen})
    number = {rank: n for n, rank in enumerate(ranks, start=1)}
    spans = sorted(((c.hit, *_trim(c)) for c in chosen), key=lambda s: (s[0].rank, s[1]))
    parts = []
    citations: dict[int, Citation] = {}
    for hit, a, b in spans:
        n = number[hit.rank]
        chunk = hit.chunk
        quote = chunk.text[a:b]
        parts.append(f"{answer_text(to_simplified(quote) if simplified and is_traditional(quote) else quote)}[{n}]")
        start, end = chunk.start + a, chunk.start + b
        if n in citations:  # widen the cited span to cover every sentence taken from this passage
            old = citations[n]
            start, end = min(old.start, start), max(old.end, end)
        citations[n] = Citation(
            n=n, source=chunk.source, page=chunk.page, start=start, end=end,
            quote=chunk.text[start - chunk.start : end - chunk.start], chunk_id=chunk.id, score=round(hit.score, 4),
        )
    joiner = "" if all(_ends_cjk(p) for p in parts) else " "
    return Answer(text=joiner.join(parts), mode="extractive", citations=[citations[n] for n in sorted(citations)])


def answer_text(quote: str) -> str:
    """A quoted sentence as it reads in an answer: without the labels and list markers it had in its
    source, and ending as a sentence rather than on a clause break ("二、年休假：…年休假5天；" reads
    "年休假：…年休假5天。"). Only the answer's text: its citation keeps quoting the document exactly."""
    text = quote.strip()
    for _ in range(3):  # "- 答案：…", "1. 问题：…？答案：…"
        stripped = _LIST_MARKER_RE.sub("", _ANSWER_LABEL_RE.sub("", text, count=1), count=1).lstrip()
        if stripped == text:
            break
        text = stripped
    if _TRAILING_BREAK_RE.search(text):
        body = _TRAILING_BREAK_RE.sub("", text)
        text = body + ("。" if body and ("\u3400" <= body[-1] <= "\u9fff" or body[-1].isdigit()) else "")
    return text or quote.strip()


def _ends_cjk(part: str) -> bool:
    body = part.rsplit("[", 1)[0].rstrip()
    return bool(body) and ("\u3000" <= body[-1] <= "\u9fff" or body[-1] in "，。！？；：）")
