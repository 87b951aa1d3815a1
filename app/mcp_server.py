"""`zhiwen mcp`: zhiwen's knowledge bases as a Model Context Protocol server, so Claude Desktop, Cursor
and other MCP clients can search them, ask them and read their documents.

Thin, like the CLI and the API: every tool calls the same core function they do (the knowledge base's
retriever for ``search``, ``llm.answer.ask`` for ``ask``, ``ingest.kb.list_kbs``), with one ``Services``
per server process, so moderation, the answer cache and the relevance floor behave the same everywhere.

Over stdio the client is the user's own program, so there is no key. Over streamable HTTP with auth on
(the default off 127.0.0.1) every request needs ``Authorization: Bearer zw-…``, an API key from
``zhiwen keys create``: the SDK's bearer middleware answers 401 without a valid one, and each tool then
checks the key's role on the knowledge base it names, as the HTTP API does (``app.api.deps.require``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import (
    ResourceError,
    ResourceNotFoundError,
    ToolError,
)
from pydantic import Field

from app.rate_limit import PerKeyRateLimit, RateLimited
from core.errors import DocumentNotFound, KnowledgeBaseNotFound, ZhiwenError
from core.keys import ApiKey, forbidden_message, verify
from core.services import Services
from core.settings import Settings
from ingest.kb import kb_document_text, kb_documents, list_kbs, shared_kb
from llm.answer import ask as core_ask
from retrieval.hits import hit_metadata

INSTRUCTIONS = (
    "知问 (zhiwen) 知识库：用 search 查找原文段落（带出处与字符位置），用 ask 得到带 [n] 引用的回答；"
    "relevant 为 false 或 refuse 为 true 时，知识库里没有答案，不要编造。"
    " (zhiwen knowledge bases: `search` finds source passages with their location, `ask` answers with [n] "
    "citations. When `refuse` is true or a passage is not `relevant`, the knowledge base has no answer: do not make one up.)"
)


def document_uri(kb: str, doc_id: str) -> str:
    """Where an MCP client reads a document's cleaned text (the text ``start``/``end`` index into)."""
    return f"zhiwen://{kb}/documents/{doc_id}"


class ApiKeyVerifier:
    """The SDK's ``TokenVerifier`` over zhiwen's API keys (core.keys): a valid, unrevoked key passes the
    transport's bearer check; what it may read is decided per knowledge base in each tool."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def verify_token(self, token: str) -> AccessToken | None:
        key = verify(self.settings, token)
        if key is None:
            return None
        return AccessToken(token=token, client_id=key.id, scopes=[f"{kb}:{role}" for kb, role in key.roles.items()])


class ZhiwenTools:
    """The tools and resources, bound to one process's settings, ``Services`` and auth mode."""

    def __init__(self, settings: Settings, services: Services, default_kb: str | None, auth: bool) -> None:
        self.settings = settings
        self.services = services
        self.default_kb = default_kb or settings.default_kb
        self.auth = auth
        self.limit = PerKeyRateLimit(settings.api_rate_limit_per_minute)  # as the HTTP API counts a key

    # -- who is calling ------------------------------------------------------------------------------
    def caller(self) -> ApiKey | None:
        """The request's key, verified again per call so a key revoked mid-session stops at once."""
        if not self.auth:
            return None
        token = get_access_token()
        key = verify(self.settings, token.token) if token is not None else None
        if key is None:
            raise ToolError("需要有效的 API key (missing or invalid API key)")
        try:
            self.limit.hit(key.id)
        except RateLimited as exc:
            raise ToolError(str(exc)) from exc
        return key

    def readable(self, kb: str | None) -> str:
        """The knowledge base to use, after checking the caller may read it (before looking it up, so a
        key without the role cannot probe which knowledge bases exist)."""
        name = kb or self.default_kb
        key = self.caller()
        if key is not None and not key.allows(name, "read"):
            raise ToolError(forbidden_message(name, "read"))
        return name

    # -- tools ---------------------------------------------------------------------------------------
    def search(self, query: str, kb: str | None = None, top_k: int = 5) -> dict[str, Any]:
        name = self.readable(kb)
        with tool_errors():
            result = shared_kb(name, self.settings, self.services).retriever(self.settings).search(query, top_k)
        passages = [{**hit_metadata(h, result), "text": h.chunk.text, "uri": document_uri(name, h.chunk.doc_id)}
                    for h in result.hits]
        return {"kb": name, "query": query, "floor": result.floor, "refuse": not result.relevant, "passages": passages}

    def ask(self, question: str, kb: str | None = None) -> dict[str, Any]:
        name = self.readable(kb)
        with tool_errors():
            answer = core_ask(question, name, self.settings, services=self.services)
        return {"kb": name, **answer.to_public_json()}

    def list_knowledge_bases(self) -> dict[str, Any]:
        key = self.caller()
        kbs = [
            {"name": i.name, "documents": i.n_documents, "chunks": i.n_chunks, "embedding_model": i.embedding_model,
             "updated_at": i.updated_at.isoformat() if i.updated_at else None, "default": i.name == self.default_kb}
            for i in list_kbs(self.settings) if key is None or key.allows(i.name, "read")
        ]
        return {"knowledge_bases": kbs}

    # -- resources -----------------------------------------------------------------------------------
    def document_text(self, kb: str, doc_id: str) -> str:
        with resource_errors():
            _, text = kb_document_text(self.readable(kb), doc_id, self.settings)
        return text

    def document_list(self, kb: str) -> str:
        with resource_errors():
            _, documents = kb_documents(self.readable(kb), self.settings)
        return json.dumps(
            [{"id": d.id, "source": d.source, "title": d.title, "uri": document_uri(kb, d.id)} for d in documents],
            ensure_ascii=False,
        )


