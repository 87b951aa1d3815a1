"""Evaluation runs over HTTP: POST /v1/eval starts one (it runs in the server, in the background) and
returns its id; GET /v1/eval/{id} reports progress and, when done, the headline metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from app.api.deps import Caller, Config, State, require
from eval.dataset import QAItem
from eval.jobs import list_runs, run_status, start_run

router = APIRouter(prefix="/v1/eval", tags=["evaluation"])


class EvalRequest(BaseModel):
    kb: str = Field(..., description="knowledge base to evaluate")
    items: list[QAItem] = Field(..., min_length=1, max_length=5000, description="questions, as in a dataset JSONL line")
    workers: int = Field(1, ge=1, le=8)


class EvalRun(BaseModel):
    id: str
    kb: str
    status: str  # running | done | failed | interrupted (the server stopped mid-run)
    total: int
    done: int
    created_at: float
    finished_at: float | None = None
    summary: dict[str, Any] | None = None
    error: str | None = None


class EvalRunList(BaseModel):
    data: list[EvalRun]


@router.post("", response_model=EvalRun, status_code=202)
def start(body: EvalRequest, key: Caller, settings: Config, services: State) -> EvalRun:
    """Asking a whole dataset costs like many questions at once, so it needs write, not read."""
    require(key, body.kb, "write")
    return EvalRun.model_validate(start_run(body.kb, body.items, settings, services, workers=body.workers))


@router.get("", response_model=EvalRunList)
def runs(key: Caller, settings: Config) -> EvalRunList:
    return EvalRunList(data=[EvalRun.model_validate(r) for r in list_runs(settings) if key is None or key.allows(r["kb"], "read")])


@router.get("/{run_id}", response_model=EvalRun)
def status(run_id: str, key: Caller, settings: Config) -> EvalRun:
    run = run_status(run_id, settings)
    require(key, run["kb"], "read")
    return EvalRun.model_validate(run)
