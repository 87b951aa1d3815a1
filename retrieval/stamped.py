"""A derived index file stamped with the catalogue version it reflects, in one file so the stamp and
the payload are replaced together. Layout: 8-byte header length, JSON header, payload bytes."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any, BinaryIO, Callable

from core.atomic import atomic_write_bytes, atomic_write_stream


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


def write_stamped_stream(path: Path, header: dict[str, Any], write_payload: Callable[[BinaryIO], None],
                         align: int = 1) -> None:
    """``write_stamped`` for payloads too big to hold twice in memory (a million-vector FAISS index is
    2 GB): the payload is written straight into the temp file, then the file replaces ``path``.
    ``align``: the payload starts at a multiple of it (the header is padded with spaces), so arrays
    inside it can be memory-mapped aligned."""
    head = json.dumps(header, ensure_ascii=False).encode("utf-8")
    head += b" " * (-(8 + len(head)) % align)

    def write(f: BinaryIO) -> None:
        f.write(struct.pack("<Q", len(head)) + head)
        write_payload(f)

    atomic_write_stream(path, write)


def open_stamped(path: Path) -> tuple[dict[str, Any], BinaryIO] | None:
    """Header and the open file positioned at the payload (the caller reads and closes it), or None."""
    try:
        f = open(path, "rb")
    except OSError:
        return None
    try:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n).decode("utf-8"))
        return header, f
    except (OSError, struct.error, ValueError, UnicodeDecodeError):
        f.close()
        return None


TAIL_MAGIC = b"ZWSTAMP1"


def write_stamped_tail(path: Path, header: dict[str, Any], write_payload: Callable[[BinaryIO], None]) -> None:
    """The stamp after the payload (payload, JSON header, 8-byte header length, magic), for payloads a
    library reads by file name: a FAISS index file with its stamp at the end is still a FAISS index
    file (readers stop at the index's end), so FAISS can memory-map it."""
    head = json.dumps(header, ensure_ascii=False).encode("utf-8")

    def write(f: BinaryIO) -> None:
        write_payload(f)
        f.write(head + struct.pack("<Q", len(head)) + TAIL_MAGIC)

    atomic_write_stream(path, write)


def read_stamp_tail(path: Path) -> dict[str, Any] | None:
    """The header of a file written by ``write_stamped_tail``, or None (missing, or another layout)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            if size < 16:
                return None
            f.seek(size - 16)
            tail = f.read(16)
            if tail[8:] != TAIL_MAGIC:
                return None
            (n,) = struct.unpack("<Q", tail[:8])
            f.seek(size - 16 - n)
            return json.loads(f.read(n).decode("utf-8"))
    except (OSError, struct.error, ValueError, UnicodeDecodeError):
        return None
