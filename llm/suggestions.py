"""Questions to suggest on an empty chat, made from the knowledge base's own headings: a user who does
not know what is inside sees what can be asked ("「星河科技差旅报销制度」中的住宿标准是什么？").

One heading per document, documents taken in turn, so the suggestions spread over the knowledge base.
A heading is the deepest of a chunk's heading path, without its numbering ("三、", "2.1", "第七條"),
and not one that says nothing to ask about (总则, 附则, 目的与适用范围, ...), nor the document's title.
"""

from __future__ import annotations

import re

from core.services import Services
from core.settings import Settings
from ingest.kb import shared_kb
from ingest.tables import is_table_row

_NUMBERING_RE = re.compile(
    r"^\s*(?:第[一二三四五六七八九十百\d]+[章节節条條部分篇]\s*|[（(]?[一二三四五六七八九十]{1,3}[、.．)）]\s*|\d+(?:\.\d+)*[.、)]?\s+|[-*•]\s*)"
)
_GENERIC = frozenset({
    "总则", "總則", "附则", "附則", "目的", "适用范围", "適用範圍", "目的与适用范围", "目的與適用範圍", "职责分工", "職責分工",
    "概述", "简介", "簡介", "前言", "引言", "说明", "說明", "定义", "定義", "术语", "術語", "其他", "其它", "附录", "附錄",
    "目录", "目錄", "参考", "參考", "overview", "introduction", "contents",
})
_TITLE_SUFFIX_RE = re.compile(r"\s*[-–—|｜]\s*[^-–—|｜]+$")  # "知问网关产品说明 - 星河科技"
_MAX_HEADING_CHARS = 24
_RECORD_MIMES = frozenset({"text/csv", "application/jsonl"})


def heading_topic(heading: str) -> str:
    """A heading without its numbering: "三、住宿标准" → "住宿标准"."""
    return _NUMBERING_RE.sub("", heading).strip(" ：:。")


def suggested_questions(kb_name: str, settings: Settings, services: Services, limit: int = 4) -> list[str]:
    catalog = shared_kb(kb_name, settings, services).catalog
    per_document: list[list[str]] = []
    for document in catalog.list_documents():
        if document.mime in _RECORD_MIMES:
            continue  # a record's title (a release, an FAQ row) is no section to ask about
        name = _TITLE_SUFFIX_RE.sub("", document.title).strip() or document.title
        seen = {name, document.title}
        questions = []
        for chunk in catalog.chunks_of_document(document.id):
            # the last entry of a chunk that starts inside a table is the table's header row (ingest.chunking)
            headings = [h for h in chunk.heading_path if not is_table_row(h)]
            topic = heading_topic(headings[-1]) if headings else ""
            if not topic or topic in seen or topic.lower() in _GENERIC or len(topic) > _MAX_HEADING_CHARS:
                continue
            seen.add(topic)
            questions.append(f"「{name}」中的{topic}是什么？")
        if questions:
            per_document.append(questions)
    out: list[str] = []
    depth = 0
    while len(out) < limit and any(depth < len(q) for q in per_document):
        out += [q[depth] for q in per_document if depth < len(q)][: limit - len(out)]
        depth += 1
    return out
