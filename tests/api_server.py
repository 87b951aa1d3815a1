"""Start a real `zhiwen api` process on 127.0.0.1 for tests and the load benchmark."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.llm_server import free_port
from tests.serving import serving


@contextmanager
def running_api(data_dir: Path, auth: bool = True, env: dict[str, str] | None = None, timeout: float = 90) -> Iterator[str]:
    """Yield the base URL of a `zhiwen api` serving ``data_dir``; stop it afterwards."""
    port = free_port()
    full_env = {**os.environ, "ZHIWEN_DATA_DIR": str(data_dir), "ZHIWEN_CONFIG": str(data_dir / "none.toml"), **(env or {})}
    argv = [str(Path(sys.executable).parent / "zhiwen"), "api", "--port", str(port), "--auth" if auth else "--no-auth"]
    base = f"http://127.0.0.1:{port}"
    with serving(argv, full_env, f"{base}/healthz", ready=lambda r: r.status_code == 200, timeout=timeout):
        yield base
