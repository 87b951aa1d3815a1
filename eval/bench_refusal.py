"""How well does the relevance floor separate answerable from unanswerable questions?

CMRC 2018 gives a clean test: index half of the articles; questions about indexed articles are
answerable, questions about the held-out half are not (their paragraph is simply absent). For each
question we record the best hit's relevance and report, per candidate floor, the share of answerable
questions answered and of unanswerable questions refused.

    python -m eval.bench_refusal [--articles 848] [--questions 400]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

from core.settings import load_settings
from ingest.kb import KnowledgeBase
from ingest.pipeline import ingest_paths

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cmrc2018" / "cmrc2018_dev.json"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--articles", type=int, default=848)
    ap.add_argument("--questions", type=int, default=400, help="per side (answerable / unanswerable)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    articles = json.loads(args.data.read_text(encoding="utf-8"))["data"][: args.articles]
    rng = random.Random(args.seed)
    order = list(range(len(articles)))
    rng.shuffle(order)
    indexed = set(order[: len(order) // 2])

    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        corpus.mkdir()
        for i in sorted(indexed):
            a = articles[i]
            (corpus / f"{i:04d}.md").write_text(f"# {a['title']}\n\n{a['paragraphs'][0]['context']}\n", encoding="utf-8")
        settings = load_settings(data_dir=Path(tmp) / "data")
        t0 = time.perf_counter()
        ingest_paths([corpus], "cmrc", settings)
        print(f"ingested {len(indexed)} articles in {time.perf_counter() - t0:.1f}s", file=sys.stderr)

        questions = {True: [], False: []}
        for i, a in enumerate(articles):
            for qa in a["paragraphs"][0]["qas"]:
                questions[i in indexed].append((qa["question"], f"{i:04d}.md"))
        samples = {side: rng.sample(qs, min(args.questions, len(qs))) for side, qs in questions.items()}

        with KnowledgeBase.open("cmrc", settings) as kb:
            retriever = kb.retriever(settings)
            rel = {side: [retriever.search(q, 5).best_relevance for q, _ in qs] for side, qs in samples.items()}

    print("| floor | answerable answered | unanswerable refused | balanced accuracy |")
    print("|---|---|---|---|")
    for floor in [0.3, 0.35, 0.4, 0.425, 0.45, 0.475, 0.5, 0.55]:
        answered = sum(r >= floor for r in rel[True]) / len(rel[True])
        refused = sum(r < floor for r in rel[False]) / len(rel[False])
        print(f"| {floor:.3f} | {answered:.3f} | {refused:.3f} | {(answered + refused) / 2:.3f} |")


if __name__ == "__main__":
    main()
