"""Rule sets on disk: ``$ZHIWEN_DATA_DIR/moderation/rules.toml`` plus ``words/<category>.txt``.

The first use copies the shipped defaults there, so teams edit their own copy (in a text editor or the
web UI). ``RuleStore.current()`` re-reads the files when any of them changed: edits apply on the next
check without a restart.
"""

from __future__ import annotations

import re
import shutil
import threading
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Literal

from core.errors import ZhiwenError

Action = Literal["block", "mask", "flag"]
Surface = Literal["question", "answer", "ingest"]
ACTIONS = ("block", "mask", "flag")
SURFACES = ("question", "answer", "ingest")


class RuleError(ZhiwenError):
    pass


@dataclass
class Term:
    rule_id: str  # "category:line"
    text: str


@dataclass
class Category:
    name: str
    action: Action
    surfaces: tuple[str, ...]
    message: str
    description: str = ""
    # Match by sound too (see moderation.pinyin): ``pinyin`` reads romanised text ("baoben", "bao ben"),
    # ``homophones`` characters swapped for ones that sound alike (饱本 for 保本). Default: on for block
    # and mask categories, whose evasions matter; off for flag, which only feeds the audit log. Long lists
    # of two-character names may want homophones off: chance homophones of rare names are not evasions.
    pinyin: bool = False
    homophones: bool = False
    # Any occurrence counts, whatever the neighbouring words (see moderation.boundaries). Default off:
    # "确保本次" is not 保本.
    substring_ok: bool = False
    terms: list[Term] = field(default_factory=list)
    patterns: list[tuple[str, re.Pattern[str]]] = field(default_factory=list)  # (rule_id, regex)


@dataclass
class RuleSet:
    categories: dict[str, Category]
    pii_kinds: frozenset[str]
    pii_actions: dict[str, str]  # surface -> mask | flag | block | off
    pii_message: str


DEFAULT_BLOCK_MESSAGE = "抱歉，这个问题涉及不适宜讨论的内容，无法回答。"


def ensure_rules_dir(root: Path) -> Path:
    """The editable rules folder, seeded from the shipped defaults the first time."""
    if not (root / "rules.toml").exists():
        root.mkdir(parents=True, exist_ok=True)
        defaults = resources.files("moderation").joinpath("defaults")
        with resources.as_file(defaults) as src:
            shutil.copytree(src, root, dirs_exist_ok=True)
    return root


def load_rules(root: Path) -> RuleSet:
    try:
        config = tomllib.loads((root / "rules.toml").read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise RuleError(f"{root / 'rules.toml'}: 无法读取审核规则 (cannot read rules: {exc})")
    categories = {}
    for name, spec in config.get("categories", {}).items():
        action = spec.get("action", "flag")
        if action not in ACTIONS:
            raise RuleError(f"{root / 'rules.toml'}: 类别 {name} 的 action 必须是 block/mask/flag，而不是 {action!r}")
        surfaces = tuple(spec.get("surfaces", SURFACES))
        bad = [s for s in surfaces if s not in SURFACES]
        if bad:
            raise RuleError(f"{root / 'rules.toml'}: 类别 {name} 的 surfaces 含未知项 {bad}（可用 {', '.join(SURFACES)}）")
        switches = {}
        acted_on = action in ("block", "mask")
        for key, default in (("pinyin", acted_on), ("homophones", acted_on), ("substring_ok", False)):
            switches[key] = spec.get(key, default)
            if not isinstance(switches[key], bool):
                raise RuleError(f"{root / 'rules.toml'}: 类别 {name} 的 {key} 必须是 true 或 false (must be a boolean)")
        category = Category(name, action, surfaces, spec.get("message", DEFAULT_BLOCK_MESSAGE), spec.get("description", ""), **switches)
        _load_words(root / "words" / f"{name}.txt", category)
        categories[name] = category
    pii = config.get("pii", {})
    actions = {s: pii.get(s, "off") for s in SURFACES}
    return RuleSet(categories, frozenset(pii.get("kinds", [])), actions, pii.get("message", DEFAULT_BLOCK_MESSAGE))


def _load_words(path: Path, category: Category) -> None:
    if not path.exists():
        return
    for lineno, raw in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        rule_id = f"{category.name}:{lineno}"
        if line.startswith("re:"):
            try:
                category.patterns.append((rule_id, re.compile(line[3:])))
            except re.error as exc:
                raise RuleError(f"{path} 第 {lineno} 行: 正则表达式错误 (bad regex: {exc})")
        else:
            category.terms.append(Term(rule_id, line))


class RuleStore:
    """Rules that follow their files: re-read when a file's modification time or size changes."""

    def __init__(self, root: Path) -> None:
        self.root = ensure_rules_dir(root)
        self._lock = threading.Lock()
        self._stamp: tuple = ()
        self._rules: RuleSet | None = None
        self.version = 0

    def _files_stamp(self) -> tuple:
        """Modification time and size of rules.toml and of the word lists it names: a few stat calls,
        cheap enough to run on every check (a new category appears only through rules.toml)."""
        names = self._rules.categories if self._rules is not None else ()
        stamp = []
        for path in [self.root / "rules.toml", *(self.root / "words" / f"{n}.txt" for n in names)]:
            try:
                st = path.stat()
                stamp.append((st.st_mtime_ns, st.st_size))
            except FileNotFoundError:
                stamp.append(None)
        return tuple(stamp)

    def current(self) -> RuleSet:
        stamp = self._files_stamp()
        with self._lock:
            if self._rules is None or stamp != self._stamp:
                self._rules = load_rules(self.root)
                self._stamp = self._files_stamp()
                self.version += 1
            return self._rules
