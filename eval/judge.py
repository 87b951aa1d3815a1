"""Optional LLM-as-judge scores, RAGAS-style, through the configured LLM (off by default: it costs
two extra LLM calls per question and is only as good as the judging model).

- faithfulness: the judge splits the answer into statements and marks each as supported or not by the
  retrieved passages; score = supported / statements.
- answer relevance: the judge writes questions the answer would answer; score = mean cosine between
  those questions and the asked one, with the knowledge base's embedding model.
A judge reply that cannot be parsed gives None (left out of the averages), never a made-up number.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

FAITHFULNESS_PROMPT = ChatPromptTemplate.from_messages([
    ("system", "你是严格的评审。把“回答”拆成独立的陈述，逐条判断能否由“资料”直接推出。"
               '只输出 JSON：{{"statements": [{{"text": "…", "supported": true}}]}}'),
    ("human", "资料：\n{context}\n\n回答：\n{answer}"),
])
QUESTIONS_PROMPT = ChatPromptTemplate.from_messages([
    ("system", '根据“回答”写出 3 个它能回答的问题，用问题原来的语言。只输出 JSON：{{"questions": ["…", "…", "…"]}}'),
    ("human", "回答：\n{answer}"),
])


def _json_object(text: str) -> dict[str, Any] | None:
    match = re.search(r"\{.*\}", text, re.S)
    if not match:
        return None
    try:
        value = json.loads(match.group(0))
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def faithfulness(llm: Any, answer: str, context: list[str]) -> float | None:
    reply = (FAITHFULNESS_PROMPT | llm | StrOutputParser()).invoke({"context": "\n\n".join(context), "answer": answer})
    parsed = _json_object(reply)
    statements = parsed.get("statements") if parsed else None
    if not isinstance(statements, list) or not statements:
        return None
    verdicts = [s.get("supported") for s in statements if isinstance(s, dict)]
    verdicts = [v for v in verdicts if isinstance(v, bool)]
    return sum(verdicts) / len(verdicts) if verdicts else None


def answer_relevance(llm: Any, embedder: Any, question: str, answer: str) -> float | None:
    reply = (QUESTIONS_PROMPT | llm | StrOutputParser()).invoke({"answer": answer})
    parsed = _json_object(reply)
    generated = [q for q in (parsed or {}).get("questions", []) if isinstance(q, str) and q.strip()]
    if not generated:
        return None
    vectors = embedder.embed_documents([question, *generated])
    return float(np.clip(vectors[1:] @ vectors[0], 0.0, 1.0).mean())
