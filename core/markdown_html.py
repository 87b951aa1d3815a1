"""A Markdown report (eval's report.md) as a standalone HTML page: real tables and headings, the plots
inline as data URIs.

The report quotes questions, answers and passages, which come from documents and models: raw HTML in
them is escaped and their Markdown links and images stay text, so opening the page fetches nothing and
runs nothing. Only the images named in ``images`` (by their Markdown target, e.g. plots.png) become
<img> elements.
"""

from __future__ import annotations

import base64
import html
import re

from markdown_it import MarkdownIt

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI","Noto Sans CJK SC","PingFang SC","Microsoft YaHei",sans-serif;
     line-height:1.5;margin:1.5rem;color:#1f2328;max-width:72rem}
table{border-collapse:collapse;margin:.75rem 0;display:block;overflow-x:auto}
th,td{border:1px solid #d0d7de;padding:.3rem .6rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}
code{background:#f6f8fa;padding:.1rem .3rem;border-radius:4px;word-break:break-all}
img{max-width:100%;height:auto}
h1{font-size:1.5rem}h2{font-size:1.25rem}h3{font-size:1.05rem}
"""


def _renderer() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False}).enable("table").disable(["image", "link", "autolink"])


def markdown_page(markdown: str, title: str, images: dict[str, bytes] | None = None, lang: str = "zh") -> str:
    """A whole HTML document for ``markdown``; a line ``![alt](NAME)`` whose NAME is a key of ``images``
    (PNG bytes) shows that image."""
    images = images or {}
    placeholders: dict[str, str] = {}

    def image_line(m: re.Match[str]) -> str:
        alt, name = m.group(1), m.group(2)
        if name not in images:
            return m.group(0)
        token = f"ZHIWENIMAGE{len(placeholders)}"
        data = base64.b64encode(images[name]).decode()
        placeholders[token] = f"<img alt='{html.escape(alt, quote=True)}' src='data:image/png;base64,{data}'>"
        return token

    body = _renderer().render(re.sub(r"(?m)^!\[([^\]]*)\]\(([^)\s]+)\)\s*$", image_line, markdown))
    for token, tag in placeholders.items():
        body = body.replace(f"<p>{token}</p>", tag)
    return (f"<!doctype html><html lang='{html.escape(lang, quote=True)}'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body>{body}</body></html>")
