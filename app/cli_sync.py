"""`zhiwen ingest DIR --sync [--dry-run]`: the folder-sync flavour of `ingest`, kept out of app/cli.py so the
root module stays a list of commands. All the work is ``ingest.sync.sync_folder``; this prints its report."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.markup import escape

from app.cli_common import console, counted_progress
from app.cli_common import fail as _fail
from core.errors import ZhiwenError
from core.settings import Settings

_STYLE = {"indexed": "green", "updated": "cyan", "unchanged": "dim", "duplicate": "yellow", "failed": "bold red",
          "removed": "magenta"}
_ZH = {"indexed": "已索引", "updated": "已更新", "unchanged": "未变化", "duplicate": "重复，跳过", "failed": "失败",
       "removed": "已删除"}
_ZH_WOULD = {"indexed": "将索引", "updated": "将更新", "unchanged": "未变化", "duplicate": "重复，跳过", "failed": "失败",
             "removed": "将删除"}
_UNSUPPORTED_SHOWN = 20  # as `ingest`: named one by one up to here, then a count


def sync_command(paths: list[Path], name: str, settings: Settings, as_json: bool, dry_run: bool) -> None:
    """Run one folder sync and print it like `ingest` prints a batch; exits 1 when a file failed."""
    from ingest.sync import sync_folder

    if len(paths) != 1:
        _fail(f"--sync 只接受一个文件夹，收到 {len(paths)} 个路径 (--sync takes exactly one folder)")
    with counted_progress("同步", "已处理 {done}/{total} 个文件 ({done}/{total} files)", live=not as_json and sys.stderr.isatty(),
                          description=True) as update:

        def on_progress(result, done, total):
            update(done, total, description=escape(Path(result.source).name))

        try:
            report = sync_folder(name, paths[0], settings, on_progress=on_progress, dry_run=dry_run)
        except ZhiwenError as exc:
            _fail(exc, settings)
    if as_json:
        console.print_json(json.dumps(report.to_json(), ensure_ascii=False))
    else:
        labels = _ZH_WOULD if dry_run else _ZH
        for r in report.results:
            detail = f"{r.n_chunks} 块" if r.status in ("indexed", "updated", "unchanged", "removed") and r.n_chunks else r.reason
            console.print(f"[{_STYLE[r.status]}]{labels[r.status]:<6}[/] {escape(r.source)}  [dim]{escape(detail)}[/]")
        for source in report.unsupported[:_UNSUPPORTED_SHOWN]:
            console.print(f"[yellow]{'不支持，跳过':<6}[/] {escape(source)}  [dim]不支持的文件类型 (unsupported type)[/]")
        if len(report.unsupported) > _UNSUPPORTED_SHOWN:
            console.print(f"[yellow]另有 {len(report.unsupported) - _UNSUPPORTED_SHOWN} 个不支持的文件已跳过 (more unsupported files skipped)[/]")
        c = report.counts()
        head = "预演，未做任何修改 (dry run, nothing changed)：" if dry_run else ""
        console.print(
            f"{head}知识库 [bold]{escape(name)}[/] ⇄ {escape(report.folder)}: 新增 {c['indexed']}，更新 {c['updated']}，"
            f"未变化 {c['unchanged']}，删除 {c['removed']}，失败 {c['failed']}"
            + (f"，重复 {c['duplicate']}" if c["duplicate"] else "") + (f"，不支持 {len(report.unsupported)}" if report.unsupported else "")
        )
    if any(r.status == "failed" for r in report.results):
        raise typer.Exit(1)
