"""`zhiwen eval run`: every question of a dataset through the real chain, one JSON record each.

Records are appended to ``records.jsonl`` and flushed as each question finishes, so a run that is
killed loses at most the questions in flight; running the same command again asks only what is
missing. Concurrency is bounded by ``workers``. The answer cache is off: every question costs what it
would cost a user asking it for the first time.
"""

from __future__ import annotations

import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Callable

from pydantic import BaseModel, Field

from core.errors import ZhiwenError
from core.services import Services
from core.settings import Settings
from eval import metrics as m
from eval.dataset import QAItem, load_dataset, source_matches
from ingest.kb import shared_kb
from llm.answer import ask
from llm.guard import masked_for_display
from moderation.moderator import moderator_for

RECORDS_FILE = "records.jsonl"
K = 5
RANK_DEPTH = 10


class EvalRecord(BaseModel):
    id: str
    question: str
    answerable: bool
    answers: list[str]
    relevant: list[str]
    prediction: str = ""
    refused: bool = False
    mode: str = ""
    model: str | None = None
    retrieved: list[dict[str, Any]] = Field(default_factory=list)  # chunk_id, source, text
    cited: list[dict[str, Any]] = Field(default_factory=list)  # n, chunk_id, source, quote
    timings_ms: dict[str, float] = Field(default_factory=dict)
    metrics: dict[str, float | None] = Field(default_factory=dict)
    best_relevance: float | None = None  # the best hit's relevance, for the refusal trade-off curve
    relevance_floor: float | None = None  # the floor the answer was given under
    flags: dict[str, Any] = Field(default_factory=dict)  # the answer's public flags (llm_error, uncited, …)
    error: str | None = None
    finished_at: float = 0.0


def _ids(item: QAItem, entries: list[dict[str, Any]]) -> list[str]:
    """Ranked ids to score: chunk ids when the dataset names chunks, else sources, each written as the
    relevant source it matches so that path prefixes do not matter."""
    if item.relevant_chunks:
        return [e["chunk_id"] for e in entries]
    out = []
    for e in entries:
        match = next((r for r in item.relevant_sources if source_matches(e["source"], r)), None)
        out.append(match or e["source"])
    return out


def score(item: QAItem, record: EvalRecord) -> dict[str, float | None]:
    relevant = set(item.relevant_chunks or item.relevant_sources)
    ranked = _ids(item, record.retrieved)
    cited = _ids(item, record.cited)
    out: dict[str, float | None] = {}
    if item.answerable and relevant:
        out.update(
            hit_at_1=m.hit_at_k(ranked, relevant, 1), hit_at_5=m.hit_at_k(ranked, relevant, K),
            recall_at_5=m.recall_at_k(ranked, relevant, K), mrr_at_10=m.mrr_at_k(ranked, relevant, RANK_DEPTH),
            ndcg_at_10=m.ndcg_at_k(ranked, relevant, RANK_DEPTH),
            citation_precision=m.citation_precision(cited, relevant), citation_recall=m.citation_recall(cited, relevant),
        )
    if item.answerable and item.answers:
        prediction = "" if record.refused else record.prediction
        out.update(
            exact_match=m.exact_match(prediction, item.answers), char_f1=m.char_f1(prediction, item.answers),
            rouge_l=m.rouge_l(prediction, item.answers),
        )
    return out


def judge(record: EvalRecord, kb_name: str, settings: Settings, llm: Any, services: Services) -> dict[str, float | None]:
    """LLM-as-judge scores for an answered question (see eval.judge)."""
    from eval.judge import answer_relevance, faithfulness

    if record.refused or not record.prediction.strip():
        return {}
    embedder = shared_kb(kb_name, settings, services).embedder()
    try:
        return {
            "faithfulness": faithfulness(llm, record.prediction, [p["text"] for p in record.retrieved]),
            "answer_relevance": answer_relevance(llm, embedder, record.question, record.prediction),
        }
    except Exception:  # a failing judge (server down, odd reply) must not lose the record it judges
        return {"faithfulness": None, "answer_relevance": None}


