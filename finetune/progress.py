"""A rich progress bar for the Trainer (steps, loss, learning rate), and one printed line per
evaluation, so a long run shows where it is and whether the dev loss still falls."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from transformers import TrainerCallback


class RichProgressCallback(TrainerCallback):
    def __init__(self, console: Console, disable: bool = False) -> None:
        self.console = console
        self.disable = disable
        self.progress: Progress | None = None
        self.task: Any = None
        self.last: dict[str, float] = {}

    def on_train_begin(self, args, state, control, **kwargs):
        self.progress = Progress(
            TextColumn("[bold]训练 (train)[/]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
            TextColumn("{task.description}"), console=self.console, disable=self.disable, transient=False,
        )
        self.progress.start()
        self.task = self.progress.add_task("", total=state.max_steps, completed=state.global_step)

    def on_step_end(self, args, state, control, **kwargs):
        if self.progress is not None:
            self.progress.update(self.task, completed=state.global_step, total=state.max_steps)

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if "loss" in logs:
            self.last["loss"] = float(logs["loss"])
        if "learning_rate" in logs:
            self.last["lr"] = float(logs["learning_rate"])
        if self.progress is not None and self.last:
            parts = [f"loss {self.last['loss']:.4f}" if "loss" in self.last else "", f"lr {self.last['lr']:.2e}" if "lr" in self.last else ""]
            self.progress.update(self.task, description=" ".join(p for p in parts if p))

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if metrics and "eval_loss" in metrics:
            epoch = f"{state.epoch:.2f}" if state.epoch else "0"
            self.console.print(f"评估 (eval) epoch {epoch} step {state.global_step}: dev loss [bold]{metrics['eval_loss']:.4f}[/]")

    def on_train_end(self, args, state, control, **kwargs):
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
