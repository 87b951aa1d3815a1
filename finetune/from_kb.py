"""SFT examples made from a knowledge base: the configured LLM writes questions (and short answers)
about sampled chunks; each becomes an example in exactly the shape the RAG chain sends at inference.

Why the inference shape: an adapter tuned on bare question → answer pairs learns to answer from
memory, then meets prompts full of numbered sources it never saw in training. Here the prompt is
built by the chain's own ANSWER_PROMPT and format_sources (system prompt, ``[n] 《title》 <<< … >>>``
blocks, ``问题：…``), the source holding the answer sits among distractor chunks at a varying
position, and the answer cites it with our ``[n]`` marker. A share of examples keeps only the
distractors and answers "资料中没有相关信息", the chain's rule 3, so the adapter also learns not to guess.

Answers the LLM writes are kept only when they are grounded: most of their character bigrams must
appear in the chunk. Questions a model invents about text it misread are the main risk of synthetic
data, and this check is cheap.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.models import Chunk, Hit
from core.settings import Settings
from core.text import fold
from finetune.data import Example
from llm.prompts import ANSWER_PROMPT, format_sources
from llm.refusal import NO_ANSWER

QUESTION_SYSTEM = (
    "你是一名严谨的出题老师，为企业知识库问答助手准备训练数据。"
    "你只根据给出的资料出题和作答，答案必须能在资料中找到依据，不要使用资料以外的知识。"
)
QUESTION_USER = """资料：
<<<
{text}
>>>

请根据上面的资料提出 {k} 个互不相同、表述自然的问题（像员工真的会问的那样），每个问题都必须只用资料就能回答，并给出简洁、准确、完全来自资料的答案。
严格按下面的格式输出，不要输出其他内容：
问：……
答：……"""

_Q_RE = re.compile(r"^\s*(?:\d+[.、)）]\s*)?(?:问题?|Q|Question)\s*\d*\s*[:：]\s*(.*)$", re.IGNORECASE)
_A_RE = re.compile(r"^\s*(?:答案?|A|Answer)\s*\d*\s*[:：]\s*(.*)$", re.IGNORECASE)
_MARKER_RE = re.compile(r"\s*[\[【［]\s*\d{1,3}(?:\s*[,，、]\s*\d{1,3})*\s*[\]】］]")
_SENTENCE_RE = re.compile(r"[^。！？!?；;\n]+[。！？!?；;]*")
_CLOSING = "。！？!?；;"


@dataclass
class KBGenerationReport:
    chunks: int = 0
    calls_failed: int = 0
    pairs: int = 0
    ungrounded: int = 0
    examples: int = 0
    unanswerable: int = 0
    failures: list[str] = field(default_factory=list)


def parse_qa_pairs(text: str) -> list[tuple[str, str]]:
    """(question, answer) pairs from an LLM reply: "问：…/答：…" lines (answers may span lines), or a
    JSON list of {"question", "answer"} objects."""
    stripped = text.strip().removeprefix("```json").removeprefix("```").removesuffix("```").strip()
    if stripped.startswith("["):
        try:
            items = json.loads(stripped)
            return [(str(i["question"]).strip(), str(i["answer"]).strip()) for i in items
                    if isinstance(i, dict) and i.get("question") and i.get("answer")]
        except (ValueError, KeyError):
            pass
    pairs: list[tuple[str, str]] = []
    question, answer = None, None
    for line in text.splitlines():
        if m := _Q_RE.match(line):
            if question and answer:
                pairs.append((question, answer.strip()))
            question, answer = m.group(1).strip(), None
        elif (m := _A_RE.match(line)) and question:
            answer = m.group(1).strip()
        elif answer is not None and line.strip():
            answer += "\n" + line.strip()
    if question and answer:
        pairs.append((question, answer.strip()))
    return [(q, a) for q, a in pairs if q and a]


def _bigrams(text: str) -> set[str]:
    chars = re.sub(r"[\W_]+", "", fold(text))
    return {chars[i:i + 2] for i in range(len(chars) - 1)} or ({chars} if chars else set())


def grounding(answer: str, source: str) -> float:
    """Share of the answer's character bigrams (folded, punctuation dropped) found in the source."""
    wanted = _bigrams(_MARKER_RE.sub("", answer))
    return len(wanted & _bigrams(source)) / len(wanted) if wanted else 0.0


def cite(answer: str, n: int) -> str:
    """Every sentence of the answer ends with ``[n]``, before its closing punctuation ("…十五天[1]。"):
    there the chain's sentence splitter keeps the marker with the claim it supports. Markers the
    LLM wrote are replaced: only n is a valid source number in the example."""
    text = _MARKER_RE.sub("", answer).strip()
    out = []
    for m in _SENTENCE_RE.finditer(text):
        sentence = m.group(0)
        body = sentence.rstrip(_CLOSING)
        if body.strip():
            out.append(f"{body}[{n}]{sentence[len(body):]}")
    return "".join(out) if out else f"{text}[{n}]"


def _hits(chunks: list[Chunk]) -> list[Hit]:
    return [Hit(chunk=c, score=1.0, relevance=1.0, rank=i) for i, c in enumerate(chunks, start=1)]


