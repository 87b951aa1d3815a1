"""A derived index file stamped with the catalogue version it reflects, in one file so the stamp and
the payload are replaced together. Layout: 8-byte header length, JSON header, payload bytes."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from core.atomic import atomic_write_bytes


def write_stamped(path: Path, header: dict[str, Any], payload: bytes) -> None:
    head = json.dumps(header, ensure_ascii=False).encode("utf-8")
    atomic_write_bytes(path, struct.pack("<Q", len(head)) + head + payload)


def read_stamped(path: Path) -> tuple[dict[str, Any], bytes] | None:
    """Header and payload, or None when the file is missing or unreadable (the caller rebuilds)."""
    try:
        data = path.read_bytes()
        (n,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8 : 8 + n].decode("utf-8"))
        return header, data[8 + n :]
    except (OSError, struct.error, ValueError, UnicodeDecodeError):
        return None
