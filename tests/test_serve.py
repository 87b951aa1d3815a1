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


def test_a_model_directory_without_vllm_is_served_by_transformers_with_peft_adapters(monkeypatch, tmp_path):
    """The adapter trained by `zhiwen finetune train` is served unchanged on a CPU: same name=path."""
    monkeypatch.setattr(serve, "_has", lambda module: module in ("peft", "transformers", "llama_cpp"))
    (tmp_path / "config.json").write_text("{}")
    s = load_settings(serve_model=str(tmp_path), serve_lora_modules=["policy=adapters/policy"], llm_model="base")
    cmd = serve.build_command(s)
    assert cmd.backend == "transformers"
    assert cmd.argv[1:3] == ["-m", "finetune.hf_server"]
    assert cmd.argv[cmd.argv.index("--base") + 1] == str(tmp_path) and cmd.argv[cmd.argv.index("--base-name") + 1] == "base"
    assert cmd.argv[cmd.argv.index("--lora") + 1] == "policy=adapters/policy"


def test_llama_cpp_refuses_a_peft_adapter_directory_with_the_way_out(monkeypatch):
    monkeypatch.setattr(serve, "_has", lambda module: module == "llama_cpp")
    monkeypatch.setattr(serve, "bundled_gguf", lambda: "/x/SmolLM2.gguf")
    with pytest.raises(serve.BackendUnavailable, match="transformers"):
        serve.build_command(load_settings(serve_lora_modules=["policy=adapters/policy"]))
