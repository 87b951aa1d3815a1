"""Detect and mask personal information (PII) common in Chinese deployments.

Why this exists: documents fed to a knowledge assistant in mainland China routinely contain mobile
numbers, resident ID numbers (居民身份证号), bank card numbers and e-mail addresses. The Personal
Information Protection Law (个人信息保护法) treats ID and financial account numbers as sensitive
personal information, so they must not leak into answers, logs or evaluation exports unmasked.

Design decisions:

- **Pure functions, no state.** ``find_pii`` returns spans; ``mask_spans`` rewrites them. Callers
  decide what to mask (answers, citations, logs) and which kinds matter (``kinds``).
- **ASCII only, callers normalise first.** Every pattern uses explicit ``[0-9]`` / ``[A-Za-z]``
  classes, never ``\\d`` or ``\\w`` (which in Python also match full-width and other Unicode digits
  and letters, and ``\\w`` matches Chinese characters, which would break the boundaries below).
  Full-width input such as ``１３８００１３８０００`` or ``ｚｈａｎｇ＠ｅｘａｍｐｌｅ．ｃｏｍ`` is *not*
  detected here: callers run NFKC first (``core.text.normalize_width``), and the offsets returned
  index into the string that was passed in, i.e. the normalised text.
- **Boundaries are "no digit on either side", not ``\\b``.** Chinese text puts numbers directly
  against characters ("请拨打13800138000联系"), where ``\\b`` would fail; conversely a mobile number
  must not be found inside a longer digit run such as an order number or a card number.
- **Checksums cut false positives.** Resident IDs must pass GB 11643-1999 (checksum, real birth
  date, plausible region), and bank cards must pass Luhn; a random 16-digit order number passes
  Luhn only one time in ten, and a random 18-digit run almost never looks like a valid ID.
- **Written-out separators count, evasions too.** A resident ID may be grouped 6-8-4 or 6-4-4-4 with
  one kind of separator ("110105 19491231 002X"); an address may be spelled out to dodge scrapers
  ("security [at] example.com", "security(at)example dot com"). A bare " at " is only read as "@" when a
  dot is spelled out too ("a at b dot com"), since "look at example.com" is ordinary English. Invisible
  characters slipped into a number ("138\u200b12345678") are the caller's to drop: the moderator runs
  this on its literal view (moderation.normalize), which has none.
- **Overlaps resolve to one label.** The longer span wins; on equal length the more specific kind
  wins: id_card over bank_card over mobile over email. Resolution happens over *all* kinds before the
  ``kinds`` filter is applied, so asking only for bank cards never relabels a resident ID as a card.
  An 18-digit run that fails the ID checks but passes Luhn *is* reported as a bank card: it may be
  one (UnionPay issues 16-19 digit cards), and over-masking is the safe error for privacy.
"""

from __future__ import annotations

import bisect
import datetime as _dt
import re
from dataclasses import dataclass

__all__ = [
    "ALL_KINDS",
    "PIIMatch",
    "find_pii",
    "is_valid_resident_id",
    "luhn_ok",
    "mask_spans",
]

ALL_KINDS: frozenset[str] = frozenset({"mobile", "id_card", "bank_card", "email"})

# Lower rank = more specific; used to break ties between equally long overlapping candidates.
_RANK = {"id_card": 0, "bank_card": 1, "mobile": 2, "email": 3}

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK_CODES = "10X98765432"
_ASCII_DIGITS = frozenset("0123456789")


@dataclass(frozen=True)
class PIIMatch:
    """One detected item: ``text[start:end]`` is the PII, separators and country code included."""

    kind: str  # "mobile" | "id_card" | "bank_card" | "email"
    start: int
    end: int


# --- patterns ---------------------------------------------------------------------------------

# Mainland mobile: 1[3-9] + 9 digits, optionally +86 / 0086 / 86 in front (kept in the span so the
# masked text does not keep a dangling "+86"), written solid or in the 3-4-4 grouping with one kind
# of separator used consistently ("138 0013 8000", "138-0013-8000"; not "138 0013-8000").
_MOBILE_RE = re.compile(
    r"(?<![0-9])"
    r"(?:(?:\+86|0086|86)[ -]?)?"
    r"1[3-9][0-9](?P<sep>[ -]?)[0-9]{4}(?P=sep)[0-9]{4}"
    r"(?![0-9])"
)

# Resident ID: 17 digits + a digit or X/x, as a whole digit run.
_ID_RE = re.compile(r"(?<![0-9])[0-9]{17}[0-9Xx](?![0-9])")

# Resident ID grouped for reading: 6-8-4 ("110105 19491231 002X") or 6-4-4-4, one kind of separator.
_ID_GROUPED_RE = re.compile(
    r"(?<![0-9])[0-9]{6}(?P<sep>[ -])(?:[0-9]{8}|[0-9]{4}(?P=sep)[0-9]{4})(?P=sep)[0-9]{3}[0-9Xx](?![0-9A-Za-z])"
)

