"""`zhiwen moderation …`: see how a text would be moderated (block / mask / flag) and why.

A thin layer over ``moderation.moderator``, imported inside the command so ``zhiwen --help`` stays fast.
"""

from __future__ import annotations

import json

import typer
from rich.markup import escape

from app.cli_common import console
from app.cli_common import fail as _fail
from app.cli_common import settings_or_exit as _settings
from core.errors import ZhiwenError

moderation_app = typer.Typer(help="内容审核 (moderation)", no_args_is_help=True)


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
