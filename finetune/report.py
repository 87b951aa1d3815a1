"""What a training run leaves beside its adapter: ``train_log.json`` (options, parameter counts, every
logged loss) and ``loss.png`` (training loss per step, eval loss per epoch)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TRAIN_LOG = "train_log.json"
LOSS_PLOT = "loss.png"


def loss_series(log_history: list[dict[str, Any]]) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    """(step, training loss) and (step, eval loss) pairs from a Trainer's log history."""
    train = [(int(h["step"]), float(h["loss"])) for h in log_history if "loss" in h and "step" in h]
    evals = [(int(h["step"]), float(h["eval_loss"])) for h in log_history if "eval_loss" in h and "step" in h]
    return train, evals


def write_loss_plot(log_history: list[dict[str, Any]], path: Path) -> Path | None:
    """A PNG of the loss curves; None when nothing was logged (a run of fewer steps than logging_steps)."""
    train, evals = loss_series(log_history)
    if not train and not evals:
        return None
    import matplotlib

    matplotlib.use("Agg")  # no display on servers; never opens a window
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    if train:
        ax.plot(*zip(*train), label="train loss", color="#4c78a8")
    if evals:
        ax.plot(*zip(*evals), "o-", label="eval loss (dev)", color="#f28e2b")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (answer tokens)")
    ax.set_title("LoRA fine-tuning")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_train_log(out_dir: Path, payload: dict[str, Any]) -> Path:
    path = out_dir / TRAIN_LOG
    path.write_text(json.dumps(payload, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    return path
