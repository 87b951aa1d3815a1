"""The state a zhiwen process keeps between requests, in one explicit object.

A server keeps things warm between questions: open knowledge bases (indexes in memory), the answer
cache, compiled moderation rules, the slots of running evaluations, and the listeners that count what
happened (the API's Prometheus metrics). Module-level dicts made that state invisible, shared by every
app in a process (two test apps saw each other's cache) and owned by no one. Instead the CLI, UI and API
each create one ``Services`` and hand it down; a test makes its own, and ``close()`` ends it.

Each layer keeps its own kind of state in a named slot (``slot(key, factory)``), so this module, at the
bottom of the import graph, needs to know none of them. A function given no ``Services`` works on a
private one for that call (``Services.scoped``): correct, only nothing stays warm.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
Listener = Callable[..., None]


class EventBus:
    """A tiny in-process event hook, so core code can report what happened (a moderation action, say)
    without importing whoever counts it: the API's metrics subscribe, the CLI does not."""

    def __init__(self) -> None:
        self._listeners: dict[str, list[Listener]] = {}
        self._lock = threading.Lock()

    def subscribe(self, event: str, listener: Listener) -> None:
        with self._lock:
            if listener not in self._listeners.setdefault(event, []):
                self._listeners[event].append(listener)

    def emit(self, event: str, **fields: object) -> None:
        """Call every listener of ``event``; a failing listener is logged, never raised into core code."""
        with self._lock:
            listeners = list(self._listeners.get(event, ()))
        for listener in listeners:
            try:
                listener(**fields)
            except Exception:
                log.exception("event listener for %s failed", event)


class Services:
    """One per process (or per test): the named slots of long-lived state and the event bus."""

    def __init__(self) -> None:
        self.events = EventBus()
        self._slots: dict[str, Any] = {}
        self._lock = threading.Lock()

    def slot(self, key: str, factory: Callable[[], T]) -> T:
        """The state kept under ``key``, made by ``factory`` on first use (once, even under threads)."""
        with self._lock:
            if key not in self._slots:
                self._slots[key] = factory()
            return self._slots[key]

    def close(self) -> None:
        """Close every slot that can be closed (open knowledge bases release their files)."""
        with self._lock:
            slots, self._slots = list(self._slots.values()), {}
        for state in slots:
            close = getattr(state, "close", None)
            if callable(close):
                close()

    def __enter__(self) -> Services:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @staticmethod
    @contextmanager
    def scoped(services: Services | None) -> Iterator[Services]:
        """``services`` itself, or a private one for one call that is closed when the call ends."""
        if services is not None:
            yield services
            return
        own = Services()
        try:
            yield own
        finally:
            own.close()
