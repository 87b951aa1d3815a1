"""The per-process state (core.services.Services) and the answer's one public shape.

No module-level caches: what a process keeps warm (open knowledge bases, the answer cache, moderators,
eval slots, metric listeners) belongs to the Services object its surface created, so two apps in one
process do not see each other's answers, and a call given none keeps nothing."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient

from app.api.server import create_app
from core.models import Answer
from core.services import Services
from ingest.kb import shared_kb
from ingest.pipeline import ingest_paths
from llm.answer import ask
from tests.conftest import REPO, SAMPLES

QUESTION = "一线城市住宿标准是多少？"
PUBLIC_KEYS = {"answer", "refused", "mode", "model", "citations", "timings_ms", "flags"}


@pytest.fixture
def kb_settings(settings):
    ingest_paths([SAMPLES / "差旅报销制度.md"], "demo", settings)
    return settings


def _chat(client: TestClient) -> dict:
    r = client.post("/v1/chat/completions", json={"model": "demo", "messages": [{"role": "user", "content": QUESTION}]})
    assert r.status_code == 200, r.text
    return r.json()["zhiwen"]


def test_two_apps_in_one_process_keep_their_own_answer_cache(kb_settings):
    with TestClient(create_app(kb_settings, auth=False)) as first, TestClient(create_app(kb_settings, auth=False)) as second:
        assert _chat(first)["flags"]["cached"] is False
        assert _chat(first)["flags"]["cached"] is True, "an app remembers its own answers"
        assert _chat(second)["flags"]["cached"] is False, "another app in the same process has its own cache"


def test_a_call_without_services_keeps_nothing_and_a_surfaces_services_keep_it_warm(kb_settings):
    assert not ask(QUESTION, "demo", kb_settings).flags.cached
    assert not ask(QUESTION, "demo", kb_settings).flags.cached, "no hidden process-wide cache"
    with Services() as services:
        reader = shared_kb("demo", kb_settings, services)
        assert not ask(QUESTION, "demo", kb_settings, services=services).flags.cached
        assert ask(QUESTION, "demo", kb_settings, services=services).flags.cached
        assert shared_kb("demo", kb_settings, services) is reader, "the knowledge base stays open between questions"
    with Services() as fresh:
        assert shared_kb("demo", kb_settings, fresh) is not reader


def test_moderation_findings_reach_only_the_listeners_of_their_own_services(kb_settings):
    heard: list[dict] = []
    with Services() as services, Services() as other:
        services.events.subscribe("moderation", lambda **fields: heard.append(fields))
        blocked = ask("教我制作炸弹", "demo", kb_settings, services=other)
        assert blocked.refused and blocked.flags.moderation[0].action == "block"
        assert heard == [], "another Services' listener heard nothing"
        ask("教我制作炸弹", "demo", kb_settings, services=services)
    assert heard and heard[0]["surface"] == "question" and heard[0]["action"] == "block"


def test_cli_json_and_the_api_zhiwen_field_are_one_shape(kb_settings):
    with TestClient(create_app(kb_settings, auth=False)) as client:
        api = _chat(client)
    env = {"ZHIWEN_DATA_DIR": str(kb_settings.data_dir), "PATH": str(REPO / ".venv" / "bin")}
    out = subprocess.run([sys.executable, "-m", "app.cli", "ask", QUESTION, "--kb", "demo", "--json"],
                         capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    cli = json.loads(out.stdout)
    assert set(api) == set(cli) == PUBLIC_KEYS
    assert set(api["flags"]) == set(cli["flags"]) == set(Answer(text="").flags.model_dump())
    assert api["answer"] == cli["answer"] and api["citations"] == cli["citations"]
    assert api["flags"]["retrieved"] == cli["flags"]["retrieved"] and cli["flags"]["best_relevance"] >= cli["flags"]["relevance_floor"]
