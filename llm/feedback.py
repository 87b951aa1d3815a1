"""Thumbs up/down on answers, appended to ``$ZHIWEN_DATA_DIR/feedback.jsonl`` with the question, the
answer and its citations: the raw material for evaluation sets and fine-tuning data."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from core.models import Answer
from core.settings import Settings

_lock = threading.Lock()


def feedback_path(settings: Settings) -> Path:
    return settings.data_dir / "feedback.jsonl"


def save_feedback(settings: Settings, kb: str, question: str, answer: Answer, rating: Literal["up", "down"], comment: str = "") -> None:
    record = {
        "time": datetime.now(timezone.utc).isoformat(), "kb": kb, "rating": rating, "question": question,
        "answer": answer.text, "mode": answer.mode, "model": answer.model, "refused": answer.refused,
        "citations": [c.model_dump() for c in answer.citations], "comment": comment,
    }
    path = feedback_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _lock, open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record, ensure_ascii=False) + "\n")


def load_feedback(settings: Settings) -> list[dict]:
    path = feedback_path(settings)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
