"""`zhiwen finetune eval`: the same question set through the real RAG chain twice, once on the base
model and once on the adapter, and the two reports side by side.

Both runs go through an OpenAI-compatible server that serves the base under one name and the
adapter under another: vLLM with ``--lora-modules`` when one is given (``base_url``), otherwise the
transformers adapter server (``finetune.hf_server``) started here on a free port of 127.0.0.1 and
stopped afterwards. Only the model name differs between the two runs, so any difference in the
metrics is the adapter's doing. The LLM's extractive fall-back is off: a failing model must show up
as errors, not as extractive answers scored as if the model had written them.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.settings import Settings
from finetune.base import check_adapter_dir, check_base_dir

COMPARISON_JSON = "comparison.json"
COMPARISON_MD = "comparison.md"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RunningServer:
    base_url: str
    models: list[str]
    process: subprocess.Popen | None


@contextmanager
def adapter_server(base: Path | str, adapters: dict[str, Path], base_name: str = "zhiwen", log_path: Path | None = None,
                   timeout: float = 600.0) -> Iterator[RunningServer]:
    """``python -m finetune.hf_server`` on a free 127.0.0.1 port, healthy (it lists its models)
    before the body runs, and stopped (its whole process group) after it, whatever happens."""
    from llm.serve import BackendUnavailable, wait_until_healthy

    port = free_port()
    argv = [sys.executable, "-m", "finetune.hf_server", "--base", str(check_base_dir(base)), "--base-name", base_name,
            "--host", "127.0.0.1", "--port", str(port)]
    for name, path in adapters.items():
        argv += ["--lora", f"{name}={check_adapter_dir(path)}"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    root = Path(__file__).resolve().parents[1]
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH", "")) if p)
    with open(log_path or os.devnull, "wb") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            base_url = f"http://127.0.0.1:{port}/v1"
            try:
                models = wait_until_healthy(base_url, process, timeout=timeout)
            except BackendUnavailable as exc:
                where = f"，日志 (log): {log_path}" if log_path else ""
                raise BackendUnavailable(f"LoRA 服务没有启动 (adapter server failed): {exc}{where}") from exc
            yield RunningServer(base_url, models, process)
        finally:
            _stop(process)


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM the server's process group (uvicorn shuts down cleanly), SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


@dataclass
class Comparison:
    rows: list[tuple[str, Any, Any, float | None]]  # (metric, base, adapter, adapter − base)
    base_dir: Path
    adapter_dir: Path
    base_model: str
    adapter_model: str


def _meta(dataset: Path, kb: str, settings: Settings) -> dict[str, Any]:
    return {"dataset": str(dataset), "kb": kb, "settings": settings.model_dump(mode="json", include={
        "top_k", "retrieval_mode", "bm25_weight", "dense_weight", "relevance_floor", "llm_base_url", "llm_model",
        "llm_temperature", "llm_max_tokens"})}


def compare_models(
    dataset: Path,
    kb: str,
    out_dir: Path,
    settings: Settings,
    base_url: str,
    base_model: str,
    adapter_model: str,
    limit: int | None = None,
    workers: int = 1,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> Comparison:
    """Evaluate ``base_model`` then ``adapter_model`` on the server at ``base_url``; write each run's
    report under ``out_dir/base`` and ``out_dir/adapter`` (resumable, as `zhiwen eval run`), and
    comparison.json / comparison.md beside them."""
    from eval.report import compare, write_report
    from eval.runner import run_eval

    runs: dict[str, dict[str, Any]] = {}
    dirs = {"base": out_dir / "base", "adapter": out_dir / "adapter"}
    for label, model in (("base", base_model), ("adapter", adapter_model)):
        s = settings.model_copy(update={"llm_base_url": base_url, "llm_model": model, "llm_fallback_extractive": False,
                                        "answer_cache_size": 0})
        progress = (lambda r, done, total, label=label: on_progress(label, done, total)) if on_progress else None
        records = run_eval(dataset, kb, dirs[label], s, limit=limit, workers=workers, on_progress=progress)
        runs[label] = write_report(dirs[label], records, _meta(dataset, kb, s))
    rows = compare(runs["base"], runs["adapter"])
    result = Comparison(rows, dirs["base"], dirs["adapter"], base_model, adapter_model)
    write_comparison(out_dir, result, runs)
    return result


def write_comparison(out_dir: Path, result: Comparison, runs: dict[str, dict[str, Any]]) -> None:
    payload = {
        "base_model": result.base_model, "adapter_model": result.adapter_model,
        "rows": [{"metric": m, "base": a, "adapter": b, "delta": d} for m, a, b, d in result.rows],
        "base": runs["base"], "adapter": runs["adapter"],
    }
    (out_dir / COMPARISON_JSON).write_text(json.dumps(payload, ensure_ascii=False, indent=1), encoding="utf-8")

    def fmt(v: Any) -> str:
        return "–" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)

    lines = [f"# 微调前后对比 (before/after fine-tuning): {result.base_model} vs {result.adapter_model}", "",
             (f"questions: {runs['base'].get('questions')}; errors: base {runs['base'].get('errors')}, "
              f"adapter {runs['adapter'].get('errors')}"), "",
             f"| metric | base `{result.base_model}` | adapter `{result.adapter_model}` | adapter − base |", "|---|---|---|---|"]
    lines += [f"| {m} | {fmt(a)} | {fmt(b)} | {'+' if (d or 0) > 0 else ''}{fmt(d)} |" for m, a, b, d in result.rows]
    lines += ["", "Per-run reports: [base](base/report.md), [adapter](adapter/report.md)."]
    (out_dir / COMPARISON_MD).write_text("\n".join(lines) + "\n", encoding="utf-8")
