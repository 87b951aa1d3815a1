"""The moderation audit log: one JSON line per block/mask/flag, with the time, surface, category and
rule, never the matched text (it may be someone's ID number)."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timezone
from pathlib import Path


class AuditLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def write(self, surface: str, findings: list) -> None:
        if not findings:
            return
        now = datetime.now(timezone.utc).isoformat()
        lines = "".join(
            json.dumps({"time": now, "surface": surface, "category": f.category, "rule_id": f.rule_id, "action": f.action,
                        "kind": f.kind}, ensure_ascii=False) + "\n"
            for f in findings
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, open(self.path, "a", encoding="utf-8") as out:
            out.write(lines)

    def read(self) -> list[dict]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]
