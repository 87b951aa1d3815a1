"""What a client of the chat endpoint sees when something goes wrong, through the official OpenAI client
against a real `zhiwen api` process: a missing knowledge base and an oversized question fail before the
stream starts (404 / 413 in OpenAI's error shape), a failure mid-stream arrives as an error event and a
clean end, an uncited LLM answer is replaced as ``uncited_policy`` says, and one maximal question does
not stall a small one sent meanwhile."""

from __future__ import annotations

import threading
import time

import httpx
import openai
import pytest
from openai import OpenAI

from core.settings import load_settings
from ingest.pipeline import ingest_paths
from llm.chain import UNCITED_SEPARATOR_ZH
from tests.api_server import running_api
from tests.conftest import SAMPLES
from tests.scripted_llm import ScriptedLLM

QUESTION = "一线城市住宿标准是多少？"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    settings = load_settings(data_dir=tmp_path_factory.mktemp("streams") / "data")
    ingest_paths([SAMPLES / "差旅报销制度.md", SAMPLES / "员工手册.txt"], "demo", settings)
    return settings.data_dir


@pytest.fixture(scope="module")
def api(data_dir):
    with running_api(data_dir, auth=False, env={"ZHIWEN_MAX_QUESTION_CHARS": "2000"}) as base:
        yield base


def _client(base: str) -> OpenAI:
    return OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)


def test_streaming_to_a_missing_knowledge_base_is_a_404_before_any_event(api):
    with pytest.raises(openai.NotFoundError) as caught:
        _client(api).chat.completions.create(model="nope", stream=True, messages=[{"role": "user", "content": QUESTION}])
    assert caught.value.body["type"] == "KnowledgeBaseNotFound" and "nope" in caught.value.body["message"]


@pytest.mark.parametrize("stream", [False, True])
def test_an_oversized_question_is_a_413_in_openai_shape(api, stream):
    with pytest.raises(openai.APIStatusError) as caught:
        _client(api).chat.completions.create(model="demo", stream=stream, messages=[{"role": "user", "content": "住宿" * 1001}])
    assert caught.value.status_code == 413
    assert caught.value.body["type"] == "InputTooLarge" and "2000" in caught.value.body["message"]


def test_an_oversized_history_is_a_413(api):
    messages = [{"role": "user", "content": "问" * 1500}, {"role": "assistant", "content": "答" * 1500}] * 8
    r = httpx.post(f"{api}/v1/chat/completions", json={"model": "demo", "messages": messages + [{"role": "user", "content": QUESTION}]},
                   timeout=60)
    assert r.status_code == 413 and r.json()["error"]["type"] == "InputTooLarge"


def test_an_llm_failing_mid_stream_without_fallback_ends_with_an_error_event(data_dir):
    llm = ScriptedLLM("根据差旅报销制度，一线城市的住宿标准是每晚", die_after=5)
    env = {"ZHIWEN_LLM_BASE_URL": llm.base_url, "ZHIWEN_LLM_MAX_RETRIES": "0", "ZHIWEN_LLM_FALLBACK_EXTRACTIVE": "false"}
    try:
        with running_api(data_dir, auth=False, env=env) as base:
            seen = []
            with pytest.raises(openai.APIError) as caught:
                for chunk in _client(base).chat.completions.create(model="demo", stream=True,
                                                                   messages=[{"role": "user", "content": QUESTION}]):
                    seen.append(chunk.choices[0].delta.content or "")
            raw = httpx.post(f"{base}/v1/chat/completions", timeout=60, json={
                "model": "demo", "stream": True, "messages": [{"role": "user", "content": "住宿标准？"}]}).text
    finally:
        llm.close()
    # Moderation holds back the last few tokens until it has seen enough; a stream that fails ends there.
    assert llm.reply.startswith("".join(seen))
    assert "LLM" in str(caught.value.message) or "大模型" in str(caught.value.message), caught.value.message
    assert '"error"' in raw and raw.rstrip().endswith("data: [DONE]"), "a raw client sees the error and a clean end"


def test_uncited_policy_extractive_replaces_the_streamed_answer_visibly(data_dir):
    llm = ScriptedLLM("一线城市大概每晚几百元吧。")  # no [n]: nothing a reader could check
    env = {"ZHIWEN_LLM_BASE_URL": llm.base_url, "ZHIWEN_LLM_MAX_RETRIES": "0", "ZHIWEN_UNCITED_POLICY": "extractive"}
    try:
        with running_api(data_dir, auth=False, env=env) as base:
            chunks = list(_client(base).chat.completions.create(model="demo", stream=True,
                                                               messages=[{"role": "user", "content": QUESTION}]))
            whole = _client(base).chat.completions.create(model="demo", messages=[{"role": "user", "content": "一线城市住宿标准？"}])
    finally:
        llm.close()
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    stub, sep, replacement = text.partition(UNCITED_SEPARATOR_ZH)
    assert sep and stub == llm.reply and "600元" in replacement and "[1]" in replacement
    final = chunks[-1].model_extra["zhiwen"]
    assert final["flags"]["uncited"] is True and final["mode"] == "extractive" and final["answer"] == replacement
    assert whole.model_extra["zhiwen"]["flags"]["uncited"] is True and "600元" in whole.choices[0].message.content


def test_uncited_answers_are_flagged_by_default(data_dir):
    llm = ScriptedLLM("一线城市大概每晚几百元吧。")
    try:
        with running_api(data_dir, auth=False, env={"ZHIWEN_LLM_BASE_URL": llm.base_url}) as base:
            reply = _client(base).chat.completions.create(model="demo", messages=[{"role": "user", "content": QUESTION}])
    finally:
        llm.close()
    assert reply.choices[0].message.content == llm.reply, "warn: delivered as the model said it"
    assert reply.model_extra["zhiwen"]["flags"]["uncited"] is True and reply.model_extra["zhiwen"]["mode"] == "llm"


def test_a_small_question_is_not_stalled_by_a_maximal_one(api):
    client = _client(api)
    small = {"model": "demo", "messages": [{"role": "user", "content": QUESTION}]}
    client.chat.completions.create(**small)  # warm: the knowledge base is open, the models loaded
    t0 = time.perf_counter()
    client.chat.completions.create(**{**small, "messages": [{"role": "user", "content": "年休假有几天？"}]})
    alone = time.perf_counter() - t0
    maximal = "出差住宿报销标准一线城市每晚多少钱年休假病假事假" * 80  # 1920 characters, just under the cap
    started = threading.Event()

    def big() -> None:
        started.set()
        for _ in range(3):
            client.chat.completions.create(model="demo", messages=[{"role": "user", "content": maximal}])

    worker = threading.Thread(target=big)
    worker.start()
    started.wait()
    t0 = time.perf_counter()
    answer = client.chat.completions.create(**{**small, "messages": [{"role": "user", "content": "病假怎么请？"}]})
    meanwhile = time.perf_counter() - t0
    worker.join()
    assert answer.choices[0].message.content
    assert meanwhile < max(3.0, 10 * alone), f"small question took {meanwhile:.2f}s beside a maximal one ({alone:.2f}s alone)"
