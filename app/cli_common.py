"""What every `zhiwen` command module shares: the consoles, settings loading and error exits."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.markup import escape

from core.errors import ZhiwenError
from core.settings import Settings, load_settings

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def settings_or_exit(**overrides) -> Settings:
    """Settings with CLI overrides; an invalid value exits 2 with the reason, never a traceback."""
    try:
        return load_settings(**overrides)
    except ValueError as exc:
        err.print(f"[bold red]配置错误 (invalid settings):[/] {escape(str(exc))}")
        raise typer.Exit(2)


def fail(exc: ZhiwenError | str) -> None:
    err.print(f"[bold red]错误:[/] {escape(str(exc))}")
    raise typer.Exit(1)
