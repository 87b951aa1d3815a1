"""Answering: the extractive answerer now; the LLM chain on an OpenAI-compatible server next."""
