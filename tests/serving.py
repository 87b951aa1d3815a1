"""Starting a real server process for a test and waiting until it answers HTTP: `zhiwen api`, `zhiwen mcp --http`."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx


@contextmanager
def serving(argv: list[str], env: dict[str, str], probe: str, ready: Callable[[httpx.Response], bool] = lambda r: True,
            timeout: float = 90) -> Iterator[subprocess.Popen]:
    """Run ``argv`` until the block ends; enter it once a GET of ``probe`` gets a response ``ready`` accepts.
    A process that exits first fails with its stderr, one that never answers after ``timeout`` seconds."""
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                if ready(httpx.get(probe, timeout=1)):
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                raise RuntimeError(f"{' '.join(argv[1:3])} exited: {proc.stderr.read().decode()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{' '.join(argv[1:3])} did not start")
            time.sleep(0.1)  # readiness polling, not test synchronisation
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