# Bank card: 13-19 digits, either solid or in groups of four separated by one kind of separator, the
# last group possibly shorter ("6222 0212 3456 7890 128"). The digit count is checked afterwards.
# A solid run followed by X/x is the front of an ID-shaped string, not a card.
_CARD_RE = re.compile(
    r"(?<![0-9])"
    r"(?:"
    r"[0-9]{13,19}(?![0-9Xx])"
    r"|[0-9]{4}(?P<sep>[ -])[0-9]{4}(?:(?P=sep)[0-9]{4}){1,2}(?:(?P=sep)[0-9]{1,4})?(?![0-9])"
    r")"
)

# A solid digit run that is a +86 mobile written without the "+" ("8613800138000", "0086...") is a
# phone number, not a card: no card issuer uses those prefixes, and a Luhn pass there is chance.
_CARD_LOOKS_LIKE_MOBILE_RE = re.compile(r"(?:86|0086)1[3-9][0-9]{9}")

# E-mail, RFC 5322 "lite": dot-separated local-part atoms of letters/digits/_%+-, an @, one or more
# domain labels (no leading/trailing hyphen) each followed by a dot, and an alphabetic TLD of 2+.
# The lookarounds only forbid *ASCII* address characters, so Chinese text may touch the address on
# either side ("邮箱zhang.san@example.com联系").
_EMAIL_RE = re.compile(
    r"(?<![A-Za-z0-9._%+-])"
    r"[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*"
    r"@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+"
    r"[A-Za-z]{2,}"
    r"(?![A-Za-z0-9-])"
)


# E-mail with "@" and "." spelled out: "name [at] example.com", "name(at)example dot com",
# "name at example dot com". Brackets may be ASCII or full-width (（）【】).
_OPEN, _CLOSE = r"[\[({<（【]", r"[\])}>）】]"
_SPELLED_AT = rf"\s*{_OPEN}\s*(?:at|@)\s*{_CLOSE}\s*|\s+at\s+"
_SPELLED_DOT = rf"\s*{_OPEN}\s*(?:dot|\.)\s*{_CLOSE}\s*|\s+dot\s+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_SPELLED_EMAIL_RE = re.compile(
    r"(?<![A-Za-z0-9._%+-])"
    r"[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*"
    rf"(?P<at>{_SPELLED_AT})"
    rf"(?P<domain>(?:{_LABEL}(?:\.|{_SPELLED_DOT}))+[A-Za-z]{{2,}})"
    r"(?![A-Za-z0-9-])",
    re.IGNORECASE,
)
_SPELLED_OUT_RE = re.compile(rf"[\s\[({{<（【]")


# --- validators -------------------------------------------------------------------------------


def _is_ascii_digits(s: str) -> bool:
    """``str.isdigit`` accepts "１" and "²"; checksums need ASCII digits only."""
    return bool(s) and all(c in _ASCII_DIGITS for c in s)


def luhn_ok(digits: str) -> bool:
    """Luhn (mod 10) check used by UnionPay, Visa, Mastercard and most other card numbers.

    Takes the bare digits (strip spaces/hyphens first); anything that is not 2+ ASCII digits is
    ``False`` rather than an error, so callers can feed raw candidates. Why: Luhn catches every
    single-digit typo and most transpositions, so random 13-19 digit runs (order numbers, tracking
    numbers) are rejected nine times in ten instead of being masked as cards.
    """
    if len(digits) < 2 or not _is_ascii_digits(digits):
        return False
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = ord(c) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def is_valid_resident_id(digits: str) -> bool:
    """Whether ``digits`` is a plausible 18-character PRC resident ID number (GB 11643-1999).

    Checks, in order: 17 ASCII digits + a digit or X/x; a region prefix (province code) in 11..82;
    a birth date YYYYMMDD at positions 7-14 that is a real calendar date with year 1900..2100; and the
    ISO 7064 MOD 11-2 check character: sum(digit_i * weight_i) mod 11 indexes "10X98765432".
    Why all three: the checksum alone lets one in eleven random 18-digit runs through; requiring a real
    date and region makes false positives on ID-shaped order numbers rare, and masking a real ID is
    what matters. The old 15-digit format (pre-1999, no check digit) is deliberately not accepted.
    """
    if len(digits) != 18:
        return False
    body, check = digits[:17], digits[17].upper()
    if not _is_ascii_digits(body) or not (check == "X" or check in _ASCII_DIGITS):
        return False
    if not 11 <= int(body[:2]) <= 82:
        return False
    year, month, day = int(body[6:10]), int(body[10:12]), int(body[12:14])
    if not 1900 <= year <= 2100:
        return False
    try:
        _dt.date(year, month, day)
    except ValueError:
        return False
    total = sum((ord(c) - 48) * w for c, w in zip(body, _ID_WEIGHTS))
    return _ID_CHECK_CODES[total % 11] == check


