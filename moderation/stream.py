"""Moderating a stream of tokens: a term split across two chunks is still caught, and nothing is shown
until it can no longer turn out to be part of a term.

The filter holds back the last ``window`` characters. Text before that is final: any term that
reaches into it was already complete when it was checked, so its mask is in place before the first
character leaves. Only the unsent tail (plus one window of context) is re-checked per token, so the
cost per token does not grow with the answer.
"""

from __future__ import annotations

from moderation.moderator import ModerationResult, Moderator


class StreamFilter:
    def __init__(self, moderator: Moderator, surface: str = "answer") -> None:
        self.moderator = moderator
        self.surface = surface
        self.window = moderator.window()
        self.text = ""
        self.shown = 0  # characters already released
        self.blocked: ModerationResult | None = None

    def push(self, token: str) -> str:
        """Add a token; return what may be shown now ('' while holding back or once blocked)."""
        if self.blocked is not None:
            return ""
        self.text += token
        base = max(0, self.shown - self.window)
        result = self.moderator.check(self.text[base:], self.surface, audit=False)
        if result.blocked:
            self.blocked = result
            return ""
        safe = len(self.text) - self.window
        if safe <= self.shown:
            return ""
        out = result.text[self.shown - base : safe - base]
        self.shown = safe
        return out

    def finish(self) -> tuple[str, ModerationResult]:
        """The rest of the text, and the check of the whole answer (which goes to the audit log)."""
        final = self.moderator.check(self.text, self.surface)
        if final.blocked or self.blocked is not None:
            return "", final if final.blocked else self.blocked
        rest = final.text[self.shown :]
        self.shown = len(self.text)
        return rest, final