def ask_one(item: QAItem, kb_name: str, settings: Settings, services: Services, judge_llm: Any | None = None) -> EvalRecord:
    record = EvalRecord(id=item.id, question=item.question, answerable=item.answerable, answers=item.answers,
                        relevant=item.relevant_chunks or item.relevant_sources)
    try:
        answer = ask(item.question, kb_name, settings, services=services)
    except ZhiwenError as exc:
        record.error = str(exc)
        record.finished_at = time.time()
        return record
    public = answer.to_public_json()  # the record holds what a user of `ask --json` or the API sees
    catalog = shared_kb(kb_name, settings, services).catalog
    moderator = moderator_for(settings, services)  # reports are read by people: masked as answers are
    retrieved = []
    for chunk_id in public["flags"]["retrieved"]:
        chunk = catalog.chunk_by_id(chunk_id)
        if chunk is not None:
            retrieved.append({"chunk_id": chunk_id, "source": chunk.source, "text": masked_for_display(moderator, chunk.text)})
    record.prediction, record.refused, record.mode, record.model = public["answer"], public["refused"], public["mode"], public["model"]
    record.retrieved = retrieved
    record.cited = [{k: c[k] for k in ("n", "chunk_id", "source", "quote")} for c in public["citations"]]
    record.timings_ms = public["timings_ms"]
    record.flags = public["flags"]
    record.best_relevance = public["flags"]["best_relevance"]
    record.relevance_floor = public["flags"]["relevance_floor"]
    record.metrics = score(item, record)
    if judge_llm is not None:
        record.metrics.update(judge(record, kb_name, settings, judge_llm, services))
    record.finished_at = time.time()
    return record


def load_records(out_dir: Path) -> list[EvalRecord]:
    path = out_dir / RECORDS_FILE
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(EvalRecord.model_validate_json(line))
        except ValueError:
            continue  # a line cut short by a kill: that question is simply asked again
    return records


class _RecordWriter:
    def __init__(self, path: Path) -> None:
        self._file = open(path, "a", encoding="utf-8")
        self._lock = threading.Lock()

    def write(self, record: EvalRecord) -> None:
        with self._lock:
            self._file.write(record.model_dump_json() + "\n")
            self._file.flush()
            os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


def run_eval(
    dataset: Path,
    kb_name: str,
    out_dir: Path,
    settings: Settings,
    limit: int | None = None,
    workers: int = 1,
    on_progress: Callable[[EvalRecord, int, int], None] | None = None,
    judge_llm: Any | None = None,
    services: Services | None = None,
) -> list[EvalRecord]:
    """Ask what is not yet in ``out_dir/records.jsonl``; return all records of the dataset, in order.
    ``judge_llm`` (a LangChain chat model) adds the LLM-as-judge scores."""
    with Services.scoped(services) as scope:
        return _run_eval(dataset, kb_name, out_dir, settings, limit, workers, on_progress, judge_llm, scope)


def _run_eval(dataset: Path, kb_name: str, out_dir: Path, settings: Settings, limit: int | None, workers: int,
              on_progress: Callable[[EvalRecord, int, int], None] | None, judge_llm: Any | None,
              services: Services) -> list[EvalRecord]:
    items = load_dataset(dataset)[:limit] if limit else load_dataset(dataset)
    out_dir.mkdir(parents=True, exist_ok=True)
    settings = settings.model_copy(update={"answer_cache_size": 0})
    shared_kb(kb_name, settings, services)  # fail now, clearly, if the knowledge base does not exist
    done = {r.id: r for r in load_records(out_dir) if r.error is None}
    todo = [item for item in items if item.id not in done]
    writer = _RecordWriter(out_dir / RECORDS_FILE)
    finished = len(items) - len(todo)
    try:
        with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="zhiwen-eval") as pool:
            futures = [pool.submit(ask_one, item, kb_name, settings, services, judge_llm) for item in todo]
            for future in as_completed(futures):
                record = future.result()
                writer.write(record)
                done[record.id] = record
                finished += 1
                if on_progress:
                    on_progress(record, finished, len(items))
    finally:
        writer.close()
    return [done[item.id] for item in items if item.id in done]


def aggregate(records: list[EvalRecord]) -> dict[str, Any]:
    names = sorted({k for r in records for k in r.metrics})
    out: dict[str, Any] = {name: m.mean([r.metrics.get(name) for r in records]) for name in names}
    out["refusal_accuracy"] = m.refusal_accuracy([(r.answerable, r.refused) for r in records if r.error is None])
    out["questions"] = len(records)
    out["errors"] = sum(r.error is not None for r in records)
    stages = sorted({k for r in records for k in r.timings_ms})
    out["latency_ms"] = {s: m.latency_summary([r.timings_ms[s] for r in records if s in r.timings_ms]) for s in stages}
    scored = [(r.answerable, r.best_relevance) for r in records if r.error is None and r.best_relevance is not None]
    out["refusal_curve"] = m.refusal_tradeoff(scored)
    floors = {r.relevance_floor for r in records if r.relevance_floor is not None}
    out["relevance_floor"] = floors.pop() if len(floors) == 1 else None
    return out


def records_to_json(records: list[EvalRecord]) -> list[dict[str, Any]]:
    return [json.loads(r.model_dump_json()) for r in records]
