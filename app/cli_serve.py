"""The servers: `zhiwen llm …` (start or check the OpenAI-compatible LLM server) and the top-level
`zhiwen api` and `zhiwen ui`, which app/cli.py registers on the root app.

Each command builds its settings and starts the server; uvicorn, Streamlit, subprocess and the backends
are imported inside the commands, so ``zhiwen --help`` stays fast.
"""

from __future__ import annotations

import sys
from typing import Optional

import typer
from rich.markup import escape

from app.cli_common import console, err
from app.cli_common import fail as _fail
from app.cli_common import settings_or_exit as _settings
from core.errors import ZhiwenError

llm_app = typer.Typer(help="大模型服务 (LLM server)", no_args_is_help=True)


def _loopback(host: str) -> bool:
    """Servers bound to loopback default to auth off; anything else defaults to auth on."""
    return host in ("127.0.0.1", "localhost", "::1")


@llm_app.command("serve")
def llm_serve(
    backend: Optional[str] = typer.Option(None, help="auto | vllm | transformers | llama-cpp"),
    model: Optional[str] = typer.Option(None, "--model", help="vLLM / transformers: 本地模型目录；llama-cpp: GGUF 文件"),
    host: Optional[str] = typer.Option(None),
    port: Optional[int] = typer.Option(None),
    lora: Optional[list[str]] = typer.Option(None, "--lora", help="LoRA 适配器 name=path，可重复"),
    dry_run: bool = typer.Option(False, "--dry-run", help="只打印将要执行的命令"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="显示后端的全部输出（默认写入日志文件）(show the server's own output)"),
) -> None:
    """启动 OpenAI 兼容的大模型服务：GPU 上用 vLLM（--enable-lora）；CPU 上用 transformers（可加载 LoRA 适配器）或 llama.cpp。"""
    import os
    import subprocess

    from llm.serve import BackendUnavailable, build_command, wait_until_healthy

    settings = _settings(serve_backend=backend, serve_model=model, serve_host=host, serve_port=port, serve_lora_modules=lora or None)
    try:
        command = build_command(settings)
    except BackendUnavailable as exc:
        _fail(exc)
    if dry_run or verbose:
        err.print(f"[dim]{escape(' '.join(command.argv))}[/]")
    if dry_run:
        return
    # The backends log every model tensor and request: into a file unless asked for, and its tail on failure.
    log_path = settings.data_dir / "logs" / f"llm-serve-{settings.serve_port}.log"
    if not verbose:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        err.print(f"[dim]正在启动 {command.backend}… 日志 (log): {escape(str(log_path))}（--verbose 直接显示）[/]")
    with open(os.devnull if verbose else log_path, "wb") as log:
        process = subprocess.Popen(command.argv, stdout=None if verbose else log, stderr=None if verbose else subprocess.STDOUT)
        try:
            models = wait_until_healthy(command.base_url, process, timeout=600 if command.backend == "vllm" else 120)
            err.print(f"[green]就绪 (ready)[/]: {command.base_url}  models: {', '.join(models)}")
            err.print(f"[dim]export ZHIWEN_LLM_BASE_URL={command.base_url} ZHIWEN_LLM_MODEL={command.model}[/]")
            raise typer.Exit(process.wait())
        except BackendUnavailable as exc:
            process.terminate()
            if not verbose:
                log.flush()
                tail = log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-20:]
                if tail:
                    err.print("[dim]" + escape("\n".join(tail)) + "[/]")
            _fail(exc)
        except KeyboardInterrupt:
            process.terminate()
            process.wait(timeout=30)


@llm_app.command("health")
def llm_health(base_url: Optional[str] = typer.Option(None, "--base-url")) -> None:
    """检查大模型服务是否可用，列出它提供的模型。"""
    from llm.serve import BackendUnavailable, health

    settings = _settings()
    url = base_url or settings.llm_base_url
    if not url:
        _fail(ZhiwenError("没有配置 ZHIWEN_LLM_BASE_URL (no LLM configured)"))
    try:
        console.print("\n".join(health(url)))
    except BackendUnavailable as exc:
        _fail(exc)


