"""What every `zhiwen` command module shares: the consoles, settings loading, error exits, progress bars
(with progress lines for logs and pipes), the B − A compare table, confirmation prompts and "did you mean …?"
for knowledge-base names. Kept in one place so the command modules (app/cli.py, app/cli_*.py,
app/finetune_cli.py) look and fail alike without repeating each other."""

from __future__ import annotations

import difflib
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import typer
import typer.rich_utils
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from core.errors import KnowledgeBaseNotFound, ZhiwenError
from core.settings import Settings, load_settings

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _fold_help_text() -> None:
    """typer draws each help text as one rich Text that a panel cuts with "…" at its edge when it cannot
    wrap it at a space, and Chinese help has no spaces (`zhiwen eval --help` at 80 columns lost the end of
    its sentences). Folding keeps every character: the text continues on the next line."""
    make = getattr(typer.rich_utils, "_make_rich_text", None)
    if make is None or getattr(make, "zhiwen_folds", False):
        return

    def folding(**kwargs):
        text = make(**kwargs)
        if isinstance(text, Text):
            text.overflow = "fold"
        return text

    folding.zhiwen_folds = True
    typer.rich_utils._make_rich_text = folding


_fold_help_text()


def settings_or_exit(**overrides) -> Settings:
    """Settings with CLI overrides; an invalid value exits 2 with the reason, never a traceback."""
    try:
        return load_settings(**overrides)
    except ValueError as exc:
        err.print(f"[bold red]配置错误 (invalid settings):[/] {escape(str(exc))}")
        raise typer.Exit(2)


def kb_names(settings: Settings) -> list[str]:
    """The knowledge bases on disk, by name only (no catalogue opened)."""
    from ingest.kb import CATALOG_FILE

    root = settings.kbs_dir
    return sorted(d.name for d in root.iterdir() if (d / CATALOG_FILE).is_file()) if root.is_dir() else []


def close_names(name: str, names: list[str]) -> list[str]:
    """Names a user probably meant: same letters in another case first, then difflib's close matches
    (cutoff 0.5, so one wrong character in a two-character Chinese name still counts)."""
    same = [n for n in names if n.casefold() == name.casefold() and n != name]
    return (same + [n for n in difflib.get_close_matches(name, names, n=3, cutoff=0.5) if n not in same and n != name])[:3]


def did_you_mean(name: str, settings: Settings | None = None) -> str:
    """" 你是不是要找 “demo”？(did you mean 'demo'?)", or "" when no existing name is close."""
    try:
        matches = close_names(name, kb_names(settings or load_settings()))
    except (ValueError, OSError):
        return ""
    if not matches:
        return ""
    return f" 你是不是要找 {'、'.join(f'“{m}”' for m in matches)}？(did you mean {', '.join(repr(m) for m in matches)}?)"


def fail(exc: ZhiwenError | str, settings: Settings | None = None) -> None:
    message = str(exc)
    if isinstance(exc, KnowledgeBaseNotFound):
        message += did_you_mean(exc.name, settings)
    err.print(f"[bold red]错误:[/] {escape(message)}")
    raise typer.Exit(1)


def confirm_or_exit(question: str, yes: bool) -> None:
    """Ask before destroying something. Without a terminal to ask in (a script, a pipe, CI) refuse at once
    rather than wait for an answer no one will type: --yes says it was meant."""
    if yes:
        return
    if not sys.stdin.isatty():
        err.print("[bold red]错误:[/] 删除前需要确认，但标准输入不是终端，无法询问：确认无误后加 --yes 重新运行 "
                  "(confirmation needed but stdin is not a terminal: re-run with --yes)")
        raise typer.Exit(2)
    if not typer.confirm(question, default=False):
        err.print("已取消 (cancelled)")
        raise typer.Exit(1)


class LineProgress:
    """Progress for a log file or a pipe, where a terminal gets a live bar: a line such as
    "已处理 20/134 个文件" every ``every`` items (about 20 lines for a long run, at least every 10 items),
    after ``seconds`` without one, and at the end."""

    def __init__(self, template: str, enabled: bool = True, seconds: float = 30.0) -> None:
        self.template = template
        self.enabled = enabled
        self.seconds = seconds
        self._last_done = 0
        self._last_time = time.monotonic()

    def __call__(self, done: int, total: int | None) -> None:
        if not self.enabled or done <= self._last_done:
            return
        every = max(10, -(-(total or 0) // 20))
        now = time.monotonic()
        if done == total or done - self._last_done >= every or now - self._last_time >= self.seconds:
            err.print(self.template.format(done=done, total=total if total is not None else "?"), highlight=False)
            self._last_done, self._last_time = done, now


def progress_bar(label: str, *, live: bool | None = None, description: bool = False) -> Progress:
    """A transient bar on stderr: "label ━━━ 3/10 0:00:05" (then the task's description, if asked for).
    Hidden unless ``live`` (default: stderr is a terminal)."""
    columns = [TextColumn(f"[bold]{label}[/]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    if description:
        columns.append(TextColumn("{task.description}"))
    return Progress(*columns, console=err, disable=not (sys.stderr.isatty() if live is None else live), transient=True)


@contextmanager
def counted_progress(label: str, lines: str, *, live: bool | None = None,
                     description: bool = False) -> Iterator[Callable[..., None]]:
    """A live bar on a terminal, LineProgress lines (template ``lines``) everywhere else. Yields
    ``update(done, total, description=None)`` for the work's progress callback."""
    live = sys.stderr.isatty() if live is None else live
    line_progress = LineProgress(lines, enabled=not live)
    with progress_bar(label, live=live, description=description) as progress:
        task = progress.add_task("", total=None)

        def update(done: int, total: int | None, description: str | None = None) -> None:
            if description is None:
                progress.update(task, completed=done, total=total)
            else:
                progress.update(task, completed=done, total=total, description=description)
            line_progress(done, total)

        yield update


def compare_table(columns: Iterable[str], rows: Iterable[tuple]) -> Table:
    """Metric rows ``(name, a, b, delta)`` side by side: latencies in whole ms, the rest to three decimals;
    a delta is green when it is better (higher, or lower for a latency) and red when worse."""
    table = Table(*columns)
    for name, a, b, delta in rows:
        fmt = (lambda v: "–" if v is None else f"{v:.0f}") if name.startswith("latency") else (lambda v: "–" if v is None else f"{v:.3f}")
        colour = "" if delta is None or delta == 0 else ("green" if (delta > 0) != name.startswith("latency") else "red")
        shown = f"{'+' if (delta or 0) > 0 else ''}{fmt(delta)}"
        table.add_row(name, fmt(a), fmt(b), f"[{colour}]{shown}[/]" if colour else shown)
    return table
