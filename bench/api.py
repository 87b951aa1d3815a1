"""Load on a real `zhiwen api` process over loopback: N concurrent chat completions, alone and mixed
with an upload that ingests a new document into the same knowledge base while they run.

    python -m bench.api [--asks 200] [--rounds 1]

Reports per-request latency (p50 / p95 / max, client side, queueing included), throughput, and what a
load test must show: no request lost (every ask 200 with an answer), the upload indexed, and the
knowledge base consistent afterwards (catalogue, vectors and BM25 agree on every chunk).

Answers are extractive (no LLM): on a GPU server the LLM's generation time adds to each answer, and
vLLM's batching decides throughput; this measures zhiwen's own part (auth, retrieval, answer, API).
The answer cache is off so every ask retrieves.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from eval.metrics import latency_summary

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "corpus"
QUESTIONS = ["一线城市住宿标准是多少？", "年休假有几天？", "资安事件多久内要通报？", "知问网关的延迟是多少？",
             "数据备份多久做一次？", "客户投诉多久内要回复？", "出差结束后多久内提交报销？", "火星上有多少颗卫星？"]
NEW_DOC = ("# 远程办公制度\n\n员工每周最多可申请两天远程办公，需提前一个工作日在OA系统提交申请。"
           "远程办公期间须保持即时通讯在线，核心时段为上午10点至下午4点。\n\n"
           "远程办公产生的网络费用每月补贴100元，随工资发放。\n")


@dataclass
class LoadResult:
    asks: int
    ok: int
    latencies_ms: list[float]
    wall_s: float
    failures: list[str] = field(default_factory=list)
    upload: dict[str, Any] | None = None
    upload_ms: float | None = None
    answers: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {"asks": self.asks, "ok": self.ok, "lost": self.asks - self.ok, "wall_s": round(self.wall_s, 2),
                "per_s": round(self.ok / self.wall_s, 1), **latency_summary(self.latencies_ms),
                "max": max(self.latencies_ms, default=0.0), "upload_ms": self.upload_ms}


async def _ask(client: httpx.AsyncClient, kb: str, question: str, out: LoadResult, gate: asyncio.Semaphore) -> None:
    async with gate:
        await _ask_now(client, kb, question, out)


async def _ask_now(client: httpx.AsyncClient, kb: str, question: str, out: LoadResult) -> None:
    t = time.perf_counter()
    try:
        r = await client.post("/v1/chat/completions", json={"model": kb, "messages": [{"role": "user", "content": question}]})
        if r.status_code == 200 and r.json()["choices"][0]["message"]["content"]:
            out.ok += 1
            out.answers.append(r.json())
        else:
            out.failures.append(f"{r.status_code}: {r.text[:200]}")
    except httpx.HTTPError as exc:
        out.failures.append(f"{type(exc).__name__}: {exc}")
    out.latencies_ms.append((time.perf_counter() - t) * 1000)


async def _upload(client: httpx.AsyncClient, kb: str, name: str, data: bytes, out: LoadResult) -> None:
    t = time.perf_counter()
    r = await client.post(f"/v1/knowledge-bases/{kb}/documents", files={"files": (name, data, "text/markdown")})
    out.upload_ms = round((time.perf_counter() - t) * 1000, 1)
    out.upload = r.json()["data"][0] if r.status_code == 200 else {"status": "failed", "reason": f"{r.status_code}: {r.text[:200]}"}


async def load(base: str, token: str | None, kb: str, asks: int, upload: tuple[str, bytes] | None = None,
               concurrency: int | None = None) -> LoadResult:
    """Fire ``asks`` chat completions, ``concurrency`` in flight at a time (default: all at once) and,
    if given, one upload in the middle of them; wait for every one."""
    gate = asyncio.Semaphore(concurrency or asks)
    out = LoadResult(asks=asks, ok=0, latencies_ms=[], wall_s=0.0)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    limits = httpx.Limits(max_connections=asks + 2, max_keepalive_connections=asks + 2)
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=300) as client:
        t0 = time.perf_counter()
        tasks = [_ask(client, kb, QUESTIONS[i % len(QUESTIONS)], out, gate) for i in range(asks)]
        if upload is not None:
            tasks.insert(asks // 2, _upload(client, kb, upload[0], upload[1], out))
        await asyncio.gather(*tasks)
        out.wall_s = time.perf_counter() - t0
    return out


def run_load(base: str, token: str | None, kb: str, asks: int, upload: tuple[str, bytes] | None = None,
             concurrency: int | None = None) -> LoadResult:
    return asyncio.run(load(base, token, kb, asks, upload, concurrency))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.api", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--asks", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=1, help="repeat each scenario, report the median round by p50")
    args = ap.parse_args(argv)

    from core.keys import create_key
    from core.settings import load_settings
    from ingest.pipeline import ingest_paths
    from tests.api_server import running_api

    root = Path(tempfile.mkdtemp(prefix="zhiwen-bench-api-"))
    try:
        settings = load_settings(data_dir=root / "data")
        ingest_paths([SAMPLES], "load", settings)
        _, token = create_key(settings, "bench", {"load": "write"})
        env = {"ZHIWEN_ANSWER_CACHE_SIZE": "0", "ZHIWEN_API_RATE_LIMIT_PER_MINUTE": "0"}
        rows = []
        with running_api(settings.data_dir, env=env) as base:
            run_load(base, token, "load", 20)  # warm-up: models loaded, indexes in memory
            scenarios = [(f"one at a time ({args.asks} asks)", 1, None),
                         (f"{args.asks} concurrent asks", None, None),
                         (f"{args.asks} concurrent asks + an upload/ingest", None, ("远程办公制度.md", NEW_DOC.encode()))]
            for label, concurrency, upload in scenarios:
                results = []
                for i in range(args.rounds):
                    doc = None if upload is None else (f"{i}-{upload[0]}", upload[1].replace(b"100", str(100 + i).encode()))
                    results.append(run_load(base, token, "load", args.asks, doc, concurrency))
                res = sorted(results, key=lambda r: r.summary()["p50"])[len(results) // 2]
                rows.append((label, res.summary(), res.upload))
        print("| scenario | ok / lost | p50 ms | p95 ms | max ms | answers/s | upload ms |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for label, s, up in rows:
            upload_cell = f"{s['upload_ms']:.0f} ({up['status']})" if up else "–"
            print(f"| {label} | {s['ok']} / {s['lost']} | {s['p50']:.0f} | {s['p95']:.0f} | {s['max']:.0f} | {s['per_s']} | {upload_cell} |")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
