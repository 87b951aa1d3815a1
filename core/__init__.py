"""Core of zhiwen: settings, the data model, errors, text utilities (normalisation, Traditional→Simplified
folding, jieba), API keys and roles (``keys``), atomic file writes (``atomic``) and Markdown → HTML for
reports (``markdown_html``). Every other package builds on it; it imports no other zhiwen package."""