def chain_prompt(question: str, sources: list[Chunk]) -> list[dict[str, str]]:
    """The messages the RAG chain sends for this question and these sources (no history)."""
    roles = {"system": "system", "human": "user", "ai": "assistant"}
    messages = ANSWER_PROMPT.format_messages(history=[], sources=format_sources(_hits(sources)), question=question)
    return [{"role": roles[m.type], "content": str(m.content)} for m in messages]


def build_example(question: str, answer: str, gold: Chunk, distractors: list[Chunk], rng: random.Random,
                  kb_name: str = "", unanswerable: bool = False) -> Example:
    """One chain-shaped example: the gold chunk at a random position among the distractors, cited by
    its number; or, ``unanswerable``, the distractors alone and the no-answer reply."""
    if unanswerable:
        sources, reply = list(distractors), NO_ANSWER
    else:
        position = rng.randrange(len(distractors) + 1)
        sources = [*distractors[:position], gold, *distractors[position:]]
        reply = cite(answer, position + 1)
    return Example(chain_prompt(question, sources), [{"role": "assistant", "content": reply}], question,
                   origin=f"kb:{kb_name}/{gold.id}", format="kb-unanswerable" if unanswerable else "kb")


def sample_chunks(chunks: list[Chunk], n: int, seed: int = 0, min_chars: int = 40) -> list[Chunk]:
    """Up to n chunks with enough text to ask about, sampled deterministically."""
    usable = [c for c in chunks if len(c.text.strip()) >= min_chars]
    return random.Random(seed).sample(usable, min(n, len(usable)))


def pick_distractors(question: str, answer: str, gold: Chunk, pool: list[Chunk], retriever: Any | None, k: int,
                     rng: random.Random) -> list[Chunk]:
    """Up to k chunks that do not hold the answer: the question's BM25 neighbours first (plausible
    sources, as retrieval would return), then random chunks when too few share its words."""
    if k <= 0:
        return []
    candidates = [hit.chunk for hit in retriever.search(question, k + 3).hits] if retriever is not None else []
    candidates += rng.sample(pool, min(len(pool), 4 * k))
    out: list[Chunk] = []
    for c in candidates:
        if len(out) == k:
            break
        if c.id != gold.id and all(c.id != o.id for o in out) and grounding(answer, c.text) < 0.5:
            out.append(c)
    return out


def examples_from_kb(
    kb_name: str,
    settings: Settings,
    n_chunks: int,
    chat_model: Any | None = None,
    questions_per_chunk: int = 2,
    distractors: int = 2,
    unanswerable_ratio: float = 0.1,
    seed: int = 0,
    on_progress: Callable[[int, int], None] | None = None,
) -> tuple[list[Example], KBGenerationReport]:
    """Examples from ``n_chunks`` sampled chunks of a knowledge base, questions and answers by
    ``chat_model`` (default: the configured LLM, ``ZHIWEN_LLM_BASE_URL``), each shown among up to
    ``distractors`` other chunks (see pick_distractors)."""
    from ingest.kb import KnowledgeBase
    from llm.client import make_chat_model

    llm = chat_model if chat_model is not None else make_chat_model(settings.model_copy(update={"llm_temperature": 0.7}))
    rng = random.Random(seed)
    report = KBGenerationReport()
    examples: list[Example] = []
    with KnowledgeBase.open(kb_name, settings) as kb:
        everything = [c for doc in kb.catalog.list_documents() for c in kb.catalog.chunks_of_document(doc.id)]
        chosen = sample_chunks(everything, n_chunks, seed)
        report.chunks = len(chosen)
        retriever = kb.retriever(settings.model_copy(update={"retrieval_mode": "bm25"})) if distractors else None
        for done, chunk in enumerate(chosen, start=1):
            try:
                reply = llm.invoke([("system", QUESTION_SYSTEM), ("human", QUESTION_USER.format(text=chunk.text, k=questions_per_chunk))])
                pairs = parse_qa_pairs(str(reply.content))
            except Exception as exc:  # noqa: BLE001 -- one failed call (timeout, server hiccup) must not lose the others
                report.calls_failed += 1
                report.failures.append(f"{chunk.id}: {type(exc).__name__}: {exc}"[:300])
                pairs = []
            for question, answer in pairs[:questions_per_chunk]:
                report.pairs += 1
                if grounding(answer, chunk.text) < 0.5:
                    report.ungrounded += 1
                    continue
                # An unanswerable example gets one distractor more, standing in for the gold chunk it
                # lacks: every example shows the same number of sources, so "fewer sources" never
                # becomes a cue for refusing.
                refuse = rng.random() < unanswerable_ratio
                others = pick_distractors(question, answer, chunk, everything, retriever, distractors + refuse, rng)
                refuse = refuse and len(others) > distractors
                examples.append(build_example(question, answer, chunk, others, rng, kb_name, unanswerable=refuse))
                report.unanswerable += refuse
            if on_progress:
                on_progress(done, len(chosen))
    report.examples = len(examples)
    return examples, report
