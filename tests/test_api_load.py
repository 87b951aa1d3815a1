"""A bounded load test over loopback: 200 concurrent asks against a real `zhiwen api`, with an upload
that ingests a new document into the same knowledge base while they run. No request is lost, every
answer cites passages that exist, and afterwards catalogue and indexes agree and the new document is
found. The same code is `python -m bench.api`, whose figures are in README.md."""

from __future__ import annotations

import httpx

from bench.api import NEW_DOC, run_load
from core.keys import create_key
from core.settings import load_settings
from ingest.kb import KnowledgeBase
from ingest.pipeline import ingest_paths
from tests.api_server import running_api
from tests.conftest import SAMPLES, assert_consistent


def test_200_concurrent_asks_with_an_ingest_lose_nothing_and_leave_the_index_consistent(tmp_path):
    settings = load_settings(data_dir=tmp_path / "data")
    ingest_paths([SAMPLES], "load", settings)
    with KnowledgeBase.open("load", settings) as kb:
        docs_before, _ = assert_consistent(kb)
    _, token = create_key(settings, "load", {"load": "write"})
    env = {"ZHIWEN_ANSWER_CACHE_SIZE": "0", "ZHIWEN_API_RATE_LIMIT_PER_MINUTE": "0"}
    with running_api(settings.data_dir, env=env) as base:
        result = run_load(base, token, "load", 200, upload=("远程办公制度.md", NEW_DOC.encode()))
        assert result.failures == [] and result.ok == 200, result.failures[:5]
        assert len(result.latencies_ms) == 200
        assert result.upload is not None and result.upload["status"] == "indexed", result.upload
        for answer in result.answers:
            if not answer["zhiwen"]["refused"]:
                assert answer["citations"], "an answer given under load still cites"
                assert all(c["quote"] for c in answer["citations"])

        after = httpx.post(f"{base}/v1/chat/completions", headers={"Authorization": f"Bearer {token}"}, timeout=60,
                           json={"model": "load", "messages": [{"role": "user", "content": "远程办公的网络费用补贴多少？"}]}).json()
        assert "100元" in after["choices"][0]["message"]["content"]
        assert after["citations"][0]["source"].endswith("远程办公制度.md")
    with KnowledgeBase.open("load", settings) as kb:
        docs_after, _ = assert_consistent(kb)
    assert docs_after == docs_before + 1
