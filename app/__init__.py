"""Surfaces: the CLI (typer), the Streamlit web UI, the OpenAI-compatible HTTP API (FastAPI) and the MCP
server (``mcp_server``, for agents and IDE assistants). Thin layers over the core functions in llm/,
ingest/ and eval/: each creates one ``core.services.Services`` for its process and passes it down, and
every surface answers, masks and refuses the same way."""
