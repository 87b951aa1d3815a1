"""Vector stores side by side: the same queries on FAISS (exact, in process) and Milvus Lite, at 10k and
100k chunks: query latency p50/p95 and recall@10 against exact search.

    python -m bench.stores [--sizes 10000 100000] [--queries 200]

Vectors: 512-dim (USE's size), random and L2-normalised; queries: stored vectors with noise, so each
has a clear neighbourhood. Exact search (numpy) is the ground truth.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from eval.metrics import latency_summary
from retrieval.faiss_store import FaissStore

DIM = 512
K = 10


def dataset(n: int, queries: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    picks = rng.choice(n, size=queries, replace=False)
    q = vectors[picks] + 0.05 * rng.normal(size=(queries, DIM)).astype(np.float32)
    return vectors, q / np.linalg.norm(q, axis=1, keepdims=True)


def run_store(store, vectors: np.ndarray, queries: np.ndarray, truth: np.ndarray, stamp: Path) -> dict[str, float]:
    ids = np.arange(len(vectors))
    t0 = time.perf_counter()
    store.add(ids, vectors, [{"doc_id": "d", "source": "bench.md"}] * len(ids))
    store.save(stamp, version=1, model="bench")  # what a knowledge base does after a batch: Milvus flushes (seals, indexes)
    load_s = time.perf_counter() - t0
    store.search(queries[0], K)  # warm-up
    latencies, recalls = [], []
    for q, expected in zip(queries, truth):
        t = time.perf_counter()
        found = [i for i, _ in store.search(q, K)]
        latencies.append((time.perf_counter() - t) * 1000)
        recalls.append(len(set(found) & set(expected.tolist())) / K)
    return {"load_s": load_s, **latency_summary(latencies), "recall": float(np.mean(recalls))}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.stores", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--queries", type=int, default=200)
    args = ap.parse_args(argv)
    from retrieval.milvus_store import MilvusStore

    print("| chunks | store | insert + save s | query p50 ms | query p95 ms | recall@10 vs exact |")
    print("|---:|---|---:|---:|---:|---:|")
    for n in args.sizes:
        vectors, queries = dataset(n, args.queries)
        truth = np.argsort(-(queries @ vectors.T), axis=1)[:, :K]
        with tempfile.TemporaryDirectory() as tmp:
            stores = {"FAISS (IndexFlatIP, in process)": FaissStore(DIM, index_kind="flat"),
                      "Milvus Lite (FLAT, local file)": MilvusStore(str(Path(tmp) / "bench.db"), DIM)}
            for name, store in stores.items():
                r = run_store(store, vectors, queries, truth, Path(tmp) / f"{store.kind}.stamp")
                print(f"| {n:,} | {name} | {r['load_s']:.1f} | {r['p50']:.2f} | {r['p95']:.2f} | {r['recall']:.3f} |", flush=True)
            stores["Milvus Lite (FLAT, local file)"].close()


if __name__ == "__main__":
    main()
