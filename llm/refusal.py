"""Refusals: the fixed, polite one zhiwen gives when retrieval finds nothing, in the question's
language, and recognising the model's own "the sources don't say" reply (rule 3 of the system prompt),
which is a refusal too: it carries no citation and must not be scored as a wrong answer."""

from __future__ import annotations

import re

from core.text import is_mostly_cjk
from retrieval.stated_facts import Unstated

# What rule 3 of SYSTEM_PROMPT asks the model to say when the sources lack the answer (and what
# `zhiwen finetune prepare --from-kb` trains an adapter to say).
NO_ANSWER = "资料中没有相关信息。"
_MODEL_REFUSAL_ZH = re.compile(
    r"^(资料|提供的资料|所给资料|参考资料)?(中|里)?(没有|未(提供|包含|提及)|并未(提供|包含|提及))(相关|有关)?(信息|内容|答案)")
_MODEL_REFUSAL_EN = re.compile(
    r"^(the )?(provided )?sources? (do(es)? not|don't) (contain|say|mention)|^no relevant information", re.IGNORECASE)
_MARKERS = re.compile(r"\[\d+\]")


REFUSAL_ZH = "抱歉，知识库中没有找到与这个问题相关的内容，无法回答。请换个问法，或确认相关文档已导入。"
REFUSAL_EN = (
    "Sorry, I found nothing relevant to this question in the knowledge base, so I can't answer it. "
    "Try rephrasing it, or check that the relevant documents have been ingested."
)


def refusal_message(question: str, unstated: Unstated | None = None) -> str:
    """The fixed refusal; a near-miss (passages on the subject that don't state the asked fact,
    ``retrieval.stated_facts``) is told what was missing, so the user knows the documents were found."""
    chinese = is_mostly_cjk(question)
    if unstated is not None:
        if chinese:
            return f"抱歉，知识库中的相关资料没有写明{unstated.describe(True)}，无法回答这个问题。"
        return f"Sorry, the related documents in the knowledge base don't state {unstated.describe(False)}, so I can't answer this question."
    return REFUSAL_ZH if chinese else REFUSAL_EN


def is_model_refusal(text: str) -> bool:
    """The model's whole answer is rule 3's no-answer reply (a hedge followed by a guess is not)."""
    bare = " ".join(_MARKERS.sub("", text).split()).strip(" ，。,.!！")
    if _MODEL_REFUSAL_ZH.match(bare):
        return len(bare) <= 20
    return _MODEL_REFUSAL_EN.match(bare) is not None and len(bare) <= 100
