"""Checking text against the rules: one Aho-Corasick pass for all terms (pyahocorasick), regexes, PII.

Terms and text are normalised alike (see moderation.normalize), so one automaton over 10,000+ terms
costs a single pass however the text tries to dodge it. Findings carry original offsets; masking is
length-preserving (one ＊ per character), which keeps streamed output and offsets aligned.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import ahocorasick

from core.services import EventBus, Services
from core.settings import Settings
from moderation.audit import AuditLog
from moderation.normalize import normalize, normalize_term
from moderation.pii import find_pii, mask_spans
from moderation.rules import RuleSet, RuleStore

_LATIN_RE = re.compile(r"[a-z0-9]")


@dataclass(frozen=True)
class Finding:
    category: str
    rule_id: str
    action: str  # block | mask | flag
    start: int  # original offsets
    end: int
    kind: str  # term | regex | pii


@dataclass
class ModerationResult:
    text: str  # the text with masks applied
    blocked: bool = False
    message: str | None = None
    findings: list[Finding] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(f.action == "mask" for f in self.findings)


def _nfkc_with_origin(text: str) -> tuple[str, list[int]]:
    folded = unicodedata.normalize("NFKC", text)
    if len(folded) == len(text):
        return folded, list(range(len(text)))
    chars, origin = [], []
    for i, ch in enumerate(text):
        for c in unicodedata.normalize("NFKC", ch):
            chars.append(c)
            origin.append(i)
    return "".join(chars), origin


class _Matcher:
    def __init__(self, rules: RuleSet) -> None:
        self.automaton = ahocorasick.Automaton()
        self.max_len = 1
        for category in rules.categories.values():
            for term in category.terms:
                key = normalize_term(term.text)
                if not key:
                    continue
                self.max_len = max(self.max_len, len(key))
                entries = self.automaton.get(key, [])
                entries.append((category.name, term.rule_id, len(key)))
                self.automaton.add_word(key, entries)
        self.empty = len(self.automaton) == 0
        if not self.empty:
            self.automaton.make_automaton()

    def iter(self, text: str):
        if self.empty:
            return
        for end, entries in self.automaton.iter(text):
            for category, rule_id, length in entries:
                yield category, rule_id, end - length + 1, end + 1


class Moderator:
    def __init__(self, rules_dir: Path, audit: AuditLog | None = None, events: EventBus | None = None) -> None:
        self.store = RuleStore(rules_dir)
        self.audit = audit
        self.events = events  # told of every finding acted on (the API's metrics count them)
        self._lock = threading.Lock()
        self._matcher: tuple[int, _Matcher] | None = None

    @classmethod
    def for_settings(cls, settings: Settings, events: EventBus | None = None) -> "Moderator":
        root = settings.data_dir / "moderation"
        return cls(root, AuditLog(root / "audit.jsonl"), events)

    def matcher(self) -> tuple[RuleSet, _Matcher]:
        rules = self.store.current()
        with self._lock:
            if self._matcher is None or self._matcher[0] != self.store.version:
                self._matcher = (self.store.version, _Matcher(rules))
            return rules, self._matcher[1]

    def window(self) -> int:
        """Characters a stream must hold back so a term split across tokens, even with separators
        slipped in, is complete before any of it is shown."""
        _, matcher = self.matcher()
        return max(64, 4 * matcher.max_len)

    def check(self, text: str, surface: str, audit: bool = True) -> ModerationResult:
        rules, matcher = self.matcher()
        findings = self._terms(text, surface, rules, matcher) + self._pii(text, surface, rules)
        findings.sort(key=lambda f: (f.start, -f.end))
        result = ModerationResult(text, findings=findings)
        blocking = next((f for f in findings if f.action == "block"), None)
        if blocking is not None:
            result.blocked = True
            result.message = rules.categories[blocking.category].message if blocking.kind != "pii" else rules.pii_message
        masks = [(f.start, f.end) for f in findings if f.action == "mask"]
        if masks:
            result.text = mask_spans(text, masks)
        if audit:
            if self.audit is not None:
                self.audit.write(surface, findings)
            for f in findings if self.events is not None else ():
                self.events.emit("moderation", surface=surface, action=f.action, category=f.category)
        return result

    def _terms(self, text: str, surface: str, rules: RuleSet, matcher: _Matcher) -> list[Finding]:
        active = {name: c for name, c in rules.categories.items() if surface in c.surfaces}
        if not active:
            return []
        norm = normalize(text)
        out = []
        t = norm.text
        for category, rule_id, start, end in matcher.iter(t):
            if category not in active:
                continue
            if _LATIN_RE.match(t[start]) and start > 0 and _LATIN_RE.match(t[start - 1]):
                continue  # "class" does not contain the word "ass"
            if _LATIN_RE.match(t[end - 1]) and end < len(t) and _LATIN_RE.match(t[end]):
                continue
            a, b = norm.span(start, end)
            out.append(Finding(category, rule_id, active[category].action, a, b, "term"))
        literal = normalize(text, keep_separators=True) if any(c.patterns for c in active.values()) else None
        for name, category in active.items():
            for rule_id, pattern in category.patterns:
                for m in pattern.finditer(literal.text):
                    if m.end() > m.start():
                        a, b = literal.span(m.start(), m.end())
                        out.append(Finding(name, rule_id, category.action, a, b, "regex"))
        return out

    def _pii(self, text: str, surface: str, rules: RuleSet) -> list[Finding]:
        action = rules.pii_actions.get(surface, "off")
        if action == "off" or not rules.pii_kinds:
            return []
        folded, origin = _nfkc_with_origin(text)
        return [
            Finding("pii", f"pii:{m.kind}", action, origin[m.start], origin[m.end - 1] + 1, "pii")
            for m in find_pii(folded, rules.pii_kinds)
        ]


class _Moderators:
    """The moderators a process has built, one per data dir (rules compile once, not per question)."""

    def __init__(self, events: EventBus) -> None:
        self.events = events
        self._by_dir: dict[str, Moderator] = {}
        self._lock = threading.Lock()

    def get(self, settings: Settings) -> Moderator:
        key = str(settings.data_dir.resolve())
        with self._lock:
            if key not in self._by_dir:
                self._by_dir[key] = Moderator.for_settings(settings, self.events)
            return self._by_dir[key]


def moderator_for(settings: Settings, services: Services | None = None) -> Moderator | None:
    """The moderator of a data dir (None when moderation is switched off): the one ``services`` keeps,
    or, without services, one built for this caller (rules are re-read from disk either way when they
    change, see RuleStore)."""
    if not settings.moderation_enabled:
        return None
    if services is None:
        return Moderator.for_settings(settings)
    return services.slot("moderation.moderators", lambda: _Moderators(services.events)).get(settings)
