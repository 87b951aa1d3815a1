"""`zhiwen finetune prepare`: QA JSONL in several common shapes → one SFT set (train.jsonl, dev.jsonl,
stats.json) of prompt/completion message lists.

Accepted lines (one JSON object each):

- Alpaca: ``{"instruction": …, "input": …, "output": …, "system": …, "history": [[q, a], …]}``
- ShareGPT: ``{"conversations": [{"from": "human"|"gpt"|"system", "value": …}, …], "system": …}``
- OpenAI messages: ``{"messages": [{"role": "system"|"user"|"assistant", "content": …}, …]}``
- prompt/completion (TRL's format, and what this module writes): ``{"prompt": [...]|str, "completion": [...]|str}``
- plain QA: ``{"question": …, "answer": …}``

Every assistant message of a conversation becomes one example: that answer is the completion (the only
tokens the loss sees), everything before it the prompt, so a multi-turn conversation teaches every turn
(and dedup tells its turns apart by the user turns before them). Written lines keep that split as message lists, the format TRL's SFTTrainer
also reads, so the set is independent of the model: ``zhiwen finetune train`` renders it with the
chat template of whichever base it tunes. With ``--base``, each line also carries ``text``, the full
conversation in that base's chat template, and lengths are counted in its tokens.
"""

from __future__ import annotations

import hashlib
import json
import re
import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.errors import ZhiwenError
from core.text import fold

Message = dict[str, str]

TRAIN_FILE = "train.jsonl"
DEV_FILE = "dev.jsonl"
STATS_FILE = "stats.json"

_ROLE_ALIASES = {
    "system": "system", "human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
    "chatgpt": "assistant", "bot": "assistant", "model": "assistant", "developer": "system",
}


class InvalidRecord(ValueError):
    """Why one JSON object is not a usable example (wrapped into a DataError with its place)."""


class DataError(ZhiwenError):
    """A line that cannot become a training example: says which file, which line, and why."""

    def __init__(self, path: str, lineno: int, reason: str) -> None:
        self.path, self.lineno, self.reason = path, lineno, reason
        super().__init__(f"{path} 第 {lineno} 行 (line {lineno}): {reason}")


@dataclass
class Example:
    prompt: list[Message]
    completion: list[Message]
    question: str  # the bare question (without sources): what deduplication compares
    origin: str = ""  # "file:line" or "kb:NAME/chunk-id"
    format: str = ""

    @property
    def answer(self) -> str:
        return "".join(m["content"] for m in self.completion)

    def key(self) -> str:
        """Normalised user turns: folded (Traditional→Simplified, NFKC, lower case), no punctuation or
        spaces, so "年假有几天？" and "年假有几天 ?" count as one question."""
        earlier = [m["content"] for m in self.prompt if m["role"] == "user"][:-1]
        return "\x1f".join(_normalise(t) for t in [*earlier, self.question])

    def to_json(self, text: str | None = None, n_tokens: int | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"prompt": self.prompt, "completion": self.completion, "question": self.question, "origin": self.origin}
        if text is not None:
            out["text"] = text
        if n_tokens is not None:
            out["n_tokens"] = n_tokens
        return out


def _normalise(text: str) -> str:
    return re.sub(r"[\W_]+", "", fold(text))


