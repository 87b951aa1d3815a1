"""LoRA fine-tuning, for real, on CPU: a tiny random-init Llama and a byte-level BPE tokenizer the test
trains on its own Chinese QA set (nothing comes from a hub), the real Trainer, PEFT and safetensors
files on disk, the real `zhiwen` CLI, and the adapter server as a real process on 127.0.0.1."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

torch = pytest.importorskip("torch")
pytest.importorskip("peft")
pytest.importorskip("transformers")

from core.errors import ZhiwenError
from core.models import Chunk, Hit
from finetune import data as sft_data
from finetune.base import FinetuneError, load_base_model, load_tokenizer
from finetune.from_kb import (
    build_example,
    cite,
    examples_from_kb,
    grounding,
    parse_qa_pairs,
)
from finetune.hardware import Hardware, choose_precision, choose_qlora
from finetune.merge import load_with_adapter, merge_adapter
from finetune.template import IGNORE_INDEX, PadCollator, encode
from finetune.train import (
    TrainOptions,
    latest_checkpoint,
    lora_target_modules,
    train_lora,
)
from llm.citations import parse_citations
from llm.prompts import SYSTEM_PROMPT

ZHIWEN = str(Path(sys.executable).parent / "zhiwen")
# PEFT reads an attribute transformers 5 deprecated: their warning, not ours.
pytestmark = pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")

CHATML = (
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

# A small Chinese QA set in one company's style: short, factual, ending in a citation-free sentence.
QA = [
    ("年假有多少天？", "正式员工每年享有十五天带薪年假。"),
    ("年假可以跨年使用吗？", "当年未休的年假可以顺延到次年三月底。"),
    ("病假需要什么证明？", "病假超过两天需要提供医院开具的诊断证明。"),
    ("报销需要哪些材料？", "报销需要提供发票原件和部门经理签字的审批单。"),
    ("报销多久到账？", "审批通过后五个工作日内打入工资卡。"),
    ("出差住宿标准是多少？", "一线城市每晚不超过五百元，其他城市不超过三百五十元。"),
    ("出差可以坐飞机吗？", "单程超过八百公里可以乘坐经济舱。"),
    ("加班有调休吗？", "工作日加班可以按一比一调休，需在三个月内休完。"),
    ("周末加班怎么算？", "周末加班按两倍工资计算或安排调休。"),
    ("试用期多长？", "试用期一般为三个月，最长不超过六个月。"),
    ("试用期工资是多少？", "试用期工资为转正工资的百分之八十。"),
    ("几点上班？", "公司实行弹性工作制，上午十点前到岗即可。"),
    ("可以远程办公吗？", "每周可以申请一天远程办公，需提前一天报备。"),
    ("公司有体检吗？", "公司每年组织一次免费体检。"),
    ("婚假有几天？", "员工结婚可以享受十天婚假。"),
    ("产假有几天？", "女员工产假为一百五十八天。"),
    ("陪产假有几天？", "男员工可以享受十五天陪产假。"),
    ("工资几号发？", "每月十日发放上月工资，遇节假日提前。"),
    ("公积金比例是多少？", "公司按工资的百分之十二缴纳住房公积金。"),
    ("怎么申请离职？", "离职需提前三十天提交书面申请。"),
    ("离职要交接什么？", "离职前需交还电脑、门禁卡并完成工作交接。"),
    ("内推有奖励吗？", "成功内推一名员工可获得五千元奖金。"),
    ("培训费用谁出？", "公司安排的培训费用由公司全额承担。"),
    ("餐补有多少？", "每个工作日有三十元餐补，随工资发放。"),
    ("交通补贴有吗？", "每月发放三百元交通补贴。"),
    ("电脑坏了找谁？", "电脑故障请在内网提交工单，信息部会在当天处理。"),
    ("怎么预定会议室？", "在内网日历中选择会议室并提交预定。"),
    ("密码多久要改？", "系统密码每九十天必须修改一次。"),
    ("访客怎么登记？", "访客需在前台登记并由员工陪同进入。"),
    ("年终奖什么时候发？", "年终奖在春节前随一月工资发放。"),
    ("什么是知问？", "知问是公司内部的知识库问答助手。"),
    ("知问网关的延迟是多少？", "知问网关的P99延迟低于五十毫秒。"),
]


# -- the tiny base model ---------------------------------------------------------------------------
def build_tokenizer(texts: list[str]):
    """A byte-level BPE trained on the test's own text: any string encodes (bytes), Chinese characters
    of the set become single tokens, and decoding round-trips."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    corpus = texts + ["<|im_start|>system\n", "<|im_start|>user\n", "<|im_start|>assistant\n", "资料：问题：[1][2][3]《》<<<>>>"]
    bpe.train_from_iterator(corpus * 3, vocab_size=1200, min_frequency=1, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    tokenizer.chat_template = CHATML
    return tokenizer


def build_base(path: Path) -> Path:
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = build_tokenizer([q + a for q, a in QA] + [SYSTEM_PROMPT])
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=2048, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=None, tie_word_embeddings=False, initializer_range=0.2,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def write_jsonl(path: Path, rows: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in rows), encoding="utf-8")
    return path