def api(
    host: str = typer.Option("127.0.0.1", help="监听地址"),
    port: int = typer.Option(8080, help="端口"),
    auth: Optional[bool] = typer.Option(None, "--auth/--no-auth", help="默认：只在 127.0.0.1 上关闭认证"),
) -> None:
    """启动 OpenAI 兼容的 HTTP API（/v1/chat/completions、/v1/models）。"""
    import uvicorn

    from app.api.server import create_app

    use_auth = auth if auth is not None else not _loopback(host)
    err.print(f"知问 API: http://{host}:{port}/v1  认证 (auth): {'开' if use_auth else '关'}")
    uvicorn.run(create_app(_settings(), auth=use_auth), host=host, port=port, log_level="warning")


def ui(
    host: str = typer.Option("127.0.0.1", help="监听地址 (bind address)"),
    port: int = typer.Option(8501, help="端口 (port)"),
    auth: bool | None = typer.Option(None, "--auth/--no-auth", help="用 API key 登录 (log in with an API key)；默认：只在 127.0.0.1 上关闭认证（ZHIWEN_UI_AUTH=1 时也开启）"),
) -> None:
    """启动网页界面（Streamlit）：问答、上传文档、管理知识库。"""
    import os
    import subprocess
    from pathlib import Path

    import app.ui
    from core.keys import load_keys

    settings = _settings()
    # Off by default only on loopback, and even there ZHIWEN_UI_AUTH=1 / ui_auth = true (e.g. behind a proxy) keeps it on.
    use_auth = auth if auth is not None else not _loopback(host) or settings.ui_auth
    script = Path(app.ui.__file__).parent / "main.py"
    argv = [sys.executable, "-m", "streamlit", "run", str(script), "--server.address", host, "--server.port", str(port),
            "--server.headless", "true", "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
            "--client.toolbarMode", "minimal",
            # The uploader's own "… per file" line shows the limit ingest enforces (upload_max_mb), not Streamlit's 200 MB.
            "--server.maxUploadSize", str(settings.upload_max_mb)]
    err.print(f"知问网页界面: http://{host}:{port}  认证 (auth): {'开' if use_auth else '关'}")
    if use_auth and all(k.revoked for k in load_keys(settings).values()):
        err.print("[yellow]还没有可用的 API key，无法登录：先运行 zhiwen keys create NAME --role '*:admin' (no API key yet)[/]")
    raise typer.Exit(subprocess.call(argv, env={**os.environ, "ZHIWEN_UI_AUTH": "1" if use_auth else "0"}))


def mcp(
    kb: Optional[str] = typer.Option(None, "--kb", help="默认知识库：工具省略 kb 时用它 (default knowledge base)"),
    http: bool = typer.Option(False, "--http", help="用 streamable HTTP 代替 stdio (serve streamable HTTP instead of stdio)"),
    host: str = typer.Option("127.0.0.1", help="--http 的监听地址 (bind address)"),
    port: int = typer.Option(8765, help="--http 的端口 (port)；地址为 http://HOST:PORT/mcp"),
    auth: Optional[bool] = typer.Option(None, "--auth/--no-auth", help="--http 时要求 API key；默认：只在 127.0.0.1 上关闭 (require API keys over HTTP; default off only on loopback)"),
) -> None:
    """MCP 服务器：让 Claude Desktop、Cursor 等 MCP 客户端检索、提问、读取知识库 (Model Context Protocol server)。"""
    from app.cli_common import kb_names
    from app.mcp_server import build_server
    from core.errors import KnowledgeBaseNotFound
    from core.services import Services

    settings = _settings()
    if kb is not None and kb not in kb_names(settings):
        _fail(KnowledgeBaseNotFound(kb), settings)
    use_auth = http and (auth if auth is not None else not _loopback(host))
    if auth and not http:
        err.print("[yellow]--auth 只用于 --http：stdio 没有 API key，由启动它的客户端负责 (--auth applies to --http only)[/]")
    with Services() as services:  # one per server process: open knowledge bases, answer cache, moderators
        netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"  # an IPv6 address goes in brackets
        server = build_server(settings, services, default_kb=kb, auth=use_auth, issuer_url=f"http://{netloc}")
        if not http:
            server.run("stdio")  # stdout is the protocol: messages go to stderr
            return
        import uvicorn

        err.print(f"知问 MCP: http://{netloc}/mcp  认证 (auth): {'开' if use_auth else '关'}")
        uvicorn.run(server.streamable_http_app(host=host), host=host, port=port, log_level="warning")
