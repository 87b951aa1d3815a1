"""Surfaces: the CLI (typer), later the Streamlit UI and the HTTP API. Thin layers over core functions."""
