"""`zhiwen finetune train`: PEFT LoRA on a local base model, with transformers' Trainer.

Why the plain Trainer rather than TRL's SFTTrainer: the one thing SFT needs beyond it is the
prompt/answer label mask, which ``finetune.template`` does in twenty lines that the tests check
directly; everything else (gradient accumulation, mixed precision, checkpoints with optimizer and RNG
state, resuming, per-epoch evaluation) is the Trainer's own. The prepared data is TRL's
prompt/completion format, so teams that prefer SFTTrainer can feed it the same files.

Only LoRA weights train: the base is frozen by PEFT, and the saved adapter (adapter_config.json +
adapter_model.safetensors, tokenizer beside it) is what vLLM's ``--lora-modules NAME=PATH`` and
``zhiwen finetune serve`` load.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.settings import Settings
from finetune import data as sft_data
from finetune.base import (
    FinetuneError,
    check_base_dir,
    load_base_model,
    load_tokenizer,
    torch_dtype,
)
from finetune.hardware import (
    Hardware,
    Precision,
    choose_precision,
    choose_qlora,
    detect,
)
from finetune.report import LOSS_PLOT, write_loss_plot, write_train_log
from finetune.template import PadCollator, encode, ensure_chat_template

log = logging.getLogger(__name__)

CHECKPOINTS_DIR = "checkpoints"
VLLM_DEFAULT_MAX_LORA_RANK = 64


@dataclass
class TrainOptions:
    """Everything a run depends on; defaults come from settings (``finetune_*``), flags override."""

    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: ["all-linear"])
    learning_rate: float = 2e-4
    epochs: float = 3.0
    batch_size: int = 4
    grad_accum: int = 4
    max_length: int = 1024
    max_steps: int = -1  # > 0 stops after that many optimizer steps (smoke runs, tests)
    warmup: float = 0.03  # a share of the steps (< 1) or a number of steps
    logging_steps: int = 5
    save_steps: int = 100
    save_total_limit: int | None = 3
    seed: int = 0
    qlora: bool | None = None  # None: QLoRA when a GPU and bitsandbytes are both present
    gradient_checkpointing: bool = False

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> TrainOptions:
        base = cls(
            lora_r=settings.finetune_lora_r, lora_alpha=settings.finetune_lora_alpha,
            lora_dropout=settings.finetune_lora_dropout, target_modules=list(settings.finetune_target_modules),
            learning_rate=settings.finetune_learning_rate, epochs=settings.finetune_epochs,
            batch_size=settings.finetune_batch_size, grad_accum=settings.finetune_grad_accum,
            max_length=settings.finetune_max_length,
        )
        for key, value in overrides.items():
            if value is not None:
                setattr(base, key, value)
        return base


@dataclass
class TrainResult:
    adapter_dir: Path
    global_step: int
    trainable_params: int
    total_params: int
    train_loss: float | None
    eval_losses: list[tuple[int, float]]  # (step, dev loss): before training (step 0) and per epoch
    precision: Precision
    qlora: bool
    n_train: int
    n_dev: int
    skipped_too_long: int
    seconds: float
    model: Any = None  # the PeftModel, trained, for callers that go on using it (tests)
    log_history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def trainable_percent(self) -> float:
        return 100.0 * self.trainable_params / max(1, self.total_params)


def lora_target_modules(names: Sequence[str], model: Any | None = None) -> str | list[str]:
    """Module names for LoraConfig. "all-linear" becomes the short names of every linear layer except
    the output head (q_proj, k_proj, …, down_proj), found on ``model``: PEFT would otherwise write
    full paths ("model.layers.0.self_attn.q_proj", one per layer) into adapter_config.json, which
    vLLM reads only by their last part and other tools (GGUF conversion) may not read at all."""
    names = list(names)
    if names != ["all-linear"]:
        return names
    if model is None:
        return "all-linear"
    import torch

    head = model.get_output_embeddings()
    found = {name.rsplit(".", 1)[-1] for name, module in model.named_modules()
             if isinstance(module, torch.nn.Linear) and module is not head}
    return sorted(found) or "all-linear"


def make_lora_config(options: TrainOptions, model: Any | None = None) -> Any:
    from peft import LoraConfig

    return LoraConfig(
        r=options.lora_r, lora_alpha=options.lora_alpha, lora_dropout=options.lora_dropout,
        target_modules=lora_target_modules(options.target_modules, model), bias="none", task_type="CAUSAL_LM",
    )


def encode_examples(examples: list[sft_data.Example], tokenizer: Any, max_length: int) -> tuple[list[dict[str, list[int]]], int]:
    """Token ids and answer-only labels for each example; how many did not fit (their prompt alone
    reaches max_length) and were skipped."""
    rows, skipped = [], 0
    for e in examples:
        encoded = encode(tokenizer, e.prompt, e.completion, max_length)
        if encoded is None:
            skipped += 1
            continue
        rows.append({"input_ids": encoded.input_ids, "labels": encoded.labels})
    return rows, skipped


def latest_checkpoint(out_dir: Path) -> Path | None:
    ckpt_root = out_dir / CHECKPOINTS_DIR
    found = [p for p in ckpt_root.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()]
    return max(found, key=lambda p: int(p.name.split("-")[-1])) if found else None


def resolve_resume(out_dir: Path, resume: bool | str | Path | None) -> Path | None:
    """Which checkpoint to continue from: a path as given, the latest one for ``True``, none otherwise.
    Starting afresh over existing checkpoints is refused: mixing two runs' checkpoints in one folder
    would make a later --resume continue the wrong one."""
    if resume is None or resume is False:
        if latest_checkpoint(out_dir) is not None:
            raise FinetuneError(
                f"{out_dir / CHECKPOINTS_DIR} 里已有检查点 (checkpoints exist): 用 --resume 续训，或换一个 --out 目录"
            )
        return None
    if resume is True:
        found = latest_checkpoint(out_dir)
        if found is None:
            raise FinetuneError(f"{out_dir / CHECKPOINTS_DIR} 里没有可以续训的检查点 (no checkpoint to resume from)")
        return found
    path = Path(resume)
    if not (path / "trainer_state.json").is_file():
        raise FinetuneError(f"不是训练检查点，缺少 trainer_state.json (not a Trainer checkpoint): {path}")
    return path


def _load_for_training(base: Path, precision: Precision, qlora: bool, options: TrainOptions) -> Any:
    if not qlora:
        # CPU: float32. GPU: the frozen base in half precision (memory), LoRA weights kept in float32 by PEFT.
        return load_base_model(base, dtype=torch_dtype(precision))
    from peft import prepare_model_for_kbit_training
    from transformers import BitsAndBytesConfig

    quant = BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch_dtype(precision),
    )
    model = load_base_model(base, dtype=torch_dtype(precision), quantization_config=quant, device_map={"": 0})
    return prepare_model_for_kbit_training(model, use_gradient_checkpointing=options.gradient_checkpointing)


def train_lora(
    base: Path | str,
    data_dir: Path | str,
    out_dir: Path | str,
    options: TrainOptions,
    resume: bool | str | Path | None = None,
    callbacks: Sequence[Any] = (),
    hardware: Hardware | None = None,
    on_start: Callable[[dict[str, Any]], None] | None = None,
) -> TrainResult:
    """Train a LoRA adapter on ``data_dir``'s train.jsonl (eval on dev.jsonl once per epoch); write
    the adapter, its tokenizer, train_log.json and loss.png to ``out_dir``; return what happened.
    ``on_start`` hears, before the first step, the trainable/total parameter counts and the data sizes."""
    from peft import get_peft_model
    from transformers import PrinterCallback, Trainer, TrainingArguments, set_seed

    t0 = time.perf_counter()
    base, data_dir, out_dir = check_base_dir(base), Path(data_dir), Path(out_dir)
    train_examples = sft_data.load_split(data_dir / sft_data.TRAIN_FILE)
    if not train_examples:
        raise FinetuneError(
            f"{data_dir / sft_data.TRAIN_FILE} 不存在或为空 (no training data): 先运行 `zhiwen finetune prepare … --out {data_dir}`"
        )
    dev_examples = sft_data.load_split(data_dir / sft_data.DEV_FILE)
    out_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = resolve_resume(out_dir, resume)

    hw = hardware or detect()
    precision = choose_precision(hw)
    qlora = choose_qlora(options.qlora, hw)
    if options.lora_r > VLLM_DEFAULT_MAX_LORA_RANK:
        log.warning("LoRA rank %d > 64: vLLM needs --max-lora-rank %d to serve it", options.lora_r, options.lora_r)

    tokenizer = load_tokenizer(base)
    ensure_chat_template(tokenizer)
    train_rows, skipped = encode_examples(train_examples, tokenizer, options.max_length)
    dev_rows, skipped_dev = encode_examples(dev_examples, tokenizer, options.max_length)
    if not train_rows:
        raise FinetuneError(f"所有训练样本的提示都超过 max_length={options.max_length} 个 token (every prompt is too long)")

    set_seed(options.seed)  # LoRA A matrices are randomly initialised: same seed, same adapter
    base_model = _load_for_training(base, precision, qlora, options)
    model = get_peft_model(base_model, make_lora_config(options, base_model))
    trainable, total = model.get_nb_trainable_parameters()
    if on_start is not None:
        on_start({"trainable": trainable, "total": total, "percent": 100.0 * trainable / max(1, total),
                  "n_train": len(train_rows), "n_dev": len(dev_rows), "skipped": skipped + skipped_dev,
                  "precision": precision, "qlora": qlora, "resume_from": str(checkpoint) if checkpoint else None})

    args = TrainingArguments(
        output_dir=str(out_dir / CHECKPOINTS_DIR),
        per_device_train_batch_size=options.batch_size,
        per_device_eval_batch_size=options.batch_size,
        gradient_accumulation_steps=options.grad_accum,
        num_train_epochs=options.epochs,
        max_steps=options.max_steps,
        learning_rate=options.learning_rate,
        warmup_steps=options.warmup,
        lr_scheduler_type="cosine",
        weight_decay=0.0,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        use_cpu=not hw.cuda,
        activation_checkpointing=options.gradient_checkpointing,
        logging_strategy="steps",
        logging_steps=options.logging_steps,
        logging_first_step=True,
        eval_strategy="epoch" if dev_rows else "no",
        eval_on_start=bool(dev_rows) and checkpoint is None,
        save_strategy="steps",
        save_steps=options.save_steps,
        save_total_limit=options.save_total_limit,
        report_to="none",
        disable_tqdm=True,
        remove_unused_columns=False,
        seed=options.seed,
        data_seed=options.seed,
        dataloader_num_workers=0,
    )
    trainer = Trainer(
        model=model, args=args, train_dataset=train_rows, eval_dataset=dev_rows or None,
        data_collator=PadCollator(tokenizer.pad_token_id), callbacks=list(callbacks),
    )
    trainer.remove_callback(PrinterCallback)  # progress and losses are reported by our callbacks
    output = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)

    model.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    history = list(trainer.state.log_history)
    eval_losses = [(int(h["step"]), float(h["eval_loss"])) for h in history if "eval_loss" in h]
    result = TrainResult(
        adapter_dir=out_dir, global_step=trainer.state.global_step, trainable_params=trainable, total_params=total,
        train_loss=output.training_loss, eval_losses=eval_losses, precision=precision, qlora=qlora,
        n_train=len(train_rows), n_dev=len(dev_rows), skipped_too_long=skipped + skipped_dev,
        seconds=time.perf_counter() - t0, model=model, log_history=history,
    )
    write_train_log(out_dir, {
        "base": str(base), "data": str(data_dir), "resumed_from": str(checkpoint) if checkpoint else None,
        "options": asdict(options), "hardware": asdict(hw), "precision": precision, "qlora": qlora,
        "trainable_params": trainable, "total_params": total, "trainable_percent": round(result.trainable_percent, 4),
        "global_step": result.global_step, "train_loss": result.train_loss, "eval_losses": eval_losses,
        "n_train": result.n_train, "n_dev": result.n_dev, "skipped_too_long": result.skipped_too_long,
        "seconds": round(result.seconds, 2), "log_history": history,
    })
    write_loss_plot(history, out_dir / LOSS_PLOT)
    return result
