"""What the machine can do, and the training choices that follow from it.

The choices are pure functions of plain facts (is there CUDA, does it do bf16, is bitsandbytes
installed), so they are tested without the hardware; ``detect`` is the one place that asks torch.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Literal

from core.errors import ZhiwenError

Precision = Literal["bf16", "fp16", "fp32"]


@dataclass(frozen=True)
class Hardware:
    cuda: bool
    bf16: bool  # the GPU computes in bfloat16 (Ampere and later)
    bitsandbytes: bool


def detect() -> Hardware:
    import torch

    cuda = torch.cuda.is_available()
    return Hardware(
        cuda=cuda,
        bf16=cuda and torch.cuda.is_bf16_supported(),
        bitsandbytes=importlib.util.find_spec("bitsandbytes") is not None,
    )


def choose_precision(hw: Hardware) -> Precision:
    """bf16 where the GPU has it (fp16's range needs loss scaling, bf16's does not), fp16 on older
    GPUs, fp32 on CPU (CPU half-precision training is slow and loses precision for nothing)."""
    if not hw.cuda:
        return "fp32"
    return "bf16" if hw.bf16 else "fp16"


def choose_qlora(requested: bool | None, hw: Hardware) -> bool:
    """QLoRA (4-bit base) when asked, or by default when a GPU and bitsandbytes are both present: it
    cuts the base model's memory by about 4x at a small cost in quality. Asked for where it cannot
    run, it is an error, not a silent fall-back to a run that needs four times the memory."""
    possible = hw.cuda and hw.bitsandbytes
    if requested is None:
        return possible
    if requested and not possible:
        missing = "没有 CUDA GPU (no CUDA GPU)" if not hw.cuda else "没有安装 bitsandbytes (pip install bitsandbytes)"
        raise ZhiwenError(f"无法使用 QLoRA 4-bit (QLoRA unavailable): {missing}")
    return requested
