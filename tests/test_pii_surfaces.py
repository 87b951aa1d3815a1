"""One PII policy for everything a user sees: the answer, its citations' quotes, the UI's passages, the
original file, eval records, over the CLI, the API (streamed and not) and the LLM chain.

By default PII is masked at ingest, so the stored text itself holds the mask and ``quote ==
cleaned_text[start:end]`` still holds. A knowledge base ingested with the ingest mask off (or before it
was the default) is masked for display instead: same offsets, ``masked: true`` on the citation."""

from __future__ import annotations

import json
import subprocess

import pytest
from fastapi.testclient import TestClient
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel

from app.api.server import create_app
from core.models import Citation
from core.services import Services
from eval.dataset import QAItem
from eval.runner import ask_one
from ingest.kb import KnowledgeBase
from ingest.originals import original_file, original_shows_masked
from ingest.pipeline import ingest_paths
from llm.answer import ask
from llm.sources import cited_passage, document_context
from moderation.rules import ensure_rules_dir
from tests.conftest import REPO, write

DOC = "资安事件须于1小时内通报安全团队。安全团队的值班电话是 13812345678，联系邮箱是 security@example.com。"
PII = ("security@example.com", "13812345678")
QUESTION = "安全团队的值班电话是多少？"


def _kb(settings, tmp_path, ingest_mask: bool):
    rules = ensure_rules_dir(settings.data_dir / "moderation") / "rules.toml"
    if not ingest_mask:
        rules.write_text(rules.read_text(encoding="utf-8").replace('ingest = "mask"', 'ingest = "off"'), encoding="utf-8")
    doc = write(tmp_path / "docs" / "安全.md", "# 安全联系\n\n" + DOC)
    ingest_paths([doc], "kb", settings)
    with KnowledgeBase.open("kb", settings) as kb:
        document = kb.catalog.list_documents()[0]
        return doc, kb.catalog.document_text(document.id)


def _no_pii(text: str) -> None:
    assert not any(p in text for p in PII), text


@pytest.mark.parametrize("ingest_mask", [True, False], ids=["masked-at-ingest", "masked-for-display"])
def test_answer_quotes_passages_original_and_eval_all_mask(settings, tmp_path, services, ingest_mask):
    doc, stored = _kb(settings, tmp_path, ingest_mask)
    assert (PII[0] in stored) is not ingest_mask
    answer = ask(QUESTION, "kb", settings, services=services)
    assert not answer.refused and answer.citations
    _no_pii(answer.text)
    for c in answer.citations:
        _no_pii(c.quote)
        assert len(c.quote) == c.end - c.start
        if ingest_mask:
            assert c.quote == stored[c.start : c.end] and not c.masked, "the contract holds on the stored text"
        else:
            assert c.masked and all(a == b or a == "＊" for a, b in zip(c.quote, stored[c.start : c.end]))
    cited = answer.citations[0]
    assert "＊" in cited.quote, "the cited sentence is the one with the phone number"
    _no_pii(cited_passage("kb", cited, settings, services).text)
    _no_pii(document_context("kb", cited, settings, services).text)
    assert original_file("kb", str(doc), settings, services) is not None
    assert original_shows_masked("kb", str(doc), settings, services), "the original would show the PII"
    record = ask_one(QAItem(id="q", question=QUESTION, answers=["x"]), "kb", settings, services)
    for text in [record.prediction] + [r["text"] for r in record.retrieved] + [c["quote"] for c in record.cited]:
        _no_pii(text)


def test_an_older_stored_quote_is_masked_when_shown(settings, tmp_path, services):
    _, stored = _kb(settings, tmp_path, ingest_mask=False)
    start = stored.index("security")
    old = Citation(n=1, source="x", page=None, start=start, end=start + 20, quote=stored[start : start + 20],
                   chunk_id="gone", score=1.0)
    _no_pii(cited_passage("kb", old, settings, services).text)


def test_llm_answers_and_their_quotes_mask_on_the_api_streamed_and_not(settings, tmp_path):
    _kb(settings, tmp_path, ingest_mask=False)
    reply = "邮箱是 security@example.com，电话 13812345678[1]。"
    with Services() as services:
        fake = GenericFakeChatModel(messages=iter([reply]))
        answer = ask(QUESTION, "kb", settings, chat_model=fake, services=services)
    assert answer.mode == "llm" and answer.citations
    _no_pii(answer.text)
    assert all(c.masked for c in answer.citations) and not any(p in c.quote for c in answer.citations for p in PII)
    with TestClient(create_app(settings, auth=False)) as client:
        body = {"model": "kb", "messages": [{"role": "user", "content": QUESTION}]}
        plain = client.post("/v1/chat/completions", json=body).json()
        streamed = client.post("/v1/chat/completions", json={**body, "stream": True}).text
    final = json.loads([line for line in streamed.splitlines() if '"finish_reason":"stop"' in line.replace(" ", "")][-1][6:])
    for payload in (plain, final):
        assert payload["citations"] and all(c["masked"] for c in payload["citations"])
        _no_pii(json.dumps(payload, ensure_ascii=False))
    _no_pii(streamed)


def test_cli_json_and_source_lines_mask(settings, tmp_path):
    _kb(settings, tmp_path, ingest_mask=False)
    env = {"ZHIWEN_DATA_DIR": str(settings.data_dir), "PATH": str(REPO / ".venv" / "bin")}
    for args in (["--json"], []):
        out = subprocess.run([str(REPO / ".venv" / "bin" / "zhiwen"), "ask", QUESTION, "--kb", "kb", *args],
                             capture_output=True, text=True, env=env, timeout=300)
        assert out.returncode == 0, out.stderr
        assert "＊" in out.stdout
        _no_pii(out.stdout + out.stderr)
