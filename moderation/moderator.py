"""Checking text against the rules: one Aho-Corasick pass for all terms (pyahocorasick), regexes, PII.

Terms and text are normalised alike (see moderation.normalize), so one automaton over 10,000+ terms
costs a single pass however the text tries to dodge it. Findings carry original offsets; masking is
length-preserving (one ＊ per character), which keeps streamed output and offsets aligned; a match
that skipped emoji or markup masks everything from its first to its last character.

The passes over a text:

1. the word lists, one Aho-Corasick pass over the match view (moderation.normalize); a Chinese match
   must respect word boundaries (moderation.boundaries: "确保本次" is not 保本) unless its category says
   ``substring_ok``;
2. the same terms by sound, one Aho-Corasick pass over the phonetic view (moderation.pinyin), for
   categories with ``pinyin`` on (block and mask ones by default): "baoben", "bao ben", "饱本";
3. regex rules and PII on the literal view, which keeps punctuation but not invisible characters,
   emoji or markup ("年化\u200b收益8%以上", "138\u200b12345678").
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

import ahocorasick

from core.services import EventBus, Services
from core.settings import Settings
from moderation.audit import AuditLog
from moderation.boundaries import overlaps_a_word, splits_neighbours
from moderation.normalize import HAN_RE, Normalized, normalize, normalize_term
from moderation.pii import find_pii, mask_spans
from moderation.pinyin import PhoneticView, term_keys
from moderation.rules import Category, RuleSet, RuleStore

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


class _Matcher:
    """The compiled word lists: exact keys (normalised terms) and, for categories matched by sound,
    pinyin keys of their Chinese terms."""

    def __init__(self, rules: RuleSet) -> None:
        self.automaton = ahocorasick.Automaton()
        self.phonetic = ahocorasick.Automaton()
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
                for sound in term_keys(key) if category.pinyin else ():
                    entries = self.phonetic.get(sound, [])
                    entries.append((category.name, term.rule_id, key, len(sound)))
                    self.phonetic.add_word(sound, entries)
        self.empty = len(self.automaton) == 0
        if not self.empty:
            self.automaton.make_automaton()
        self.has_phonetic = len(self.phonetic) > 0
        if self.has_phonetic:
            self.phonetic.make_automaton()

    def iter(self, text: str):
        if self.empty:
            return
        for end, entries in self.automaton.iter(text):
            for category, rule_id, length in entries:
                yield category, rule_id, end - length + 1, end + 1

    def iter_phonetic(self, view: PhoneticView):
        """(category, rule_id, term, start, end) with [start, end) in the normalised text, for every
        pinyin key that lies on syllable and word boundaries there."""
        if not self.has_phonetic:
            return
        for end, entries in self.phonetic.iter(view.text):
            span = view.locate(end + 1 - entries[0][3], end + 1)  # one key, one length
            if span is None:
                continue
            for category, rule_id, term, _ in entries:
                yield category, rule_id, term, span[0], span[1]


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