# --- detection --------------------------------------------------------------------------------


def _candidates(text: str) -> list[PIIMatch]:
    """Every validated candidate of every kind; may overlap (resolved by ``_resolve``)."""
    found: list[PIIMatch] = []
    for m in _ID_RE.finditer(text):
        if is_valid_resident_id(m.group()):
            found.append(PIIMatch("id_card", m.start(), m.end()))
    for m in _ID_GROUPED_RE.finditer(text):
        if is_valid_resident_id(m.group().replace(m.group("sep"), "")):
            found.append(PIIMatch("id_card", m.start(), m.end()))
    for m in _CARD_RE.finditer(text):
        digits = m.group().replace(" ", "").replace("-", "")
        if not 13 <= len(digits) <= 19 or not luhn_ok(digits):
            continue
        if _CARD_LOOKS_LIKE_MOBILE_RE.fullmatch(digits):
            continue
        if len(digits) == 18 and is_valid_resident_id(digits):
            continue  # a valid ID is an id_card, never a card (even under a kinds filter)
        found.append(PIIMatch("bank_card", m.start(), m.end()))
    for m in _MOBILE_RE.finditer(text):
        found.append(PIIMatch("mobile", m.start(), m.end()))
    for m in _EMAIL_RE.finditer(text):
        found.append(PIIMatch("email", m.start(), m.end()))
    for m in _SPELLED_EMAIL_RE.finditer(text):
        # a bare " at " needs a spelled-out dot as well: "look at example.com" is English, not an address
        if m.group("at").strip().lower() != "at" or _SPELLED_OUT_RE.search(m.group("domain")):
            found.append(PIIMatch("email", m.start(), m.end()))
    return found


def _resolve(candidates: list[PIIMatch]) -> list[PIIMatch]:
    """Greedy non-overlapping selection: longest first, then most specific kind, then leftmost.

    Why longest first: a longer span that contains a shorter one is the more complete reading
    ("13800138000@163.com" is an e-mail address, "+86 138 0013 8000" is one phone number).
    """
    order = sorted(candidates, key=lambda m: (-(m.end - m.start), _RANK[m.kind], m.start))
    starts: list[int] = []
    kept: list[PIIMatch] = []  # sorted by start, pairwise disjoint
    for m in order:
        i = bisect.bisect_left(starts, m.end)
        # Kept spans are disjoint and sorted, so their ends are sorted too: only the last span that
        # starts before m.end can reach past m.start.
        if i > 0 and kept[i - 1].end > m.start:
            continue
        starts.insert(i, m.start)
        kept.insert(i, m)
    return kept


def find_pii(text: str, kinds: frozenset[str] | None = None) -> list[PIIMatch]:
    """Find mobiles, resident IDs, bank cards and e-mail addresses in ``text``.

    Returns matches sorted by ``start``, pairwise non-overlapping; offsets index into ``text`` as
    given. ``kinds`` (a subset of ``ALL_KINDS``; ``None`` = all) filters the result *after*
    overlaps are resolved, so the label of a span never depends on which kinds were asked for.
    Unknown kind names raise ``ValueError`` (a typo would otherwise silently mask nothing).

    ASCII only: NFKC-normalise first (``core.text.normalize_width``) so full-width digits and "＠"
    become ASCII; see the module docstring for the reasons behind each rule.
    """
    if kinds is not None:
        unknown = set(kinds) - ALL_KINDS
        if unknown:
            raise ValueError(f"unknown PII kinds: {sorted(unknown)}; expected a subset of {sorted(ALL_KINDS)}")
    matches = _resolve(_candidates(text))
    if kinds is not None:
        matches = [m for m in matches if m.kind in kinds]
    return matches


def mask_spans(text: str, spans: list[tuple[int, int]], char: str = "＊") -> str:
    """Replace every character inside ``spans`` with ``char`` (default "＊", U+FF0A), one for one.

    Why length-preserving: citation offsets, highlight ranges and sentence spans computed on the
    original text stay valid on the masked text, and readers can still see how long the hidden item
    was. (Length is in code points; the full-width ＊ is wider on screen than an ASCII digit.)
    Spans may overlap or come unsorted; empty spans are ignored. A span outside ``0..len(text)``,
    a reversed span, or a ``char`` that is not exactly one character raises ``ValueError`` rather than
    masking the wrong text silently.
    """
    if len(char) != 1:
        raise ValueError(f"mask char must be exactly one character, got {char!r}")
    n = len(text)
    for start, end in spans:
        if not 0 <= start <= end <= n:
            raise ValueError(f"span ({start}, {end}) is not within 0..{n}")
    if not spans:
        return text
    out: list[str] = []
    pos = 0
    for start, end in sorted(spans):
        start = max(start, pos)
        if start >= end:
            continue
        out.append(text[pos:start])
        out.append(char * (end - start))
        pos = end
    out.append(text[pos:])
    return "".join(out)
