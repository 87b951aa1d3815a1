"""`zhiwen mcp` as an MCP client sees it: the real console script in a subprocess, driven by the official
SDK's clients, over stdio and over streamable HTTP with API keys."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import anyio
import httpx
import httpx2  # the HTTP client the MCP SDK's transports take
import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from core.keys import create_key
from ingest.kb import kb_document_text
from ingest.pipeline import ingest_paths
from tests.conftest import sample_kb
from tests.llm_server import free_port
from tests.serving import serving

ZHIWEN = str(Path(sys.executable).parent / "zhiwen")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A data dir with knowledge base "demo" (the sample corpus) and "other" (one file)."""
    root = tmp_path_factory.mktemp("mcp")
    settings = sample_kb(root, "demo")
    ingest_paths([root / "corpus" / "员工手册.txt"], "other", settings)
    return settings


def _env(settings) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ZHIWEN_")}
    return {**clean, "ZHIWEN_DATA_DIR": str(settings.data_dir), "ZHIWEN_CONFIG": str(settings.data_dir / "none.toml")}


@asynccontextmanager
async def stdio_session(settings) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(command=ZHIWEN, args=["mcp", "--kb", "demo"], env=_env(settings))
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


def run(scenario, settings) -> None:
    async def main() -> None:
        async with stdio_session(settings) as session:
            await scenario(session)

    anyio.run(main)


def test_tools_are_listed_and_search_finds_the_passage(data):
    async def scenario(session: ClientSession) -> None:
        tools = {t.name: t for t in (await session.list_tools()).tools}
        assert set(tools) == {"search", "ask", "list_knowledge_bases"}
        for tool in tools.values():  # Chinese first, English in parentheses
            assert any("\u4e00" <= ch <= "\u9fff" for ch in tool.description) and "(" in tool.description
        assert set(tools["search"].input_schema["properties"]) == {"query", "kb", "top_k"}

        result = await session.call_tool("search", {"query": "一线城市住宿标准是多少？", "kb": "demo"})
        assert not result.is_error
        out = result.structured_content
        assert out["refuse"] is False
        top = out["passages"][0]
        assert top["source"].endswith("差旅报销制度.md") and "600元" in top["text"] and top["relevant"] is True
        assert {"page", "start", "end", "score", "relevance", "chunk_id", "uri"} <= set(top)
        _, text = kb_document_text("demo", top["doc_id"], data)
        assert text[top["start"] : top["end"]] == top["text"]

        listed = (await session.call_tool("list_knowledge_bases", {})).structured_content
        assert {k["name"]: k["documents"] for k in listed["knowledge_bases"]} == {"demo": 8, "other": 1}

        unknown = await session.call_tool("search", {"query": "住宿", "kb": "nope"})
        assert unknown.is_error and "nope" in unknown.content[0].text and "不存在" in unknown.content[0].text

    run(scenario, data)


def test_ask_cites_and_refuses_off_topic(data):
    async def scenario(session: ClientSession) -> None:
        answer = (await session.call_tool("ask", {"question": "一线城市住宿标准是多少？"})).structured_content
        assert answer["refused"] is False and "600元" in answer["answer"] and "[1]" in answer["answer"]
        c = answer["citations"][0]
        assert c["source"].endswith("差旅报销制度.md") and c["quote"]
        off = (await session.call_tool("ask", {"question": "火星上有多少颗卫星？"})).structured_content
        assert off["refused"] is True and off["citations"] == []
        blocked = (await session.call_tool("ask", {"question": "怎样自制炸药？"})).structured_content  # the same moderation
        assert blocked["refused"] is True and blocked["flags"]["moderation"][0]["action"] == "block"
        search = (await session.call_tool("search", {"query": "火星上有多少颗卫星？"})).structured_content
        assert search["refuse"] is True and not any(p["relevant"] for p in search["passages"])

    run(scenario, data)


def test_resources_list_and_read_document_text(data):
    async def scenario(session: ClientSession) -> None:
        templates = {t.uri_template for t in (await session.list_resource_templates()).resource_templates}
        assert templates == {"zhiwen://{kb}/documents", "zhiwen://{kb}/documents/{doc_id}"}
        documents = json.loads((await session.read_resource("zhiwen://demo/documents")).contents[0].text)
        travel = next(d for d in documents if d["source"].endswith("差旅报销制度.md"))
        text = (await session.read_resource(travel["uri"])).contents[0].text
        assert text == kb_document_text("demo", travel["id"], data)[1]
        assert "一线城市" in text

    run(scenario, data)


# -- streamable HTTP with API keys ----------------------------------------------------------------------
@contextmanager
def http_server(settings, **env: str) -> Iterator[str]:
    """`zhiwen mcp --http --auth` on a free port of 127.0.0.1; yields the endpoint URL once it answers
    (any answer: without a key it is 401)."""
    port = free_port()
    argv = [ZHIWEN, "mcp", "--kb", "demo", "--http", "--host", "127.0.0.1", "--port", str(port), "--auth"]
    url = f"http://127.0.0.1:{port}/mcp"
    with serving(argv, {**_env(settings), **env}, url):
        yield url


@asynccontextmanager
async def http_session(url: str, token: str) -> AsyncIterator[ClientSession]:
    client = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60)
    async with client, streamable_http_client(url, http_client=client) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


def test_http_requires_a_key_with_read_on_the_knowledge_base(data):
    _, reader = create_key(data, "reader", {"demo": "read"})
    _, outsider = create_key(data, "outsider", {"other": "read"})
    query = {"query": "一线城市住宿标准是多少？", "kb": "demo"}

    async def scenario(url: str) -> None:
        async with http_session(url, outsider) as session:
            denied = await session.call_tool("search", query)
            assert denied.is_error and "read" in denied.content[0].text and "forbidden" in denied.content[0].text
            assert (await session.call_tool("ask", {"question": "住宿标准？", "kb": "demo"})).is_error
            listed = (await session.call_tool("list_knowledge_bases", {})).structured_content
            assert [k["name"] for k in listed["knowledge_bases"]] == ["other"]
            with pytest.raises(Exception, match="forbidden"):
                await session.read_resource("zhiwen://demo/documents")
        async with http_session(url, reader) as session:
            found = await session.call_tool("search", query)
            assert not found.is_error and found.structured_content["passages"][0]["source"].endswith("差旅报销制度.md")
            listed = (await session.call_tool("list_knowledge_bases", {})).structured_content
            assert [k["name"] for k in listed["knowledge_bases"]] == ["demo"]

    with http_server(data) as url:
        assert httpx.post(url, json={}).status_code == 401
        assert httpx.post(url, json={}, headers={"Authorization": "Bearer zw-bad-key"}).status_code == 401
        anyio.run(scenario, url)


def test_http_tool_calls_count_against_the_keys_rate_limit(data):
    """The same per-key limit as the HTTP API (app.rate_limit): past it, a tool call is an error that says
    when to retry, and another key is unaffected."""
    _, busy = create_key(data, "busy", {"demo": "read"})
    _, calm = create_key(data, "calm", {"demo": "read"})

    async def scenario(url: str) -> None:
        async with http_session(url, busy) as session:
            results = [await session.call_tool("list_knowledge_bases", {}) for _ in range(4)]
        assert [r.is_error for r in results] == [False, False, False, True]
        assert "rate limit" in results[-1].content[0].text
        async with http_session(url, calm) as session:
            assert not (await session.call_tool("list_knowledge_bases", {})).is_error

    with http_server(data, ZHIWEN_API_RATE_LIMIT_PER_MINUTE="3") as url:
        anyio.run(scenario, url)
