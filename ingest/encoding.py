"""Decode text files in any common Chinese encoding (UTF-8, UTF-8-BOM, UTF-16, GB18030/GBK, Big5)."""

from __future__ import annotations

from charset_normalizer import from_bytes

from core.errors import LoadError

# Encodings a Chinese document plausibly uses; guessing among all of Python's codecs turns short
# GBK text into Cyrillic or Latin-1 mojibake.
_CANDIDATES = ["utf_8", "gb18030", "big5", "big5hkscs", "utf_16", "utf_32", "cp1252", "latin_1", "shift_jis", "euc_kr"]
_BOMS = {b"\xef\xbb\xbf": "utf_8_sig", b"\xff\xfe": "utf_16", b"\xfe\xff": "utf_16"}


def decode_bytes(data: bytes, source: str) -> str:
    """Return the text of ``data``; raise LoadError naming ``source`` when it is empty or not text."""
    if not data.strip():
        raise LoadError(source, "文件为空 (empty file)", "检查文件内容后重新导入")
    for bom, codec in _BOMS.items():
        if data.startswith(bom):
            return data.decode(codec, errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if b"\x00" in data[:4096]:
        raise LoadError(source, "看起来是二进制文件，不是文本 (binary content, not text)", "只支持文本、PDF、DOCX 等格式")
    best = from_bytes(data, cp_isolation=_CANDIDATES).best()
    if best is None or best.percent_chaos > 20:
        raise LoadError(
            source,
            "无法识别文件编码 (unrecognised text encoding)",
            "请转换为 UTF-8 后重新导入，例如 iconv -f GBK -t UTF-8",
        )
    return str(best)


def detect_encoding(data: bytes) -> str | None:
    """The encoding decode_bytes would use, for reports (None when undecidable)."""
    for bom, codec in _BOMS.items():
        if data.startswith(bom):
            return codec
    try:
        data.decode("utf-8")
        return "utf_8"
    except UnicodeDecodeError:
        best = from_bytes(data, cp_isolation=_CANDIDATES).best()
        return best.encoding if best else None
