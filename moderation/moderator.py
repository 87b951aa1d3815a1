"""Checking text against the rules: one Aho-Corasick pass for all terms (pyahocorasick) and one for
their sound, regexes, PII.

Terms and text are normalised alike (see moderation.normalize), so one automaton over 10,000+ terms
costs a single pass however the text tries to dodge it. Findings carry original offsets; masking is
length-preserving (one ＊ per character), which keeps streamed output and offsets aligned; a match
that skipped emoji or markup masks everything from its first to its last character.

The passes over a text:

1. the word lists, one Aho-Corasick pass over the match view (moderation.normalize); a Chinese match
   must respect word boundaries (moderation.boundaries: "确保本次" is not 保本) unless its category says
   ``substring_ok``;
2. the same terms by sound, one Aho-Corasick pass over the phonetic view (moderation.pinyin), for
   categories with ``pinyin`` ("baoben", "bao ben") or ``homophones`` (饱本) on, as block and mask
   ones are by default; the rules that keep chance homophones out are in ``Moderator._sounds``;
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
from moderation.boundaries import Words, is_common_word, splits_neighbours, swaps_into_a_word
from moderation.normalize import HAN_RE, Normalized, fold, normalize_term, view
from moderation.pii import find_pii, mask_spans
from moderation.pinyin import PhoneticView, term_readings
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
        self.max_spelled = 1  # the longest romanised term, one space between syllables
        for category in rules.categories.values():
            for term in category.terms:
                key = normalize_term(term.text)
                if not key:
                    continue
                self.max_len = max(self.max_len, len(key))
                entries = self.automaton.get(key, [])
                entries.append((category.name, term.rule_id, len(key)))
                self.automaton.add_word(key, entries)
                for reading in term_readings(key) if category.pinyin or category.homophones else ():
                    entries = self.phonetic.get(reading.sound, [])
                    entries.append((category.name, term.rule_id, key, reading))
                    self.phonetic.add_word(reading.sound, entries)
                    self.max_spelled = max(self.max_spelled, len(reading.sound) + len(key) - 1)
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
        """(start in the view, span in the normalised text, entries) for every pinyin key whose match
        starts and ends on syllable and word edges."""
        if not self.has_phonetic:
            return
        for end, entries in self.phonetic.iter(view.text):
            start = end + 1 - len(entries[0][3].sound)  # one key, one length
            span = view.span(start, end + 1)
            if span is not None:
                yield start, span, entries


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
        slipped in or spelled out in pinyin, is complete before any of it is shown."""
        _, matcher = self.matcher()
        return max(64, 4 * matcher.max_len, 2 * matcher.max_spelled)

    def check(self, text: str, surface: str, audit: bool = True) -> ModerationResult:
        rules, matcher = self.matcher()
        active = {name: c for name, c in rules.categories.items() if surface in c.surfaces}
        pii_action = rules.pii_actions.get(surface, "off") if rules.pii_kinds else "off"
        needs_literal = pii_action != "off" or any(c.patterns for c in active.values())
        folded = fold(text) if active or needs_literal else None
        literal = view(folded, keep_separators=True) if folded is not None and needs_literal else None
        findings = self._terms(folded, active, matcher) if folded is not None else []
        if literal is not None:
            findings += self._regexes(literal, active) + self._pii(literal, pii_action, rules)
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

    def _terms(self, folded: Normalized, active: dict[str, Category], matcher: _Matcher) -> list[Finding]:
        if not active or matcher.empty:
            return []
        norm = view(folded)
        t = norm.text
        words = Words(t)
        out = []
        for category, rule_id, start, end in matcher.iter(t):
            spec = active.get(category)
            if spec is None:
                continue
            if _LATIN_RE.match(t[start]) and start > 0 and _LATIN_RE.match(t[start - 1]):
                continue  # "class" does not contain the word "ass"
            if _LATIN_RE.match(t[end - 1]) and end < len(t) and _LATIN_RE.match(t[end]):
                continue
            if not spec.substring_ok and HAN_RE.match(t[start]) and HAN_RE.match(t[end - 1]) and splits_neighbours(words, start, end):
                continue  # 确|保 本|次: two words that share the term's characters
            a, b = norm.span(start, end)
            out.append(Finding(category, rule_id, spec.action, a, b, "term"))
        if matcher.has_phonetic and any(c.pinyin or c.homophones for c in active.values()):
            out += self._sounds(norm, words, active, matcher)
        return out

    @staticmethod
    def _sounds(norm: Normalized, words: Words, active: dict[str, Category], matcher: _Matcher) -> list[Finding]:
        """Terms written by sound: pinyin ("baoben", "bao ben", "保ben") and homophones ("饱本").

        A homophone may swap at most half of the term's characters (one of two): with all of them
        swapped, two-syllable terms would collide with ordinary text by chance (Chinese has about 400
        toneless syllables). Swapped characters must not form a dictionary word (白吃 is not 白痴) nor
        be one of the commonest words (他又 is not 她又; see moderation.boundaries). Letters are whole
        words and whole syllables already (PhoneticView). ``pinyin`` and ``homophones`` switch the two
        kinds per category (rules.toml).
        """
        t = norm.text
        out, seen = [], set()
        view = PhoneticView(t)
        for at, (start, end), entries in matcher.iter_phonetic(view):
            written = t[start:end]
            chars_only = HAN_RE.fullmatch(written) is not None
            for category, rule_id, term, reading in entries:
                spec = active.get(category)
                if spec is None or written == term or (rule_id, start, end) in seen:
                    continue  # as written, the term is the exact pass's to judge (word boundaries included)
                if chars_only and len(written) == len(term):  # compare in place
                    swapped = [start + k for k, (a, b) in enumerate(zip(written, term)) if a != b]
                else:  # letters in it: romanised
                    if not spec.pinyin:
                        continue
                    swapped = [k for k in range(start, end) if HAN_RE.match(t[k]) and t[k] not in term]
                if swapped and not spec.homophones:
                    continue
                if len(swapped) > max(1, len(term) // 2) or not view.agrees(at, (start, end), reading):
                    continue
                if any(is_common_word(t[k]) for k in swapped):
                    continue
                if (chars_only or HAN_RE.search(written)) and swaps_into_a_word(words, start, end, swapped):
                    continue
                seen.add((rule_id, start, end))
                a, b = norm.span(start, end)
                out.append(Finding(category, rule_id, spec.action, a, b, "term"))
        return out

    @staticmethod
    def _regexes(literal: Normalized, active: dict[str, Category]) -> list[Finding]:
        out = []
        for name, category in active.items():
            for rule_id, pattern in category.patterns:
                for m in pattern.finditer(literal.text):
                    if m.end() > m.start():
                        a, b = literal.span(m.start(), m.end())
                        out.append(Finding(name, rule_id, category.action, a, b, "regex"))
        return out

    @staticmethod
    def _pii(literal: Normalized, action: str, rules: RuleSet) -> list[Finding]:
        if action == "off":
            return []
        return [
            Finding("pii", f"pii:{m.kind}", action, *literal.span(m.start, m.end), "pii")
            for m in find_pii(literal.text, rules.pii_kinds)
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
