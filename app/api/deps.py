"""Who is calling and may they: bearer API keys, per-knowledge-base roles, and per-key rate limits.

Route modules depend on ``caller`` and call ``require``; the server's state (settings, whether auth is
on, the limiter) lives on ``app.state.zhiwen`` so every router sees the same one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from app.api.metrics import RATE_LIMITED
from app.rate_limit import PerKeyRateLimit, RateLimited
from core.keys import ApiKey, forbidden_message, verify
from core.services import Services
from core.settings import Settings


@dataclass
class ApiState:
    settings: Settings
    auth: bool
    services: Services  # open knowledge bases, answer cache, moderators, eval slots of this app
    limit: PerKeyRateLimit = field(init=False)

    def __post_init__(self) -> None:
        self.limit = PerKeyRateLimit(self.settings.api_rate_limit_per_minute)


def state(request: Request) -> ApiState:
    return request.app.state.zhiwen


def settings_of(request: Request) -> Settings:
    return state(request).settings


def services_of(request: Request) -> Services:
    return state(request).services


def caller(request: Request) -> ApiKey | None:
    """The verified key (None when auth is off); 401 without a valid one, 429 past the key's rate."""
    s = state(request)
    if not s.auth:
        return None
    header = request.headers.get("authorization", "")
    key = verify(s.settings, header.removeprefix("Bearer ").strip()) if header.startswith("Bearer ") else None
    if key is None:
        raise HTTPException(401, "需要有效的 API key (missing or invalid API key)", headers={"WWW-Authenticate": "Bearer"})
    try:
        s.limit.hit(key.id)
    except RateLimited as exc:
        RATE_LIMITED.inc()
        raise HTTPException(429, str(exc), headers={"Retry-After": str(exc.retry_after_s)}) from exc
    return key


def require(key: ApiKey | None, kb: str, role: str) -> None:
    """403 unless the key holds ``role`` (or more) on ``kb``. Asked before the knowledge base is looked
    up, so a key without access cannot probe which knowledge bases exist."""
    if key is not None and not key.allows(kb, role):
        raise HTTPException(403, forbidden_message(kb, role))


# Route parameters: ``key: Caller, settings: Config, services: State``.
Caller = Annotated[ApiKey | None, Depends(caller)]
Config = Annotated[Settings, Depends(settings_of)]
State = Annotated[Services, Depends(services_of)]
