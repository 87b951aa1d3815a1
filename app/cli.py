"""`zhiwen` command line: a thin typer layer over ingest_paths, ask, list_kbs and friends.

This module holds the root app, the everyday top-level commands (ingest, ask, chat) and the wiring;
each sub-command group lives in its own module (app/cli_kb.py, app/cli_eval.py, app/cli_serve.py, …,
app/finetune_cli.py) and what they share in app/cli_common.py, so no one file has to hold the whole CLI.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from app.cli_common import (
    close_names,
    console,
    counted_progress,
    did_you_mean,
    err,
    kb_names,
)
from app.cli_common import fail as _fail
from app.cli_common import settings_or_exit as _settings
from app.cli_eval import eval_app
from app.cli_kb import kb_app
from app.cli_keys import keys_app
from app.cli_moderation import moderation_app
from app.cli_serve import api, llm_app, mcp, ui
from app.finetune_cli import finetune_app
from core.errors import KnowledgeBaseNotFound, ZhiwenError
from core.services import Services
from core.settings import Settings

app = typer.Typer(help="知问 zhiwen：中文优先的知识库问答 (Chinese-first RAG knowledge assistant)", no_args_is_help=True, pretty_exceptions_show_locals=False)


_STATUS_STYLE = {"indexed": "green", "updated": "cyan", "unchanged": "dim", "duplicate": "yellow", "failed": "bold red"}
_STATUS_ZH = {"indexed": "已索引", "updated": "已更新", "unchanged": "未变化，跳过", "duplicate": "重复，跳过", "failed": "失败"}
_UNSUPPORTED_SHOWN = 20  # unsupported files named one by one; beyond that, a count


def _warn_new_kb(name: str, settings: Settings) -> None:
    """`ingest --kb` creates a knowledge base it does not find: say so when the name looks like a typo."""
    names = kb_names(settings)
    if name not in names and close_names(name, names):
        err.print(f"[yellow]知识库 “{escape(name)}” 不存在，将新建。{escape(did_you_mean(name, settings).strip())}[/]")



@app.command()
def ingest(
    paths: list[Path] = typer.Argument(..., help="文件或文件夹 (files or folders)"),
    kb: Optional[str] = typer.Option(None, "--kb", help="知识库名称 (knowledge base name)"),
    chunk_size: Optional[int] = typer.Option(None, help="每块的 jieba 词数 (tokens per chunk)"),
    chunk_overlap: Optional[int] = typer.Option(None, help="相邻块重叠的词数 (overlap tokens)"),
    as_json: bool = typer.Option(False, "--json", help="输出 JSON (machine-readable output)"),
    sync: bool = typer.Option(False, "--sync", help="让知识库与该文件夹一致：删除文件夹中已不存在的文档 (mirror the folder: remove documents whose file is gone)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="与 --sync 同用：只列出将做的修改 (with --sync: show what would change)"),
) -> None:
    """导入文档到知识库（增量：未变化的文件跳过，修改过的文件替换；--sync 同步整个文件夹）。"""
    from ingest.ocr import ocr_progress
    from ingest.pipeline import ingest_paths, unsupported_files

    settings = _settings(chunk_size=chunk_size, chunk_overlap=chunk_overlap)
    name = kb or settings.default_kb
    if dry_run and not sync:
        _fail("--dry-run 只能与 --sync 一起使用 (--dry-run needs --sync)")
    if not dry_run:
        _warn_new_kb(name, settings)
    if sync:
        from app.cli_sync import sync_command

        return sync_command(paths, name, settings, as_json, dry_run)
    with counted_progress("导入", "已处理 {done}/{total} 个文件 ({done}/{total} files)", live=not as_json and sys.stderr.isatty(),
                          description=True) as update:

        files = [0, None]  # files done, total: the OCR description below keeps the bar's count

        def on_progress(result, done, total):
            files[:] = [done, total]
            update(done, total, description=escape(Path(result.source).name))

        def on_ocr_page(source, page, pages):  # OCR is the slow step: say which page of which file
            update(*files, description=escape(f"{Path(source).name} · OCR 第 {page}/{pages} 页 (page {page}/{pages})"))

        try:
            with ocr_progress(on_ocr_page):
                results = ingest_paths([str(p) for p in paths], name, settings, on_progress=on_progress)
        except ZhiwenError as exc:
            _fail(exc, settings)
    unsupported = unsupported_files(paths)
    failed = [r for r in results if r.status == "failed"]
    if as_json:
        console.print_json(json.dumps({"kb": name, "results": [r.model_dump() for r in results], "unsupported": unsupported},
                                      ensure_ascii=False))
    else:
        for r in results:
            style = _STATUS_STYLE[r.status]
            detail = f"{r.n_chunks} 块" if r.status in ("indexed", "updated", "unchanged") else r.reason
            if r.reason and r.status in ("indexed", "updated"):
                detail += f"；{r.reason}"  # went in with a warning (pages read by OCR, doubtful lines)
            console.print(f"[{style}]{_STATUS_ZH[r.status]:<6}[/] {escape(r.source)}  [dim]{escape(detail)}[/]")
        for source in unsupported[:_UNSUPPORTED_SHOWN]:
            console.print(f"[yellow]{'不支持，跳过':<6}[/] {escape(source)}  [dim]不支持的文件类型 {escape(Path(source).suffix or '(无扩展名)')} (unsupported type)[/]")
        if len(unsupported) > _UNSUPPORTED_SHOWN:
            console.print(f"[yellow]另有 {len(unsupported) - _UNSUPPORTED_SHOWN} 个不支持的文件已跳过 (more unsupported files skipped)[/]")
        if unsupported:
            from ingest.loaders import SUPPORTED_SUFFIXES

            console.print(f"[dim]支持的类型 (supported): {' '.join(sorted(SUPPORTED_SUFFIXES))}[/]")
        counts = {s: sum(r.status == s for r in results) for s in _STATUS_ZH}
        console.print(
            f"知识库 [bold]{escape(name)}[/]: 新增 {counts['indexed']}，更新 {counts['updated']}，跳过 {counts['unchanged'] + counts['duplicate']}，"
            f"失败 {counts['failed']}" + (f"，不支持 {len(unsupported)}" if unsupported else "")
        )
    if failed:
        raise typer.Exit(1)


def _print_citations(answer) -> None:
    for c in answer.citations:
        page = f" 第{c.page}页" if c.page else ""
        quote = c.quote.replace("\n", " ")
        console.print(f"[cyan][{c.n}][/] {escape(c.source)}{page}  [dim]{escape(quote[:120])}{'…' if len(quote) > 120 else ''}[/]")
    mode = {"llm": f"LLM {answer.model or ''}".strip(), "extractive": "抽取式 extractive"}[answer.mode]
    extra = " · 缓存 cached" if answer.flags.cached else ""
    console.print(f"[dim]{escape(mode)} · {answer.timings_ms.get('total', 0):.0f} ms{extra}[/]")


def _warn_fallback(answer) -> None:
    if answer.flags.llm_error:
        err.print(f"[yellow]大模型不可用，已改用抽取式回答 (LLM failed, extractive fallback): {escape(answer.flags.llm_error)}[/]")
    if answer.flags.uncited:
        err.print("[yellow]注意：回答没有引用任何资料，请核对 (the answer cites no source: verify it)[/]")
    if answer.flags.dropped_markers:
        err.print(f"[dim]已删除 {answer.flags.dropped_markers} 个无效引用标记 (invalid [n] markers removed)[/]")


def _stream_answer(question: str, kb: str, settings: Settings, history=None, services=None):
    """Print tokens as they arrive; return the final Answer."""
    from llm.answer import stream_ask

    answer = None
    for event in stream_ask(question, kb, settings, history=history, services=services):
        # An LLM that fails mid-answer needs no case here: the stream itself carries a separator and the
        # extractive answer after the partial text; _warn_fallback says why afterwards.
        if event.kind == "token":
            console.print(escape(event.text), end="", highlight=False)
        elif event.kind == "answer":
            answer = event.answer
    console.print()
    return answer


@app.command()
def ask(
    question: str = typer.Argument(..., help="问题 (question)"),
    kb: Optional[str] = typer.Option(None, "--kb", help="知识库名称"),
    top_k: Optional[int] = typer.Option(None, "--top-k", help="检索的段落数"),
    model: Optional[str] = typer.Option(None, "--model", help="大模型或 LoRA 适配器名称 (served model name)"),
    stream: bool = typer.Option(False, "--stream", help="边生成边输出 (stream tokens)"),
    as_json: bool = typer.Option(False, "--json", help="输出一个 JSON 对象"),
) -> None:
    """向知识库提问，回答带编号引用 (answers cite their sources)。"""
    from llm.answer import ask as ask_question

    settings = _settings(top_k=top_k, llm_model=model)
    name = kb or settings.default_kb
    try:
        if stream and not as_json:
            answer = _stream_answer(question, name, settings)
        else:
            answer = ask_question(question, name, settings)
    except ZhiwenError as exc:
        _fail(exc)
    _warn_fallback(answer)
    if as_json:
        typer.echo(json.dumps(answer.to_public_json(), ensure_ascii=False))
        return
    if not stream:
        style = "yellow" if answer.refused else "bold"
        console.print(f"[{style}]{escape(answer.text)}[/]")
    _print_citations(answer)


@app.command()
def chat(
    kb: Optional[str] = typer.Option(None, "--kb", help="知识库名称"),
    model: Optional[str] = typer.Option(None, "--model", help="大模型或 LoRA 适配器名称"),
) -> None:
    """多轮对话：追问会结合上文（输入 /new 开始新对话，/exit 或 Ctrl-D 退出）。"""
    settings = _settings(llm_model=model)
    name = kb or settings.default_kb
    if name not in kb_names(settings):
        _fail(KnowledgeBaseNotFound(name), settings)
    with Services() as services:  # the knowledge base stays open, answers cached, for the session
        _chat_loop(name, settings, services)


def _chat_loop(name: str, settings: Settings, services: Services) -> None:
    from llm.answer import recent_history

    history: list[tuple[str, str]] = []
    console.print(f"知问 · 知识库 [bold]{escape(name)}[/]（/new 新对话，/exit 退出）")
    while True:
        try:
            question = console.input("[bold green]问> [/]").strip()
        except (EOFError, KeyboardInterrupt):
            console.print()
            return
        if not question:
            continue
        if question in ("/exit", "/quit"):
            return
        if question == "/new":
            history = []
            console.print("[dim]已开始新对话[/]")
            continue
        try:
            answer = _stream_answer(question, name, settings, history=recent_history(history, settings), services=services)
        except ZhiwenError as exc:
            err.print(f"[bold red]错误:[/] {escape(str(exc))}")
            continue
        _warn_fallback(answer)
        _print_citations(answer)
        if not answer.refused:
            history.append((question, answer.text))


# Listed in `zhiwen --help` in the order registered: the commands above, then these three, then the groups.
app.command()(api)
app.command()(ui)
app.command()(mcp)
app.add_typer(kb_app, name="kb")
app.add_typer(finetune_app, name="finetune")
app.add_typer(llm_app, name="llm")
app.add_typer(eval_app, name="eval")
app.add_typer(moderation_app, name="moderation")
app.add_typer(keys_app, name="keys")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
