"""The hand-written paraphrase benchmark (eval/data/paraphrase/) and what a retriever does with it.

Two files of questions written by people, not generated from the documents' sentences:
- ``samples.jsonl`` over samples/corpus (the eight demo documents, one of them Traditional Big5);
- ``cmrc.jsonl`` over CMRC 2018 dev paragraphs (retrieval over all 848 of them).
Each question has a ``kind``: synonym, reorder, combine, english, traditional (answerable), offtopic,
nearmiss (unanswerable: nothing to do with the documents / the documents' topic but a fact they don't
state). Splits are by document: samples' documents are assigned by hand, CMRC paragraphs by
``eval.cmrc.split_of``. Fit and tune on ``dev``, report on ``test``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eval.metrics import mean

DATA_DIR = Path(__file__).resolve().parent / "data" / "paraphrase"
SAMPLES_CORPUS = Path(__file__).resolve().parents[1] / "samples" / "corpus"
ANSWERABLE_KINDS = ("synonym", "reorder", "combine", "english", "traditional")
UNANSWERABLE_KINDS = ("offtopic", "nearmiss")


@dataclass(frozen=True)
class ParaphraseQuestion:
    id: str
    question: str
    lang: str
    kind: str
    answerable: bool
    doc: str | None  # a samples/corpus file name, or "cmrc:0123"
    answer: str | None
    split: str
    corpus: str  # "samples" | "cmrc"

    @property
    def gold_name(self) -> str | None:
        """The file name the gold document has in a knowledge base built by these scripts."""
        if not self.answerable or self.doc is None:
            return None
        return f"{self.doc.split(':', 1)[1]}.md" if self.doc.startswith("cmrc:") else self.doc


def load_questions(corpus: str | None = None, split: str | None = None, directory: Path = DATA_DIR) -> list[ParaphraseQuestion]:
    """Questions of one corpus and/or split (``None``: all). A malformed line names its file and line."""
    out = []
    for name in ("samples", "cmrc"):
        if corpus not in (None, name):
            continue
        path = directory / f"{name}.jsonl"
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                q = ParaphraseQuestion(
                    id=row["id"], question=row["question"], lang=row["lang"], kind=row["kind"],
                    answerable=bool(row["answerable"]), doc=row.get("doc"), answer=row.get("answer"),
                    split=row["split"], corpus=name,
                )
            except (ValueError, KeyError) as exc:
                raise ValueError(f"{path}:{lineno}: bad question line ({exc})") from exc
            if split in (None, q.split):
                out.append(q)
    return out


@dataclass
class Outcome:
    """One question through one retriever: what the refusal decision and the top hit were."""

    question: ParaphraseQuestion
    answered: bool
    first_doc: str | None
    best_relevance: float
    latency_ms: float

    @property
    def right_first(self) -> bool:
        return self.question.answerable and self.first_doc == self.question.gold_name


def doc_name(source: str) -> str:
    return Path(source).name


def run_questions(retriever: Any, questions: Iterable[ParaphraseQuestion], top_k: int = 5) -> list[Outcome]:
    out = []
    for q in questions:
        t0 = time.perf_counter()
        result = retriever.search(q.question, top_k)
        latency = (time.perf_counter() - t0) * 1000
        first = doc_name(result.hits[0].chunk.source) if result.hits else None
        out.append(Outcome(q, bool(result.relevant), first, result.best_relevance, latency))
    return out


def _rate(values: Sequence[bool]) -> float | None:
    return mean(float(v) for v in values) if values else None


def summarise(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """The issue's measures: answered when answerable, right document first, refused when
    unanswerable (off-topic and near-miss apart), and the cross-lingual slices."""
    ans = [o for o in outcomes if o.question.answerable]

    def kind(k: str) -> list[Outcome]:
        return [o for o in outcomes if o.question.kind == k]

    return {
        "answerable": len(ans),
        "answered": _rate([o.answered for o in ans]),
        "right_first": _rate([o.right_first for o in ans]),
        "offtopic": len(kind("offtopic")),
        "offtopic_refused": _rate([not o.answered for o in kind("offtopic")]),
        "nearmiss": len(kind("nearmiss")),
        "nearmiss_refused": _rate([not o.answered for o in kind("nearmiss")]),
        "english": len(kind("english")),
        "english_answered": _rate([o.answered for o in kind("english")]),
        "english_right_first": _rate([o.right_first for o in kind("english")]),
        "traditional": len(kind("traditional")),
        "traditional_right_first": _rate([o.right_first for o in kind("traditional")]),
    }
