"""`zhiwen finetune …`: LoRA fine-tuning commands (prepare, train, merge, eval)."""

from __future__ import annotations

import typer

finetune_app = typer.Typer(help="LoRA 微调 (LoRA fine-tuning): prepare / train / merge / eval", no_args_is_help=True)
