"""`zhiwen finetune …`: LoRA fine-tuning commands (prepare, train, merge, eval, serve).

A thin layer: each command parses flags, calls one function of the ``finetune`` package and prints
what it returned. Heavy imports (torch, transformers, peft) happen inside the commands, so
``zhiwen --help`` stays fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from app.cli_common import compare_table, console, err, kb_names, progress_bar
from app.cli_common import fail as _fail
from app.cli_common import settings_or_exit as _settings
from core.errors import KnowledgeBaseNotFound, ZhiwenError

finetune_app = typer.Typer(help="LoRA 微调 (LoRA fine-tuning): prepare / train / merge / eval / serve", no_args_is_help=True)





def _progress(label: str) -> Progress:
    return progress_bar(label, description=True)


def _quiet() -> None:
    from finetune.base import quiet_transformers

    quiet_transformers()


@finetune_app.command("prepare")
def prepare(
    out: Annotated[Path, typer.Option("--out", help="输出目录：train.jsonl、dev.jsonl、stats.json")],
    inputs: Annotated[list[Path] | None, typer.Argument(help="QA JSONL 文件：Alpaca、ShareGPT、messages 或 prompt/completion 格式")] = None,
    from_kb: Annotated[str | None, typer.Option("--from-kb", help="也从这个知识库生成问答（用配置的大模型出题）")] = None,
    n: Annotated[int, typer.Option("--n", min=1, help="--from-kb 时抽取的文本块数 (chunks to generate from)")] = 50,
    per_chunk: Annotated[int, typer.Option("--per-chunk", min=1, max=10, help="每个文本块生成的问题数")] = 2,
    distractors: Annotated[int, typer.Option("--distractors", min=0, max=10, help="每个样本附带的干扰资料数 (distractor sources)")] = 2,
    base: Annotated[Path | None, typer.Option("--base", help="基础模型目录：按它的分词器计长度、按它的 chat template 输出 text")] = None,
    dev_ratio: Annotated[float, typer.Option("--dev-ratio", min=0.0, max=0.9, help="验证集比例 (dev split share)")] = 0.1,
    max_tokens: Annotated[int | None, typer.Option("--max-tokens", help="超过这个长度的样本丢弃（有 --base 时按 token，否则按字符）")] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    skip_invalid: Annotated[bool, typer.Option("--skip-invalid", help="跳过格式错误的行（默认遇到就报错）")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="输出 JSON 统计")] = False,
) -> None:
    """构建 SFT 数据集：读入问答 JSONL（可选从知识库生成），去重、按长度过滤、划分 train/dev，打印统计。"""
    from finetune.data import prepare as prepare_sft

    settings = _settings()
    if not inputs and not from_kb:
        _fail(ZhiwenError("请给出 QA JSONL 文件或 --from-kb 知识库 (give input files or --from-kb)"))
    for path in inputs or []:
        if not path.is_file():
            _fail(ZhiwenError(f"找不到文件 {path} (file not found)"))
    if from_kb and from_kb not in kb_names(settings):  # before any model is loaded or called
        _fail(KnowledgeBaseNotFound(from_kb), settings)
    tokenizer = None
    try:
        if base is not None:
            from finetune.base import check_base_dir, load_tokenizer

            _quiet()
            tokenizer = load_tokenizer(check_base_dir(base))
        extra = []
        if from_kb:
            from finetune.from_kb import examples_from_kb

            with _progress("出题 (generating)") as progress:
                task = progress.add_task("", total=None)
                extra, report = examples_from_kb(
                    from_kb, settings, n, questions_per_chunk=per_chunk, distractors=distractors, seed=seed,
                    on_progress=lambda done, total: progress.update(task, completed=done, total=total),
                )
            err.print(
                f"知识库 {escape(from_kb)}: {report.chunks} 个文本块，生成 {report.pairs} 个问答，"
                f"{report.ungrounded} 个答案不在原文中被丢弃 (ungrounded)，{report.calls_failed} 次调用失败，"
                f"得到 {report.examples} 个样本（其中 {report.unanswerable} 个“无相关信息”）"
            )
            for failure in report.failures[:3]:
                err.print(f"[yellow]  {escape(failure)}[/]")
        stats = prepare_sft(list(inputs or []), out, extra=extra, tokenizer=tokenizer,
                            max_length=max_tokens or settings.finetune_max_length, dev_ratio=dev_ratio, seed=seed,
                            skip_invalid=skip_invalid)
    except ZhiwenError as exc:
        _fail(exc)
    if as_json:
        typer.echo(json.dumps(stats.to_json(), ensure_ascii=False))
        return
    table = Table("项目 item", "数量 count")
    for label, value in (("读入 read", stats.read), ("格式错误 invalid", stats.invalid), ("重复 duplicates", stats.duplicates),
                         (f"过长 too long (> {stats.max_length} {stats.length_unit})", stats.too_long),
                         ("训练集 train", stats.train), ("验证集 dev", stats.dev)):
        table.add_row(label, str(value))
    console.print(table)
    for label, summary in (("提示 prompt", stats.prompt_length), ("回答 answer", stats.answer_length)):
        if summary:
            console.print(f"{label} {stats.length_unit}: " + ", ".join(f"{k} {v}" for k, v in summary.items()))
    console.print(f"格式 (formats): {', '.join(f'{k} {v}' for k, v in stats.formats.items())}")
    for e in stats.errors[:5]:
        err.print(f"[yellow]跳过 (skipped) {escape(e)}[/]")
    console.print(f"已写入 {escape(str(out))}；下一步: zhiwen finetune train --base BASE --data {escape(str(out))} --out adapters/NAME")


@finetune_app.command("train")
def train(
    base: Annotated[Path, typer.Option("--base", help="基础模型的本地目录（含 config.json；不会下载任何东西）")],
    data: Annotated[Path, typer.Option("--data", help="prepare 的输出目录（train.jsonl、dev.jsonl）")],
    out: Annotated[Path, typer.Option("--out", help="适配器输出目录，例如 adapters/policy")],
    epochs: Annotated[float | None, typer.Option("--epochs", help="训练轮数 (epochs)")] = None,
    lr: Annotated[float | None, typer.Option("--lr", help="学习率 (learning rate)")] = None,
    rank: Annotated[int | None, typer.Option("--rank", help="LoRA rank r")] = None,
    alpha: Annotated[int | None, typer.Option("--alpha", help="LoRA alpha")] = None,
    dropout: Annotated[float | None, typer.Option("--dropout", help="LoRA dropout")] = None,
    target_modules: Annotated[list[str] | None, typer.Option("--target-module", help="LoRA 作用的模块，可重复；默认 all-linear")] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", help="每步的样本数 (per-device batch)")] = None,
    grad_accum: Annotated[int | None, typer.Option("--grad-accum", help="梯度累积步数 (gradient accumulation)")] = None,
    max_length: Annotated[int | None, typer.Option("--max-length", help="每个样本最多的 token 数")] = None,
    max_steps: Annotated[int | None, typer.Option("--max-steps", help="最多训练这么多步（覆盖 --epochs）")] = None,
    save_steps: Annotated[int, typer.Option("--save-steps", min=1, help="每隔多少步保存检查点 (checkpoint interval)")] = 100,
    logging_steps: Annotated[int, typer.Option("--logging-steps", min=1, help="每隔多少步记录 loss")] = 5,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    resume: Annotated[bool, typer.Option("--resume", help="从 OUT/checkpoints 中最新的检查点续训")] = False,
    resume_from: Annotated[Path | None, typer.Option("--resume-from", help="从这个检查点目录续训")] = None,
    qlora: Annotated[bool | None, typer.Option("--qlora/--no-qlora", help="4-bit QLoRA；默认：有 GPU 和 bitsandbytes 时开启")] = None,
    gradient_checkpointing: Annotated[bool, typer.Option("--gradient-checkpointing", help="用计算换显存 (trade compute for memory)")] = False,
) -> None:
    """用 PEFT LoRA 微调基础模型（只训练 LoRA 权重），输出 vLLM --lora-modules 可直接加载的适配器目录。"""
    settings = _settings(finetune_epochs=epochs, finetune_learning_rate=lr, finetune_lora_r=rank, finetune_lora_alpha=alpha,
                         finetune_lora_dropout=dropout, finetune_target_modules=target_modules or None,
                         finetune_batch_size=batch_size, finetune_grad_accum=grad_accum, finetune_max_length=max_length)
    _quiet()
    from finetune.base import check_base_dir
    from finetune.progress import RichProgressCallback
    from finetune.train import TrainOptions, train_lora

    options = TrainOptions.from_settings(settings, max_steps=max_steps, save_steps=save_steps, logging_steps=logging_steps,
                                         seed=seed, qlora=qlora, gradient_checkpointing=gradient_checkpointing)

    def on_start(info: dict) -> None:
        console.print(
            f"可训练参数 (trainable params): {info['trainable']:,} / {info['total']:,} ({info['percent']:.4f}%)  "
            f"LoRA r={options.lora_r} alpha={options.lora_alpha} modules={','.join(options.target_modules)}"
        )
        console.print(
            f"样本 (examples): train {info['n_train']}, dev {info['n_dev']}"
            + (f"，{info['skipped']} 个提示过长被跳过" if info["skipped"] else "")
            + f"；精度 (precision) {info['precision']}{'，QLoRA 4-bit' if info['qlora'] else ''}；"
            f"batch {options.batch_size} × 累积 {options.grad_accum}"
        )

    try:
        check_base_dir(base)
        result = train_lora(base, data, out, options, resume=resume_from or (True if resume else None),
                            callbacks=[RichProgressCallback(err, disable=not sys.stderr.isatty())], on_start=on_start)
    except ZhiwenError as exc:
        _fail(exc)
    evals = ", ".join(f"step {s}: {v:.4f}" for s, v in result.eval_losses)
    console.print(f"完成 (done): {result.global_step} 步，train loss {result.train_loss:.4f}，{result.seconds:.1f} 秒")
    if evals:
        console.print(f"dev loss: {evals}")
    console.print(f"适配器 (adapter): {escape(str(out))}  (adapter_config.json, adapter_model.safetensors, loss.png, train_log.json)")
    name = out.name
    console.print(f"[dim]vLLM: --enable-lora --lora-modules {escape(name)}={escape(str(out))}；"
                  f"CPU: zhiwen finetune serve --base {escape(str(base))} --lora {escape(name)}={escape(str(out))}[/]")


@finetune_app.command("merge")
def merge(
    base: Annotated[Path, typer.Option("--base", help="基础模型目录")],
    adapter: Annotated[Path, typer.Option("--adapter", help="LoRA 适配器目录")],
    out: Annotated[Path, typer.Option("--out", help="合并后模型的输出目录")],
) -> None:
    """把 LoRA 权重合并进基础模型，写出完整模型（给不支持 LoRA 的推理服务用）。"""
    _quiet()
    from finetune.merge import merge_adapter

    with _progress("合并 (merge)") as progress:
        progress.add_task("", total=None)
        try:
            path = merge_adapter(base, adapter, out)
        except ZhiwenError as exc:
            _fail(exc)
    console.print(f"已写入合并后的模型 (merged model): {escape(str(path))}")


@finetune_app.command("serve")
def serve(
    base: Annotated[Path, typer.Option("--base", help="基础模型目录")],
    lora: Annotated[list[str] | None, typer.Option("--lora", help="LoRA 适配器 NAME=PATH，可重复（同 vLLM --lora-modules）")] = None,
    base_name: Annotated[str | None, typer.Option("--base-name", help="基础模型的服务名，默认 ZHIWEN_LLM_MODEL（zhiwen）")] = None,
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 8000,
) -> None:
    """在 CPU（或没有 vLLM 的 GPU）上用 transformers + PEFT 提供 OpenAI 兼容服务：请求的 model 选择适配器。"""
    from finetune.hf_server import parse_lora_modules
    from finetune.hf_server import serve as run_server

    settings = _settings()
    try:
        adapters = parse_lora_modules(lora or [])
    except ValueError as exc:
        _fail(str(exc))
    name = base_name or settings.llm_model
    _quiet()
    err.print(f"知问 LoRA 服务: http://{host}:{port}/v1  models: {', '.join([name, *adapters])}")
    try:
        run_server(base, adapters, host=host, port=port, base_name=name)
    except (ZhiwenError, ValueError) as exc:
        _fail(str(exc))


@finetune_app.command("eval")
def evaluate(
    dataset: Annotated[Path, typer.Option("--dataset", help="问题集 JSONL（同 zhiwen eval run）")],
    kb: Annotated[str, typer.Option("--kb", help="知识库名称")],
    out: Annotated[Path, typer.Option("--out", help="结果目录：base/、adapter/、comparison.md")],
    base: Annotated[Path | None, typer.Option("--base", help="基础模型目录（本地启动 transformers 服务时需要）")] = None,
    adapter: Annotated[Path | None, typer.Option("--adapter", help="LoRA 适配器目录")] = None,
    base_url: Annotated[str | None, typer.Option("--base-url", help="用已经在运行的服务（如 vLLM --lora-modules），不另起服务")] = None,
    base_model: Annotated[str | None, typer.Option("--base-model", help="服务上基础模型的名称，默认 ZHIWEN_LLM_MODEL")] = None,
    adapter_model: Annotated[str | None, typer.Option("--adapter-model", help="服务上适配器的名称，默认适配器目录名")] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="只评测前 N 个问题")] = None,
    workers: Annotated[int, typer.Option("--workers", min=1, max=32, help="并发数")] = 1,
    max_tokens: Annotated[int | None, typer.Option("--max-tokens", help="每个回答最多生成的 token 数")] = None,
) -> None:
    """微调前后对比：同一问题集分别用基础模型和适配器走完整问答链路，并排列出各项指标。"""
    from contextlib import nullcontext

    from finetune.evaluate import adapter_server, compare_models

    settings = _settings(llm_max_tokens=max_tokens)
    if base_url is None and (base is None or adapter is None):
        _fail(ZhiwenError("需要 --base 和 --adapter（本地启动服务），或 --base-url 指向已有服务 (need --base and --adapter, or --base-url)"))
    if base_url is not None and adapter is None and adapter_model is None:
        _fail(ZhiwenError("使用 --base-url 时请用 --adapter-model 指明适配器的服务名 (name the adapter with --adapter-model)"))
    base_name = base_model or settings.llm_model
    adapter_name = adapter_model or (adapter.name if adapter else "adapter")
    out.mkdir(parents=True, exist_ok=True)
    try:
        if base_url is None:
            err.print("启动 LoRA 服务 (starting the adapter server)…")
            server = adapter_server(base, {adapter_name: adapter}, base_name=base_name, log_path=out / "server.log")
        else:
            server = nullcontext(None)
        with server as running, _progress("评测 (eval)") as progress:
            url = running.base_url if running is not None else base_url
            task = progress.add_task("", total=None)
            comparison = compare_models(
                dataset, kb, out, settings, url, base_name, adapter_name, limit=limit, workers=workers,
                on_progress=lambda label, done, total: progress.update(task, completed=done, total=total, description=label),
            )
    except ZhiwenError as exc:
        _fail(exc)
    console.print(compare_table(("指标 metric", f"基础 base ({escape(base_name)})", f"适配器 adapter ({escape(adapter_name)})", "差 Δ"),
                                comparison.rows))
    console.print(f"对比报告 (comparison): {escape(str(out / 'comparison.md'))}")