@contextmanager
def tool_errors() -> Iterator[None]:
    """zhiwen's own errors (unknown knowledge base, bad name, LLM unreachable) reach the client as tool
    errors with their message, which the model can read and act on; anything else stays a crash."""
    try:
        yield
    except ZhiwenError as exc:
        raise ToolError(str(exc)) from exc


@contextmanager
def resource_errors() -> Iterator[None]:
    """As ``tool_errors``, for resource reads: not found is the protocol's not-found, a key without the
    role (a ToolError from ``readable``) and other zhiwen errors keep their message."""
    try:
        yield
    except (KnowledgeBaseNotFound, DocumentNotFound) as exc:
        raise ResourceNotFoundError(str(exc)) from exc
    except (ZhiwenError, ToolError) as exc:
        raise ResourceError(str(exc)) from exc


Query = Annotated[str, Field(description="问题或关键词，中英文皆可 (the question or keywords, Chinese or English)")]
KbName = Annotated[str | None, Field(description="知识库名称；省略时用服务器的默认知识库 (knowledge base name; the server's default when omitted)")]
TopK = Annotated[int, Field(ge=1, le=50, description="返回的段落数 (how many passages)")]


def build_server(settings: Settings, services: Services, default_kb: str | None = None, auth: bool = False,
                 issuer_url: str = "http://127.0.0.1") -> MCPServer:
    """The MCP server; ``auth`` (HTTP only) makes the SDK's bearer middleware check zhiwen API keys.
    ``issuer_url`` only fills the SDK's required auth setting: zhiwen issues its keys itself (no OAuth)."""
    tools = ZhiwenTools(settings, services, default_kb, auth)
    auth_options: dict[str, Any] = {}
    if auth:
        auth_options = {"token_verifier": ApiKeyVerifier(settings),
                        "auth": AuthSettings(issuer_url=issuer_url, resource_server_url=None)}
    server = MCPServer("zhiwen", title="知问 zhiwen", instructions=INSTRUCTIONS, log_level="WARNING", **auth_options)

    @server.tool(description=(
        "在知识库中检索原文段落（混合检索：BM25 + 向量）。每段带出处、页码、字符位置 start/end、相关度，"
        "relevant 表示是否达到拒答阈值；refuse 为 true 表示没有相关段落，应回答“不知道”。"
        " (Search a knowledge base for source passages, hybrid BM25 + dense. Each passage has its source, page, "
        "character offsets, relevance and `relevant` (clears the refusal floor); `refuse` is true when none does.)"))
    def search(query: Query, kb: KbName = None, top_k: TopK = 5) -> dict[str, Any]:
        return tools.search(query, kb, top_k)

    @server.tool(description=(
        "就知识库提问，得到带 [n] 引用标记的回答和逐字引文（出处、字符位置）；知识库里没有答案或问题被审核拦截时 refused 为 true。"
        " (Ask a knowledge base: an answer with [n] citation markers and exact quotes with their offsets; "
        "`refused` is true when the knowledge base has no answer or moderation blocked the question.)"))
    def ask(question: Query, kb: KbName = None) -> dict[str, Any]:
        return tools.ask(question, kb)

    @server.tool(description=(
        "列出可读的知识库及其文档数、段落数。 (List the knowledge bases you may read, with document and chunk counts.)"))
    def list_knowledge_bases() -> dict[str, Any]:
        return tools.list_knowledge_bases()

    @server.resource("zhiwen://{kb}/documents", name="documents", mime_type="application/json",
                     description="知识库中的文档列表 (the documents of a knowledge base)")
    def documents(kb: str) -> str:
        return tools.document_list(kb)

    @server.resource("zhiwen://{kb}/documents/{doc_id}", name="document", mime_type="text/plain",
                     description="文档清洗后的全文，检索结果的 start/end 即其中的字符位置 "
                                 "(a document's cleaned text; search results' start/end index into it)")
    def document(kb: str, doc_id: str) -> str:
        return tools.document_text(kb, doc_id)

    return server
