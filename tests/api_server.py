"""Start a real `zhiwen api` process on 127.0.0.1 for tests and the load benchmark."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.llm_server import free_port


@contextmanager
def running_api(data_dir: Path, auth: bool = True, env: dict[str, str] | None = None, timeout: float = 90) -> Iterator[str]:
    """Yield the base URL of a `zhiwen api` serving ``data_dir``; stop it afterwards."""
    port = free_port()
    full_env = {**os.environ, "ZHIWEN_DATA_DIR": str(data_dir), "ZHIWEN_CONFIG": str(data_dir / "none.toml"), **(env or {})}
    argv = [str(Path(sys.executable).parent / "zhiwen"), "api", "--port", str(port), "--auth" if auth else "--no-auth"]
    proc = subprocess.Popen(argv, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                raise RuntimeError(f"zhiwen api exited: {proc.stderr.read().decode()}")
            if time.monotonic() > deadline:
                raise RuntimeError("zhiwen api did not start")
            time.sleep(0.1)  # health polling, not test synchronisation
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
