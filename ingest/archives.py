"""Archive-bomb checks for ZIP-based formats (.docx, .pptx, .xlsx) before any library unpacks them.

A .docx is a ZIP archive, so it can be an archive bomb: a few hundred KB that unpack to gigabytes. The
central directory declares every entry's sizes, and Python's zipfile never returns more than an entry's
declared size, so checking the declared sizes before anything is decompressed bounds what parsing the
file can cost. (python-docx parses its XML with entity resolution off, so no billion-laughs either.)
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import LoadError

MB = 1024 * 1024
MAX_ARCHIVE_ENTRIES = 10_000
# The ratio limit applies to entries this large or larger: a small entry cannot be a bomb whatever its
# ratio, and Word's own styles.xml compresses about 30:1.
RATIO_CHECK_MIN_BYTES = 1 * MB
# Office documents embed Office documents (a chart's data is an .xlsx inside the .docx): one level of
# nested ZIP is inspected with the same limits, sizes counted against the same budget; anything deeper,
# and any compressed archive that is not a ZIP (gzip, 7z, RAR, ...), is refused.
MAX_ARCHIVE_NESTING = 1
MAX_NESTED_ARCHIVE_BYTES = 32 * MB
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_OTHER_ARCHIVE_MAGIC = (b"\x1f\x8b", b"7z\xbc\xaf\x27\x1c", b"Rar!\x1a\x07", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd")
_ARCHIVE_SUFFIXES = (".zip", ".gz", ".tgz", ".7z", ".rar", ".bz2", ".xz", ".zst", ".tar", ".jar", ".cab")


@dataclass(frozen=True)
class ArchiveLimits:
    max_unpacked_bytes: int
    max_ratio: float
    max_entries: int = MAX_ARCHIVE_ENTRIES

    @classmethod
    def of(cls, settings: Any) -> ArchiveLimits:
        """The limits a Settings object configures (upload_max_unpacked_mb, upload_max_compression_ratio)."""
        return cls(int(settings.upload_max_unpacked_mb * MB), float(settings.upload_max_compression_ratio))


def _default_archive_limits() -> ArchiveLimits:
    from core.settings import Settings

    fields = Settings.model_fields  # the settings' own defaults: one number, one place
    return ArchiveLimits(int(fields["upload_max_unpacked_mb"].default * MB), float(fields["upload_max_compression_ratio"].default))


# The ingest job sets the knowledge base's configured limits here for the loaders it calls (a loader
# takes only bytes and a name); outside a job the settings' defaults apply.
_archive_limits: ContextVar[ArchiveLimits | None] = ContextVar("zhiwen_archive_limits", default=None)


@contextmanager
def archive_limits(limits: ArchiveLimits) -> Iterator[None]:
    token = _archive_limits.set(limits)
    try:
        yield
    finally:
        _archive_limits.reset(token)


def _bomb(source: str, zh: str, en: str) -> LoadError:
    return LoadError(
        source, f"疑似压缩炸弹，拒绝导入：{zh} (likely archive bomb, refused: {en})",
        "正常的 Office 文档（Word、PowerPoint、Excel）不会这样，请确认文件来源；确需导入时，管理员可调大 upload_max_unpacked_mb / upload_max_compression_ratio",
    )


def check_archive(data: bytes, source: str, limits: ArchiveLimits | None = None) -> list[str]:
    """Refuse a ZIP container (DOCX, PPTX, XLSX) that would unpack to too much: total declared size over
    the limit, an entry whose compression ratio is over the limit, too many entries, or nested archives
    beyond one inspected level. Nothing is decompressed except a nested ZIP that already passed the size
    checks. Returns the entry names of the outer archive (the caller tells an Office file from other
    ZIPs by them)."""
    import zipfile

    limits = limits or _archive_limits.get() or _default_archive_limits()
    budget = {"entries": 0, "bytes": 0}
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return _check_zip(archive, source, limits, budget, depth=0, where="")
    except LoadError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, ValueError, EOFError, OSError, RuntimeError) as exc:
        label = Path(source).suffix.lstrip(".").upper() or "Office"  # DOCX, PPTX, XLSX
        raise LoadError(source, f"{label} 文件（ZIP 容器）损坏，无法读取 (corrupt {label}, broken ZIP container: {type(exc).__name__}: {exc})",
                        "请用 Word/PowerPoint/Excel 或 WPS 另存一份再导入")


def _check_zip(archive: Any, source: str, limits: ArchiveLimits, budget: dict[str, int], depth: int, where: str) -> list[str]:
    import zipfile

    infos = archive.infolist()
    budget["entries"] += len(infos)
    if budget["entries"] > limits.max_entries:
        raise _bomb(source, f"条目过多（超过 {limits.max_entries} 个）", f"more than {limits.max_entries} entries")
    for info in infos:  # every size first, before a single byte is decompressed
        budget["bytes"] += info.file_size
        if budget["bytes"] > limits.max_unpacked_bytes:
            mb = limits.max_unpacked_bytes / MB
            raise _bomb(source, f"解压后超过 {mb:g} MB", f"unpacks to more than {mb:g} MB")
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size >= RATIO_CHECK_MIN_BYTES and ratio > limits.max_ratio:
            raise _bomb(source, f"{where}{info.filename} 的压缩比 {ratio:.0f}:1 超过上限 {limits.max_ratio:g}:1",
                        f"compression ratio {ratio:.0f}:1 > {limits.max_ratio:g}:1")
        if info.flag_bits & 0x1:
            raise LoadError(source, f"压缩包中有加密的条目 {where}{info.filename} (encrypted entry)", "请去掉文档密码后再导入")
    for info in infos:
        if info.is_dir() or info.file_size == 0:
            continue
        with archive.open(info) as entry:
            head = entry.read(8)
        is_zip = head.startswith(_ZIP_MAGIC)
        if not (is_zip or head.startswith(_OTHER_ARCHIVE_MAGIC) or info.filename.lower().endswith(_ARCHIVE_SUFFIXES)):
            continue
        name = f"{where}{info.filename}"
        if not is_zip or depth >= MAX_ARCHIVE_NESTING or info.file_size > MAX_NESTED_ARCHIVE_BYTES:
            raise _bomb(source, f"含有嵌套的压缩包 {name}", f"nested archive {name}")
        try:
            with zipfile.ZipFile(io.BytesIO(archive.read(info))) as nested:
                _check_zip(nested, source, limits, budget, depth + 1, f"{name}/")
        except zipfile.BadZipFile as exc:
            raise _bomb(source, f"含有无法检查的嵌套压缩包 {name}", f"uninspectable nested archive {name}: {exc}")
    return [info.filename for info in infos]
