"""Surfaces: the CLI (typer), the Streamlit web UI and the OpenAI-compatible HTTP API (FastAPI). Thin
layers over the core functions in llm/, ingest/ and eval/, so every surface answers, masks and refuses
the same way."""
