"""API keys: stored hashed (SHA-256 of a random secret) in ``$ZHIWEN_DATA_DIR/api_keys.json``, each
with roles per knowledge base (read < write < admin; "*" for every knowledge base)."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, Field

from core.atomic import atomic_write_bytes
from core.errors import ZhiwenError
from core.settings import Settings

ROLES = {"read": 1, "write": 2, "admin": 3}
_lock = threading.Lock()


class ApiKey(BaseModel):
    id: str
    name: str
    hash: str
    roles: dict[str, str] = Field(default_factory=dict)  # kb name or "*" -> read | write | admin
    created_at: str
    revoked: bool = False

    def allows(self, kb: str, role: str) -> bool:
        granted = self.roles.get(kb) or self.roles.get("*")
        return not self.revoked and granted is not None and ROLES[granted] >= ROLES[role]


def forbidden_message(kb: str, role: str) -> str:
    """What a key without ``role`` on ``kb`` is told, the same over the API (403) and MCP (a tool error)."""
    return f"这个 key 没有知识库 {kb} 的 {role} 权限 (forbidden: this key has no {role} role on {kb!r})"


def _path(settings: Settings) -> Path:
    return settings.data_dir / "api_keys.json"


def load_keys(settings: Settings) -> dict[str, ApiKey]:
    path = _path(settings)
    if not path.exists():
        return {}
    return {k["id"]: ApiKey.model_validate(k) for k in json.loads(path.read_text(encoding="utf-8"))}


def _save(settings: Settings, keys: dict[str, ApiKey]) -> None:
    atomic_write_bytes(_path(settings), json.dumps([k.model_dump() for k in keys.values()], ensure_ascii=False, indent=1).encode())


def parse_roles(specs: list[str]) -> dict[str, str]:
    roles = {}
    for spec in specs:
        kb, _, role = spec.rpartition(":")
        if not kb or role not in ROLES:
            raise ZhiwenError(f"角色格式应为 KB:read|write|admin，例如 demo:read 或 *:admin (bad role spec {spec!r})")
        roles[kb] = role
    return roles


def create_key(settings: Settings, name: str, roles: dict[str, str]) -> tuple[ApiKey, str]:
    """A new key; the secret is returned once and never stored."""
    key_id = secrets.token_hex(4)
    secret = secrets.token_urlsafe(24)
    key = ApiKey(id=key_id, name=name, hash=hashlib.sha256(secret.encode()).hexdigest(), roles=roles,
                 created_at=datetime.now(UTC).isoformat())
    with _lock:
        keys = load_keys(settings)
        keys[key_id] = key
        _save(settings, keys)
    return key, f"zw-{key_id}-{secret}"


def revoke_key(settings: Settings, key_id: str) -> bool:
    with _lock:
        keys = load_keys(settings)
        if key_id not in keys:
            return False
        keys[key_id].revoked = True
        _save(settings, keys)
    return True


def verify(settings: Settings, token: str) -> ApiKey | None:
    """The key a bearer token belongs to, or None. Constant-time comparison of hashes."""
    parts = token.split("-", 2)
    if len(parts) != 3 or parts[0] != "zw":
        return None
    key = load_keys(settings).get(parts[1])
    if key is None or key.revoked:
        return None
    digest = hashlib.sha256(parts[2].encode()).hexdigest()
    return key if hmac.compare_digest(digest, key.hash) else None
