"""Atomic file writes: readers see the old file or the new one, never half of either."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def atomic_write_stream(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """``write`` fills a temp file beside ``path``, which is synced and then replaces ``path`` in one
    rename; on any failure the temp file goes and ``path`` is untouched. For payloads written piece by
    piece (a million-vector index need not be held twice in memory)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write_stream(path, lambda f: f.write(data))
