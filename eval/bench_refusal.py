"""How well does the relevance floor separate answerable from unanswerable questions?

CMRC 2018 gives a clean test: index half of the articles; questions about indexed articles are
answerable, questions about the held-out half are not (their paragraph is simply absent). For each
question we record the best hit's relevance and report, per candidate floor, the share of answerable
questions answered and of unanswerable questions refused.

    python -m eval.bench_refusal [--articles 848] [--questions 400]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

from core.settings import load_settings
from eval.cmrc import DEFAULT_CMRC_DEV, load_paragraphs, write_markdown
from ingest.kb import KnowledgeBase
from ingest.pipeline import ingest_paths

FLOORS = [0.3, 0.35, 0.4, 0.425, 0.45, 0.475, 0.5, 0.55]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_CMRC_DEV)
    ap.add_argument("--articles", type=int, default=None, help="use the first N paragraphs (default: all)")
    ap.add_argument("--questions", type=int, default=400, help="per side (answerable / unanswerable)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    paragraphs = load_paragraphs(args.data, args.articles)
    rng = random.Random(args.seed)
    order = [p.index for p in paragraphs]
    rng.shuffle(order)
    indexed = set(order[: len(order) // 2])

    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        write_markdown([p for p in paragraphs if p.index in indexed], corpus)
        settings = load_settings(data_dir=Path(tmp) / "data")
        t0 = time.perf_counter()
        ingest_paths([corpus], "cmrc", settings)
        print(f"ingested {len(indexed)} paragraphs in {time.perf_counter() - t0:.1f}s", file=sys.stderr)

        questions: dict[bool, list[str]] = {True: [], False: []}
        for p in paragraphs:
            questions[p.index in indexed].extend(q.text for q in p.questions)
        samples = {side: rng.sample(qs, min(args.questions, len(qs))) for side, qs in questions.items()}

        with KnowledgeBase.open("cmrc", settings) as kb:
            retriever = kb.retriever(settings)
            relevance = {side: [retriever.search(q, settings.top_k).best_relevance for q in qs] for side, qs in samples.items()}

    print(f"Indexed {len(indexed)} of {len(paragraphs)} CMRC 2018 paragraphs; {len(samples[True])} answerable and "
          f"{len(samples[False])} unanswerable questions (seed {args.seed}); default floor {settings.relevance_floor}.\n")
    print("| floor | answerable answered | unanswerable refused | balanced accuracy |")
    print("|---|---|---|---|")
    for floor in FLOORS:
        answered = sum(r >= floor for r in relevance[True]) / len(relevance[True])
        refused = sum(r < floor for r in relevance[False]) / len(relevance[False])
        print(f"| {floor:.3f} | {answered:.3f} | {refused:.3f} | {(answered + refused) / 2:.3f} |")


if __name__ == "__main__":
    main()
