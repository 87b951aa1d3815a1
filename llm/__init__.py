"""Answering: one flow (``answer``: cache → LCEL chain on an OpenAI-compatible LLM, or the extractive
answerer → moderation) that ``ask`` and ``stream_ask`` share; prompts, [n] citations, follow-up
detection, conversations, source cards and suggested questions for the UI, feedback and ``serve`` (a
local LLM server). Builds on core, moderation, retrieval and ingest."""
