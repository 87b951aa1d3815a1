"""The HTTP API: OpenAI-compatible chat over knowledge bases, with API keys and per-KB roles."""
