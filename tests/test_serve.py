"""`zhiwen llm serve` command lines. vLLM needs a GPU, which neither this machine nor CI has: its
presence is faked (monkeypatched module lookup) and only the command it would run is checked."""

import pytest

from core.settings import load_settings
from llm import serve


def test_vllm_command_enables_lora_and_serves_adapters_by_name(monkeypatch):
    monkeypatch.setattr(serve, "_has", lambda module: module == "vllm")  # stands in for the gpu extra
    s = load_settings(serve_model="/models/Qwen2.5-7B-Instruct", serve_lora_modules=["policy=adapters/policy"], serve_port=8011)
    cmd = serve.build_command(s)
    assert cmd.backend == "vllm" and cmd.base_url == "http://127.0.0.1:8011/v1"
    argv = cmd.argv
    assert argv[1:3] == ["-m", "vllm.entrypoints.openai.api_server"]
    assert argv[argv.index("--model") + 1] == "/models/Qwen2.5-7B-Instruct"
    assert argv[argv.index("--served-model-name") + 1] == "zhiwen"
    assert "--enable-lora" in argv and argv[argv.index("--max-lora-rank") + 1] == "64"
    assert argv[argv.index("--lora-modules") + 1] == "policy=adapters/policy"


def test_auto_picks_the_cpu_backend_without_vllm(monkeypatch):
    monkeypatch.setattr(serve, "_has", lambda module: module == "llama_cpp")
    monkeypatch.setattr(serve, "bundled_gguf", lambda: "/x/SmolLM2.gguf")
    cmd = serve.build_command(load_settings())
    assert cmd.backend == "llama-cpp"
    assert cmd.argv[1:3] == ["-m", "llama_cpp.server"] and "/x/SmolLM2.gguf" in cmd.argv


def test_no_backend_gives_a_clear_message(monkeypatch):
    monkeypatch.setattr(serve, "_has", lambda module: False)
    with pytest.raises(serve.BackendUnavailable, match="llama-cpp-python"):
        serve.build_command(load_settings())
    with pytest.raises(serve.BackendUnavailable, match="vLLM"):
        serve.build_command(load_settings(serve_backend="vllm"))
