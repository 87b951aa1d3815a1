"""The HTTP API as clients see it: a real `zhiwen api` process on 127.0.0.1, API keys with per-KB
roles, and the official OpenAI Python client against the chat endpoint, streaming included."""

from __future__ import annotations

import re
import shutil

import httpx
import pytest

from core.keys import create_key, revoke_key
from core.settings import load_settings
from ingest.pipeline import ingest_paths
from tests.api_server import running_api
from tests.conftest import SAMPLES


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    root = tmp_path_factory.mktemp("api")
    settings = load_settings(data_dir=root / "data")
    shutil.copytree(SAMPLES, root / "corpus")
    ingest_paths([root / "corpus"], "demo", settings)
    ingest_paths([SAMPLES / "常见问题.csv"], "secret", settings)
    _, reader = create_key(settings, "reader", {"demo": "read"})
    _, other = create_key(settings, "other", {"secret": "admin"})
    revoked_key, revoked = create_key(settings, "gone", {"*": "admin"})
    revoke_key(settings, revoked_key.id)
    with running_api(settings.data_dir) as base:
        yield base, {"reader": reader, "other": other, "revoked": revoked}


def test_every_endpoint_needs_a_key(api):
    base, _ = api
    assert httpx.get(f"{base}/v1/models").status_code == 401
    r = httpx.post(f"{base}/v1/chat/completions", json={"model": "demo", "messages": [{"role": "user", "content": "问题"}]})
    assert r.status_code == 401


def test_revoked_and_wrong_keys_are_refused(api):
    base, keys = api
    headers = {"Authorization": f"Bearer {keys['revoked']}"}
    assert httpx.get(f"{base}/v1/models", headers=headers).status_code == 401
    assert httpx.get(f"{base}/v1/models", headers={"Authorization": "Bearer zw-nothing-here"}).status_code == 401


def test_a_key_without_the_role_gets_403(api):
    base, keys = api
    body = {"model": "demo", "messages": [{"role": "user", "content": "一线城市住宿标准是多少？"}]}
    r = httpx.post(f"{base}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {keys['other']}"})
    assert r.status_code == 403


def test_models_lists_only_readable_knowledge_bases(api):
    base, keys = api
    r = httpx.get(f"{base}/v1/models", headers={"Authorization": f"Bearer {keys['reader']}"})
    assert [m["id"] for m in r.json()["data"]] == ["demo"]


def test_openai_client_asks_and_streams_with_citations(api):
    from openai import OpenAI

    base, keys = api
    client = OpenAI(base_url=f"{base}/v1", api_key=keys["reader"])
    reply = client.chat.completions.create(model="demo", messages=[{"role": "user", "content": "一线城市住宿标准是多少？"}])
    assert "600元" in reply.choices[0].message.content
    extra = reply.model_extra
    assert extra["citations"][0]["source"].endswith("差旅报销制度.md") and extra["zhiwen"]["refused"] is False

    stream = client.chat.completions.create(model="demo", stream=True, messages=[
        {"role": "user", "content": "知问网关的性能怎么样？"}, {"role": "assistant", "content": "很好。"},
        {"role": "user", "content": "它的延迟是多少?"}])
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert "毫秒" in text
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].model_extra["citations"], "citations arrive with the final event"


def test_unknown_knowledge_base_needs_a_role_first(api):
    """A key learns nothing about knowledge bases it has no role on: 403, not 404."""
    base, keys = api
    r = httpx.post(f"{base}/v1/chat/completions", json={"model": "nope", "messages": [{"role": "user", "content": "x"}]},
                   headers={"Authorization": f"Bearer {keys['reader']}"})
    assert r.status_code == 403


def test_llm_dying_mid_stream_streams_the_extractive_answer_after_a_separator(tmp_path):
    """An OpenAI client reads only delta.content: after the LLM's partial text it must get a separator and the
    extractive answer itself (with [n] markers that match the final chunk's citations), not a stub."""
    from openai import OpenAI

    from llm.chain import FALLBACK_SEPARATOR_ZH
    from tests.scripted_llm import ScriptedLLM

    settings = load_settings(data_dir=tmp_path / "data")
    ingest_paths([SAMPLES / "差旅报销制度.md"], "demo", settings)
    llm = ScriptedLLM("根据差旅报销制度，一线城市的住宿标准是每晚", die_after=8)
    env = {"ZHIWEN_LLM_BASE_URL": llm.base_url, "ZHIWEN_LLM_MAX_RETRIES": "0", "ZHIWEN_LLM_MODEL": "scripted"}
    try:
        with running_api(settings.data_dir, auth=False, env=env) as base:
            client = OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)
            chunks = list(client.chat.completions.create(
                model="demo", stream=True, messages=[{"role": "user", "content": "一线城市住宿标准是多少？"}]))
    finally:
        llm.close()
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    partial, sep, fallback = text.partition(FALLBACK_SEPARATOR_ZH)
    assert sep, text
    assert partial == llm.reply[:8]
    assert "600元" in fallback
    final = chunks[-1]
    assert final.choices[0].finish_reason == "stop"
    extra = final.model_extra
    assert extra["zhiwen"]["mode"] == "extractive" and extra["zhiwen"]["answer"] == fallback
    cited = {c["n"] for c in extra["citations"]}
    assert cited and {int(n) for n in re.findall(r"\[(\d+)\]", fallback)} == cited
    assert any(c["source"].endswith("差旅报销制度.md") for c in extra["citations"])
