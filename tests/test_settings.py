from pathlib import Path

import pytest

from core.settings import load_settings


def test_precedence_defaults_then_toml_then_env_then_overrides(tmp_path, monkeypatch):
    assert load_settings().top_k == 5
    cfg = tmp_path / "zhiwen.toml"
    cfg.write_text('top_k = 7\nchunk_size = 300\ndata_dir = "/srv/zw"\n', encoding="utf-8")
    monkeypatch.setenv("ZHIWEN_CONFIG", str(cfg))
    s = load_settings()
    assert (s.top_k, s.chunk_size, s.data_dir) == (7, 300, Path("/srv/zw"))
    monkeypatch.setenv("ZHIWEN_TOP_K", "9")
    assert load_settings().top_k == 9
    assert load_settings().chunk_size == 300
    assert load_settings(top_k=3).top_k == 3
    assert load_settings(top_k=None).top_k == 9  # "flag not given" does not override


def test_overlap_must_be_smaller_than_chunk(monkeypatch):
    with pytest.raises(ValueError, match="chunk_overlap"):
        load_settings(chunk_size=50, chunk_overlap=50)
