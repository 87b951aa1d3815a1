"""Rendering SFT examples with the base model's chat template, and masking the prompt out of the loss.

Why render prompt and completion separately: at inference the server renders the conversation with
``add_generation_prompt=True`` and the model continues from there. Training on exactly that prompt
text, followed by exactly what the full conversation adds after it, teaches the model the very
continuation it will be asked for, end-of-turn token included (so it learns to stop). Tokenizing the
two parts separately also makes the prompt/answer boundary exact: every prompt token gets the label
-100, every answer token its own id.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch

log = logging.getLogger(__name__)

IGNORE_INDEX = -100  # what torch's cross-entropy (and so every HF causal LM) skips

# For base models whose tokenizer has no chat template (pre-trained, not instruct): ChatML, the format
# of Qwen and many others. The adapter directory keeps a copy of the tokenizer with it, so a server
# that loads the adapter's tokenizer (or vLLM with --chat-template) renders prompts the same way.
CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

Message = dict[str, str]


def ensure_chat_template(tokenizer: Any) -> bool:
    """Give a tokenizer without a chat template the ChatML one; True when it had to."""
    if getattr(tokenizer, "chat_template", None):
        return False
    tokenizer.chat_template = CHATML_TEMPLATE
    log.warning("基础模型的分词器没有 chat template，使用 ChatML (tokenizer has no chat template: using ChatML)")
    return True


def ensure_pad_token(tokenizer: Any) -> None:
    """Batches need a pad id; the labels of padding are masked anyway, so reusing EOS is harmless."""
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token


def render(tokenizer: Any, prompt: list[Message], completion: list[Message]) -> tuple[str, str]:
    """(prompt text with the generation prompt, the text the full conversation adds after it)."""
    prompt_text = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    full_text = tokenizer.apply_chat_template(prompt + completion, tokenize=False)
    if full_text.startswith(prompt_text):
        return prompt_text, full_text[len(prompt_text):]
    # Some templates render earlier turns differently once an answer follows (e.g. reasoning tags
    # stripped): then train on the answer plus the end-of-turn token after the inference prompt.
    answer = "".join(m["content"] for m in completion)
    return prompt_text, answer + (tokenizer.eos_token or "")


def full_text(tokenizer: Any, prompt: list[Message], completion: list[Message]) -> str:
    prompt_text, completion_text = render(tokenizer, prompt, completion)
    return prompt_text + completion_text


@dataclass
class EncodedExample:
    input_ids: list[int]
    labels: list[int]  # IGNORE_INDEX on every prompt token
    truncated: bool = False

    @property
    def n_answer_tokens(self) -> int:
        return sum(label != IGNORE_INDEX for label in self.labels)


def encode(tokenizer: Any, prompt: list[Message], completion: list[Message], max_length: int) -> EncodedExample | None:
    """Token ids and labels; None when the prompt alone leaves no room for a single answer token
    (such an example would train nothing, and silently cutting the prompt would teach answers to
    questions the model never saw)."""
    prompt_text, completion_text = render(tokenizer, prompt, completion)
    prompt_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(completion_text, add_special_tokens=False)["input_ids"]
    room = max_length - len(prompt_ids)
    if room < 1 or not answer_ids:
        return None
    truncated = len(answer_ids) > room
    answer_ids = answer_ids[:room]
    return EncodedExample(prompt_ids + answer_ids, [IGNORE_INDEX] * len(prompt_ids) + answer_ids, truncated)


class PadCollator:
    """Right-pads a batch; padding is masked out of attention and of the loss."""

    def __init__(self, pad_token_id: int) -> None:
        self.pad_token_id = pad_token_id

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        width = max(len(f["input_ids"]) for f in features)
        input_ids = torch.full((len(features), width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(features), width), IGNORE_INDEX, dtype=torch.long)
        attention_mask = torch.zeros((len(features), width), dtype=torch.long)
        for i, f in enumerate(features):
            n = len(f["input_ids"])
            input_ids[i, :n] = torch.tensor(f["input_ids"], dtype=torch.long)
            labels[i, :n] = torch.tensor(f["labels"], dtype=torch.long)
            attention_mask[i, :n] = 1
        return {"input_ids": input_ids, "labels": labels, "attention_mask": attention_mask}