def tiny_options(**kw) -> TrainOptions:
    defaults = {"lora_r": 8, "lora_alpha": 16, "lora_dropout": 0.0, "learning_rate": 2e-2, "epochs": 6, "batch_size": 4,
                "grad_accum": 2, "max_length": 256, "logging_steps": 1, "save_steps": 8, "save_total_limit": None,
                "warmup": 0, "seed": 0}
    return TrainOptions(**{**defaults, **kw})


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory) -> Path:
    return build_base(tmp_path_factory.mktemp("base") / "tiny-llama")


@pytest.fixture(scope="module")
def sft_dir(tmp_path_factory, base_dir) -> Path:
    root = tmp_path_factory.mktemp("sft")
    alpaca = write_jsonl(root / "qa.jsonl", [{"instruction": q, "input": "", "output": a} for q, a in QA])
    stats = sft_data.prepare([alpaca], root / "data", tokenizer=load_tokenizer(base_dir), max_length=256, dev_ratio=0.1)
    assert stats.train + stats.dev == len(QA)
    return root / "data"


@pytest.fixture(scope="module")
def trained(tmp_path_factory, base_dir, sft_dir):
    out = tmp_path_factory.mktemp("adapters") / "policy"
    result = train_lora(base_dir, sft_dir, out, tiny_options())
    return result


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """Tiny matrices: one thread is twice as fast as two fighting over a shared CI machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def cli_env(data_dir: Path) -> dict[str, str]:
    return {**os.environ, "ZHIWEN_DATA_DIR": str(data_dir), "ZHIWEN_CONFIG": str(data_dir / "none.toml"),
            "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def logits_of(model, tokenizer, text: str):
    ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")
    with torch.no_grad():
        return model(**ids).logits


PROBE = "<|im_start|>user\n年假有多少天？<|im_end|>\n<|im_start|>assistant\n正式员工"


# -- choices that depend on the hardware (pure functions) --------------------------------------------
def test_precision_and_qlora_follow_the_hardware():
    cpu = Hardware(cuda=False, bf16=False, bitsandbytes=True)
    old_gpu = Hardware(cuda=True, bf16=False, bitsandbytes=False)
    new_gpu = Hardware(cuda=True, bf16=True, bitsandbytes=True)
    assert [choose_precision(h) for h in (cpu, old_gpu, new_gpu)] == ["fp32", "fp16", "bf16"]
    assert choose_qlora(None, cpu) is False and choose_qlora(None, old_gpu) is False and choose_qlora(None, new_gpu) is True
    assert choose_qlora(False, new_gpu) is False
    with pytest.raises(ZhiwenError, match="CUDA"):
        choose_qlora(True, cpu)
    with pytest.raises(ZhiwenError, match="bitsandbytes"):
        choose_qlora(True, old_gpu)
    assert lora_target_modules(["all-linear"]) == "all-linear"
    assert lora_target_modules(["q_proj", "v_proj"]) == ["q_proj", "v_proj"]


# -- prepare ---------------------------------------------------------------------------------------
def test_prepare_reads_alpaca_sharegpt_and_messages_and_deduplicates(tmp_path):
    alpaca = write_jsonl(tmp_path / "alpaca.jsonl", [
        {"instruction": "年假有多少天？", "input": "", "output": "十五天。"},
        {"instruction": "总结下面的制度", "input": "报销需要发票。", "output": "报销要发票。", "system": "你是HR助手。"},
    ])
    sharegpt = write_jsonl(tmp_path / "sharegpt.jsonl", [
        {"conversations": [{"from": "system", "value": "你是HR助手。"}, {"from": "human", "value": "婚假几天？"},
                           {"from": "gpt", "value": "十天。"}, {"from": "human", "value": "產假呢？"},
                           {"from": "gpt", "value": "一百五十八天。"}]},
        {"conversations": [{"from": "human", "value": "年假有多少天 ?"}, {"from": "gpt", "value": "15天"}]},  # duplicate
    ])
    messages = write_jsonl(tmp_path / "messages.jsonl", [
        {"messages": [{"role": "user", "content": "几点上班？"}, {"role": "assistant", "content": "十点前到岗。"}]},
        {"messages": [{"role": "user", "content": "年假有多少天?"}, {"role": "assistant", "content": "十五天"}]},  # duplicate
    ])
    out = tmp_path / "data"
    stats = sft_data.prepare([alpaca, sharegpt, messages], out, dev_ratio=0.25)
    assert (stats.read, stats.duplicates, stats.invalid, stats.too_long) == (7, 2, 0, 0)  # 2 turns of one conversation
    assert stats.train + stats.dev == 5 and stats.dev >= 1
    assert stats.formats == {"alpaca": 2, "sharegpt": 2, "messages": 1}
    assert stats.length_unit == "chars"
    assert json.loads((out / "stats.json").read_text(encoding="utf-8"))["duplicates"] == 2

    rows = [json.loads(line) for f in ("train.jsonl", "dev.jsonl") for line in (out / f).read_text(encoding="utf-8").splitlines()]
    by_question = {r["question"]: r for r in rows}
    assert by_question["年假有多少天？"]["completion"] == [{"role": "assistant", "content": "十五天。"}]  # the first one wins
    summary = by_question["总结下面的制度\n\n报销需要发票。"]
    assert summary["prompt"][0] == {"role": "system", "content": "你是HR助手。"}
    multi = by_question["產假呢？"]  # multi-turn: earlier turns are prompt, the last answer is the completion
    assert [m["role"] for m in multi["prompt"]] == ["system", "user", "assistant", "user"]
    assert multi["completion"][0]["content"] == "一百五十八天。"
    first_turn = by_question["婚假几天？"]  # … and every earlier answer is an example of its own
    assert [m["role"] for m in first_turn["prompt"]] == ["system", "user"]
    assert first_turn["completion"] == [{"role": "assistant", "content": "十天。"}]
    # Deterministic: the same input splits the same way.
    again = sft_data.prepare([alpaca, sharegpt, messages], tmp_path / "again", dev_ratio=0.25)
    assert (out / "dev.jsonl").read_text(encoding="utf-8") == (tmp_path / "again" / "dev.jsonl").read_text(encoding="utf-8")
    assert again.dev == stats.dev


def test_prepare_names_the_file_and_line_of_a_bad_record(tmp_path):
    bad = write_jsonl(tmp_path / "bad.jsonl", [
        {"instruction": "年假有多少天？", "output": "十五天。"},
        "",
        {"messages": [{"role": "user", "content": "几点上班？"}]},  # no answer
        "{not json",
    ])
    with pytest.raises(sft_data.DataError) as caught:
        sft_data.prepare([bad], tmp_path / "out")
    assert caught.value.lineno == 3 and str(bad) in str(caught.value) and "第 3 行" in str(caught.value)
    assert "assistant" in str(caught.value)
    stats = sft_data.prepare([bad], tmp_path / "out", skip_invalid=True, dev_ratio=0)
    assert (stats.invalid, stats.train) == (2, 1)
    assert stats.errors[1].startswith(f"{bad} 第 4 行") and "JSON" in stats.errors[1]


def test_prepare_length_filter_counts_tokens_of_the_chat_template_with_a_base(tmp_path, base_dir):
    long_answer = "公司每年组织一次免费体检。" * 40
    qa = write_jsonl(tmp_path / "qa.jsonl", [{"question": "公司有体检吗？", "answer": "有。"}, {"question": "体检细节？", "answer": long_answer}])
    stats = sft_data.prepare([qa], tmp_path / "chars", max_length=100, dev_ratio=0)
    assert (stats.too_long, stats.train, stats.length_unit) == (1, 1, "chars")
    tokenizer = load_tokenizer(base_dir)
    stats = sft_data.prepare([qa], tmp_path / "tokens", tokenizer=tokenizer, max_length=100, dev_ratio=0)
    assert (stats.too_long, stats.train, stats.length_unit) == (1, 1, "tokens")
    row = json.loads((tmp_path / "tokens" / "train.jsonl").read_text(encoding="utf-8"))
    assert row["text"] == "<|im_start|>user\n公司有体检吗？<|im_end|>\n<|im_start|>assistant\n有。<|im_end|>\n"
    assert row["n_tokens"] == len(tokenizer(row["text"], add_special_tokens=False)["input_ids"])


# -- the loss sees answers only --------------------------------------------------------------------
def test_prompt_tokens_are_masked_out_of_the_loss(base_dir):
    tokenizer = load_tokenizer(base_dir)
    prompt = [{"role": "system", "content": "你是HR助手。"}, {"role": "user", "content": "年假有多少天？"}]
    completion = [{"role": "assistant", "content": "正式员工每年享有十五天带薪年假。"}]
    encoded = encode(tokenizer, prompt, completion, max_length=256)
    n_prompt = len(tokenizer(tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True),
                             add_special_tokens=False)["input_ids"])
    assert encoded.labels[:n_prompt] == [IGNORE_INDEX] * n_prompt
    assert encoded.labels[n_prompt:] == encoded.input_ids[n_prompt:]
    answer_ids = [t for t in encoded.labels if t != IGNORE_INDEX]
    assert tokenizer.decode(answer_ids) == "正式员工每年享有十五天带薪年假。<|im_end|>\n"  # the end of turn is learnt too

    short = encode(tokenizer, [{"role": "user", "content": "年假？"}], [{"role": "assistant", "content": "十五天。"}], 256)
    batch = PadCollator(tokenizer.pad_token_id)([{"input_ids": e.input_ids, "labels": e.labels} for e in (encoded, short)])
    assert batch["labels"][1, len(short.input_ids):].eq(IGNORE_INDEX).all()
    assert batch["attention_mask"][1].sum() == len(short.input_ids)
    # The model's loss is the mean cross-entropy over answer tokens only.
    model = load_base_model(base_dir)
    with torch.no_grad():
        out = model(**batch)
    logits = out.logits[:, :-1].reshape(-1, out.logits.shape[-1])
    targets = batch["labels"][:, 1:].reshape(-1)
    keep = targets != IGNORE_INDEX
    manual = torch.nn.functional.cross_entropy(logits[keep], targets[keep])
    assert torch.allclose(out.loss, manual, atol=1e-5)
    assert keep.sum() == encoded.n_answer_tokens + short.n_answer_tokens
    # A prompt that leaves no room for an answer is skipped, not cut.
    assert encode(tokenizer, prompt, completion, max_length=n_prompt) is None


# -- training --------------------------------------------------------------------------------------
def test_training_lowers_the_loss(trained):
    train_losses = [h["loss"] for h in trained.log_history if "loss" in h]
    assert trained.global_step == 24 and len(train_losses) == 24
    assert sum(train_losses[-3:]) / 3 < 0.7 * train_losses[0], train_losses
    (step0, before), (_, after) = trained.eval_losses[0], trained.eval_losses[-1]
    assert step0 == 0 and len(trained.eval_losses) == 1 + 6, "eval before training and after every epoch"
    assert after < before


def test_only_lora_weights_train_and_the_base_is_unchanged(trained, base_dir):
    model = trained.model
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_A" in n or "lora_B" in n for n in trainable)
    assert sum(p.numel() for n, p in model.named_parameters() if n in trainable) == trained.trainable_params
    fresh = load_base_model(base_dir).state_dict()
    checked = 0
    for name, param in model.named_parameters():
        if "lora_" in name:
            continue
        key = name.removeprefix("base_model.model.").replace(".base_layer.", ".")
        assert torch.equal(param.detach(), fresh[key]), name
        checked += 1
    assert checked == len(fresh)
    lora_b = [p for n, p in model.named_parameters() if "lora_B" in n]
    assert all(p.abs().sum() > 0 for p in lora_b), "every adapted layer learnt something"
    assert 0 < trained.trainable_percent < 10


def test_adapter_saves_for_vllm_and_reloads_to_identical_logits(trained, base_dir):
    from peft import PeftModel
    from safetensors.torch import load_file

    out = trained.adapter_dir
    config = json.loads((out / "adapter_config.json").read_text(encoding="utf-8"))
    assert config["peft_type"] == "LORA" and config["r"] == 8 and config["lora_alpha"] == 16
    assert set(config["target_modules"]) == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    weights = load_file(out / "adapter_model.safetensors")
    assert weights and all("lora_A" in k or "lora_B" in k for k in weights)
    assert (out / "tokenizer_config.json").exists() and (out / "loss.png").read_bytes()[:4] == b"\x89PNG"
    log = json.loads((out / "train_log.json").read_text(encoding="utf-8"))
    assert log["trainable_params"] == trained.trainable_params and log["global_step"] == 24

    tokenizer = load_tokenizer(out)
    expected = logits_of(trained.model.eval(), tokenizer, PROBE)
    reloaded = PeftModel.from_pretrained(load_base_model(base_dir), str(out)).eval()
    assert torch.allclose(logits_of(reloaded, tokenizer, PROBE), expected, atol=1e-6)
    assert not torch.allclose(logits_of(load_base_model(base_dir), tokenizer, PROBE), expected, atol=1e-3)


def test_resume_from_a_checkpoint_continues_the_step_count(trained, base_dir, sft_dir, tmp_path):
    from transformers import TrainerCallback

    assert latest_checkpoint(trained.adapter_dir).name == "checkpoint-24"
    out = tmp_path / "resumed"
    shutil.copytree(trained.adapter_dir / "checkpoints" / "checkpoint-16", out / "checkpoints" / "checkpoint-16")

    class Steps(TrainerCallback):
        def __init__(self) -> None:
            self.seen: list[int] = []

        def on_step_end(self, args, state, control, **kwargs):
            self.seen.append(state.global_step)

    steps = Steps()
    with pytest.raises(FinetuneError, match="--resume"):  # never silently start over beside old checkpoints
        train_lora(base_dir, sft_dir, out, tiny_options())
    result = train_lora(base_dir, sft_dir, out, tiny_options(), resume=True, callbacks=[steps])
    assert steps.seen == list(range(17, 25))
    assert result.global_step == 24
    # Same data order, same optimizer state: the resumed run ends where the uninterrupted one did.
    tokenizer = load_tokenizer(out)
    assert torch.allclose(logits_of(result.model.eval(), tokenizer, PROBE), logits_of(trained.model.eval(), tokenizer, PROBE), atol=1e-4)


def test_merge_gives_the_same_logits_as_base_plus_adapter(trained, base_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    merged_dir = merge_adapter(base_dir, trained.adapter_dir, tmp_path / "merged")
    assert (merged_dir / "config.json").exists() and not (merged_dir / "adapter_config.json").exists()
    merged = AutoModelForCausalLM.from_pretrained(str(merged_dir), local_files_only=True).eval()
    assert not any("lora" in n for n, _ in merged.named_parameters())
    tokenizer = load_tokenizer(merged_dir)
    expected = logits_of(load_with_adapter(base_dir, trained.adapter_dir), tokenizer, PROBE)
    assert torch.allclose(logits_of(merged, tokenizer, PROBE), expected, atol=1e-5)


def test_cli_train_prints_trainable_params(base_dir, sft_dir, tmp_path):
    out = tmp_path / "adapters" / "cli"
    result = subprocess.run(
        [ZHIWEN, "finetune", "train", "--base", str(base_dir), "--data", str(sft_dir), "--out", str(out),
         "--max-steps", "2", "--rank", "4", "--alpha", "8", "--batch-size", "4", "--grad-accum", "1", "--lr", "1e-3"],
        capture_output=True, text=True, env=cli_env(tmp_path), timeout=300, check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # r=4 on every linear layer of 2 blocks: 2 × 4 × (q 64+64, k 64+32, v 64+32, o 64+64, gate/up 64+128 ×2, down 128+64)
    assert "可训练参数 (trainable params): 8,192 / " in result.stdout and "%)" in result.stdout
    assert "完成 (done): 2 步" in result.stdout
    assert (out / "adapter_config.json").exists() and (out / "adapter_model.safetensors").exists()


def test_cli_prepare_prints_stats_and_explains_errors(base_dir, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from app.cli import app

    qa = write_jsonl(tmp_path / "qa.jsonl", [{"instruction": q, "output": a} for q, a in QA[:10]] + [{"instruction": QA[0][0], "output": "重复"}])
    result = CliRunner().invoke(app, ["finetune", "prepare", str(qa), "--out", str(tmp_path / "sft"), "--base", str(base_dir),
                                      "--dev-ratio", "0.2", "--max-tokens", "64"])
    assert result.exit_code == 0, result.output
    assert "重复 duplicates" in result.output and "过长 too long (> 64 tokens)" in result.output and "zhiwen finetune train" in result.output
    assert len((tmp_path / "sft" / "train.jsonl").read_text(encoding="utf-8").splitlines()) == 8
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"instruction": "问"}])
    result = CliRunner().invoke(app, ["finetune", "prepare", str(bad), "--out", str(tmp_path / "x")])
    assert result.exit_code == 1 and "第 1 行" in result.output and "无法识别的格式" in result.output
    result = CliRunner().invoke(app, ["finetune", "prepare", "--from-kb", "nokb", "--out", str(tmp_path / "y")])
    assert result.exit_code == 1 and "nokb" in result.output and "不存在" in result.output  # named before any work
    from core.settings import load_settings
    from ingest.kb import KnowledgeBase

    monkeypatch.setenv("ZHIWEN_DATA_DIR", str(tmp_path / "data"))
    KnowledgeBase.open("empty", load_settings(), create=True).close()
    result = CliRunner().invoke(app, ["finetune", "prepare", "--from-kb", "empty", "--out", str(tmp_path / "y")])
    assert result.exit_code == 1 and "ZHIWEN_LLM_BASE_URL" in result.output  # no LLM configured: said before any work


def test_cli_refuses_a_base_that_is_not_a_local_model_dir(tmp_path):
    from typer.testing import CliRunner

    from app.cli import app

    result = CliRunner().invoke(app, ["finetune", "train", "--base", str(tmp_path / "Qwen/Qwen2.5-7B"), "--data", str(tmp_path),
                                      "--out", str(tmp_path / "a")])
    assert result.exit_code == 1
    assert "config.json" in result.output and "不会从网上下载" in result.output
    served = CliRunner().invoke(app, ["finetune", "serve", "--base", str(tmp_path / "Qwen/Qwen2.5-7B"), "--lora", f"p={tmp_path}"])
    assert served.exit_code == 1 and "config.json" in served.output


# -- examples from a knowledge base, in the chain's own format -------------------------------------
DOCS = {
    "假期制度.md": "# 假期制度\n\n正式员工每年享有十五天带薪年假。当年未休的年假可以顺延到次年三月底。员工结婚可以享受十天婚假。女员工产假为一百五十八天。\n",
    "报销制度.md": "# 报销制度\n\n报销需要提供发票原件和部门经理签字的审批单。审批通过后五个工作日内打入工资卡。一线城市每晚住宿不超过五百元。\n",
    "办公制度.md": "# 办公制度\n\n公司实行弹性工作制，上午十点前到岗即可。每周可以申请一天远程办公，需提前一天报备。系统密码每九十天必须修改一次。\n",
}


@pytest.fixture(scope="module")
def kb(tmp_path_factory):
    from core.settings import load_settings
    from ingest.pipeline import ingest_paths

    root = tmp_path_factory.mktemp("ftkb")
    for name, text in DOCS.items():
        (root / "docs").mkdir(exist_ok=True)
        (root / "docs" / name).write_text(text, encoding="utf-8")
    settings = load_settings(data_dir=root / "data")
    ingest_paths([root / "docs"], "hr", settings)
    return settings


def _chunk(text: str, ordinal: int = 0, title: str = "假期制度") -> Chunk:
    return Chunk(id=f"d{ordinal}-0", doc_id=f"d{ordinal}", ordinal=0, text=text, start=0, end=len(text), n_tokens=10,
                 source=f"{title}.md", title=title)


def test_qa_parsing_grounding_and_citations():
    reply = "1. 问：年假有多少天？\n答：正式员工每年享有十五天带薪年假。\n问题：婚假呢？\n答案：十天。\n问：没有答案的问题？"
    assert parse_qa_pairs(reply) == [("年假有多少天？", "正式员工每年享有十五天带薪年假。"), ("婚假呢？", "十天。")]
    assert parse_qa_pairs('[{"question": "Q1", "answer": "A1"}]') == [("Q1", "A1")]
    source = DOCS["假期制度.md"]
    assert grounding("正式员工每年享有十五天带薪年假。", source) == 1.0
    assert grounding("员工每年有三十天的带薪病假和补贴", source) < 0.5
    assert cite("年假十五天。婚假十天[3]", 2) == "年假十五天[2]。婚假十天[2]"


def test_kb_example_is_what_the_chain_sends_and_its_citation_parses():
    gold, other = _chunk(DOCS["假期制度.md"], 0), _chunk(DOCS["报销制度.md"], 1, "报销制度")
    import random

    example = build_example("年假有多少天？", "正式员工每年享有十五天带薪年假。", gold, [other], random.Random(1), "hr")
    system, user = example.prompt
    assert system == {"role": "system", "content": SYSTEM_PROMPT}
    assert user["content"].startswith("资料：\n[1] 《") and user["content"].endswith("\n\n问题：年假有多少天？")
    assert "<<<\n" + gold.text + "\n>>>" in user["content"]
    # The training answer cites the gold source by its number, and our chain's parser agrees.
    order = [gold if f"《{gold.title}》" in block else other for block in user["content"].split("\n\n[")]
    hits = [Hit(chunk=c, score=1.0, relevance=1.0, rank=i) for i, c in enumerate(order, 1)]
    parsed = parse_citations(example.answer, hits)
    assert parsed.dropped_markers == 0 and not parsed.uncited
    assert [c.chunk_id for c in parsed.citations] == [gold.id]
    refusal = build_example("年假有多少天？", "十五天。", gold, [other], random.Random(1), "hr", unanswerable=True)
    assert gold.text not in refusal.prompt[1]["content"] and refusal.answer == "资料中没有相关信息。"


def test_examples_from_kb_with_the_configured_llm_shape(kb):
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage

    replies = {
        "假期": "问：年假有多少天？\n答：正式员工每年享有十五天带薪年假。\n问：病假工资多少？\n答：病假期间发放全额工资和三倍奖金。",
        "报销": "问：报销需要什么？\n答：需要发票原件和部门经理签字的审批单。",
        "办公": "问：几点上班？\n答：上午十点前到岗即可。",
    }

    class ByChunk(GenericFakeChatModel):
        def _generate(self, messages, stop=None, run_manager=None, **kwargs):
            from langchain_core.outputs import ChatGeneration, ChatResult

            text = messages[-1].content
            reply = next(v for k, v in replies.items() if k in text)
            return ChatResult(generations=[ChatGeneration(message=AIMessage(reply))])

    examples, report = examples_from_kb("hr", kb, n_chunks=10, chat_model=ByChunk(messages=iter([])), distractors=1,
                                        unanswerable_ratio=0.0)
    assert report.chunks == 3 and report.pairs == 4 and report.ungrounded == 1 and report.examples == 3
    for e in examples:
        assert e.prompt[0]["content"] == SYSTEM_PROMPT and e.prompt[1]["content"].count("<<<") == 2  # gold + 1 distractor
        assert e.origin.startswith("kb:hr/") and "[" in e.answer
    stats = sft_data.prepare([], kb.data_dir / "sft", extra=examples, dev_ratio=0)
    assert stats.formats == {"kb": 3}


# -- serving the adapter, and evaluating base vs adapter through the real chain -----------------------
@pytest.fixture(scope="module")
def server(trained, base_dir, tmp_path_factory):
    """The adapter served as a user serves it on a CPU: `zhiwen llm serve` with a model directory and a
    PEFT adapter picks the transformers backend (finetune.hf_server, as `zhiwen finetune serve` runs it)."""
    import signal

    from finetune.evaluate import free_port
    from llm.serve import wait_until_healthy

    root = tmp_path_factory.mktemp("serve")
    port = free_port()
    log = open(root / "server.log", "wb")  # noqa: SIM115 -- open for the fixture's whole life
    process = subprocess.Popen(
        [ZHIWEN, "llm", "serve", "--model", str(base_dir), "--lora", f"policy={trained.adapter_dir}", "--port", str(port)],
        # One torch thread, as in this process: the same summation order, so greedy outputs compare exactly.
        stdout=log, stderr=subprocess.STDOUT, env={**cli_env(root), "OMP_NUM_THREADS": "1"}, start_new_session=True,
    )
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_until_healthy(base_url, process, timeout=120)
        yield base_url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        log.close()


def greedy(model, tokenizer, messages, max_new_tokens: int) -> str:
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens, do_sample=False,
                             eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    return tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)


def test_adapter_server_picks_the_adapter_by_model_name(server, trained, base_dir):
    import openai

    client = openai.OpenAI(base_url=server, api_key="EMPTY", max_retries=0)
    assert [m.id for m in client.models.list().data] == ["zhiwen", "policy"]
    messages = [{"role": "user", "content": "年假有多少天？"}]
    tuned = client.chat.completions.create(model="policy", messages=messages, temperature=0, max_tokens=24)
    plain = client.chat.completions.create(model="zhiwen", messages=messages, temperature=0, max_tokens=24)
    tokenizer = load_tokenizer(base_dir)
    assert tuned.choices[0].message.content == greedy(trained.model.eval(), tokenizer, messages, 24)
    assert plain.choices[0].message.content == greedy(load_base_model(base_dir), tokenizer, messages, 24)
    assert tuned.choices[0].message.content != plain.choices[0].message.content
    assert tuned.choices[0].finish_reason in ("stop", "length") and tuned.usage.prompt_tokens > 0

    pieces, finish = [], None
    for chunk in client.chat.completions.create(model="policy", messages=messages, temperature=0, max_tokens=24, stream=True):
        if chunk.choices:
            pieces.append(chunk.choices[0].delta.content or "")
            finish = chunk.choices[0].finish_reason or finish
    assert "".join(pieces) == tuned.choices[0].message.content and finish == tuned.choices[0].finish_reason

    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nope", messages=messages, max_tokens=4)


def test_finetune_eval_compares_base_and_adapter_through_the_chain(trained, base_dir, kb, tmp_path):
    dataset = write_jsonl(tmp_path / "questions.jsonl", [
        {"id": "q1", "question": "年假有多少天？", "answers": ["十五天"], "relevant_sources": ["假期制度.md"]},
        {"id": "q2", "question": "报销需要哪些材料？", "answers": ["发票原件"], "relevant_sources": ["报销制度.md"]},
    ])
    out = tmp_path / "compare"
    result = subprocess.run(
        [ZHIWEN, "finetune", "eval", "--base", str(base_dir), "--adapter", str(trained.adapter_dir), "--dataset", str(dataset),
         "--kb", "hr", "--out", str(out), "--max-tokens", "8"],
        capture_output=True, text=True, env=cli_env(kb.data_dir), timeout=300, check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "char_f1" in result.stdout and "policy" in result.stdout
    comparison = json.loads((out / "comparison.json").read_text(encoding="utf-8"))
    assert (comparison["base_model"], comparison["adapter_model"]) == ("zhiwen", "policy")
    assert {r["metric"] for r in comparison["rows"]} >= {"hit_at_1", "char_f1", "citation_precision"}
    for label, model in (("base", "zhiwen"), ("adapter", "policy")):
        assert comparison[label]["questions"] == 2 and comparison[label]["errors"] == 0
        records = json.loads((out / label / "report.json").read_text(encoding="utf-8"))["records"]
        assert {(r["mode"], r["model"]) for r in records} == {("llm", model)}, "answers came from the model, not a fallback"
    assert "| metric | base `zhiwen` | adapter `policy` |" in (out / "comparison.md").read_text(encoding="utf-8")
