"""Conversations that outlive the browser tab: each user's chats, stored as JSON under the data dir.

``$ZHIWEN_DATA_DIR/conversations/<user key>/<conversation id>.json``, one file per conversation, written
atomically (a reader sees the old file or the new one), plus ``preferences.json`` with the user's last
knowledge base and settings. The user is whoever the surface says (the web UI: the API key's id with
login on, a fixed local user otherwise); the folder name is a hash of it, so no user name becomes a path.
A conversation id comes from a URL, so it is checked against its pattern before it names a file, and
it is only ever looked up inside the user's own folder: one user cannot open another's conversation.

Changes to one user's files take a file lock, so two tabs (or processes) adding turns at once both land.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from filelock import FileLock
from pydantic import BaseModel, Field, ValidationError

from core.atomic import atomic_write_bytes
from core.models import Answer
from core.settings import Settings

log = logging.getLogger(__name__)

LOCAL_USER = "local"  # the one user of a UI without login
TITLE_MAX_CHARS = 40
LIST_LIMIT = 50
_ID_RE = re.compile(r"^[0-9a-f]{16}$")
History = list[tuple[str, str]]


def _now() -> datetime:
    return datetime.now(UTC)


class Turn(BaseModel):
    """One question and the answer it got (a stopped answer keeps what had arrived)."""

    question: str
    kb: str
    answer: Answer
    stopped: bool = False
    rating: Literal["up", "down"] | None = None
    comment: str = ""
    at: datetime = Field(default_factory=_now)


class Conversation(BaseModel):
    id: str
    kb: str
    title: str = ""
    created_at: datetime = Field(default_factory=_now)
    updated_at: datetime = Field(default_factory=_now)
    turns: list[Turn] = Field(default_factory=list)

    def history(self, kb: str | None = None) -> History:
        """(question, answer) pairs for a follow-up on ``kb`` (default: the conversation's): refused and
        stopped answers say nothing to build on."""
        kb = kb or self.kb
        return [(t.question, t.answer.text) for t in self.turns if t.kb == kb and not t.answer.refused and not t.stopped]


class ConversationSummary(BaseModel):
    id: str
    kb: str
    title: str
    updated_at: datetime
    n_turns: int


def title_for(question: str) -> str:
    """A conversation's default title: its first question, on one line, shortened."""
    line = " ".join(question.split())
    return line if len(line) <= TITLE_MAX_CHARS else line[: TITLE_MAX_CHARS - 1] + "…"


def valid_id(conversation_id: str | None) -> bool:
    return bool(conversation_id) and _ID_RE.match(conversation_id) is not None


class ConversationStore:
    """One user's conversations and preferences."""

    def __init__(self, settings: Settings, user: str) -> None:
        self.user = user
        key = hashlib.sha256(user.encode("utf-8")).hexdigest()[:32]
        self.dir = settings.data_dir / "conversations" / key
        self._lock = FileLock(str(self.dir.parent / f".{key}.lock"))

    def _locked(self) -> FileLock:
        self.dir.parent.mkdir(parents=True, exist_ok=True)
        return self._lock

    # -- conversations ---------------------------------------------------------------------------------
    def new(self, kb: str) -> Conversation:
        """A fresh conversation, not stored until it has a turn (an empty chat leaves no file behind)."""
        return Conversation(id=secrets.token_hex(8), kb=kb)

    def _path(self, conversation_id: str) -> Path:
        if not valid_id(conversation_id):
            raise ValueError(f"not a conversation id: {conversation_id!r}")
        return self.dir / f"{conversation_id}.json"

    def _read(self, path: Path) -> Conversation | None:
        try:
            return Conversation.model_validate_json(path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError, ValidationError) as exc:
            log.warning("unreadable conversation %s: %s", path, exc)
            return None

    def get(self, conversation_id: str | None) -> Conversation | None:
        """The stored conversation, or None (unknown, malformed id, unreadable file)."""
        if not valid_id(conversation_id):
            return None
        return self._read(self._path(conversation_id))

    def _write(self, conversation: Conversation) -> None:
        conversation.updated_at = _now()
        atomic_write_bytes(self._path(conversation.id), conversation.model_dump_json(indent=1).encode("utf-8"))

    def save(self, conversation: Conversation) -> Conversation:
        if not conversation.title and conversation.turns:
            conversation.title = title_for(conversation.turns[0].question)
        with self._locked():
            self._write(conversation)
        return conversation

    def add_turn(self, conversation: Conversation, turn: Turn, replace_last: bool = False) -> Conversation:
        """Append a turn (or replace the last one: a regenerated answer) to the stored conversation, re-read
        under the lock so that a turn another tab added meanwhile is kept."""
        with self._locked():
            stored = self._read(self._path(conversation.id)) or conversation.model_copy(update={"turns": []})
            if replace_last and stored.turns:
                stored.turns.pop()
            stored.turns.append(turn)
            if not stored.title:
                stored.title = title_for(stored.turns[0].question)
            self._write(stored)
        return stored

    def update_turn(self, conversation_id: str, index: int, **changes: Any) -> Conversation | None:
        """Change one stored turn's fields (rating, comment)."""
        with self._locked():
            stored = self.get(conversation_id)
            if stored is None or not 0 <= index < len(stored.turns):
                return None
            stored.turns[index] = stored.turns[index].model_copy(update=changes)
            self._write(stored)
        return stored

    def rename(self, conversation_id: str, title: str) -> bool:
        title = " ".join(title.split())[:200]
        with self._locked():
            stored = self.get(conversation_id)
            if stored is None or not title:
                return False
            stored.title = title
            self._write(stored)
        return True

    def delete(self, conversation_id: str) -> bool:
        if not valid_id(conversation_id):
            return False
        with self._locked():
            try:
                self._path(conversation_id).unlink()
            except FileNotFoundError:
                return False
        return True

    def list(self, limit: int = LIST_LIMIT) -> list[ConversationSummary]:
        """The most recently changed conversations first."""
        if not self.dir.is_dir():
            return []
        files = sorted((p for p in self.dir.glob("*.json") if valid_id(p.stem)), key=lambda p: p.stat().st_mtime_ns, reverse=True)
        out = []
        for path in files[:limit]:
            c = self._read(path)
            if c is not None:
                out.append(ConversationSummary(id=c.id, kb=c.kb, title=c.title or c.id, updated_at=c.updated_at, n_turns=len(c.turns)))
        return sorted(out, key=lambda s: s.updated_at, reverse=True)

    # -- preferences -----------------------------------------------------------------------------------
    @property
    def _preferences_path(self) -> Path:
        return self.dir / "preferences.json"

    def preferences(self) -> dict[str, Any]:
        try:
            data = json.loads(self._preferences_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def save_preferences(self, preferences: dict[str, Any]) -> None:
        with self._locked():
            atomic_write_bytes(self._preferences_path, json.dumps(preferences, ensure_ascii=False, indent=1).encode("utf-8"))
