"""Core of zhiwen: settings, the data model (an answer's typed flags and its one public JSON shape), errors,
text utilities (normalisation, Traditional→Simplified folding, jieba), API keys and roles (``keys``), atomic
file writes (``atomic``), the per-process ``Services`` object and event bus (``services``) and Markdown →
HTML for reports (``markdown_html``). Every other package builds on it; it imports no other zhiwen package."""
