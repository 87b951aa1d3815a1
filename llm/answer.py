"""``ask``: the one function every surface calls to answer a question from a knowledge base."""

from __future__ import annotations

import time

from core.models import Answer
from core.settings import Settings
from ingest.kb import KnowledgeBase
from llm.extractive import extractive_answer
from llm.refusal import refusal_message


def ask(question: str, kb_name: str, settings: Settings, top_k: int | None = None) -> Answer:
    t0 = time.perf_counter()
    with KnowledgeBase.open(kb_name, settings) as kb:
        retriever = kb.retriever(settings)
        result = retriever.search(question, top_k or settings.top_k)
        timings = dict(result.timings_ms)
        relevant = [h for h in result.hits if h.relevance >= settings.relevance_floor]
        if not relevant:
            answer = Answer(text=refusal_message(question), refused=True, mode="extractive")
        else:
            t1 = time.perf_counter()
            answer = extractive_answer(question, relevant, settings.extractive_max_sentences, idf=retriever.bm25.idf)
            timings["answer"] = (time.perf_counter() - t1) * 1000
    answer.flags["best_relevance"] = round(result.best_relevance, 4)
    timings["total"] = (time.perf_counter() - t0) * 1000
    answer.timings_ms = timings
    return answer
