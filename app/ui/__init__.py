"""The Streamlit web UI: short pages over the same core functions the CLI calls."""
