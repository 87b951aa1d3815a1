"""Files that arrive as bytes (web uploads) are stored under the data dir, then ingested like any file.

A stored upload keeps its original file name (sanitised: no directories, no control characters), so
uploading a new version of 制度.pdf replaces the old one incrementally instead of adding a twin.
"""

from __future__ import annotations

import re
from pathlib import Path

from core.errors import LoadError
from core.settings import Settings
from ingest.kb import validate_name
from ingest.loaders import SUPPORTED_SUFFIXES
from retrieval.atomic import atomic_write_bytes

MAX_UPLOAD_BYTES = 200 * 1024 * 1024


def safe_filename(name: str) -> str:
    """The last path component, without control characters or leading dots: never a path."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = re.sub(r"[\x00-\x1f\x7f]", "", base).strip().lstrip(".")
    if not base:
        raise LoadError(name or "(空文件名)", "文件名不合法 (invalid file name)")
    return base[:200]


def uploads_dir(kb_name: str, settings: Settings) -> Path:
    return settings.data_dir / "uploads" / validate_name(kb_name)


def save_upload(kb_name: str, filename: str, data: bytes, settings: Settings) -> Path:
    name = safe_filename(filename)
    if Path(name).suffix.lower() not in SUPPORTED_SUFFIXES:
        raise LoadError(name, "不支持的文件类型 (unsupported type)", "支持: " + " ".join(sorted(SUPPORTED_SUFFIXES)))
    if len(data) > MAX_UPLOAD_BYTES:
        raise LoadError(name, f"文件太大 (file too large: {len(data) // 1024 // 1024} MB > {MAX_UPLOAD_BYTES // 1024 // 1024} MB)")
    path = uploads_dir(kb_name, settings) / name
    atomic_write_bytes(path, data)
    return path