# -- reading ---------------------------------------------------------------------------------------
def _text(value: Any, what: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # OpenAI content parts: [{"type": "text", "text": …}]
        parts = [p.get("text", "") for p in value if isinstance(p, dict) and p.get("type", "text") == "text"]
        if len(parts) == len(value):
            return "".join(parts)
    raise InvalidRecord(f"{what} 必须是字符串 (must be a string)")


def _messages(items: Any, role_key: str, content_key: str, what: str) -> list[Message]:
    if not isinstance(items, list) or not items:
        raise InvalidRecord(f"{what} 必须是非空列表 (must be a non-empty list)")
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise InvalidRecord(f"{what}[{i}] 不是对象 (not an object)")
        raw_role = item.get(role_key, item.get("role", item.get("from")))
        role = _ROLE_ALIASES.get(str(raw_role).lower())
        if role is None:
            raise InvalidRecord(f"{what}[{i}] 角色 {raw_role!r} 无法识别 (unknown role)")
        content = item.get(content_key, item.get("content", item.get("value")))
        out.append({"role": role, "content": _text(content, f"{what}[{i}].{content_key}")})
    return out


def _split_last_answer(messages: list[Message]) -> tuple[list[Message], list[Message]]:
    if messages[-1]["role"] != "assistant":
        raise InvalidRecord("对话必须以助手的回答结尾 (the conversation must end with an assistant message)")
    prompt = messages[:-1]
    if not any(m["role"] == "user" for m in prompt):
        raise InvalidRecord("对话中没有用户的问题 (no user message before the answer)")
    return prompt, messages[-1:]


def _with_system(system: Any, messages: list[Message]) -> list[Message]:
    if system and not (messages and messages[0]["role"] == "system"):
        return [{"role": "system", "content": _text(system, "system")}, *messages]
    return messages


def parse_record(obj: Any) -> Example:
    """One JSON object → an Example; InvalidRecord (in words a user can act on) when it is not one."""
    if not isinstance(obj, dict):
        raise InvalidRecord("每行必须是一个 JSON 对象 (each line must be a JSON object)")
    if "messages" in obj:
        fmt = "messages"
        prompt, completion = _split_last_answer(_with_system(obj.get("system"), _messages(obj["messages"], "role", "content", "messages")))
    elif "conversations" in obj:
        fmt = "sharegpt"
        prompt, completion = _split_last_answer(
            _with_system(obj.get("system"), _messages(obj["conversations"], "from", "value", "conversations"))
        )
    elif "instruction" in obj and "output" in obj:
        fmt = "alpaca"
        user = _text(obj["instruction"], "instruction").strip()
        extra = _text(obj.get("input") or "", "input").strip()
        history: list[Message] = []
        for turn in obj.get("history") or []:
            if not (isinstance(turn, list) and len(turn) == 2):
                raise InvalidRecord("history 的每一项必须是 [问, 答] (each history item must be [question, answer])")
            history += [{"role": "user", "content": _text(turn[0], "history")}, {"role": "assistant", "content": _text(turn[1], "history")}]
        prompt = _with_system(obj.get("system"), [*history, {"role": "user", "content": f"{user}\n\n{extra}" if extra else user}])
        completion = [{"role": "assistant", "content": _text(obj["output"], "output")}]
    elif "prompt" in obj and "completion" in obj:
        fmt = "prompt-completion"
        p, c = obj["prompt"], obj["completion"]
        prompt = [{"role": "user", "content": p}] if isinstance(p, str) else _messages(p, "role", "content", "prompt")
        completion = [{"role": "assistant", "content": c}] if isinstance(c, str) else _messages(c, "role", "content", "completion")
        if [m["role"] for m in completion] != ["assistant"]:
            raise InvalidRecord("completion 必须是一条助手消息 (completion must be one assistant message)")
        _split_last_answer(prompt + completion)
    elif "question" in obj and "answer" in obj:
        fmt = "qa"
        prompt = [{"role": "user", "content": _text(obj["question"], "question")}]
        completion = [{"role": "assistant", "content": _text(obj["answer"], "answer")}]
    else:
        raise InvalidRecord(
            "无法识别的格式 (unknown format): 需要 messages、conversations、instruction+output、"
            "prompt+completion 或 question+answer 字段"
        )
    if not completion[0]["content"].strip():
        raise InvalidRecord("回答为空 (empty answer)")
    question = obj.get("question") if isinstance(obj.get("question"), str) else None
    last_user = next(m["content"] for m in reversed(prompt) if m["role"] == "user")
    if not (question or last_user).strip():
        raise InvalidRecord("问题为空 (empty question)")
    return Example(prompt, completion, question or last_user, format=fmt)


def parse_records(obj: Any) -> list[Example]:
    """One JSON object → one example per assistant turn (earlier turns first, the whole conversation last)."""
    whole = parse_record(obj)
    conversation = [*whole.prompt, *whole.completion]
    earlier = []
    for i, message in enumerate(conversation[:-1]):
        users = [m["content"] for m in conversation[:i] if m["role"] == "user"]
        if message["role"] == "assistant" and users and message["content"].strip():
            earlier.append(Example(conversation[:i], [message], users[-1], format=whole.format))
    return [*earlier, whole]


def read_jsonl(path: Path, skip_invalid: bool = False, errors: list[DataError] | None = None) -> list[Example]:
    """Examples of one file. A bad line raises DataError (file, line, reason), or with ``skip_invalid``
    is appended to ``errors`` and skipped."""
    try:
        lines = Path(path).read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ZhiwenError(f"无法读取 {path} (cannot read: {exc})") from exc
    examples = []
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            parsed = parse_records(json.loads(line))
        except json.JSONDecodeError as exc:
            problem = DataError(str(path), lineno, f"不是合法的 JSON (invalid JSON: {exc.msg}, column {exc.colno})")
        except InvalidRecord as exc:
            problem = DataError(str(path), lineno, str(exc))
        else:
            for example in parsed:
                example.origin = f"{path}:{lineno}"
            examples.extend(parsed)
            continue
        if not skip_invalid:
            raise problem
        if errors is not None:
            errors.append(problem)
    return examples


# -- filtering, splitting, stats -------------------------------------------------------------------
def deduplicate(examples: Iterable[Example]) -> tuple[list[Example], int]:
    """(unique examples, how many duplicates were dropped). The first occurrence of a normalised
    question wins: input order is the user's order of priority."""
    seen: set[str] = set()
    kept: list[Example] = []
    dropped = 0
    for example in examples:
        key = example.key()
        if key in seen:
            dropped += 1
            continue
        seen.add(key)
        kept.append(example)
    return kept, dropped


def split_train_dev(examples: list[Example], dev_ratio: float, seed: int = 0) -> tuple[list[Example], list[Example]]:
    """Deterministic split by a hash of each question: the same data always splits the same way, and
    adding examples moves few old ones across. At least one dev example when there are two or more."""
    if not 0 <= dev_ratio < 1:
        raise ZhiwenError(f"dev 比例必须在 [0, 1) 之间 (dev ratio must be in [0, 1)): {dev_ratio}")
    n_dev = round(len(examples) * dev_ratio)
    if dev_ratio > 0 and len(examples) >= 2:
        n_dev = max(1, n_dev)
    ranked = sorted(range(len(examples)), key=lambda i: hashlib.sha1(f"{seed}\x1f{examples[i].key()}".encode()).hexdigest())
    dev_ids = set(ranked[:n_dev])
    return [e for i, e in enumerate(examples) if i not in dev_ids], [e for i, e in enumerate(examples) if i in dev_ids]


def _summary(values: list[int]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    return {"min": ordered[0], "mean": round(statistics.fmean(ordered), 1), "p50": ordered[len(ordered) // 2],
            "p95": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], "max": ordered[-1]}


@dataclass
class PrepareStats:
    read: int = 0
    invalid: int = 0
    duplicates: int = 0
    too_long: int = 0
    train: int = 0
    dev: int = 0
    length_unit: str = "chars"  # "tokens" when a base tokenizer counted them
    max_length: int = 0
    formats: dict[str, int] = field(default_factory=dict)
    per_file: dict[str, int] = field(default_factory=dict)
    prompt_length: dict[str, float] = field(default_factory=dict)
    answer_length: dict[str, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)  # skipped lines, "file:line: reason" (first 50)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    tmp.replace(path)


def prepare(
    inputs: list[Path],
    out_dir: Path,
    extra: list[Example] | None = None,
    tokenizer: Any | None = None,
    max_length: int = 1024,
    dev_ratio: float = 0.1,
    seed: int = 0,
    skip_invalid: bool = False,
) -> PrepareStats:
    """Read, deduplicate, drop over-long examples, split, write; return the stats (also in stats.json).

    ``extra`` are examples made elsewhere (from a knowledge base). With ``tokenizer`` (the base
    model's), lengths are tokens of the chat-template rendering and each line carries that rendering
    in ``text``; without it, lengths are characters of the messages' contents."""
    from finetune.template import ensure_chat_template, render

    stats = PrepareStats(max_length=max_length, length_unit="tokens" if tokenizer is not None else "chars")
    examples: list[Example] = []
    errors: list[DataError] = []
    for path in inputs:
        found = read_jsonl(path, skip_invalid=skip_invalid, errors=errors)
        stats.per_file[str(path)] = len(found)
        examples += found
    examples += extra or []
    stats.read = len(examples) + len(errors)
    stats.invalid = len(errors)
    stats.errors = [str(e) for e in errors[:50]]
    unique, stats.duplicates = deduplicate(examples)

    if tokenizer is not None:
        ensure_chat_template(tokenizer)

    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    def measure(e: Example) -> tuple[int, int, str | None]:
        """(prompt length, answer length, rendered conversation or None without a tokenizer)."""
        if tokenizer is None:
            return sum(len(m["content"]) for m in e.prompt), len(e.answer), None
        prompt_text, completion_text = render(tokenizer, e.prompt, e.completion)
        return count(prompt_text), count(completion_text), prompt_text + completion_text

    kept: list[tuple[Example, int, str | None]] = []
    prompt_lengths, answer_lengths = [], []
    for e in unique:
        n_prompt, n_answer, text = measure(e)
        if n_prompt + n_answer > max_length:
            stats.too_long += 1
            continue
        kept.append((e, n_prompt + n_answer, text))
        prompt_lengths.append(n_prompt)
        answer_lengths.append(n_answer)
    stats.prompt_length, stats.answer_length = _summary(prompt_lengths), _summary(answer_lengths)
    stats.formats = dict(Counter(e.format for e, _, _ in kept))

    train, dev = split_train_dev([e for e, _, _ in kept], dev_ratio, seed)
    rendered = {id(e): (n, text) for e, n, text in kept}
    stats.train, stats.dev = len(train), len(dev)
    if not train:
        raise ZhiwenError("过滤后没有可用的训练样本 (no training examples left after filtering)")

    def rows(part: list[Example]) -> Iterable[dict[str, Any]]:
        for e in part:
            n, text = rendered[id(e)]
            yield e.to_json(text, n if tokenizer is not None else None)

    out_dir.mkdir(parents=True, exist_ok=True)
    _write_jsonl(out_dir / TRAIN_FILE, rows(train))
    _write_jsonl(out_dir / DEV_FILE, rows(dev))
    (out_dir / STATS_FILE).write_text(json.dumps(stats.to_json(), ensure_ascii=False, indent=1), encoding="utf-8")
    return stats


def load_split(path: Path) -> list[Example]:
    """A prepared train.jsonl / dev.jsonl (any accepted format works too); missing file → empty."""
    if not Path(path).exists():
        return []
    return read_jsonl(path)
