"""Evaluation runs started by a server (the HTTP API's POST /v1/eval, the web UI): each run gets an id
and a folder under ``$ZHIWEN_DATA_DIR/eval/runs/<id>/`` with its dataset, records, report and a
``status.json`` that any process can read, so a client polls a run that outlives the request.

The run itself is eval.runner.run_eval, exactly as `zhiwen eval run` does it.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import threading
import time
from pathlib import Path
from typing import Any

from core.atomic import atomic_write_bytes
from core.errors import ZhiwenError
from core.services import Services
from core.settings import Settings
from eval.dataset import QAItem, write_dataset
from eval.report import write_report
from eval.runner import run_eval
from ingest.kb import shared_kb

_RUN_ID = re.compile(r"^[0-9a-f]{16}$")
MAX_RUNNING = 2  # runs at once per server process: each one asks questions as fast as it can
REPORT_SETTINGS = {"top_k", "retrieval_mode", "bm25_weight", "dense_weight", "relevance_floor", "chunk_size",
                   "llm_base_url", "llm_model", "llm_temperature"}


class TooManyRuns(ZhiwenError):
    pass


class RunNotFound(ZhiwenError):
    def __init__(self, run_id: str) -> None:
        super().__init__(f"没有评测任务 {run_id} (no such evaluation run)")


def runs_dir(settings: Settings) -> Path:
    return settings.data_dir / "eval" / "runs"


def report_meta(dataset: str, kb: str, settings: Settings) -> dict[str, Any]:
    """What a report records about how it was produced (shared with `zhiwen eval run`)."""
    return {"dataset": dataset, "kb": kb, "settings": settings.model_dump(mode="json", include=REPORT_SETTINGS)}


def _write_status(folder: Path, status: dict[str, Any]) -> None:
    atomic_write_bytes(folder / "status.json", json.dumps(status, ensure_ascii=False, indent=1).encode())


def _slots(services: Services) -> threading.BoundedSemaphore:
    """The run slots of the process that owns ``services`` (the API's or the UI's)."""
    return services.slot("eval.running", lambda: threading.BoundedSemaphore(MAX_RUNNING))


def start_run(kb: str, items: list[QAItem], settings: Settings, services: Services, workers: int = 1) -> dict[str, Any]:
    """Validate, write the dataset, start the run in a background thread; return its first status."""
    if not items:
        raise ZhiwenError("问题集为空 (no questions)")
    ids = [i.id for i in items]
    if len(set(ids)) != len(ids):
        raise ZhiwenError("问题 id 重复 (duplicate question ids)")
    shared_kb(kb, settings, services)  # a missing knowledge base fails the request, not the thread
    slots = _slots(services)
    if not slots.acquire(blocking=False):
        raise TooManyRuns(f"已有 {MAX_RUNNING} 个评测在运行，请等它们结束 (too many evaluation runs at once)")
    try:
        return _start(kb, items, settings, services, workers)
    except BaseException:
        slots.release()
        raise


def _start(kb: str, items: list[QAItem], settings: Settings, services: Services, workers: int) -> dict[str, Any]:
    run_id = secrets.token_hex(8)
    folder = runs_dir(settings) / run_id
    folder.mkdir(parents=True)
    write_dataset(items, folder / "dataset.jsonl")
    status = {"id": run_id, "kb": kb, "status": "running", "total": len(items), "done": 0,
              "created_at": time.time(), "finished_at": None, "summary": None, "error": None, "pid": os.getpid()}
    _write_status(folder, status)
    threading.Thread(target=_run, args=(folder, status, kb, settings, services, workers), name=f"zhiwen-eval-{run_id}",
                     daemon=True).start()
    return status


def _run(folder: Path, status: dict[str, Any], kb: str, settings: Settings, services: Services, workers: int) -> None:
    last_write = 0.0

    def progress(_record: Any, done: int, total: int) -> None:
        nonlocal last_write
        status["done"] = done
        if time.monotonic() - last_write > 0.5 or done == total:  # status.json, not a write per question
            last_write = time.monotonic()
            _write_status(folder, status)

    try:
        records = run_eval(folder / "dataset.jsonl", kb, folder, settings, workers=workers, on_progress=progress,
                           services=services)
        agg = write_report(folder, records, report_meta(f"eval/runs/{folder.name}/dataset.jsonl", kb, settings))
        summary = {k: v for k, v in agg.items() if not isinstance(v, dict)}
        status.update(status="done", done=len(records), summary=summary)
    except Exception as exc:  # noqa: BLE001 (the run's status must say why it stopped)
        status.update(status="failed", error=f"{type(exc).__name__}: {exc}")
    finally:
        _slots(services).release()
    status["finished_at"] = time.time()
    _write_status(folder, status)


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_status(run_id: str, settings: Settings) -> dict[str, Any]:
    """A run whose server process died mid-run reads as "interrupted" (its records are kept: the same
    dataset re-run with `zhiwen eval run` into that folder resumes where it stopped)."""
    path = runs_dir(settings) / run_id / "status.json"
    if not _RUN_ID.match(run_id) or not path.is_file():
        raise RunNotFound(run_id)
    status = json.loads(path.read_text(encoding="utf-8"))
    if status["status"] == "running" and not _alive(status.get("pid")):
        status["status"] = "interrupted"
    return status


def list_runs(settings: Settings) -> list[dict[str, Any]]:
    root = runs_dir(settings)
    if not root.is_dir():
        return []
    runs = []
    for d in root.iterdir():
        if _RUN_ID.match(d.name) and (d / "status.json").is_file():
            try:
                runs.append(run_status(d.name, settings))
            except (ValueError, KeyError):  # a damaged status file hides that run, not the list
                continue
    return sorted(runs, key=lambda r: r.get("created_at", 0), reverse=True)
