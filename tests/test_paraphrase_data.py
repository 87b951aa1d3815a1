"""The hand-written paraphrase benchmark is data the calibration is fitted on and the README reports on:
a gold answer that is not in its document, or a document split across dev and test, would make every
number built on it wrong without any test of the code noticing."""

from __future__ import annotations

from collections import Counter

import pytest

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


needs_cmrc = pytest.mark.skipif(
    not DEFAULT_CMRC_DEV.is_file(), reason=f"CMRC 2018 dev data not found at {DEFAULT_CMRC_DEV} (it lives outside the repository)"
)


def test_every_document_belongs_to_one_split():
    splits: dict[str, set[str]] = {}
    for q in load_questions():
        if q.doc is not None:
            splits.setdefault(q.doc, set()).add(q.split)
    assert {doc: s for doc, s in splits.items() if len(s) > 1} == {}


@needs_cmrc
def test_cmrc_paragraphs_follow_the_article_split():
    """The paraphrase questions over CMRC paragraphs use the split the CMRC benchmarks use."""
    paragraphs = {p.index: p for p in load_paragraphs(DEFAULT_CMRC_DEV)}
    for q in load_questions("cmrc"):
        if q.doc is not None:
            assert split_of(paragraphs[int(q.doc.split(":")[1])]) == q.split, q.id


def _missing_answers(corpus: str, text_of) -> list[tuple[str, str]]:
    texts: dict[str, str] = {}
    missing = []
    for q in load_questions(corpus):
        if not q.answerable:
            continue
        if q.doc not in texts:
            texts[q.doc] = _flat(text_of(q.doc))
        if _flat(q.answer) not in texts[q.doc]:
            missing.append((q.id, q.answer))
    return missing


def test_gold_answers_are_quotes_of_their_documents():
    """Read through zhiwen's own loaders (the PDF, DOCX, Big5 and GB18030 files included)."""
    assert _missing_answers("samples", lambda doc: "".join(load_file(SAMPLES_CORPUS / doc).pages)) == []


@needs_cmrc
def test_gold_answers_are_quotes_of_their_cmrc_paragraphs():
    paragraphs = {p.index: p for p in load_paragraphs(DEFAULT_CMRC_DEV)}
    assert _missing_answers("cmrc", lambda doc: paragraphs[int(doc.split(":")[1])].context) == []
