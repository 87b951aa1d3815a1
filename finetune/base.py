"""Loading a base model and its tokenizer from a local directory, never from a hub.

Users download base models themselves (``huggingface-cli download`` / ModelScope / a copy from a
colleague); everything here passes ``local_files_only=True`` so that a typo in a path is an error
that says so, not a multi-gigabyte download attempt.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from core.errors import ZhiwenError

# PEFT reads a transformers attribute that transformers 5 deprecated; the warning is theirs to fix
# and says nothing to a user, who would see it on every load.
warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)


class FinetuneError(ZhiwenError):
    pass


def check_base_dir(path: Path | str) -> Path:
    """The base model directory, or a FinetuneError that says what a base directory must hold."""
    p = Path(path).expanduser()
    if not p.is_dir() or not (p / "config.json").is_file():
        raise FinetuneError(
            f"基础模型必须是本地目录，且包含 config.json (the base model must be a local directory with config.json): {p}。"
            "不会从网上下载任何模型 (nothing is downloaded): 请先自行下载，例如 "
            "`huggingface-cli download Qwen/Qwen2.5-7B-Instruct --local-dir /models/Qwen2.5-7B-Instruct`。"
        )
    return p


def check_adapter_dir(path: Path | str) -> Path:
    p = Path(path).expanduser()
    if not (p / "adapter_config.json").is_file():
        raise FinetuneError(f"不是 LoRA 适配器目录，缺少 adapter_config.json (not a PEFT adapter directory): {p}")
    return p


def load_tokenizer(path: Path | str) -> Any:
    from transformers import AutoTokenizer

    from finetune.template import ensure_pad_token

    tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    ensure_pad_token(tokenizer)
    return tokenizer


def torch_dtype(precision: str) -> Any:
    import torch

    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[precision]


def load_base_model(path: Path | str, dtype: Any = None, quantization_config: Any = None, device_map: Any = None) -> Any:
    """The causal LM in ``path``. ``dtype`` None keeps the dtype the weights were saved in ("auto")."""
    from transformers import AutoModelForCausalLM

    base = check_base_dir(path)
    kwargs: dict[str, Any] = {"local_files_only": True, "dtype": dtype if dtype is not None else "auto"}
    if quantization_config is not None:
        kwargs["quantization_config"] = quantization_config
    if device_map is not None:
        kwargs["device_map"] = device_map
    try:
        return AutoModelForCausalLM.from_pretrained(str(base), **kwargs)
    except (OSError, ValueError) as exc:
        raise FinetuneError(f"无法加载基础模型 {base} (cannot load the base model): {exc}") from exc


def quiet_transformers() -> None:
    """Our own progress bars speak for long steps; transformers' per-shard bars would interleave."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def gguf_to_hf(gguf_file: Path | str, out_dir: Path | str) -> Path:
    """A GGUF model file (e.g. the SmolLM2 that the llama.cpp backend serves) → a local transformers
    model directory that ``--base`` accepts: config.json, float32 safetensors, and the tokenizer with
    the chat template the GGUF carries. Needs the ``gguf`` package; quantized weights are dequantized.

    transformers marks a model loaded from GGUF as quantized and refuses to save it, even once every
    weight is a plain float tensor; the weights are therefore moved into a model built from the same
    config (without the GGUF quantization entry) on the meta device, so nothing is copied twice."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils.quantization_config import GgufConfig

    src, out = Path(gguf_file).expanduser(), Path(out_dir).expanduser()
    if not src.is_file():
        raise FinetuneError(f"找不到 GGUF 文件 (GGUF file not found): {src}")
    where = {"gguf_file": src.name, "local_files_only": True}
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(src.parent), **where)
        loaded = AutoModelForCausalLM.from_pretrained(
            str(src.parent), quantization_config=GgufConfig(dequantize=True), dtype=torch.float32, **where)
    except (OSError, ValueError, ImportError) as exc:
        raise FinetuneError(f"无法读取 GGUF 模型 {src} (cannot load the GGUF model): {exc}") from exc
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict(), strict=True, assign=True)
    model.tie_weights()
    model.generation_config = loaded.generation_config
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    return out
