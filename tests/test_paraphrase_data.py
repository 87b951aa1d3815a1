"""The hand-written paraphrase benchmark is data the calibration is fitted on and the README reports on:
a gold answer that is not in its document, or a document split across dev and test, would make every
number built on it wrong without any test of the code noticing."""

from __future__ import annotations

from collections import Counter

from core.text import fold
from eval.cmrc import DEFAULT_CMRC_DEV, load_paragraphs, split_of
from eval.paraphrase import ANSWERABLE_KINDS, SAMPLES_CORPUS, UNANSWERABLE_KINDS, load_questions
from ingest.loaders import load_file


def _flat(text: str) -> str:
    return "".join(fold(text).split())


def test_ids_are_unique_and_kinds_known():
    questions = load_questions()
    assert len(questions) >= 160
    duplicates = [i for i, n in Counter(q.id for q in questions).items() if n > 1]
    assert not duplicates
    for q in questions:
        assert q.kind in (ANSWERABLE_KINDS if q.answerable else UNANSWERABLE_KINDS), q.id
        assert q.split in ("dev", "test"), q.id
        assert (q.answer is not None) == q.answerable, q.id


def test_every_document_belongs_to_one_split():
    splits: dict[str, set[str]] = {}
    for q in load_questions():
        if q.doc is not None:
            splits.setdefault(q.doc, set()).add(q.split)
    assert {doc: s for doc, s in splits.items() if len(s) > 1} == {}
    paragraphs = {p.index: p for p in load_paragraphs(DEFAULT_CMRC_DEV)}
    for q in load_questions("cmrc"):
        if q.doc is not None:  # CMRC paragraphs follow the article split the CMRC benchmarks use
            assert split_of(paragraphs[int(q.doc.split(":")[1])]) == q.split, q.id


def test_gold_answers_are_quotes_of_their_documents():
    paragraphs = {p.index: p for p in load_paragraphs(DEFAULT_CMRC_DEV)}
    texts: dict[str, str] = {}
    missing = []
    for q in load_questions():
        if not q.answerable:
            continue
        if q.doc not in texts:
            if q.corpus == "cmrc":
                texts[q.doc] = _flat(paragraphs[int(q.doc.split(":")[1])].context)
            else:
                texts[q.doc] = _flat("".join(load_file(SAMPLES_CORPUS / q.doc).pages))
        if _flat(q.answer) not in texts[q.doc]:
            missing.append((q.id, q.answer))
    assert missing == []
