"""UI strings, Chinese first. ``t(key)`` picks the session's language."""

from __future__ import annotations

import streamlit as st

STRINGS: dict[str, dict[str, str]] = {
    "app_title": {"zh": "知问 · 知识库问答", "en": "zhiwen · knowledge assistant"},
    "nav_chat": {"zh": "问答", "en": "Chat"},
    "nav_kb": {"zh": "知识库管理", "en": "Knowledge bases"},
    "nav_moderation": {"zh": "内容审核", "en": "Moderation"},
    "language": {"zh": "语言 / Language", "en": "Language / 语言"},
    "kb": {"zh": "知识库", "en": "Knowledge base"},
    "no_kb": {"zh": "还没有知识库：请先到“知识库管理”页面创建并上传文档。", "en": "No knowledge base yet: create one and upload documents on the Knowledge bases page."},
    "settings": {"zh": "检索与模型设置", "en": "Retrieval and model settings"},
    "top_k": {"zh": "检索段落数 top-k", "en": "Passages retrieved (top-k)"},
    "bm25_weight": {"zh": "BM25 权重", "en": "BM25 weight"},
    "dense_weight": {"zh": "向量权重", "en": "Dense weight"},
    "llm_base_url": {"zh": "大模型地址（留空 = 抽取式回答）", "en": "LLM endpoint (empty = extractive answers)"},
    "llm_model": {"zh": "模型 / LoRA 适配器", "en": "Model / LoRA adapter"},
    "temperature": {"zh": "温度", "en": "Temperature"},
    "ask_placeholder": {"zh": "输入问题，例如：一线城市住宿标准是多少？", "en": "Ask a question, e.g. What is the hotel cap in tier-1 cities?"},
    "new_chat": {"zh": "新对话", "en": "New conversation"},
    "mode_llm": {"zh": "大模型", "en": "LLM"},
    "mode_extractive": {"zh": "抽取式", "en": "Extractive"},
    "mode_refused": {"zh": "拒答", "en": "Refused"},
    "cached": {"zh": "缓存", "en": "cached"},
    "page": {"zh": "第 {page} 页", "en": "page {page}"},
    "whole_chunk": {"zh": "查看完整段落", "en": "Show the whole passage"},
    "sources": {"zh": "来源", "en": "Sources"},
    "thanks": {"zh": "感谢反馈！", "en": "Thanks for the feedback!"},
    "llm_failed": {"zh": "大模型不可用，已改用抽取式回答：{reason}", "en": "LLM unavailable, extractive answer instead: {reason}"},
    "uncited": {"zh": "注意：回答没有引用任何资料，请核对。", "en": "Note: the answer cites no source; verify it."},
    "create_kb": {"zh": "新建知识库", "en": "Create a knowledge base"},
    "kb_name": {"zh": "名称", "en": "Name"},
    "create": {"zh": "创建", "en": "Create"},
    "created": {"zh": "已创建知识库 {name}", "en": "Created knowledge base {name}"},
    "upload": {"zh": "上传文档（可多选）", "en": "Upload documents (several at once)"},
    "ingest": {"zh": "导入", "en": "Ingest"},
    "ingesting": {"zh": "正在导入 {name}（{done}/{total}）", "en": "Ingesting {name} ({done}/{total})"},
    "documents": {"zh": "文档", "en": "Documents"},
    "no_documents": {"zh": "这个知识库还没有文档。", "en": "No documents in this knowledge base yet."},
    "doc_actions": {"zh": "选择文档", "en": "Choose a document"},
    "delete_doc": {"zh": "删除文档", "en": "Delete document"},
    "reindex_doc": {"zh": "重新索引", "en": "Re-index"},
    "deleted_doc": {"zh": "已删除 {source}", "en": "Deleted {source}"},
    "reindexed_doc": {"zh": "已重新索引 {source}：{n} 块", "en": "Re-indexed {source}: {n} chunks"},
    "delete_kb": {"zh": "删除整个知识库", "en": "Delete the whole knowledge base"},
    "confirm_delete": {"zh": "我确认删除 {name} 及其全部文档", "en": "I confirm deleting {name} and all its documents"},
    "deleted_kb": {"zh": "已删除知识库 {name}", "en": "Deleted knowledge base {name}"},
    "status_indexed": {"zh": "已索引", "en": "indexed"},
    "status_updated": {"zh": "已更新", "en": "updated"},
    "status_unchanged": {"zh": "未变化，跳过", "en": "unchanged, skipped"},
    "status_duplicate": {"zh": "重复，跳过", "en": "duplicate, skipped"},
    "status_failed": {"zh": "失败", "en": "failed"},
    "col_file": {"zh": "文件", "en": "File"},
    "col_title": {"zh": "标题", "en": "Title"},
    "col_chunks": {"zh": "块数", "en": "Chunks"},
    "col_size": {"zh": "大小 KB", "en": "Size KB"},
    "col_time": {"zh": "导入时间", "en": "Ingested"},
    "col_status": {"zh": "结果", "en": "Result"},
    "col_reason": {"zh": "说明", "en": "Detail"},
    "nav_eval": {"zh": "评测", "en": "Evaluation"},
    "eval_help": {"zh": "填入 `zhiwen eval run --out` 的结果目录；填两个则并排比较（B − A）。", "en": "Enter the --out folder of `zhiwen eval run`; two folders compare side by side (B − A)."},
    "eval_run_a": {"zh": "评测结果 A（目录）", "en": "Run A (folder)"},
    "eval_run_b": {"zh": "评测结果 B（可选，用于比较）", "en": "Run B (optional, to compare)"},
    "eval_missing": {"zh": "找不到报告 {path}", "en": "No report at {path}"},
    "eval_worst": {"zh": "最差的 10 个问题", "en": "The 10 worst questions"},
    "eval_expected": {"zh": "标准答案：", "en": "Expected:"},
    "eval_answer": {"zh": "回答：", "en": "Answer:"},
    "moderation_todo": {
        "zh": "内容审核（敏感词、合规用语、个人信息过滤）尚未实现：目前**没有**任何过滤生效。它将在审核功能完成后出现在这里。",
        "en": "Moderation (sensitive words, compliance phrases, PII) is not built yet: **no** filtering is active. Its rules will appear here once it lands.",
    },
}


def lang() -> str:
    return st.session_state.get("lang", "zh")


def t(key: str, **kwargs: object) -> str:
    text = STRINGS[key].get(lang()) or STRINGS[key]["zh"]
    return text.format(**kwargs) if kwargs else text
