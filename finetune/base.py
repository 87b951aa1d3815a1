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
