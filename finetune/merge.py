"""`zhiwen finetune merge`: base + LoRA adapter → one plain model directory, for servers that cannot
load LoRA (llama.cpp after GGUF conversion, TGI without adapters, older vLLM).

The base is loaded unquantised in the dtype it was saved in, even when the adapter was trained with
QLoRA: merging into 4-bit weights would round the adapter's update away. The merged directory holds
the model, its generation config and the adapter's tokenizer (chat template included).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from finetune.base import (
    FinetuneError,
    check_adapter_dir,
    check_base_dir,
    load_base_model,
    load_tokenizer,
)


def load_with_adapter(base: Path | str, adapter: Path | str, dtype: Any = None) -> Any:
    """A PeftModel: the base with the adapter attached (not merged), in eval mode."""
    from peft import PeftModel

    model = load_base_model(check_base_dir(base), dtype=dtype)
    return PeftModel.from_pretrained(model, str(check_adapter_dir(adapter))).eval()


def merge_adapter(base: Path | str, adapter: Path | str, out_dir: Path | str, dtype: Any = None) -> Path:
    base, adapter, out_dir = check_base_dir(base), check_adapter_dir(adapter), Path(out_dir)
    if out_dir.resolve() in (base.resolve(), adapter.resolve()):
        raise FinetuneError("合并结果不能写进基础模型或适配器目录 (--out must be a new directory)")
    merged = load_with_adapter(base, adapter, dtype).merge_and_unload()
    out_dir.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(str(out_dir))
    tokenizer_source = adapter if (adapter / "tokenizer_config.json").exists() else base
    load_tokenizer(tokenizer_source).save_pretrained(str(out_dir))
    (out_dir / "zhiwen_merge.json").write_text(
        json.dumps({"base": str(base), "adapter": str(adapter)}, ensure_ascii=False, indent=1), encoding="utf-8"
    )
    return out_dir
