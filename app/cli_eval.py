"""`zhiwen eval …`: batch QA evaluation (run, compare) and building question sets (build-squad, build-folder).

A thin layer over the ``eval`` package: each command parses flags, calls it and prints what it returned.
The eval, report and LLM imports happen inside the commands, so ``zhiwen --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from app.cli_common import compare_table, console, counted_progress, kb_names
from app.cli_common import fail as _fail
from app.cli_common import settings_or_exit as _settings
from core.errors import KnowledgeBaseNotFound, ZhiwenError

eval_app = typer.Typer(help="批量评测 (batch QA evaluation)", no_args_is_help=True)


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
    with counted_progress("评测", "已完成 {done}/{total} 个问题 ({done}/{total} questions)") as update:
        try:
            judge_llm = None
            if judge:
                from llm.client import make_chat_model

                judge_llm = make_chat_model(settings)
            records = run_eval(dataset, kb, out, settings, limit=limit, workers=workers, judge_llm=judge_llm,
                               on_progress=lambda _record, done, total: update(done, total))
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
    console.print(compare_table(("指标 metric", f"A {escape(a.name)}", f"B {escape(b.name)}", "B − A"), rows))


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
