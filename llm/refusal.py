"""The fixed, polite refusal, in the question's language."""

from __future__ import annotations

from core.text import is_mostly_cjk

REFUSAL_ZH = "抱歉，知识库中没有找到与这个问题相关的内容，无法回答。请换个问法，或确认相关文档已导入。"
REFUSAL_EN = (
    "Sorry, I found nothing relevant to this question in the knowledge base, so I can't answer it. "
    "Try rephrasing it, or check that the relevant documents have been ingested."
)


def refusal_message(question: str) -> str:
    return REFUSAL_ZH if is_mostly_cjk(question) else REFUSAL_EN
