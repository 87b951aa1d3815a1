"""Errors users see. Each says what went wrong, where, and what to do about it."""

from __future__ import annotations


class ZhiwenError(Exception):
    """Base class: the message is meant for the user, in Chinese first, English after."""


class LoadError(ZhiwenError):
    """A file could not be read or parsed. Carries the file name so a batch can report it and go on."""

    def __init__(self, source: str, reason: str, hint: str = "") -> None:
        self.source = source
        self.reason = reason
        self.hint = hint
        msg = f"{source}: {reason}"
        if hint:
            msg += f"（{hint}）"
        super().__init__(msg)


class KnowledgeBaseNotFound(ZhiwenError):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"知识库 “{name}” 不存在 (knowledge base '{name}' not found); "
            f"先用 `zhiwen ingest PATH --kb {name}` 创建，或用 `zhiwen kb list` 查看已有的知识库。"
        )


class KnowledgeBaseExists(ZhiwenError):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"知识库 “{name}” 已存在 (knowledge base '{name}' already exists); 换一个名字，或直接向它上传文档。"
        )


class DocumentNotFound(ZhiwenError):
    def __init__(self, kb: str, source: str) -> None:
        super().__init__(
            f"知识库 “{kb}” 中没有文档 “{source}” (no such document); 用 `zhiwen kb show {kb}` 查看文档列表。"
        )


class InvalidName(ZhiwenError):
    pass


class InputTooLarge(ZhiwenError):
    """A question or history past the configured caps (the API answers 413)."""

    def __init__(self, what_zh: str, what_en: str, size: int, limit: int, setting: str) -> None:
        super().__init__(
            f"{what_zh}太长：{size} 个字符，上限 {limit} ({what_en} too long: {size} characters, limit {limit}); "
            f"请缩短，或调大 {setting}（环境变量 ZHIWEN_{setting.upper()}）。"
        )
