"""A tiny in-process event hook, so core code can report what happened (a moderation action, say)
without importing whoever counts it: the API's Prometheus metrics subscribe, the CLI does not."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

Listener = Callable[..., None]
_listeners: dict[str, list[Listener]] = {}
_lock = threading.Lock()


def subscribe(event: str, listener: Listener) -> None:
    with _lock:
        if listener not in _listeners.setdefault(event, []):
            _listeners[event].append(listener)


def emit(event: str, **fields: object) -> None:
    """Call every listener of ``event``; a failing listener is logged, never raised into core code."""
    for listener in list(_listeners.get(event, ())):
        try:
            listener(**fields)
        except Exception:
            log.exception("event listener for %s failed", event)
