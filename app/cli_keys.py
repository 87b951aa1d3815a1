"""`zhiwen keys …`: create, list and revoke the API keys that the HTTP API and the web UI accept.

A thin layer over ``core.keys``, imported inside the commands so ``zhiwen --help`` stays fast.
"""

from __future__ import annotations

import typer
from rich.markup import escape

from app.cli_common import console
from app.cli_common import fail as _fail
from app.cli_common import settings_or_exit as _settings
from core.errors import ZhiwenError

keys_app = typer.Typer(help="API key 管理 (API keys)", no_args_is_help=True)


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
