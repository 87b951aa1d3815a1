"""An in-process LRU of answers. The key holds the knowledge base's catalogue version, so any ingest
or removal makes old entries unreachable (they age out); a repeated question costs no LLM call."""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections import OrderedDict

from core.models import Answer
from core.settings import Settings
from core.text import fold

_ANSWER_SETTINGS = ("llm_model", "llm_temperature", "llm_max_tokens", "top_k", "retrieval_mode", "bm25_weight",
                    "dense_weight", "fusion", "relevance_floor", "extractive_max_sentences")


def normalise_question(question: str) -> str:
    """"知问网关的P99延迟是多少？" and "知问网关的 p99 延迟是多少?" are one question."""
    return re.sub(r"[\s\W_]+", "", fold(question))


def cache_key(kb: str, kb_version: int, question: str, history: list[tuple[str, str]], settings: Settings) -> str:
    payload = {
        "kb": kb, "version": kb_version, "q": normalise_question(question), "history": history,
        "settings": {k: getattr(settings, k) for k in _ANSWER_SETTINGS}, "llm": settings.llm_base_url,
    }
    return hashlib.sha256(json.dumps(payload, ensure_ascii=False, sort_keys=True).encode("utf-8")).hexdigest()


class AnswerCache:
    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[str, Answer] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Answer | None:
        with self._lock:
            answer = self._items.get(key)
            if answer is not None:
                self._items.move_to_end(key)
            return answer.model_copy(deep=True) if answer is not None else None

    def put(self, key: str, answer: Answer) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._items[key] = answer.model_copy(deep=True)
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
